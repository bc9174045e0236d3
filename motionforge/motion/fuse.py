"""Fusing hints into a motion plan: sparse → dense (Gaussian densifier), resizing flows, motion strength."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange

from motionforge.core.errors import ConfigError
from motionforge.core.types import MotionContext, MotionHint, MotionPlan

log = logging.getLogger(__name__)

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

    def __len__(self) -> int:
        """Number of samples."""
        return int(self.positions.shape[0])

    def select(self, keep: torch.Tensor) -> SparsePoints:
        """The samples a boolean [N] selects."""
        return SparsePoints(self.positions[keep], self.flow[keep], self.weight[keep])

    @staticmethod
    def cat(parts: list[SparsePoints]) -> SparsePoints:
        """Concatenate several sets of samples."""
        return SparsePoints(
            torch.cat([p.positions for p in parts]),
            torch.cat([p.flow for p in parts]),
            torch.cat([p.weight for p in parts]),
        )


def sparse_points(hint: MotionHint) -> SparsePoints:
    """The samples of a sparse hint: every pixel its mask marks, with the mask value as each sample's weight."""
    flow, mask = hint.flow, hint.mask  # [F, 2, H, W], [F or 1, 1, H, W]
    num_frames = flow.shape[0]
    where = mask.amax(dim=0)[0] > 0  # [H, W]
    ys, xs = torch.nonzero(where, as_tuple=True)  # [N], [N]
    positions = torch.stack([xs, ys], dim=1).to(flow.dtype)  # [N, 2]
    values = rearrange(flow[:, :, ys, xs], "f c n -> n f c")  # [N, F, 2]
    weight = rearrange(mask[:, 0, ys, xs].to(flow.dtype).expand(num_frames, -1), "f n -> n f")  # [N, F]
    return SparsePoints(positions, values, weight)


def merge_points(parts: list[tuple[SparsePoints, float]]) -> SparsePoints:
    """Merge samples of several hints, given with the hints' weights: samples on one pixel become their weighted mean.

    On a shared pixel the flow is Σ w_k m_k f_k / Σ w_k m_k (w the hint's weight, m the sample's
    mask value) and the merged sample counts as much as the most certain of them, max m_k; samples
    of a hint with weight 0 are left out.
    """
    kept = [(points, weight) for points, weight in parts if weight > 0 and len(points)]
    if not kept:
        empty = parts[0][0] if parts else SparsePoints(torch.zeros(0, 2), torch.zeros(0, 1, 2), torch.zeros(0, 1))
        return empty.select(torch.zeros(len(empty), dtype=torch.bool))
    points = SparsePoints.cat([p for p, _ in kept])
    certainty = torch.cat([p.weight * w for p, w in kept])  # [N, F]: w_k m_k
    unique, index = torch.unique(points.positions, dim=0, return_inverse=True)  # [U, 2], [N]
    num_frames = points.flow.shape[1]
    total = torch.zeros(len(unique), num_frames, dtype=certainty.dtype).index_add_(0, index, certainty)  # [U, F]
    summed = torch.zeros(len(unique), num_frames, 2, dtype=points.flow.dtype)
    summed.index_add_(0, index, points.flow * certainty[..., None])  # [U, F, 2]
    flow = summed / total.clamp(min=1e-12)[..., None]  # [U, F, 2]
    weight = torch.zeros(len(unique), num_frames, dtype=points.weight.dtype)
    weight = weight.scatter_reduce(0, index[:, None].expand(-1, num_frames), points.weight, "amax")  # [U, F]
    return SparsePoints(unique, flow, weight)


def _kernel_chunks(
    points: SparsePoints, height: int, width: int, settings: DensifySettings
) -> Iterator[tuple[slice, torch.Tensor]]:
    """The Gaussian kernel exp(-(D_ij/σ)²) between pixels j and samples i, chunk by chunk of pixels: (slice, [P, N])."""
    device, dtype = points.flow.device, points.flow.dtype
    sigma = settings.sigma_for(height, width)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    grid = torch.stack([xs.flatten(), ys.flatten()], dim=1)  # [H*W, 2]
    chunk = max(1, _CHUNK_ELEMENTS // len(points.positions))
    for start in range(0, height * width, chunk):
        pixels = grid[start : start + chunk]  # [P, 2]
        yield (
            slice(start, start + chunk),
            torch.exp(-torch.cdist(pixels, points.positions).square() / sigma**2),
        )


def densify_gaussian(points: SparsePoints, height: int, width: int, settings: DensifySettings) -> torch.Tensor:
    """Dense flow [F, 2, H, W] from sparse samples by Gaussian-weighted interpolation (eqs. 6–7).

    f(x_j) = Σ_i exp(-(D_ij/σ)²) f_s(x_i), zero where the total weight Σ_i exp(-(D_ij/σ)²) is below
    R; with ``normalize`` the sum is divided by max(1, total weight) so that overlapping tracks do
    not add up (the paper's literal sum otherwise). A sample's per-frame weight (its mask value)
    scales its term and its share of the total weight.
    """
    num_frames = points.flow.shape[1]
    out = torch.zeros(
        num_frames,
        2,
        height * width,
        device=points.flow.device,
        dtype=points.flow.dtype,
    )  # [F, 2, H*W]
    if len(points) == 0:
        return out.view(num_frames, 2, height, width)
    weighted = rearrange(points.flow * points.weight[..., None], "n f c -> n (f c)")  # [N, F*2]
    for pixels, kernel in _kernel_chunks(points, height, width, settings):
        total = kernel @ points.weight  # [P, F]
        flow = rearrange(kernel @ weighted, "p (f c) -> p f c", c=2)  # [P, F, 2]
        if settings.normalize:
            flow = flow / total.clamp(min=1.0)[..., None]
        flow = flow * (total >= settings.threshold)[..., None]
        out[:, :, pixels] = rearrange(flow, "p f c -> f c p")
    return out.view(num_frames, 2, height, width)


def coverage(points: SparsePoints, height: int, width: int, settings: DensifySettings) -> torch.Tensor:
    """Where the densifier gives these samples' motion (total weight ≥ R in some frame): bool [H, W]."""
    covered = torch.zeros(height * width, dtype=torch.bool, device=points.flow.device)  # [H*W]
    if len(points) == 0:
        return covered.view(height, width)
    for pixels, kernel in _kernel_chunks(points, height, width, settings):
        covered[pixels] = ((kernel @ points.weight) >= settings.threshold).any(dim=1)
    return covered.view(height, width)


def _densify_split(
    points: SparsePoints,
    region: torch.Tensor | None,
    height: int,
    width: int,
    settings: DensifySettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Densify samples, split by the region (MOFA-Video's brush): dense flow [F, 2, H, W] and where the region is covered [H, W]."""
    if region is None:
        return densify_gaussian(points, height, width, settings), coverage(points, height, width, settings)
    mask = region[0, 0]  # [H, W]
    xs, ys = points.positions[:, 0].long(), points.positions[:, 1].long()
    inside = mask[ys, xs] >= 0.5  # [N] the sample starts in the region
    flow_in = densify_gaussian(points.select(inside), height, width, settings)
    flow_out = densify_gaussian(points.select(~inside), height, width, settings)
    covered = coverage(points.select(inside), height, width, settings)
    return flow_in * mask + flow_out * (1.0 - mask), covered


def _contribution(
    hint: MotionHint,
    points: SparsePoints | None,
    context: MotionContext,
    settings: DensifySettings,
) -> dict[str, Any]:
    """What one hint brings to the plan, for the manifest: its kind, mean displacement and pixels covered."""
    record: dict[str, Any] = {}
    if points is not None:
        moving = points.flow[:, 1:].norm(dim=-1)  # [N, F-1]
        record.update(
            kind="sparse",
            samples=len(points),
            mean_displacement=float(moving.mean()) if moving.numel() else 0.0,
            pixels_covered=int(coverage(points, context.height, context.width, settings).sum()),
        )
    elif hint.flow is not None:
        flow = hint.weight * hint.flow  # [F, 2, H, W]
        record.update(
            kind="camera" if hint.camera else "dense",
            mean_displacement=float(magnitude(flow[1:]).mean()) if flow.shape[0] > 1 else 0.0,
            pixels_covered=int((flow.abs().amax(dim=(0, 1)) > 0).sum()),
        )
    if hint.region is not None:
        record.setdefault("kind", "region")
        record["region_pixels"] = int((hint.region >= 0.5).sum())
    if hint.scale is not None:
        record.setdefault("kind", "strength")
        record["scale"] = hint.scale
    if hint.strength is not None:
        record.setdefault("kind", "strength")
        record["strength"] = hint.strength
    record.setdefault("kind", "none")
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in record.items()}


def _strength_target(hints: dict[str, MotionHint]) -> float | None:
    """The one global motion strength the hints ask for, or None; two different asks are an error."""
    asks = {name: hint.strength for name, hint in sorted(hints.items()) if hint.strength is not None}
    if len(set(asks.values())) > 1:
        listed = ", ".join(f"{name} asks {value:g}" for name, value in asks.items())
        raise ConfigError(f"two controls ask for different global motion strengths ({listed}); keep one of them")
    return next(iter(asks.values()), None)


def fuse(hints: dict[str, MotionHint], context: MotionContext, settings: DensifySettings) -> MotionPlan:
    """Fuse the adapters' hints into one plan by one rule set, whatever order the adapters are listed in.

    1. Regions combine by union (the pixelwise maximum): the region is where object motion is allowed.
    2. Sparse hints (trajectories, landmarks) are merged — samples of two hints on one pixel become
       their weighted mean (:func:`merge_points`) — and densified once. With a region, samples are
       split by where they start (MOFA-Video's brush): those inside are densified together and kept
       inside the region, those outside together and kept outside it. So a brush with motion only
       inside keeps the rest of the picture still, and a face region from landmarks takes the
       landmark motion while trajectories outside move the rest (MOFA-Video's hybrid blend).
    3. Dense hints (flow fields, driving videos) add, each multiplied by its weight, and are then
       restricted to the region.
    4. Camera hints add last, weighted, over the whole frame: a camera move also moves what the
       region holds still.
    5. Strength applies last: the flow is multiplied by every hint's ``scale``, then rescaled so its
       global motion strength M_s (eq. 8) is the one a hint asks for (two different asks are an error).

    The part of the region where no sparse sample reaches and no dense hint is given is ``free``:
    "animate freely here" for backbones that can. ``stats`` records M_s before and after step 5 and
    each hint's contribution.
    """
    height, width = context.height, context.width
    ordered = sorted(hints.items())  # a fixed order: the sums do not depend on how adapters were listed
    flow = torch.zeros(context.num_frames, 2, height, width, device=context.device)  # [F, 2, H, W]
    regions = [hint.region.to(flow) for _, hint in ordered if hint.region is not None]
    region = torch.stack(regions).amax(dim=0) if regions else None  # [1, 1, H, W]

    sparse = {name: sparse_points(hint) for name, hint in ordered if hint.is_sparse}
    covered = torch.zeros(height, width, dtype=torch.bool, device=flow.device)  # [H, W]
    if sparse:
        merged = merge_points([(points, hints[name].weight) for name, points in sparse.items()])
        sparse_flow, covered = _densify_split(merged, region, height, width, settings)
        flow = flow + sparse_flow.to(flow)
    fields = [
        (hint.camera, (hint.weight * hint.flow).to(flow)) for _, hint in ordered if hint.flow is not None and hint.mask is None
    ]
    for camera, field in fields:
        if not camera:
            flow = flow + (field * region if region is not None else field)
            covered = torch.ones_like(covered)
    for camera, field in fields:
        if camera:
            flow = flow + field

    before = motion_strength(flow)
    for _, hint in ordered:
        if hint.scale is not None:
            flow = flow * hint.scale
    target = _strength_target(hints)
    if target is not None:
        current = motion_strength(flow)
        if current > 0:
            flow = flow * (target / current)
        else:
            log.warning(
                "motion strength: the controls give no motion to rescale to M_s=%g; it goes to the backbone only",
                target,
            )
    scaled = any(hint.scale is not None for hint in hints.values())
    after = motion_strength(flow)
    return MotionPlan(
        flow=flow,
        region=region,
        strength=target if target is not None else (after if scaled else None),
        hints=dict(hints),
        sources=list(hints),
        free=None if region is None else region * (~covered).to(region),
        stats={
            "motion_strength": {"before": round(before, 4), "after": round(after, 4)},
            "contributions": {name: _contribution(hint, sparse.get(name), context, settings) for name, hint in hints.items()},
        },
    )


def resize_flow(flow: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize flows [F, 2, h, w] to [F, 2, H, W], scaling the displacements with the frame."""
    scale = torch.tensor(
        [width / flow.shape[-1], height / flow.shape[-2]],
        device=flow.device,
        dtype=flow.dtype,
    )
    resized = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
    return resized * scale.view(1, 2, 1, 1)


def magnitude(flow: torch.Tensor, keepdim: bool = False) -> torch.Tensor:
    """Length of every displacement of flows [B, 2, H, W]: [B, H, W] ([B, 1, H, W] with keepdim); far faster than norm(dim=1) on CPU."""
    length = torch.hypot(flow[:, 0], flow[:, 1])  # [B, H, W]
    return length[:, None] if keepdim else length


def motion_strength(flow: torch.Tensor) -> float:
    """The global motion strength M_s (eq. 8): mean magnitude of the consecutive flows, pixels per frame; flow [F, 2, H, W]."""
    if flow.shape[0] < 2:
        return 0.0
    consecutive = flow[1:] - flow[:-1]  # [F-1, 2, H, W], each point's move from frame k to k+1
    return float(magnitude(consecutive).mean())
