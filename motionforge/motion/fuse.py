"""Fusing hints into a motion plan: sparse → dense (Gaussian densifier, or a learned one: CMP), resizing flows, strength."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from motionforge.core.errors import ConfigError
from motionforge.core.flowfield import CHUNK_FRAMES, FlowField
from motionforge.core.types import MotionContext, MotionHint, MotionLayer, MotionPlan, SparsePoints

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
    feather: float = 0.0  # pixels outside a region's edge over which its motion fades out (0: a hard edge)

    def sigma_for(self, height: int, width: int) -> float:
        """σ in pixels for a frame of this size."""
        return float(self.sigma) if self.sigma is not None else SIGMA_PER_SIDE * max(height, width)


class SparseDensifier(Protocol):
    """A learned densifier (CMP): the dense flow of sparse samples over the whole frame, given the picture."""

    name: str  # how the manifest names it, e.g. "cmp"

    def field(self, points: SparsePoints, context: MotionContext) -> FlowField:
        """The samples' flow f_{0→i} at every pixel of the working frame, every frame: [F, 2, H, W] as a field."""
        ...


def sparse_points(hint: MotionHint) -> SparsePoints:
    """The samples of a sparse hint: its ``points``, or every pixel its mask marks, the mask value each sample's weight."""
    if hint.points is not None:
        return hint.points
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
    points: SparsePoints, height: int, width: int, settings: DensifySettings, *, relative: bool = False
) -> Iterator[tuple[slice, torch.Tensor]]:
    """The Gaussian kernel exp(-(D_ij/σ)²) between pixels j and samples i, chunk by chunk of pixels: (slice, [P, N]).

    With ``relative`` each pixel's kernel is divided by its nearest sample's, exp(-(D_ij² − min_i D_ij²)/σ²),
    which leaves every ratio between samples as it is but never underflows to all zeros.
    """
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
        squared = torch.cdist(pixels, points.positions).square()  # [P, N]
        if relative:
            squared = squared - squared.amin(dim=1, keepdim=True)
        yield slice(start, start + chunk), torch.exp(-squared / sigma**2)


def densify_gaussian(points: SparsePoints, height: int, width: int, settings: DensifySettings) -> torch.Tensor:
    """Dense flow [F, 2, H, W] from sparse samples by Gaussian-weighted interpolation (eqs. 6–7): :func:`gaussian_field`."""
    return gaussian_field(points, height, width, settings).tensor()


def gaussian_field(points: SparsePoints, height: int, width: int, settings: DensifySettings) -> FlowField:
    """The flow of sparse samples by Gaussian-weighted interpolation (eqs. 6–7), as a field read a few frames at a time.

    f(x_j) = Σ_i exp(-(D_ij/σ)²) f_s(x_i), zero where the total weight Σ_i exp(-(D_ij/σ)²) is below
    R/2 and fading in up to R (:func:`threshold_fade`; the paper cuts at R); with ``normalize`` the
    sum is divided by max(1, total weight) so that overlapping tracks do not add up (the paper's
    literal sum otherwise). A sample's per-frame weight (its mask value) scales its term and its
    share of the total weight.
    """
    return _field(points, height, width, settings, partition=False)


def threshold_fade(total: torch.Tensor, threshold: float) -> torch.Tensor:
    """Eq. 7's cut-off made continuous: 1 where the total weight is at least R, 0 below R/2, smoothstep between; same shape.

    A hard cut at R would tear the flow along a curve (a jump of R times the motion there); the
    smooth fade keeps the flow continuous, so content stretches across it instead of ripping.
    """
    if threshold <= 0:
        return torch.ones_like(total)
    ramp = ((total - 0.5 * threshold) / (0.5 * threshold)).clamp(0.0, 1.0)
    return ramp * ramp * (3.0 - 2.0 * ramp)


def densify_partition(points: SparsePoints, height: int, width: int, settings: DensifySettings) -> torch.Tensor:
    """Dense flow [F, 2, H, W] that moves a region as one: :func:`partition_field`'s, whole."""
    return partition_field(points, height, width, settings).tensor()


def partition_field(points: SparsePoints, height: int, width: int, settings: DensifySettings) -> FlowField:
    """The flow that moves a region as one, the Gaussian-weighted mean of its samples at every pixel, as a field.

    f(x_j) = Σ_i k_ij m_i f_i / Σ_i k_ij m_i with k_ij = exp(-(D_ij/σ)²) and m_i a sample's weight
    in that frame (Shepard's interpolation with eq. 6's kernel): the weights sum to one everywhere,
    so one track translates the whole region rigidly and several blend by distance; there is no
    threshold, since a region moves wherever it is. Frames where no sample counts have no motion.
    """
    return _field(points, height, width, settings, partition=True)


def _field(points: SparsePoints, height: int, width: int, settings: DensifySettings, *, partition: bool) -> FlowField:
    """Either densifier's flow as a field: each sample's spatial share of each pixel, times its motion.

    The shares do not depend on the frame when every sample counts the same in every frame, so
    they are computed once ([N, H, W]) and a frame costs one small matrix product; with weights
    that change from frame to frame, or more samples than twice the frames, the flow is computed
    whole ([F, 2, H, W]), which is then the smaller.
    """
    num_frames, device = points.flow.shape[1], points.flow.device
    if len(points) == 0:
        return FlowField([], num_frames, height, width, device)
    constant = bool((points.weight == points.weight[:, :1]).all())
    if not constant or len(points) > 2 * num_frames:
        return FlowField.of(_densify(points, height, width, settings, partition=partition))
    shares = torch.empty(len(points), height * width, device=device, dtype=points.flow.dtype)  # [N, H*W]
    for pixels, kernel in _kernel_chunks(points, height, width, settings, relative=partition):
        share = kernel * points.weight[:, 0]  # [P, N]
        total = share.sum(dim=1, keepdim=True)  # [P, 1]
        if partition:
            share = torch.where(total > 0, share / total.clamp(min=1e-30), 0.0)
        else:
            if settings.normalize:
                share = share / total.clamp(min=1.0)
            share = share * threshold_fade(total, settings.threshold)
        shares[:, pixels] = share.transpose(0, 1)
    return FlowField.spread(shares.view(len(points), height, width), points.flow)


def _densify(points: SparsePoints, height: int, width: int, settings: DensifySettings, *, partition: bool) -> torch.Tensor:
    """The kernel sums both densifiers share, chunk by chunk of pixels: [F, 2, H, W]."""
    num_frames = points.flow.shape[1]
    out = torch.zeros(num_frames, 2, height * width, device=points.flow.device, dtype=points.flow.dtype)  # [F, 2, H*W]
    if len(points) == 0:
        return out.view(num_frames, 2, height, width)
    weighted = rearrange(points.flow * points.weight[..., None], "n f c -> n (f c)")  # [N, F*2]
    for pixels, kernel in _kernel_chunks(points, height, width, settings, relative=partition):
        total = kernel @ points.weight  # [P, F]
        flow = rearrange(kernel @ weighted, "p (f c) -> p f c", c=2)  # [P, F, 2]
        if partition:
            flow = torch.where(total[..., None] > 0, flow / total.clamp(min=1e-30)[..., None], 0.0)
        else:
            if settings.normalize:
                flow = flow / total.clamp(min=1.0)[..., None]
            flow = flow * threshold_fade(total, settings.threshold)[..., None]
        out[:, :, pixels] = rearrange(flow, "p f c -> f c p")
    return out.view(num_frames, 2, height, width)


def coverage(points: SparsePoints, height: int, width: int, settings: DensifySettings) -> torch.Tensor:
    """Where the densifier gives these samples' motion (total weight above R/2 in some frame): bool [H, W]."""
    covered = torch.zeros(height * width, dtype=torch.bool, device=points.flow.device)  # [H*W]
    if len(points) == 0:
        return covered.view(height, width)
    constant = bool((points.weight == points.weight[:, :1]).all())
    weights = points.weight[:, :1] if constant else points.weight  # [N, F or 1]: every frame alike needs one
    for pixels, kernel in _kernel_chunks(points, height, width, settings):
        for start in range(0, weights.shape[1], CHUNK_FRAMES):  # [P, frames] at a time, never [P, F]
            total = kernel @ weights[:, start : start + CHUNK_FRAMES]
            covered[pixels] |= (threshold_fade(total, settings.threshold) > 0).any(dim=1)
    return covered.view(height, width)


def region_parts(region: torch.Tensor) -> tuple[np.ndarray, int]:
    """The connected parts of a region where it is at least 0.5 (8-connected): labels int32 [H, W] (0 outside) and their count."""
    hard = (region[0, 0] >= 0.5).cpu().numpy().astype(np.uint8)  # [H, W]
    count, labels = cv2.connectedComponents(hard, connectivity=8)
    return labels, count - 1


def fade_alphas(groups: list[np.ndarray], soft: np.ndarray, widths: list[float], smooth: list[bool]) -> list[np.ndarray]:
    """Each group of region parts' alpha: 1 on it, fading to 0 over its width in pixels outside it, or the region's own soft edge.

    ``groups`` are bool [H, W] masks of disjoint parts; ``soft`` [H, W] in [0, 1] is the region as
    the adapters gave it. A pixel outside every part belongs to the fade of the nearest group. A
    ``smooth`` fade follows smoothstep (no bend where it starts or ends: a flow blended by it stays
    smooth), the others fall linearly.
    """
    distances = np.stack(
        [cv2.distanceTransform((~group).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) for group in groups]
    )  # [G, H, W] pixels to each group
    nearest = distances.argmin(axis=0)  # [H, W]
    alphas = []
    for index, (group, distance, width, gentle) in enumerate(zip(groups, distances, widths, smooth)):
        if width > 0:
            ramp = np.clip(1.0 - distance / width, 0.0, 1.0)  # [H, W]
            ramp = ramp * ramp * (3.0 - 2.0 * ramp) if gentle else ramp
        else:
            ramp = group.astype(np.float32)
        alpha = np.maximum(ramp, np.where(nearest == index, soft, 0.0))
        alphas.append(np.where(group, 1.0, alpha).astype(np.float32))
    return alphas


def _layer_depth(layer: MotionLayer) -> float:
    """How far a layer's own pixels move on average over the clip: the faster layer is the nearer one."""
    core = layer.core[0, 0]  # [H, W]
    if not bool(core.any()):
        return 0.0
    total = sum(float(magnitude(chunk)[:, core].sum(dtype=torch.float64)) for _, chunk in layer.field.chunks())
    return total / (layer.field.num_frames * int(core.sum()))


def _build_layers(
    points: SparsePoints | None,
    region: torch.Tensor | None,
    blends: list[tuple[torch.Tensor, float]],
    dense: FlowField,
    camera: FlowField,
    context: MotionContext,
    settings: DensifySettings,
    densifier: SparseDensifier | None = None,
) -> tuple[list[MotionLayer], torch.Tensor | None]:
    """The plan's layers, back to front, and the free part of the region (rules 2–4 of :func:`fuse`).

    ``blends`` are the regions whose hints blend their motion into their surroundings, with the
    width of that blend: a part of the region they cover is not a layer of its own but bends the
    background's flow (a face, with hair and neck following it). ``densifier``, if given, gives
    the background's flow from its samples instead of the Gaussian densifier.
    """
    height, width, device = context.height, context.width, context.device
    still = FlowField([], context.num_frames, height, width, device)

    def spread(samples: SparsePoints | None) -> FlowField:
        """The background's flow from its samples: the learned densifier's, or the Gaussian one's."""
        if samples is None:
            return still
        if densifier is None:
            return gaussian_field(samples, height, width, settings)
        return densifier.field(samples, context) if len(samples) else still

    if region is None:
        return [MotionLayer("background", spread(points) + dense + camera)], None
    labels, count = region_parts(region)
    part_of = np.zeros(0, dtype=np.int64)  # [N] the part each sample starts in (0: outside)
    if points is not None:
        xs, ys = points.positions[:, 0].long().cpu().numpy(), points.positions[:, 1].long().cpu().numpy()
        part_of = labels[ys, xs]
    outside = points.select(torch.from_numpy(part_of == 0).to(points.flow.device)) if points is not None else None
    background = spread(outside)
    blend_of = np.zeros(count + 1)  # [parts + 1] each part's blend width, 0 for a cut-out
    for mask, blend in blends:
        covered = np.unique(labels[(mask[0, 0] >= 0.5).cpu().numpy()])
        blend_of[covered] = np.maximum(blend_of[covered], blend)
    driven = sorted(set(int(k) for k in part_of if k > 0))  # parts with samples: each moves with its own
    parts = [[k] for k in driven]
    resting = [k for k in range(1, count + 1) if k not in driven]  # parts with no sample: they share one flow
    if resting:
        parts.append(resting)
    groups = [np.isin(labels, ids) for ids in parts]
    blend_widths = [float(blend_of[ids].max()) for ids in parts]
    widths = [width if width > 0 else settings.feather for width in blend_widths]
    smooth = [width > 0 for width in blend_widths]
    alphas = fade_alphas(groups, region[0, 0].cpu().numpy(), widths, smooth) if groups else []
    layers = []
    for ids, alpha, blended in zip(parts, alphas, smooth):
        inside = points.select(torch.from_numpy(part_of == ids[0]).to(points.flow.device)) if ids[0] in driven else None
        flow = (partition_field(inside, height, width, settings) if inside is not None else still) + dense
        alpha_tensor = torch.from_numpy(alpha)[None, None].to(device)  # [1, 1, H, W]
        if blended:  # part of the background's surface: it bends the background's flow, smoothly
            background = background.lerp(flow, alpha_tensor[0, 0])
        else:
            layers.append(MotionLayer(f"region {len(layers) + 1}", flow + camera, alpha_tensor))
    front = sorted(layers, key=_layer_depth)  # stable: equal speeds keep the parts' order
    free = torch.zeros_like(region)
    if resting and not dense.terms:
        free = region * torch.from_numpy(np.isin(labels, resting)).to(region)[None, None]
    return [MotionLayer("background", background + camera), *front], free


def composite_field(layers: list[MotionLayer]) -> FlowField:
    """The plan's one flow from its layers, back to front: each layer's flow where its alpha is 1, blended across its fade."""
    flow = layers[0].field
    for layer in layers[1:]:
        flow = flow.lerp(layer.field, layer.alpha[0, 0])
    return flow


def _contribution(
    hint: MotionHint,
    points: SparsePoints | None,
    context: MotionContext,
    settings: DensifySettings,
    densifier: SparseDensifier | None = None,
) -> dict[str, Any]:
    """What one hint brings to the plan, for the manifest: its kind, mean displacement and pixels covered.

    With a learned densifier, which moves every pixel a little, a sparse hint records the
    densifier's name instead of the pixels the Gaussian kernel would cover.
    """
    record: dict[str, Any] = {}
    if points is not None:
        moving = points.flow[:, 1:].norm(dim=-1)  # [N, F-1]
        record.update(
            kind="sparse",
            samples=len(points),
            mean_displacement=float(moving.mean()) if moving.numel() else 0.0,
        )
        if densifier is None:
            record["pixels_covered"] = int(coverage(points, context.height, context.width, settings).sum())
        else:
            record["densifier"] = densifier.name
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


def fuse(
    hints: dict[str, MotionHint], context: MotionContext, settings: DensifySettings, densifier: SparseDensifier | None = None
) -> MotionPlan:
    """Fuse the adapters' hints into one plan by one rule set, whatever order the adapters are listed in.

    1. Regions combine by union (the pixelwise maximum): the region is where object motion is allowed.
       Each connected part of it (where it is at least 0.5) can move on its own.
    2. Sparse hints (trajectories, landmarks) are merged — samples of two hints on one pixel become
       their weighted mean (:func:`merge_points`). With no region they are densified together
       (eqs. 6–7). With a region, samples are split by where they start (MOFA-Video's brush): the
       samples in one part of the region move that part, as one (:func:`densify_partition`), and
       those outside move only the outside (eqs. 6–7). So a brush with motion only inside keeps the
       rest of the picture still, two brushed objects follow their own tracks, and a face region
       from landmarks takes the landmark motion while trajectories outside move the rest
       (MOFA-Video's hybrid blend). A learned ``densifier`` (``motion.densifier=cmp``) replaces
       eqs. 6–7 for the background's samples (all of them with no region), reading the picture
       from ``context``; a part of a region still moves as one with its own samples
       (:func:`densify_partition`), since a layer's flow must stay smooth over the whole frame.
    3. Dense hints (flow fields, driving videos) add, each multiplied by its weight, and are then
       restricted to the region.
    4. Camera hints add last, weighted, over the whole frame: a camera move also moves what the
       region holds still.
    5. Strength applies last: the flow is multiplied by every hint's ``scale``, then rescaled so its
       global motion strength M_s (eq. 8) is the one a hint asks for (two different asks are an error).

    Each part of the region with samples is a layer of the plan, the parts with none share one,
    and the outside is the background (:class:`MotionLayer`); a layer's motion fades out over
    ``settings.feather`` pixels outside its edge (or the region's own soft edge, if wider), and
    the faster layer is the nearer one. A part given by a hint with a ``blend`` (a face region) is
    no layer: its motion bends the background's flow, fading smoothly over that many pixels
    around it, so its surroundings follow it with no seam. ``flow`` is the layers' composite, held
    as a :class:`~motionforge.core.flowfield.FlowField` (nothing of the clip's size is computed
    here). The parts of the region with no sample and no dense hint are ``free``: "animate freely
    here" for backbones that can.
    ``stats`` records M_s before and after step 5 and each hint's contribution.
    """
    ordered = sorted(hints.items())  # a fixed order: the sums do not depend on how adapters were listed
    like = torch.zeros((), device=context.device)
    regions = [hint.region.to(like) for _, hint in ordered if hint.region is not None]
    region = torch.stack(regions).amax(dim=0) if regions else None  # [1, 1, H, W]
    sparse = {name: sparse_points(hint) for name, hint in ordered if hint.is_sparse}
    merged = merge_points([(points, hints[name].weight) for name, points in sparse.items()]) if sparse else None
    merged = merged.to(like.device) if merged is not None else None
    still = FlowField([], context.num_frames, context.height, context.width, context.device)
    fields = [
        (hint.camera, FlowField.of(hint.flow.to(like)).scaled(hint.weight))
        for _, hint in ordered
        if hint.flow is not None and hint.mask is None
    ]
    dense = sum((field for camera, field in fields if not camera), still)
    camera = sum((field for camera, field in fields if camera), still)
    blends = [(hint.region.to(like), hint.blend) for _, hint in ordered if hint.region is not None and hint.blend > 0]
    layers, free = _build_layers(merged, region, blends, dense, camera, context, settings, densifier)
    flow = composite_field(layers)

    before = flow.motion_strength()
    factor = 1.0
    for _, hint in ordered:
        if hint.scale is not None:
            factor *= hint.scale
    target = _strength_target(hints)
    if target is not None:
        current = before * abs(factor)
        if current > 0:
            factor *= target / current
        else:
            log.warning(
                "motion strength: the controls give no motion to rescale to M_s=%g; it goes to the backbone only",
                target,
            )
    if factor != 1.0:
        layers = [dataclasses.replace(layer, field=layer.field.scaled(factor)) for layer in layers]
        flow = flow.scaled(factor)
    scaled = any(hint.scale is not None for hint in hints.values())
    after = flow.motion_strength() if factor != 1.0 else before
    return MotionPlan(
        flow=layers[0].field if len(layers) == 1 else flow,
        region=region,
        strength=target if target is not None else (after if scaled else None),
        hints=dict(hints),
        sources=list(hints),
        free=free,
        stats={
            "motion_strength": {"before": round(before, 4), "after": round(after, 4)},
            "contributions": {
                name: _contribution(hint, sparse.get(name), context, settings, densifier) for name, hint in hints.items()
            },
        },
        layers=layers,
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
    """Length of every displacement of flows [B, 2, H, W]: [B, H, W] ([B, 1, H, W] with keepdim); faster than norm(dim=1)."""
    length = torch.hypot(flow[:, 0], flow[:, 1])  # [B, H, W]
    return length[:, None] if keepdim else length


def motion_strength(flow: torch.Tensor) -> float:
    """The global motion strength M_s (eq. 8): mean magnitude of the consecutive flows, pixels per frame; flow [F, 2, H, W]."""
    if flow.shape[0] < 2:
        return 0.0
    consecutive = flow[1:] - flow[:-1]  # [F-1, 2, H, W], each point's move from frame k to k+1
    return float(magnitude(consecutive).mean())
