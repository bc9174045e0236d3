"""PyTorch reference implementations of the flow kernels: the ground truth other backends are tested against.

Inputs are assumed validated by ``motionforge.kernels.splat`` / ``warp``. Positions are in pixels
with the origin at the centre of the top-left pixel; channel 0 of a flow is x (columns), 1 is y (rows).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

EPS = 1e-7
METRIC_CLIP = 20.0


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Return the accumulation dtype: float64 stays float64, every other float type runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def positions(flow: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Return the absolute positions (x, y) that ``flow`` points each pixel to."""
    _, _, h, w = flow.shape
    flow = flow.to(dtype)  # [B, 2, H, W]
    grid_x = torch.arange(w, dtype=dtype, device=flow.device)  # [W]
    grid_y = torch.arange(h, dtype=dtype, device=flow.device)[:, None]  # [H, 1]
    return flow[:, 0] + grid_x, flow[:, 1] + grid_y  # [B, H, W], [B, H, W]


def bilinear_taps(pos_x: Tensor, pos_y: Tensor, h: int, w: int) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Return the flat index, weight and validity of each of the 4 integer neighbours (NW, NE, SW, SE) of each position.

    Each corner is bounds-checked on its own; non-finite positions make all four corners invalid.
    Invalid corners get weight 0 and index 0, so they can be gathered safely or masked out.
    """
    finite = torch.isfinite(pos_x) & torch.isfinite(pos_y)  # [B, H, W]
    pos_x = torch.where(finite, pos_x, -2.0).clamp(-2.0, w + 1.0)  # [B, H, W]
    pos_y = torch.where(finite, pos_y, -2.0).clamp(-2.0, h + 1.0)  # [B, H, W]
    x0 = torch.floor(pos_x)  # [B, H, W]
    y0 = torch.floor(pos_y)  # [B, H, W]
    frac_x = pos_x - x0  # [B, H, W]
    frac_y = pos_y - y0  # [B, H, W]
    x0, y0 = x0.long(), y0.long()
    in_x = {0: finite & (x0 >= 0) & (x0 < w), 1: finite & (x0 >= -1) & (x0 < w - 1)}  # [B, H, W] each
    in_y = {0: (y0 >= 0) & (y0 < h), 1: (y0 >= -1) & (y0 < h - 1)}  # [B, H, W] each
    weight_x = {0: 1.0 - frac_x, 1: frac_x}
    weight_y = {0: 1.0 - frac_y, 1: frac_y}
    base = y0 * w + x0  # [B, H, W] flat index of the NW corner
    taps = []
    for dy in (0, 1):
        for dx in (0, 1):
            inside = in_x[dx] & in_y[dy]  # [B, H, W]
            index = torch.where(inside, base + (dy * w + dx), 0)  # [B, H, W]
            weight = torch.where(inside, weight_x[dx] * weight_y[dy], 0.0)  # [B, H, W]
            taps.append((index, weight, inside))
    return taps


def splat_sum(x: Tensor, flow: Tensor) -> Tensor:
    """Forward-warp ``x`` by ``flow``, summing the bilinear shares landing on each pixel (float32/64 result)."""
    batch, channels, h, w = flow.shape[0], x.shape[1], flow.shape[2], flow.shape[3]
    dtype = compute_dtype(x.dtype)
    pos_x, pos_y = positions(flow, dtype)  # [B, H, W] each
    source = rearrange(x.to(dtype), "b c h w -> b c (h w)").expand(batch, -1, -1)  # [B, C, H*W]
    finite_source = bool(torch.isfinite(source).all())
    out = source.new_zeros(batch, channels, h * w)  # [B, C, H*W]
    for index, weight, inside in bilinear_taps(pos_x, pos_y, h, w):
        shares = rearrange(weight, "b h w -> b 1 (h w)") * source  # [B, C, H*W]; 0 for dropped corners
        if not finite_source:  # 0 × NaN would reach pixel 0 through a dropped corner's index
            shares = torch.where(rearrange(inside, "b h w -> b 1 (h w)"), shares, 0.0)
        targets = rearrange(index, "b h w -> b 1 (h w)").expand(-1, channels, -1)  # [B, C, H*W]
        out.scatter_add_(2, targets, shares)  # [B, C, H*W]
    return rearrange(out, "b c (h w) -> b c h w", h=h, w=w)  # [B, C, H, W]


def importance(mode: str, metric: Tensor | None, like: Tensor) -> Tensor:
    """Return the per-pixel splatting weight of a normalised mode: 1 (avg), m (linear) or exp(clip(m)) (softmax)."""
    if mode == "avg":
        return torch.ones_like(like[:1, :1])  # [1, 1, H, W]
    if metric is None:
        raise ValueError(f"splat mode {mode!r} needs a metric of shape [B or 1, 1, H, W], got none.")
    metric = metric.to(like.dtype)  # [B or 1, 1, H, W]
    if mode == "linear":
        return metric
    return metric.clamp(-METRIC_CLIP, METRIC_CLIP).exp()  # [B or 1, 1, H, W]


def splat(x: Tensor, flow: Tensor, mode: str = "sum", metric: Tensor | None = None) -> Tensor:
    """Softmax splatting (Niklaus & Liu 2020) in modes sum, avg, linear and softmax; returns x's dtype."""
    source = x.to(compute_dtype(x.dtype))  # [B or 1, C, H, W]
    if mode == "sum":
        return splat_sum(source, flow).to(x.dtype).contiguous()  # [B, C, H, W]
    weight = importance(mode, metric, source)  # [B or 1, 1, H, W]
    weighted = source * weight  # [B or 1, C, H, W]
    augmented = torch.cat([weighted, weight.expand(weighted.shape[0], -1, -1, -1)], dim=1)  # [B or 1, C+1, H, W]
    total = splat_sum(augmented, flow)  # [B, C+1, H, W]
    out = total[:, :-1] / (total[:, -1:] + EPS)  # [B, C, H, W]
    return out.to(x.dtype).contiguous()


def warp(x: Tensor, flow: Tensor, padding: str = "zeros") -> Tensor:
    """Backward bilinear warp: sample ``x`` at each pixel's position plus ``flow``; returns x's dtype."""
    batch, _, h, w = flow.shape
    channels = x.shape[1]
    dtype = compute_dtype(x.dtype)
    pos_x, pos_y = positions(flow, dtype)  # [B, H, W] each
    if padding == "border":
        pos_x, pos_y = pos_x.clamp(0.0, w - 1.0), pos_y.clamp(0.0, h - 1.0)
    source = rearrange(x.to(dtype), "b c h w -> b c (h w)").expand(batch, -1, -1)  # [B, C, H*W]
    finite_source = bool(torch.isfinite(source).all())
    out = None
    for corner_index, corner_weight, inside in bilinear_taps(pos_x, pos_y, h, w):
        taps = rearrange(corner_index, "b h w -> b 1 (h w)").expand(-1, channels, -1)  # [B, C, H*W]
        term = rearrange(corner_weight, "b h w -> b 1 (h w)") * source.gather(2, taps)  # [B, C, H*W]
        if not finite_source:  # 0 × NaN would read pixel 0 through a dropped corner's index
            term = torch.where(rearrange(inside, "b h w -> b 1 (h w)"), term, 0.0)
        out = term if out is None else out + term
    return rearrange(out, "b c (h w) -> b c h w", h=h, w=w).to(x.dtype).contiguous()  # [B, C, H, W]


def temporal_attention(q: Tensor, k: Tensor, v: Tensor, k_extra: Tensor, v_extra: Tensor, scale: float) -> Tensor:
    """Attention of q [S, h, L, d] over the concatenated keys [k; k_extra] and values, in float32 (float64 stays); returns q's dtype."""
    dtype = compute_dtype(q.dtype)
    keys = torch.cat([k, k_extra], dim=2).to(dtype)  # [S, h, L+N, d]
    values = torch.cat([v, v_extra], dim=2).to(dtype)  # [S, h, L+N, d]
    scores = torch.einsum("shld,shmd->shlm", q.to(dtype), keys) * scale  # [S, h, L, L+N]
    weights = scores.softmax(dim=-1)  # [S, h, L, L+N]
    return torch.einsum("shlm,shmd->shld", weights, values).to(q.dtype)  # [S, h, L, d]
