"""Triton backward warp: bilinear samples of x at each pixel's position plus its flow, with a fused backward.

Same semantics as :func:`motionforge.kernels.reference.warp` (inputs validated by
:func:`motionforge.kernels.warp`). The forward is an atomic-free gather over tiles of
``BLOCK_P`` pixels × ``BLOCK_C`` channels: the flow is read and the four bilinear weights are
computed once per pixel, then each corner is one masked load of ``BLOCK_C`` channels. The backward
recomputes the taps, splats the upstream gradient into an fp32 (fp64 for fp64 inputs) grad_x buffer
with relaxed atomics, and reduces grad_out · ∂sample/∂position over channels into grad_flow in
registers. x is read through its strides (a batch-1 x broadcast over the flows has batch stride 0),
so channels-last and sliced inputs are never copied.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from motionforge.kernels.dispatch import triton_interpreting

BLOCK_P = 64  # pixels per program
MAX_BLOCK_C = 128  # channels per program (forward) or per loop step (backward)
NUM_WARPS = 4
INF = tl.constexpr(float("inf"))


@triton.jit
def _taps(flow_ptr, b, pix, pix_mask, H, W, stride_fb, stride_fc, stride_fh, stride_fw, BORDER: tl.constexpr, CT: tl.constexpr):
    """Return each pixel's NW corner (x0, y0), fractions, 1 - fractions, row/column validity and where position gradients pass."""
    py = pix // W  # [BLOCK_P]
    px = pix - py * W  # [BLOCK_P]
    flow_at = flow_ptr + b * stride_fb + py.to(tl.int64) * stride_fh + px.to(tl.int64) * stride_fw  # [BLOCK_P] x-displacement
    raw_x = tl.load(flow_at, mask=pix_mask, other=0.0).to(CT) + px.to(CT)  # [BLOCK_P] absolute sample position
    raw_y = tl.load(flow_at + stride_fc, mask=pix_mask, other=0.0).to(CT) + py.to(CT)  # [BLOCK_P]
    last_x = (W - 1) * 1.0  # scalar: the right-most column's position
    last_y = (H - 1) * 1.0  # scalar: the bottom row's position
    if BORDER:
        # The reference clamps to the frame first (±inf lands on the edge, NaN stays NaN), and the clamp passes
        # gradients only where the raw position lies inside [0, size - 1], both ends included.
        finite = (tl.abs(raw_x) <= INF) & (tl.abs(raw_y) <= INF) & pix_mask  # [BLOCK_P] False for NaN only
        pass_x = finite & (raw_x >= 0.0) & (raw_x <= last_x)  # [BLOCK_P]
        pass_y = finite & (raw_y >= 0.0) & (raw_y <= last_y)  # [BLOCK_P]
        pos_x = tl.where(finite, tl.minimum(tl.maximum(raw_x, 0.0), last_x), -2.0)  # [BLOCK_P]
        pos_y = tl.where(finite, tl.minimum(tl.maximum(raw_y, 0.0), last_y), -2.0)  # [BLOCK_P]
    else:
        finite = (tl.abs(raw_x) < INF) & (tl.abs(raw_y) < INF) & pix_mask  # [BLOCK_P] False for ±inf and NaN
        pos_x = tl.where(finite, raw_x, -2.0)  # [BLOCK_P]
        pos_y = tl.where(finite, raw_y, -2.0)  # [BLOCK_P]
        pass_x = finite & (pos_x >= -2.0) & (pos_x <= last_x + 2.0)  # [BLOCK_P] the reference's clamp to [-2, W + 1]
        pass_y = finite & (pos_y >= -2.0) & (pos_y <= last_y + 2.0)  # [BLOCK_P]
    # Clamping to [-2, size + 1] keeps huge positions from wrapping when cast to int; every corner there is outside.
    pos_x = tl.minimum(tl.maximum(pos_x, -2.0), last_x + 2.0)  # [BLOCK_P]
    pos_y = tl.minimum(tl.maximum(pos_y, -2.0), last_y + 2.0)  # [BLOCK_P]
    floor_x = tl.floor(pos_x)  # [BLOCK_P]
    floor_y = tl.floor(pos_y)  # [BLOCK_P]
    frac_x = pos_x - floor_x  # [BLOCK_P]
    frac_y = pos_y - floor_y  # [BLOCK_P]
    x0 = floor_x.to(tl.int32)  # [BLOCK_P]
    y0 = floor_y.to(tl.int32)  # [BLOCK_P]
    in_x0 = finite & (x0 >= 0) & (x0 < W)  # [BLOCK_P] column x0 inside
    in_x1 = finite & (x0 >= -1) & (x0 < W - 1)  # [BLOCK_P] column x0 + 1 inside
    in_y0 = (y0 >= 0) & (y0 < H)  # [BLOCK_P] row y0 inside
    in_y1 = (y0 >= -1) & (y0 < H - 1)  # [BLOCK_P] row y0 + 1 inside
    wx0 = 1.0 - frac_x  # [BLOCK_P]
    wy0 = 1.0 - frac_y  # [BLOCK_P]
    return x0, y0, frac_x, frac_y, wx0, wy0, in_x0, in_x1, in_y0, in_y1, pass_x, pass_y


@triton.jit
def _store(ptr, value, mask, BF16_BY_BITS: tl.constexpr):
    """Store value in ptr's dtype; BF16_BY_BITS rounds to nearest-even by bit arithmetic (the interpreter's fp32 → bf16 cast truncates)."""
    if BF16_BY_BITS:
        bits = value.to(tl.float32).to(tl.uint32, bitcast=True)  # same shape as value
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        tl.store(ptr, (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True), mask=mask)
    else:
        tl.store(ptr, value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _corner(x_at, x0, y0, DX: tl.constexpr, DY: tl.constexpr, inside, ch_mask, stride_xh, stride_xw, CT: tl.constexpr):
    """Load x [BLOCK_P, BLOCK_C] at corner (x0 + DX, y0 + DY) of each pixel, 0 where the corner is outside the frame."""
    offset = (y0 + DY).to(tl.int64) * stride_xh + (x0 + DX).to(tl.int64) * stride_xw  # [BLOCK_P]
    mask = inside[:, None] & ch_mask[None, :]  # [BLOCK_P, BLOCK_C]
    return tl.load(x_at + offset[:, None], mask=mask, other=0.0).to(CT)  # [BLOCK_P, BLOCK_C]


@triton.jit
def _warp_fwd_kernel(
    x_ptr,
    flow_ptr,
    out_ptr,
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
    BORDER: tl.constexpr,
    CT: tl.constexpr,
    OUT_BF16_BY_BITS: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Write out[b, c, p] = Σ_corners weight · x[b or 0, c, corner] for one tile of pixels × channels."""
    b = tl.program_id(1).to(tl.int64)
    pix = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)  # [BLOCK_P] flat pixel index y * W + x
    ch = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)  # [BLOCK_C]
    hw = H * W
    pix_mask = pix < hw  # [BLOCK_P]
    ch_mask = ch < C  # [BLOCK_C]
    x0, y0, frac_x, frac_y, wx0, wy0, in_x0, in_x1, in_y0, in_y1, _, _ = _taps(
        flow_ptr, b, pix, pix_mask, H, W, stride_fb, stride_fc, stride_fh, stride_fw, BORDER, CT
    )
    # Same weights, same products and same summation order as the reference, so zero flow returns x exactly.
    w00 = tl.where(in_x0 & in_y0, wx0 * wy0, 0.0)  # [BLOCK_P] NW
    w01 = tl.where(in_x1 & in_y0, frac_x * wy0, 0.0)  # [BLOCK_P] NE
    w10 = tl.where(in_x0 & in_y1, wx0 * frac_y, 0.0)  # [BLOCK_P] SW
    w11 = tl.where(in_x1 & in_y1, frac_x * frac_y, 0.0)  # [BLOCK_P] SE
    x_at = x_ptr + b * stride_xb + ch[None, :].to(tl.int64) * stride_xc  # [1, BLOCK_C]
    acc = w00[:, None] * _corner(x_at, x0, y0, 0, 0, in_x0 & in_y0, ch_mask, stride_xh, stride_xw, CT)  # [BLOCK_P, BLOCK_C]
    acc = acc + w01[:, None] * _corner(x_at, x0, y0, 1, 0, in_x1 & in_y0, ch_mask, stride_xh, stride_xw, CT)
    acc = acc + w10[:, None] * _corner(x_at, x0, y0, 0, 1, in_x0 & in_y1, ch_mask, stride_xh, stride_xw, CT)
    acc = acc + w11[:, None] * _corner(x_at, x0, y0, 1, 1, in_x1 & in_y1, ch_mask, stride_xh, stride_xw, CT)
    out_at = out_ptr + (b * C + ch[None, :].to(tl.int64)) * hw + pix[:, None]  # [BLOCK_P, BLOCK_C] contiguous [B, C, H, W]
    _store(out_at, acc, pix_mask[:, None] & ch_mask[None, :], OUT_BF16_BY_BITS)


@triton.jit
def _splat_corner(grad_x_at, x0, y0, DX: tl.constexpr, DY: tl.constexpr, W, weight, inside, ch_mask, grad):
    """Atomically add weight · grad [BLOCK_P, BLOCK_C] into the contiguous grad_x buffer at corner (x0 + DX, y0 + DY)."""
    offset = (y0 + DY) * W + (x0 + DX)  # [BLOCK_P] flat pixel index of the corner
    mask = inside[:, None] & ch_mask[None, :]  # [BLOCK_P, BLOCK_C]
    tl.atomic_add(grad_x_at + offset[:, None], weight[:, None] * grad, mask=mask, sem="relaxed")


@triton.jit
def _warp_bwd_kernel(
    x_ptr,
    flow_ptr,
    grad_out_ptr,
    grad_x_ptr,
    grad_flow_ptr,
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
    stride_gb,
    stride_gc,
    stride_gh,
    stride_gw,
    stride_grad_xb,
    BORDER: tl.constexpr,
    CT: tl.constexpr,
    NEED_GRAD_X: tl.constexpr,
    NEED_GRAD_FLOW: tl.constexpr,
    FLOW_BF16_BY_BITS: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """For one tile of pixels, splat grad_out into grad_x at the 4 taps and reduce grad_out · ∂out/∂position into grad_flow."""
    b = tl.program_id(1).to(tl.int64)
    pix = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)  # [BLOCK_P]
    hw = H * W
    pix_mask = pix < hw  # [BLOCK_P]
    x0, y0, frac_x, frac_y, wx0, wy0, in_x0, in_x1, in_y0, in_y1, pass_x, pass_y = _taps(
        flow_ptr, b, pix, pix_mask, H, W, stride_fb, stride_fc, stride_fh, stride_fw, BORDER, CT
    )
    in00 = in_x0 & in_y0  # [BLOCK_P] NW inside
    in01 = in_x1 & in_y0  # [BLOCK_P] NE
    in10 = in_x0 & in_y1  # [BLOCK_P] SW
    in11 = in_x1 & in_y1  # [BLOCK_P] SE
    w00 = wx0 * wy0  # [BLOCK_P]
    w01 = frac_x * wy0  # [BLOCK_P]
    w10 = wx0 * frac_y  # [BLOCK_P]
    w11 = frac_x * frac_y  # [BLOCK_P]
    py = pix // W  # [BLOCK_P]
    px = pix - py * W  # [BLOCK_P]
    grad_at_pix = grad_out_ptr + b * stride_gb + py.to(tl.int64) * stride_gh + px.to(tl.int64) * stride_gw  # [BLOCK_P]
    x_at_b = x_ptr + b * stride_xb
    grad_x_at_b = grad_x_ptr + b * stride_grad_xb
    # Σ_c grad_out · x at each corner: [BLOCK_P] each; corners outside the frame load 0 and contribute nothing.
    dot00 = tl.zeros([BLOCK_P], dtype=CT)
    dot01 = tl.zeros([BLOCK_P], dtype=CT)
    dot10 = tl.zeros([BLOCK_P], dtype=CT)
    dot11 = tl.zeros([BLOCK_P], dtype=CT)
    for c_start in range(0, C, BLOCK_C):
        ch = c_start + tl.arange(0, BLOCK_C)  # [BLOCK_C]
        ch_mask = ch < C  # [BLOCK_C]
        ch64 = ch[None, :].to(tl.int64)  # [1, BLOCK_C]
        tile_mask = pix_mask[:, None] & ch_mask[None, :]  # [BLOCK_P, BLOCK_C]
        grad = tl.load(grad_at_pix[:, None] + ch64 * stride_gc, mask=tile_mask, other=0.0).to(CT)  # [BLOCK_P, BLOCK_C]
        if NEED_GRAD_X:
            grad_x_at = grad_x_at_b + ch64 * hw  # [1, BLOCK_C] contiguous [B or 1, C, H, W] buffer
            _splat_corner(grad_x_at, x0, y0, 0, 0, W, w00, in00, ch_mask, grad)
            _splat_corner(grad_x_at, x0, y0, 1, 0, W, w01, in01, ch_mask, grad)
            _splat_corner(grad_x_at, x0, y0, 0, 1, W, w10, in10, ch_mask, grad)
            _splat_corner(grad_x_at, x0, y0, 1, 1, W, w11, in11, ch_mask, grad)
        if NEED_GRAD_FLOW:
            x_at = x_at_b + ch64 * stride_xc  # [1, BLOCK_C]
            dot00 += tl.sum(grad * _corner(x_at, x0, y0, 0, 0, in00, ch_mask, stride_xh, stride_xw, CT), axis=1)
            dot01 += tl.sum(grad * _corner(x_at, x0, y0, 1, 0, in01, ch_mask, stride_xh, stride_xw, CT), axis=1)
            dot10 += tl.sum(grad * _corner(x_at, x0, y0, 0, 1, in10, ch_mask, stride_xh, stride_xw, CT), axis=1)
            dot11 += tl.sum(grad * _corner(x_at, x0, y0, 1, 1, in11, ch_mask, stride_xh, stride_xw, CT), axis=1)
    if NEED_GRAD_FLOW:
        # ∂weight/∂position: d(1 - frac)/dpos = -1 and d(frac)/dpos = +1 along each axis (floor has no gradient).
        grad_pos_x = wy0 * (dot01 - dot00) + frac_y * (dot11 - dot10)  # [BLOCK_P]
        grad_pos_y = wx0 * (dot10 - dot00) + frac_x * (dot11 - dot01)  # [BLOCK_P]
        grad_pos_x = tl.where(pass_x, grad_pos_x, 0.0)  # [BLOCK_P] zero where the position was clamped or non-finite
        grad_pos_y = tl.where(pass_y, grad_pos_y, 0.0)  # [BLOCK_P]
        flow_out = grad_flow_ptr + b * 2 * hw + pix  # [BLOCK_P] contiguous [B, 2, H, W]
        _store(flow_out, grad_pos_x, pix_mask, FLOW_BF16_BY_BITS)
        _store(flow_out + hw, grad_pos_y, pix_mask, FLOW_BF16_BY_BITS)


def _compute_dtype(dtype: torch.dtype) -> tuple[torch.dtype, tl.dtype]:
    """Return the accumulation dtype as (torch, triton): float64 stays float64, every other float type runs in float32."""
    return (torch.float64, tl.float64) if dtype == torch.float64 else (torch.float32, tl.float32)


def _bf16_by_bits(dtype: torch.dtype) -> bool:
    """True when stores of this dtype must round by bit arithmetic: bf16 under Triton's interpreter, whose cast truncates."""
    return dtype == torch.bfloat16 and triton_interpreting()


def _block_c(channels: int) -> int:
    """Return the channel tile: the next power of two of C, capped at MAX_BLOCK_C."""
    return min(triton.next_power_of_2(max(channels, 1)), MAX_BLOCK_C)


def _x_strides(x: Tensor) -> tuple[int, int, int, int]:
    """Return x's strides (batch, channel, row, column), with batch stride 0 for a batch-1 x broadcast over the flows."""
    sb, sc, sh, sw = x.stride()
    return (0 if x.shape[0] == 1 else sb), sc, sh, sw


def _warp_forward(x: Tensor, flow: Tensor, border: bool) -> Tensor:
    """Launch the gather kernel: x [B or 1, C, H, W], flow [B, 2, H, W] → out [B, C, H, W] in x's dtype."""
    batch, _, h, w = flow.shape
    channels = x.shape[1]
    out = torch.empty(batch, channels, h, w, dtype=x.dtype, device=x.device)  # [B, C, H, W]
    if out.numel() == 0:
        return out
    block_c = _block_c(channels)
    grid = (triton.cdiv(h * w, BLOCK_P), batch, triton.cdiv(channels, block_c))
    _warp_fwd_kernel[grid](
        x,
        flow,
        out,
        channels,
        h,
        w,
        *_x_strides(x),
        *flow.stride(),
        BORDER=border,
        CT=_compute_dtype(x.dtype)[1],
        OUT_BF16_BY_BITS=_bf16_by_bits(x.dtype),
        BLOCK_P=BLOCK_P,
        BLOCK_C=block_c,
        num_warps=NUM_WARPS,
    )
    return out


def _warp_backward(
    x: Tensor, flow: Tensor, grad_out: Tensor, border: bool, need_grad_x: bool, need_grad_flow: bool
) -> tuple[Tensor | None, Tensor | None]:
    """Launch the backward kernel: grad_out [B, C, H, W] → grad_x like x [B or 1, C, H, W], grad_flow like flow [B, 2, H, W]."""
    batch, _, h, w = flow.shape
    channels = x.shape[1]
    torch_ct, triton_ct = _compute_dtype(x.dtype)
    # An atomic target must be fp32/fp64 (no bf16 atomics); a batch-1 x gets one buffer that every flow adds into.
    # A gradient nobody asked for gets a 1-element placeholder that the kernel never touches.
    grad_x = torch.zeros(x.shape if need_grad_x else (1,), dtype=torch_ct, device=x.device)  # [B or 1, C, H, W]
    grad_flow = torch.zeros(flow.shape if need_grad_flow else (1,), dtype=flow.dtype, device=flow.device)  # [B, 2, H, W]
    if grad_out.numel() > 0:
        grad_x_batch_stride = 0 if x.shape[0] == 1 else channels * h * w
        grid = (triton.cdiv(h * w, BLOCK_P), batch)
        _warp_bwd_kernel[grid](
            x,
            flow,
            grad_out,
            grad_x,
            grad_flow,
            channels,
            h,
            w,
            *_x_strides(x),
            *flow.stride(),
            *grad_out.stride(),
            grad_x_batch_stride,
            BORDER=border,
            CT=triton_ct,
            NEED_GRAD_X=need_grad_x,
            NEED_GRAD_FLOW=need_grad_flow,
            FLOW_BF16_BY_BITS=_bf16_by_bits(flow.dtype),
            BLOCK_P=BLOCK_P,
            BLOCK_C=_block_c(channels),
            num_warps=NUM_WARPS,
        )
    return (grad_x.to(x.dtype) if need_grad_x else None), (grad_flow if need_grad_flow else None)


class _Warp(torch.autograd.Function):
    """Autograd wrapper: the gather kernel forward, the splat-and-reduce kernel backward."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, flow: Tensor, padding: str) -> Tensor:
        """Warp x [B or 1, C, H, W] by flow [B, 2, H, W]; returns [B, C, H, W] in x's dtype."""
        border = padding == "border"
        ctx.border = border
        ctx.save_for_backward(x, flow)
        return _warp_forward(x, flow, border)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        """Return grad_x [B or 1, C, H, W] and grad_flow [B, 2, H, W] for grad_out [B, C, H, W]."""
        x, flow = ctx.saved_tensors
        need_grad_x, need_grad_flow = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_grad_x or need_grad_flow):
            return None, None, None
        grad_x, grad_flow = _warp_backward(x, flow, grad_out, ctx.border, need_grad_x, need_grad_flow)
        return grad_x, grad_flow, None


def warp(x: Tensor, flow: Tensor, padding: str = "zeros") -> Tensor:
    """Backward bilinear warp on Triton: sample x [B or 1, C, H, W] at each pixel plus flow [B, 2, H, W]; returns [B, C, H, W]."""
    return _Warp.apply(x, flow, padding)
