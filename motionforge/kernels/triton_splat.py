"""Triton forward splatting (softmax splatting) with the exact semantics of ``motionforge.kernels.reference.splat``.

Forward: one fused pass for every mode. Each program owns a tile of BLOCK_P source pixels × BLOCK_C
channels of one flow batch; grid (cdiv(H*W, BLOCK_P), B, cdiv(C, BLOCK_C)). It loads the flow (and
the metric) once per pixel, computes the 4 bilinear weights and the importance (1, m or
exp(clip(m, -20, 20))) once per pixel, reads x through its strides (channels-last and a batch-1
source broadcast to B flows cost no copy: the broadcast batch has stride 0), and issues masked
relaxed ``tl.atomic_add``s of ``w·(x·importance)`` into a numerator [B, C, H*W] and, from the
channel-block-0 programs only (a scalar ``if``, see the notes on the interpreter's mask bug), of
``w·importance`` into a normaliser [B, H*W]. One in-place division ``num / (norm + 1e-7)`` then
normalises (skipped for ``sum``). float64 inputs accumulate in float64; every other dtype
accumulates in float32 (the interpreter cannot ``atomic_add`` bf16, and fp16 atomics lose
precision) and the result is cast to x's dtype.

Backward: the choice is one ``torch.autograd.Function`` around the fused forward (not a
differentiable sum-splat with the modes built around it in torch), whose backward runs Triton
kernels without atomics, so it is deterministic. For normalised modes a per-target-pixel
reduction first forms the normaliser's upstream gradient ``gd = -Σ_c g·out / (norm + eps)``. Then
one gather kernel (grid (cdiv(H*W, BLOCK_P), B), each program looping over all channel blocks)
reads grad_out at the 4 corners each source pixel reached, i.e. a backward warp, and produces in
one pass: the gradient of x (the gathered ``g / (norm + eps)`` times the importance, summed over
the batch in torch when x was broadcast); the flow gradient (per corner ``Σ_c source·g`` times
``∂w/∂flow`` = ±wy, ±wx, plus the normaliser's term); and the metric gradient (through the linear
or the clipped exp importance; 0 where the clip is active).

Tiles come from ``block_sizes``: a few large programs for small frames (the interpreter costs
~30 ms per program), and on GPU 32×64 (forward) and 32×32 (backward) tiles with 8 warps, which
``ptxas -v`` compiles for sm_90 without register spills. Within one batch, offsets are int32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from motionforge.kernels.reference import EPS, METRIC_CLIP, compute_dtype

MODE_IDS: dict[str, int] = {"sum": 0, "avg": 1, "linear": 2, "softmax": 3}

_SUM = tl.constexpr(0)
_AVG = tl.constexpr(1)
_SOFTMAX = tl.constexpr(3)
_CLIP = tl.constexpr(METRIC_CLIP)
# A |position| beyond this is dropped at once. Frames are far smaller, so this is the reference's rule
# (non-finite → dropped; finite → clamped into [-2, size + 1], hence dropped when far out) without inf - inf.
_FAR = tl.constexpr(3.0e38)
# Largest tile (pixels × channels) one program holds: a bound on register pressure on GPU.
_MAX_TILE = tl.constexpr(8192)
# Default tiles, from `ptxas -v` on sm_90 (no GPU here to time them): the forward at 32×64 with 8 warps uses
# 125 registers and no spills (64×64 spills); the backward keeps each corner's per-pixel data live across
# its channel loop and only stops spilling at 32×32 with 8 warps (224 registers).
_FWD_MAX_CHANNELS, _FWD_MAX_TILE = 64, 2048
_BWD_MAX_CHANNELS, _BWD_MAX_TILE = 32, 1024
# CUDA caps grid axes 1 and 2 at 65,535 programs; the batch runs on axis 1.
_MAX_GRID_YZ = 65_535


@triton.jit
def _source_basis(flow_ptr, stride_fc, stride_fh, stride_fw, py, px, mask_p, H, W, acc_dtype: tl.constexpr):
    """Return the NW corner (x0, y0) and fractions (fx, fy) of each source pixel's target, and whether it splats at all."""
    flow_off = py * stride_fh + px * stride_fw  # [BLOCK_P]
    pos_x = tl.load(flow_ptr + flow_off, mask=mask_p, other=0.0).to(acc_dtype) + px.to(acc_dtype)  # [BLOCK_P]
    pos_y = tl.load(flow_ptr + flow_off + stride_fc, mask=mask_p, other=0.0).to(acc_dtype) + py.to(acc_dtype)  # [BLOCK_P]
    ok = mask_p & (tl.abs(pos_x) < _FAR) & (tl.abs(pos_y) < _FAR)  # [BLOCK_P]; NaN and ±inf fail
    # Clamp before the int cast so that huge flows cannot wrap around into the frame.
    pos_x = tl.minimum(tl.maximum(tl.where(ok, pos_x, -2.0), -2.0), W + 1.0)  # [BLOCK_P]
    pos_y = tl.minimum(tl.maximum(tl.where(ok, pos_y, -2.0), -2.0), H + 1.0)  # [BLOCK_P]
    x0 = tl.floor(pos_x)  # [BLOCK_P]
    y0 = tl.floor(pos_y)  # [BLOCK_P]
    return x0.to(tl.int32), y0.to(tl.int32), pos_x - x0, pos_y - y0, ok


@triton.jit
def _corner(x0, y0, fx, fy, ok, H, W, DX: tl.constexpr, DY: tl.constexpr):
    """Return one corner's validity, clamped column and row (0 where invalid) and its x and y bilinear factors."""
    cx = x0 + DX  # [BLOCK_P]
    cy = y0 + DY  # [BLOCK_P]
    inside = ok & (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)  # [BLOCK_P]; each corner checked on its own
    if DX == 1:
        wx = fx  # [BLOCK_P]
    else:
        wx = 1.0 - fx  # [BLOCK_P]
    if DY == 1:
        wy = fy  # [BLOCK_P]
    else:
        wy = 1.0 - fy  # [BLOCK_P]
    return inside, tl.where(inside, cx, 0), tl.where(inside, cy, 0), wx, wy


@triton.jit
def _importance(metric_ptr, offsets, mask_p, MODE: tl.constexpr, acc_dtype: tl.constexpr):
    """Return the per-pixel raw metric m and importance (1 for avg, m for linear, exp(clip(m)) for softmax)."""
    if MODE == _AVG:
        m = tl.full(offsets.shape, 1.0, acc_dtype)  # [BLOCK_P]
        importance = m
    else:
        m = tl.load(metric_ptr + offsets, mask=mask_p, other=0.0).to(acc_dtype)  # [BLOCK_P]
        if MODE == _SOFTMAX:
            importance = tl.exp(tl.minimum(tl.maximum(m, -_CLIP), _CLIP))  # [BLOCK_P]
        else:
            importance = m
    return m, importance


@triton.jit
def _splat_fwd_kernel(
    x_ptr,
    flow_ptr,
    metric_ptr,
    acc_ptr,
    norm_ptr,
    C,
    H,
    W,
    stride_xb,
    stride_xc,
    stride_xh,
    stride_xw,
    stride_fb,
    stride_fc,
    stride_fh,
    stride_fw,
    stride_mb,
    stride_mh,
    stride_mw,
    MODE: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Accumulate w·importance·x into acc [B, C, H*W] and w·importance into norm [B, H*W] for one pixel × channel tile."""
    tl.static_assert(BLOCK_P * BLOCK_C <= _MAX_TILE)
    acc_dtype = acc_ptr.dtype.element_ty
    pid_p = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    pid_c = tl.program_id(2)
    hw = H * W
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)  # [BLOCK_P]
    mask_p = offs_p < hw  # [BLOCK_P]
    py = offs_p // W  # [BLOCK_P]
    px = offs_p % W  # [BLOCK_P]
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)  # [BLOCK_C]
    mask_c = offs_c < C  # [BLOCK_C]

    x0, y0, fx, fy, ok = _source_basis(flow_ptr + b * stride_fb, stride_fc, stride_fh, stride_fw, py, px, mask_p, H, W, acc_dtype)
    x_ptrs = (
        x_ptr + b * stride_xb + (py * stride_xh + px * stride_xw)[:, None] + offs_c[None, :] * stride_xc
    )  # [BLOCK_P, BLOCK_C]
    values = tl.load(x_ptrs, mask=mask_p[:, None] & mask_c[None, :], other=0.0).to(acc_dtype)  # [BLOCK_P, BLOCK_C]
    if MODE != _SUM:
        _, importance = _importance(metric_ptr + b * stride_mb, py * stride_mh + px * stride_mw, mask_p, MODE, acc_dtype)
        if MODE != _AVG:
            values = values * importance[:, None]  # [BLOCK_P, BLOCK_C]

    acc_base = acc_ptr + b * C * hw + offs_c[None, :] * hw  # [1, BLOCK_C]
    for corner in tl.static_range(4):
        inside, cx, cy, wx, wy = _corner(x0, y0, fx, fy, ok, H, W, corner % 2, corner // 2)
        weight = wx * wy  # [BLOCK_P]
        target = cy * W + cx  # [BLOCK_P]
        tl.atomic_add(
            acc_base + target[:, None], weight[:, None] * values, mask=inside[:, None] & mask_c[None, :], sem="relaxed"
        )  # [BLOCK_P, BLOCK_C]
        if MODE != _SUM:  # noqa: SIM102 (a compile-time branch around a runtime one; not merged with `and`)
            if pid_c == 0:  # one channel block writes the normaliser (a scalar branch, not `mask & (pid == 0)`)
                tl.atomic_add(norm_ptr + b * hw + target, weight * importance, mask=inside, sem="relaxed")  # [BLOCK_P]


@triton.jit
def _splat_bwd_norm_kernel(
    grad_ptr,
    out_ptr,
    norm_ptr,
    gd_ptr,
    C,
    H,
    W,
    stride_gb,
    stride_gc,
    stride_gh,
    stride_gw,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Write the normaliser's upstream gradient gd [B, H*W] = -Σ_c grad_out·out / (norm + eps) for BLOCK_P target pixels."""
    tl.static_assert(BLOCK_P * BLOCK_C <= _MAX_TILE)
    acc_dtype = gd_ptr.dtype.element_ty
    pid_p = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    hw = H * W
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)  # [BLOCK_P]
    mask_p = offs_p < hw  # [BLOCK_P]
    g_off = (offs_p // W) * stride_gh + (offs_p % W) * stride_gw  # [BLOCK_P]
    total = tl.zeros([BLOCK_P], dtype=acc_dtype)  # [BLOCK_P]
    for c0 in range(0, C, BLOCK_C):
        offs_c = c0 + tl.arange(0, BLOCK_C)  # [BLOCK_C]
        mask = mask_p[:, None] & (offs_c < C)[None, :]  # [BLOCK_P, BLOCK_C]
        g = tl.load(grad_ptr + b * stride_gb + g_off[:, None] + offs_c[None, :] * stride_gc, mask=mask, other=0.0)
        out = tl.load(out_ptr + b * C * hw + offs_c[None, :] * hw + offs_p[:, None], mask=mask, other=0.0)  # [BLOCK_P, BLOCK_C]
        total += tl.sum(g.to(acc_dtype) * out, axis=1)
    norm = tl.load(norm_ptr + b * hw + offs_p, mask=mask_p, other=1.0)  # [BLOCK_P]; already + eps
    tl.store(gd_ptr + b * hw + offs_p, -total / norm, mask=mask_p)


@triton.jit
def _splat_bwd_kernel(
    x_ptr,
    flow_ptr,
    metric_ptr,
    grad_ptr,
    norm_ptr,
    gd_ptr,
    grad_x_ptr,
    grad_flow_ptr,
    grad_metric_ptr,
    C,
    H,
    W,
    stride_xb,
    stride_xc,
    stride_xh,
    stride_xw,
    stride_fb,
    stride_fc,
    stride_fh,
    stride_fw,
    stride_mb,
    stride_mh,
    stride_mw,
    stride_gb,
    stride_gc,
    stride_gh,
    stride_gw,
    MODE: tl.constexpr,
    WRITE_GRAD_X: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Gather grad_out at each source pixel's 4 corners; write grad x [B, C, H*W], grad flow [B, 2, H*W], grad metric [B, H*W]."""
    tl.static_assert(BLOCK_P * BLOCK_C <= _MAX_TILE)
    acc_dtype = grad_flow_ptr.dtype.element_ty
    pid_p = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    hw = H * W
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)  # [BLOCK_P]
    mask_p = offs_p < hw  # [BLOCK_P]
    py = offs_p // W  # [BLOCK_P]
    px = offs_p % W  # [BLOCK_P]

    x0, y0, fx, fy, ok = _source_basis(flow_ptr + b * stride_fb, stride_fc, stride_fh, stride_fw, py, px, mask_p, H, W, acc_dtype)
    if MODE != _SUM:
        m, importance = _importance(metric_ptr + b * stride_mb, py * stride_mh + px * stride_mw, mask_p, MODE, acc_dtype)
    x_off = (py * stride_xh + px * stride_xw)[:, None]  # [BLOCK_P, 1]
    grad_base = grad_ptr + b * stride_gb  # scalar pointer
    grad_flow_x = tl.zeros([BLOCK_P], dtype=acc_dtype)  # [BLOCK_P]
    grad_flow_y = tl.zeros([BLOCK_P], dtype=acc_dtype)  # [BLOCK_P]
    grad_importance = tl.zeros([BLOCK_P], dtype=acc_dtype)  # [BLOCK_P]

    for c0 in range(0, C, BLOCK_C):
        offs_c = c0 + tl.arange(0, BLOCK_C)  # [BLOCK_C]
        mask_c = offs_c < C  # [BLOCK_C]
        tile_mask = mask_p[:, None] & mask_c[None, :]  # [BLOCK_P, BLOCK_C]
        values = tl.load(x_ptr + b * stride_xb + x_off + offs_c[None, :] * stride_xc, mask=tile_mask, other=0.0).to(acc_dtype)
        if MODE <= _AVG:  # sum and avg: the source is x itself
            source = values  # [BLOCK_P, BLOCK_C]
        else:
            source = values * importance[:, None]  # [BLOCK_P, BLOCK_C]
        gathered = tl.zeros([BLOCK_P, BLOCK_C], dtype=acc_dtype)  # Σ_k w_k·g_k, [BLOCK_P, BLOCK_C]
        for corner in tl.static_range(4):
            inside, cx, cy, wx, wy = _corner(x0, y0, fx, fy, ok, H, W, corner % 2, corner // 2)
            g_ptrs = grad_base + (cy * stride_gh + cx * stride_gw)[:, None] + offs_c[None, :] * stride_gc  # [BLOCK_P, BLOCK_C]
            g = tl.load(g_ptrs, mask=inside[:, None] & mask_c[None, :], other=0.0).to(acc_dtype)  # [BLOCK_P, BLOCK_C]
            if MODE != _SUM:
                norm = tl.load(norm_ptr + b * hw + cy * W + cx, mask=inside, other=1.0)  # [BLOCK_P]; already + eps
                g = g / norm[:, None]  # [BLOCK_P, BLOCK_C]
            gathered += (wx * wy)[:, None] * g
            # ∂w/∂x = ±wy and ∂w/∂y = ±wx (+ for the far corner); reduce over channels now to keep one [P, C] accumulator.
            source_g = tl.sum(source * g, axis=1)  # [BLOCK_P]
            grad_flow_x += (wy if corner % 2 == 1 else -wy) * source_g
            grad_flow_y += (wx if corner // 2 == 1 else -wx) * source_g
        if MODE <= _AVG:
            grad_values = gathered  # [BLOCK_P, BLOCK_C]
        else:
            grad_values = gathered * importance[:, None]  # [BLOCK_P, BLOCK_C]
            grad_importance += tl.sum(values * gathered, axis=1)
        if WRITE_GRAD_X:
            tl.store(grad_x_ptr + b * C * hw + offs_c[None, :] * hw + offs_p[:, None], grad_values, mask=tile_mask)

    if MODE != _SUM:  # the normaliser plane: its source is the importance itself
        for corner in tl.static_range(4):
            inside, cx, cy, wx, wy = _corner(x0, y0, fx, fy, ok, H, W, corner % 2, corner // 2)
            gd = tl.load(gd_ptr + b * hw + cy * W + cx, mask=inside, other=0.0)  # [BLOCK_P]
            grad_importance += wx * wy * gd
            if corner % 2 == 1:
                grad_flow_x += importance * wy * gd
            else:
                grad_flow_x -= importance * wy * gd
            if corner // 2 == 1:
                grad_flow_y += importance * wx * gd
            else:
                grad_flow_y -= importance * wx * gd
        if MODE != _AVG:
            if MODE == _SOFTMAX:  # d exp(clip(m))/dm = exp(clip(m)) inside the clip range (ends included), 0 outside
                grad_importance = tl.where((m >= -_CLIP) & (m <= _CLIP), grad_importance * importance, 0.0)
            tl.store(grad_metric_ptr + b * hw + offs_p, grad_importance, mask=mask_p)
    tl.store(grad_flow_ptr + b * 2 * hw + offs_p, grad_flow_x, mask=mask_p)
    tl.store(grad_flow_ptr + b * 2 * hw + hw + offs_p, grad_flow_y, mask=mask_p)


def block_sizes(hw: int, channels: int, max_channels: int = _FWD_MAX_CHANNELS, max_tile: int = _FWD_MAX_TILE) -> tuple[int, int]:
    """Pick (BLOCK_P, BLOCK_C): up to max_channels channels, then as many pixels as fit max_tile elements, at most the frame.

    Small frames and few channels thus run in few, large programs, which is what keeps the interpreter fast.
    """
    block_c = min(triton.next_power_of_2(max(channels, 1)), max_channels)
    block_p = min(max(triton.next_power_of_2(max(hw, 1)), 16), max(max_tile // block_c, 16))
    return block_p, block_c


def _num_warps(block_p: int, block_c: int) -> int:
    """Return the launch width for a tile: 8 warps from 1024 elements up, else 4 (the interpreter ignores it)."""
    return 8 if block_p * block_c >= 1024 else 4


def _strides(t: Tensor, broadcast_batch: bool) -> tuple[int, ...]:
    """Return a [B, C, H, W] tensor's strides, with 0 for the batch when one batch is shared by every flow."""
    strides = t.stride()
    return (0 if broadcast_batch else strides[0], *strides[1:])


def _within_batch_extent(t: Tensor) -> int:
    """Return the largest element offset inside one batch of t [N, ...] reached through its strides."""
    return sum((size - 1) * abs(stride) for size, stride in zip(t.shape[1:], t.stride()[1:]))


def _metric_strides(metric: Tensor | None) -> tuple[int, int, int]:
    """Return a metric [B or 1, 1, H, W]'s (batch, row, column) strides, batch 0 when shared; zeros when there is none."""
    if metric is None:
        return 0, 0, 0
    return 0 if metric.shape[0] == 1 else metric.stride(0), metric.stride(2), metric.stride(3)


def _launch(kernel: triton.JITFunction, grid: tuple[int, ...], *args: object, **constexprs: int) -> None:
    """Launch a kernel on grid, with a launch width suited to its BLOCK_P × BLOCK_C tile."""
    kernel[grid](*args, **constexprs, num_warps=_num_warps(constexprs["BLOCK_P"], constexprs["BLOCK_C"]))


class _Splat(torch.autograd.Function):
    """Fused Triton splat of every mode; its backward is atomic-free Triton gathers."""

    @staticmethod
    def forward(
        ctx: FunctionCtx, x: Tensor, flow: Tensor, metric: Tensor | None, mode: int, blocks: tuple[int, int, int, int]
    ) -> Tensor:
        """Splat x [B or 1, C, H, W] by flow [B, 2, H, W] (metric [B or 1, 1, H, W] or None); return [B, C, H, W] in x's dtype."""
        batch, _, h, w = flow.shape
        channels, hw = x.shape[1], h * w
        block_p, block_c = blocks[:2]  # the forward tile; blocks[2:] is the backward's
        acc_dtype = compute_dtype(x.dtype)
        acc = torch.zeros(batch, channels, hw, dtype=acc_dtype, device=x.device)  # [B, C, H*W]
        norm = torch.zeros(batch, hw, dtype=acc_dtype, device=x.device) if mode else acc  # [B, H*W] (a dummy for sum)
        x_strides = _strides(x, x.shape[0] == 1)  # (b, c, h, w)
        m_strides = _metric_strides(metric)
        grid = (triton.cdiv(hw, block_p), batch, triton.cdiv(channels, block_c))
        ctx.empty = acc.numel() == 0  # no launch on an empty grid; the backward then returns zeros
        if not ctx.empty:
            _launch(
                _splat_fwd_kernel,
                grid,
                x,
                flow,
                flow if metric is None else metric,
                acc,
                norm,
                channels,
                h,
                w,
                *x_strides,
                *flow.stride(),
                *m_strides,
                MODE=mode,
                BLOCK_P=block_p,
                BLOCK_C=block_c,
            )
        if mode:
            norm.add_(EPS)  # [B, H*W]: the normaliser + eps, as the backward needs it
            acc.div_(norm[:, None])  # [B, C, H*W]
        out = acc.view(batch, channels, h, w)  # [B, C, H, W]
        result = out if x.dtype == acc_dtype else out.to(x.dtype)  # [B, C, H, W]
        if any(ctx.needs_input_grad[:3]):
            ctx.save_for_backward(x, flow, metric, out if mode else None, norm if mode else None)
            ctx.mode, ctx.blocks = mode, blocks[2:]
        return result

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        """Return the gradients of x, flow and metric from grad_out [B, C, H, W] by atomic-free Triton gathers."""
        x, flow, metric, out, norm = ctx.saved_tensors
        mode, (block_p, block_c) = ctx.mode, ctx.blocks
        batch, _, h, w = flow.shape
        channels, hw = x.shape[1], h * w
        acc_dtype = compute_dtype(x.dtype)
        need_x, need_flow, need_metric = ctx.needs_input_grad[:3]
        new = {"dtype": acc_dtype, "device": x.device}
        alloc = torch.zeros if ctx.empty else torch.empty  # the gather kernel writes every element
        grad_x = alloc(batch, channels, hw, **new) if need_x else flow  # [B, C, H*W] (a dummy when unused)
        grad_flow = alloc(batch, 2, hw, **new)  # [B, 2, H*W]
        grad_metric = alloc(batch, hw, **new) if metric is not None else grad_flow  # [B, H*W]
        gd = grad_flow  # a dummy for sum
        grid = (triton.cdiv(hw, block_p), batch)
        if mode and not ctx.empty:
            gd = torch.empty(batch, hw, **new)  # [B, H*W]
            _launch(
                _splat_bwd_norm_kernel,
                grid,
                grad_out,
                out,
                norm,
                gd,
                channels,
                h,
                w,
                *grad_out.stride(),
                BLOCK_P=block_p,
                BLOCK_C=block_c,
            )
        m_strides = _metric_strides(metric)
        if not ctx.empty:
            _launch(
                _splat_bwd_kernel,
                grid,
                x,
                flow,
                flow if metric is None else metric,
                grad_out,
                flow if norm is None else norm,
                gd,
                grad_x,
                grad_flow,
                grad_metric,
                channels,
                h,
                w,
                *_strides(x, x.shape[0] == 1),
                *flow.stride(),
                *m_strides,
                *grad_out.stride(),
                MODE=mode,
                WRITE_GRAD_X=bool(need_x),
                BLOCK_P=block_p,
                BLOCK_C=block_c,
            )
        dx = dflow = dmetric = None
        if need_x:
            dx = grad_x.view(batch, channels, h, w)  # [B, C, H, W]
            dx = (dx.sum(0, keepdim=True) if x.shape[0] == 1 and batch > 1 else dx).to(x.dtype)  # [B or 1, C, H, W]
        if need_flow:
            dflow = grad_flow.view(batch, 2, h, w).to(flow.dtype)  # [B, 2, H, W]
        if need_metric:
            dmetric = grad_metric.view(batch, 1, h, w)  # [B, 1, H, W]
            dmetric = (dmetric.sum(0, keepdim=True) if metric.shape[0] == 1 and batch > 1 else dmetric).to(metric.dtype)
        return dx, dflow, dmetric, None, None


def splat(
    x: Tensor,
    flow: Tensor,
    mode: str = "sum",
    metric: Tensor | None = None,
    *,
    block_p: int | None = None,
    block_c: int | None = None,
) -> Tensor:
    """Softmax splatting in Triton: x [B or 1, C, H, W] by flow [B, 2, H, W] → [B, C, H, W] in x's dtype (see reference.splat).

    Inputs are assumed validated by ``motionforge.kernels.splat``. ``block_p`` / ``block_c`` override
    the forward and backward tiles (powers of two), e.g. to exercise several pixel and channel blocks in small tests.
    """
    batch, _, h, w = flow.shape
    channels = x.shape[1]
    metric = metric if mode in ("linear", "softmax") else None
    if batch > _MAX_GRID_YZ:
        raise ValueError(
            f"splat's Triton kernel runs one batch per grid row, at most {_MAX_GRID_YZ}; got a flow batch of {batch}."
        )
    extent = max(channels * h * w, *(_within_batch_extent(t) for t in (x, flow, metric) if t is not None))
    if extent >= 2**31:
        raise ValueError(f"splat's Triton kernel indexes inside one batch with int32; offsets reach {extent}, split the input.")
    auto_p, auto_c = block_sizes(h * w, channels)
    backward_p, backward_c = block_sizes(h * w, channels, _BWD_MAX_CHANNELS, _BWD_MAX_TILE)
    blocks = (block_p or auto_p, block_c or auto_c, block_p or backward_p, block_c or backward_c)
    if any(block & (block - 1) for block in blocks):
        raise ValueError(f"splat's Triton tile sizes must be powers of two, got block_p={block_p}, block_c={block_c}.")
    return _Splat.apply(x, flow, metric, MODE_IDS[mode], blocks)
