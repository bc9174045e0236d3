"""Fusing hints into a motion plan: sparse → dense (Gaussian densifier), resizing flows, motion strength."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange

from motionforge.core.types import MotionContext, MotionHint, MotionPlan

# The Controllable Longer Image Animation paper's σ = 170 at 512 px, as a fraction of the longer side.
SIGMA_PER_SIDE = 170.0 / 512.0
# Pixels × sources per chunk of the densifier's weight matrix (bounds its memory to ~16 MB).
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class DensifySettings:
    """Parameters of the Gaussian densifier (eqs. 6–7)."""

    sigma: float | None = None  # pixels; None = 170/512 of the longer side
    threshold: float = 0.05  # R
    normalize: bool = True  # divide by max(1, total weight)

    def sigma_for(self, height: int, width: int) -> float:
        """σ in pixels for a frame of this size."""
        return float(self.sigma) if self.sigma is not None else SIGMA_PER_SIDE * max(height, width)


@dataclass
class SparsePoints:
    """Sparse motion samples: where they sit, their flow per frame, and how much each counts per frame."""

    positions: torch.Tensor  # [N, 2] (x, y) pixels
    flow: torch.Tensor  # [N, F, 2]
    weight: torch.Tensor  # [N, F]

    @staticmethod
    def cat(parts: list["SparsePoints"]) -> "SparsePoints":
        """Concatenate several sets of samples."""
        return SparsePoints(
            torch.cat([p.positions for p in parts]),
            torch.cat([p.flow for p in parts]),
            torch.cat([p.weight for p in parts]),
        )


def sparse_points(hint: MotionHint) -> SparsePoints:
    """The samples of a sparse hint: every pixel its mask marks, with the hint's weight applied."""
    flow, mask = hint.flow, hint.mask  # [F, 2, H, W], [F or 1, 1, H, W]
    num_frames = flow.shape[0]
    where = mask.amax(dim=0)[0] > 0  # [H, W]
    ys, xs = torch.nonzero(where, as_tuple=True)  # [N], [N]
    positions = torch.stack([xs, ys], dim=1).to(flow.dtype)  # [N, 2]
    values = rearrange(flow[:, :, ys, xs], "f c n -> n f c") * hint.weight  # [N, F, 2]
    weight = rearrange(mask[:, 0, ys, xs].to(flow.dtype).expand(num_frames, -1), "f n -> n f")  # [N, F]
    return SparsePoints(positions, values, weight)


def densify_gaussian(points: SparsePoints, height: int, width: int, settings: DensifySettings) -> torch.Tensor:
    """Dense flow [F, 2, H, W] from sparse samples by Gaussian-weighted interpolation (eqs. 6–7).

    f(x_j) = Σ_i exp(-(D_ij/σ)²) f_s(x_i), zero where the total weight Σ_i exp(-(D_ij/σ)²) is below
    R; with ``normalize`` the sum is divided by max(1, total weight) so that overlapping tracks do
    not add up (the paper's literal sum otherwise). A sample's per-frame weight (its mask value)
    scales its term and its share of the total weight.
    """
    num_frames = points.flow.shape[1]
    device, dtype = points.flow.device, points.flow.dtype
    out = torch.zeros(num_frames, 2, height * width, device=device, dtype=dtype)  # [F, 2, H*W]
    if len(points.positions) == 0:
        return out.view(num_frames, 2, height, width)
    sigma = settings.sigma_for(height, width)
    weighted = rearrange(points.flow * points.weight[..., None], "n f c -> n (f c)")  # [N, F*2]
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype), torch.arange(width, device=device, dtype=dtype), indexing="ij"
    )
    grid = torch.stack([xs.flatten(), ys.flatten()], dim=1)  # [H*W, 2]
    chunk = max(1, _CHUNK_ELEMENTS // len(points.positions))
    for start in range(0, height * width, chunk):
        pixels = grid[start : start + chunk]  # [P, 2]
        kernel = torch.exp(-torch.cdist(pixels, points.positions).square() / sigma**2)  # [P, N]
        total = kernel @ points.weight  # [P, F]
        flow = rearrange(kernel @ weighted, "p (f c) -> p f c", c=2)  # [P, F, 2]
        if settings.normalize:
            flow = flow / total.clamp(min=1.0)[..., None]
        flow = flow * (total >= settings.threshold)[..., None]
        out[:, :, start : start + chunk] = rearrange(flow, "p f c -> f c p")
    return out.view(num_frames, 2, height, width)


def fuse(hints: dict[str, MotionHint], context: MotionContext, settings: DensifySettings) -> MotionPlan:
    """Fuse the adapters' hints into one plan: weighted dense flows add, sparse ones are densified together.

    The region is the union of the hints' regions (motion outside it is removed); the strength is
    the last one an adapter asked for.
    """
    shape = (context.num_frames, 2, context.height, context.width)
    flow = torch.zeros(shape, device=context.device)  # [F, 2, H, W]
    sparse = [sparse_points(h) for h in hints.values() if h.is_sparse]
    for hint in hints.values():
        if hint.flow is not None and hint.mask is None:
            flow = flow + hint.weight * hint.flow.to(flow)
    if sparse:
        flow = flow + densify_gaussian(SparsePoints.cat(sparse), context.height, context.width, settings).to(flow)
    regions = [h.region.to(flow) for h in hints.values() if h.region is not None]
    region = torch.stack(regions).amax(dim=0) if regions else None  # [1, 1, H, W]
    if region is not None:
        flow = flow * region
    strengths = [h.strength for h in hints.values() if h.strength is not None]
    return MotionPlan(
        flow=flow,
        region=region,
        strength=strengths[-1] if strengths else None,
        hints=dict(hints),
        sources=list(hints),
    )


def resize_flow(flow: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize flows [F, 2, h, w] to [F, 2, H, W], scaling the displacements with the frame."""
    scale = torch.tensor([width / flow.shape[-1], height / flow.shape[-2]], device=flow.device, dtype=flow.dtype)
    resized = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
    return resized * scale.view(1, 2, 1, 1)


def motion_strength(flow: torch.Tensor) -> float:
    """The global motion strength M_s (eq. 8): mean magnitude of the consecutive flows, pixels per frame; flow [F, 2, H, W]."""
    if flow.shape[0] < 2:
        return 0.0
    consecutive = flow[1:] - flow[:-1]  # [F-1, 2, H, W], each point's move from frame k to k+1
    return float(consecutive.norm(dim=1).mean())
