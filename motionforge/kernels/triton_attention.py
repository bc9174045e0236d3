"""Triton kernels for motion-augmented temporal attention: forward and backward, G short sequences per program.

Design (``/work/shared/notes/kernels.md`` §4.2). S = b·h·w spatial sequences (up to ~2e5) each hold
L frames (9–32) that attend over their L own keys plus N extra (warped-reference) keys:

- Grid ``(cdiv(S, G), heads)``: the huge S sits on grid axis 0 (limit 2³¹−1), so there is no
  65 535 limit as in xformers (#845) or PyTorch's mem-efficient SDPA (#142228).
- Each program packs G sequences of one head and multiplies them with 3-D (batched) ``tl.dot``.
  Tiles are ``BLOCK_L = next_pow2(L)``, ``BLOCK_N = next_pow2(N)`` and ``BLOCK_D = next_pow2(d)``,
  each at least 16 (compiled ``tl.dot`` needs every dimension ≥ 16), with masked loads, so any L,
  N ≤ 64 and d ≤ 256 (40, 80, 160, …) work. On a GPU the fp16/bf16 forward packs ``G·BLOCK_L = 64``
  rows (one MMA tile); see :func:`launch_shape` for the float32 forward and the backward.
- Whole rows fit on chip, so the softmax is a single pass: the scores of the real and the extra
  keys are computed separately and their max and sum are taken over both sets; the keys are never
  concatenated (without a mask, their order does not matter). ``exp2`` uses ``scale·log2(e)``
  folded into the scores; scores and accumulators are float32 (float64 stays float64); P is cast
  to the input dtype for the PV products, as in Triton's fused-attention tutorial.
- q, k, v are read through their strides (SDPA's layout is often a transposed view of a Linear
  output); only a unit last stride is required, and ``.contiguous()`` is called only without one.
- Backward (also Triton): the forward stores the log-sum-exp per query row; one program again holds
  whole rows for its G sequences and computes dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(dO∘O)),
  dQ = dS·K, dK = dSᵀ·Q for the real and the extra keys, with no atomics (deterministic).

Interpreter workaround: under ``TRITON_INTERPRET=1``, ``tl.dot`` on bfloat16 operands multiplies
raw bit patterns (triton-lang/triton#11584). The constexpr flag ``DOT_F32`` is then set for bfloat16
inputs and upcasts both dot operands to float32 inside the kernel after every rounding the GPU
path does (P and dS are still rounded to bfloat16 first), so CPU tests see GPU-like bf16 error.
It is never set on a GPU.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl
from torch import Tensor

from motionforge.core.errors import KernelError
from motionforge.kernels.dispatch import triton_interpreting

LOG2E = math.log2(math.e)
MIN_BLOCK = 16  # compiled tl.dot needs every dimension ≥ 16
MAX_BLOCK_KEYS = 64  # whole rows live in registers: L and N up to 64 (128 spilled 8–16 KB per thread on sm_90)
MAX_BLOCK_D = 256
GPU_ROWS_PER_PROGRAM = 64  # G·BLOCK_L ≥ 64 fills an MMA tile (M = 64 on Hopper)
# Largest [G, BLOCK_L, BLOCK_D] tile per program where the kernel has more live tiles than the fp16/bf16 forward:
# compiled for sm_90 with Triton 3.9's bundled ptxas, these keep 8 warps within 255 registers without spilling
# (fp32 uses FMA, not MMA, for exact dots). Measured from cubins only; never run on a GPU.
FLOAT32_FORWARD_TILE = 4096
BACKWARD_TILE = 2048
INTERPRETER_GROUP = 16  # the interpreter costs ~10–20 ms per program: pack many sequences per program


def block_size(n: int) -> int:
    """Return the tile size for a dimension of length n: the next power of two, at least 16."""
    return max(MIN_BLOCK, triton.next_power_of_2(max(n, 1)))


def launch_shape(
    num_seqs: int, block_l: int, block_d: int, dtype: torch.dtype, backward: bool, interpreting: bool
) -> tuple[int, int]:
    """Return (G, num_warps): the sequences one program packs (a power of two) and its warps.

    On a GPU the fp16/bf16 forward packs G·BLOCK_L = 64 query rows (one MMA tile); the float32/64
    forward and the backward, which hold more live tiles, shrink G to stay within the register
    budgets above. Under the interpreter G is 16 so that tests launch few programs.
    """
    group, warps = INTERPRETER_GROUP, 4
    if not interpreting:
        group = max(1, GPU_ROWS_PER_PROGRAM // block_l)
        half = dtype in (torch.float16, torch.bfloat16)
        if backward or not half:
            budget = BACKWARD_TILE if backward else FLOAT32_FORWARD_TILE
            group = max(1, min(group, budget // (block_l * block_d)))
        warps = 4 if half and not backward and group * block_l * block_d <= 4096 else 8
    return max(1, min(group, triton.next_power_of_2(max(num_seqs, 1)))), warps


def _dot_precision(dtype: torch.dtype) -> str:
    """Return tl.dot's input precision: exact for float32 (FMA, not tensor cores) unless PyTorch allows TF32 matmuls."""
    if dtype == torch.float64 or (dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32):
        return "ieee"
    return "tf32"  # Triton's default; it only affects float32 operands


def _unit_last_stride(t: Tensor) -> Tensor:
    """Return t itself when its last dimension is contiguous (any other strides are fine), else a contiguous copy."""
    return t if t.stride(-1) == 1 else t.contiguous()


def _strides(t: Tensor) -> tuple[int, int, int]:
    """Return the sequence, head and row strides of a [S, heads, rows, d] tensor (its last stride is 1)."""
    return t.stride(0), t.stride(1), t.stride(2)


@triton.jit
def _tile_offsets(seq, head, rows, cols, stride_s, stride_h, stride_r):
    """Element offsets [G, R, C] of rows × cols of one head of G sequences, in int64 (S·stride exceeds 2³¹)."""
    return (
        seq[:, None, None] * stride_s
        + head * stride_h
        + rows.to(tl.int64)[None, :, None] * stride_r
        + cols[None, None, :]  # [G, R, C]
    )


@triton.jit
def _tile_mask(seq_ok, rows, cols, num_rows, num_cols):
    """In-bounds mask [G, R, C]: real sequence, row < num_rows and column < num_cols."""
    return seq_ok[:, None, None] & (rows[None, :, None] < num_rows) & (cols[None, None, :] < num_cols)


@triton.jit
def _dot(a, b, DOT_F32: tl.constexpr, PRECISION: tl.constexpr):
    """Batched product [G, M, K] @ [G, K, N] → [G, M, N] with a float32 (float64 for float64) result."""
    tl.static_assert(a.shape[1] >= 16, "tl.dot needs M >= 16")
    tl.static_assert(a.shape[2] >= 16, "tl.dot needs K >= 16")
    tl.static_assert(b.shape[2] >= 16, "tl.dot needs N >= 16")
    if DOT_F32:  # interpreter only: its bf16 tl.dot is broken (triton-lang/triton#11584)
        a = a.to(tl.float32)
        b = b.to(tl.float32)
    return tl.dot(a, b, input_precision=PRECISION)


@triton.jit
def _attention_forward_kernel(
    q_ptr, k_ptr, v_ptr, ke_ptr, ve_ptr, out_ptr, lse_ptr,
    q_ss, q_sh, q_sl, k_ss, k_sh, k_sl, v_ss, v_sh, v_sl,
    ke_ss, ke_sh, ke_sn, ve_ss, ve_sh, ve_sn, o_ss, o_sh, o_sl,
    num_seqs, num_heads, seq_len, num_extra, head_dim, qk_scale,
    G: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_EXTRA: tl.constexpr, STORE_LSE: tl.constexpr, DOT_F32: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Attention of G sequences × one head over their real and extra keys; optionally stores the base-2 LSE."""
    seq = tl.program_id(0).to(tl.int64) * G + tl.arange(0, G)  # [G]
    head = tl.program_id(1).to(tl.int64)
    seq_ok = seq < num_seqs  # [G]
    rows = tl.arange(0, BLOCK_L)  # [BL] query rows and real-key rows
    cols = tl.arange(0, BLOCK_D)  # [BD]
    row_mask = _tile_mask(seq_ok, rows, cols, seq_len, head_dim)  # [G, BL, BD]

    q = tl.load(q_ptr + _tile_offsets(seq, head, rows, cols, q_ss, q_sh, q_sl), mask=row_mask, other=0.0)  # [G, BL, BD]
    k = tl.load(k_ptr + _tile_offsets(seq, head, rows, cols, k_ss, k_sh, k_sl), mask=row_mask, other=0.0)  # [G, BL, BD]
    scores = _dot(q, tl.permute(k, (0, 2, 1)), DOT_F32, PRECISION) * qk_scale  # [G, BL, BL] in log2 units
    scores = tl.where(rows[None, None, :] < seq_len, scores, float("-inf"))  # [G, BL, BL]
    row_max = tl.max(scores, axis=2)  # [G, BL]
    if HAS_EXTRA:
        extra = tl.arange(0, BLOCK_N)  # [BN]
        extra_mask = _tile_mask(seq_ok, extra, cols, num_extra, head_dim)  # [G, BN, BD]
        ke_offsets = _tile_offsets(seq, head, extra, cols, ke_ss, ke_sh, ke_sn)  # [G, BN, BD]
        ke = tl.load(ke_ptr + ke_offsets, mask=extra_mask, other=0.0)  # [G, BN, BD]
        scores_x = _dot(q, tl.permute(ke, (0, 2, 1)), DOT_F32, PRECISION) * qk_scale  # [G, BL, BN]
        scores_x = tl.where(extra[None, None, :] < num_extra, scores_x, float("-inf"))  # [G, BL, BN]
        row_max = tl.maximum(row_max, tl.max(scores_x, axis=2))  # [G, BL]

    v = tl.load(v_ptr + _tile_offsets(seq, head, rows, cols, v_ss, v_sh, v_sl), mask=row_mask, other=0.0)  # [G, BL, BD]
    p = tl.math.exp2(scores - row_max[:, :, None])  # [G, BL, BL]
    row_sum = tl.sum(p, axis=2)  # [G, BL]
    acc = _dot(p.to(v.dtype), v, DOT_F32, PRECISION)  # [G, BL, BD]
    if HAS_EXTRA:
        ve_offsets = _tile_offsets(seq, head, extra, cols, ve_ss, ve_sh, ve_sn)  # [G, BN, BD]
        ve = tl.load(ve_ptr + ve_offsets, mask=extra_mask, other=0.0)  # [G, BN, BD]
        p_x = tl.math.exp2(scores_x - row_max[:, :, None])  # [G, BL, BN]
        row_sum += tl.sum(p_x, axis=2)
        acc += _dot(p_x.to(ve.dtype), ve, DOT_F32, PRECISION)
    out = acc / row_sum[:, :, None]  # [G, BL, BD]
    o_offsets = _tile_offsets(seq, head, rows, cols, o_ss, o_sh, o_sl)  # [G, BL, BD]
    tl.store(out_ptr + o_offsets, out.to(out_ptr.dtype.element_ty), mask=row_mask)
    if STORE_LSE:
        lse_offsets = (seq[:, None] * num_heads + head) * seq_len + rows[None, :]  # [G, BL]
        lse_mask = seq_ok[:, None] & (rows[None, :] < seq_len)  # [G, BL]
        tl.store(lse_ptr + lse_offsets, row_max + tl.math.log2(row_sum), mask=lse_mask)


@triton.jit
def _attention_backward_kernel(
    q_ptr, k_ptr, v_ptr, ke_ptr, ve_ptr, o_ptr, do_ptr, lse_ptr,
    dq_ptr, dk_ptr, dv_ptr, dke_ptr, dve_ptr,
    q_ss, q_sh, q_sl, k_ss, k_sh, k_sl, v_ss, v_sh, v_sl,
    ke_ss, ke_sh, ke_sn, ve_ss, ve_sh, ve_sn, o_ss, o_sh, o_sl, do_ss, do_sh, do_sl,
    dq_ss, dq_sh, dq_sl, dk_ss, dk_sh, dk_sl, dv_ss, dv_sh, dv_sl,
    dke_ss, dke_sh, dke_sn, dve_ss, dve_sh, dve_sn,
    num_seqs, num_heads, seq_len, num_extra, head_dim, scale, qk_scale,
    G: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    HAS_EXTRA: tl.constexpr, DOT_F32: tl.constexpr, PRECISION: tl.constexpr,
):  # fmt: skip
    """Gradients of q, k, v, k_extra and v_extra for G sequences × one head, recomputing P from the stored LSE."""
    seq = tl.program_id(0).to(tl.int64) * G + tl.arange(0, G)  # [G]
    head = tl.program_id(1).to(tl.int64)
    seq_ok = seq < num_seqs  # [G]
    rows = tl.arange(0, BLOCK_L)  # [BL]
    cols = tl.arange(0, BLOCK_D)  # [BD]
    row_mask = _tile_mask(seq_ok, rows, cols, seq_len, head_dim)  # [G, BL, BD]

    q = tl.load(q_ptr + _tile_offsets(seq, head, rows, cols, q_ss, q_sh, q_sl), mask=row_mask, other=0.0)  # [G, BL, BD]
    k = tl.load(k_ptr + _tile_offsets(seq, head, rows, cols, k_ss, k_sh, k_sl), mask=row_mask, other=0.0)  # [G, BL, BD]
    v = tl.load(v_ptr + _tile_offsets(seq, head, rows, cols, v_ss, v_sh, v_sl), mask=row_mask, other=0.0)  # [G, BL, BD]
    o = tl.load(o_ptr + _tile_offsets(seq, head, rows, cols, o_ss, o_sh, o_sl), mask=row_mask, other=0.0)  # [G, BL, BD]
    do = tl.load(do_ptr + _tile_offsets(seq, head, rows, cols, do_ss, do_sh, do_sl), mask=row_mask, other=0.0)  # [G, BL, BD]
    lse_offsets = (seq[:, None] * num_heads + head) * seq_len + rows[None, :]  # [G, BL]
    lse = tl.load(lse_ptr + lse_offsets, mask=seq_ok[:, None] & (rows[None, :] < seq_len), other=0.0)  # [G, BL]
    delta = tl.sum(o.to(lse.dtype) * do.to(lse.dtype), axis=2)  # [G, BL] rowsum(dO∘O)

    # Real keys. Padded query rows have dO = 0 and padded keys P = 0, so neither leaks into a stored gradient.
    scores = _dot(q, tl.permute(k, (0, 2, 1)), DOT_F32, PRECISION) * qk_scale  # [G, BL, BL]
    p = tl.where(rows[None, None, :] < seq_len, tl.math.exp2(scores - lse[:, :, None]), 0.0)  # [G, BL, BL]
    dv = _dot(tl.permute(p, (0, 2, 1)).to(do.dtype), do, DOT_F32, PRECISION)  # [G, BL, BD]
    dp = _dot(do, tl.permute(v, (0, 2, 1)), DOT_F32, PRECISION)  # [G, BL, BL]
    ds = (p * (dp - delta[:, :, None])).to(q.dtype)  # [G, BL, BL] gradient of the scaled scores
    dq = _dot(ds, k, DOT_F32, PRECISION)  # [G, BL, BD]
    dk = _dot(tl.permute(ds, (0, 2, 1)), q, DOT_F32, PRECISION)  # [G, BL, BD]
    tl.store(dv_ptr + _tile_offsets(seq, head, rows, cols, dv_ss, dv_sh, dv_sl), dv.to(dv_ptr.dtype.element_ty), mask=row_mask)
    dk_offsets = _tile_offsets(seq, head, rows, cols, dk_ss, dk_sh, dk_sl)  # [G, BL, BD]
    tl.store(dk_ptr + dk_offsets, (dk * scale).to(dk_ptr.dtype.element_ty), mask=row_mask)

    if HAS_EXTRA:
        extra = tl.arange(0, BLOCK_N)  # [BN]
        extra_mask = _tile_mask(seq_ok, extra, cols, num_extra, head_dim)  # [G, BN, BD]
        ke_offsets = _tile_offsets(seq, head, extra, cols, ke_ss, ke_sh, ke_sn)  # [G, BN, BD]
        ke = tl.load(ke_ptr + ke_offsets, mask=extra_mask, other=0.0)  # [G, BN, BD]
        ve_offsets = _tile_offsets(seq, head, extra, cols, ve_ss, ve_sh, ve_sn)  # [G, BN, BD]
        ve = tl.load(ve_ptr + ve_offsets, mask=extra_mask, other=0.0)  # [G, BN, BD]
        scores_x = _dot(q, tl.permute(ke, (0, 2, 1)), DOT_F32, PRECISION) * qk_scale  # [G, BL, BN]
        p_x = tl.where(extra[None, None, :] < num_extra, tl.math.exp2(scores_x - lse[:, :, None]), 0.0)  # [G, BL, BN]
        dve = _dot(tl.permute(p_x, (0, 2, 1)).to(do.dtype), do, DOT_F32, PRECISION)  # [G, BN, BD]
        dp_x = _dot(do, tl.permute(ve, (0, 2, 1)), DOT_F32, PRECISION)  # [G, BL, BN]
        ds_x = (p_x * (dp_x - delta[:, :, None])).to(q.dtype)  # [G, BL, BN]
        dq += _dot(ds_x, ke, DOT_F32, PRECISION)
        dke = _dot(tl.permute(ds_x, (0, 2, 1)), q, DOT_F32, PRECISION)  # [G, BN, BD]
        dve_offsets = _tile_offsets(seq, head, extra, cols, dve_ss, dve_sh, dve_sn)  # [G, BN, BD]
        tl.store(dve_ptr + dve_offsets, dve.to(dve_ptr.dtype.element_ty), mask=extra_mask)
        dke_offsets = _tile_offsets(seq, head, extra, cols, dke_ss, dke_sh, dke_sn)  # [G, BN, BD]
        tl.store(dke_ptr + dke_offsets, (dke * scale).to(dke_ptr.dtype.element_ty), mask=extra_mask)

    dq_offsets = _tile_offsets(seq, head, rows, cols, dq_ss, dq_sh, dq_sl)  # [G, BL, BD]
    tl.store(dq_ptr + dq_offsets, (dq * scale).to(dq_ptr.dtype.element_ty), mask=row_mask)


def supports(q: Tensor, k: Tensor, v: Tensor, k_extra: Tensor, v_extra: Tensor, scale: float) -> bool:
    """True when the kernel can hold these rows in registers (L and N up to 64, d up to 256); automatic dispatch asks first."""
    seq_len, num_extra, head_dim = q.shape[2], k_extra.shape[2], q.shape[3]
    return max(block_size(seq_len), block_size(num_extra)) <= MAX_BLOCK_KEYS and block_size(head_dim) <= MAX_BLOCK_D


def _launch_config(q: Tensor, num_extra: int, backward: bool) -> dict[str, object]:
    """Return the constexpr tile sizes, G, flags and warps of a launch for q [S, heads, L, d]."""
    num_seqs, _, seq_len, head_dim = q.shape
    block_l, block_n, block_d = block_size(seq_len), block_size(num_extra), block_size(head_dim)
    if block_l > MAX_BLOCK_KEYS or block_n > MAX_BLOCK_KEYS or block_d > MAX_BLOCK_D:
        raise KernelError(
            f"Kernel backend 'triton' holds whole attention rows in registers, so temporal_attention supports L and N up to "
            f"{MAX_BLOCK_KEYS} and d up to {MAX_BLOCK_D}, got L={seq_len}, N={num_extra}, d={head_dim}; "
            "use backend='reference' or 'xformers'."
        )
    interpreting = triton_interpreting()
    group, warps = launch_shape(num_seqs, block_l, block_d, q.dtype, backward, interpreting)
    return {
        "G": group,
        "BLOCK_L": block_l,
        "BLOCK_N": block_n,
        "BLOCK_D": block_d,
        "HAS_EXTRA": num_extra > 0,
        "DOT_F32": interpreting and q.dtype == torch.bfloat16,
        "PRECISION": _dot_precision(q.dtype),
        "num_warps": warps,
    }


def _lse_dtype(dtype: torch.dtype) -> torch.dtype:
    """Return the dtype of the stored log-sum-exp: float64 for float64 inputs, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def attention_forward(
    q: Tensor, k: Tensor, v: Tensor, k_extra: Tensor, v_extra: Tensor, scale: float, store_lse: bool
) -> tuple[Tensor, Tensor | None]:
    """Run the forward kernel on unit-last-stride inputs; return [S, heads, L, d] and, if asked, the LSE [S, heads, L]."""
    num_seqs, num_heads, seq_len, head_dim = q.shape
    num_extra = k_extra.shape[2]
    out = torch.empty_like(q)  # [S, heads, L, d], q's memory layout (a transposed view stays one)
    lse = None
    if store_lse:
        lse = torch.empty(num_seqs, num_heads, seq_len, dtype=_lse_dtype(q.dtype), device=q.device)  # [S, heads, L]
    if q.numel() == 0:
        return out, lse
    config = _launch_config(q, num_extra, backward=False)
    extra_k, extra_v = (k_extra, v_extra) if num_extra > 0 else (k, v)  # never read when N = 0
    grid = (triton.cdiv(num_seqs, config["G"]), num_heads)
    _attention_forward_kernel[grid](
        q, k, v, extra_k, extra_v, out, out if lse is None else lse,
        *_strides(q), *_strides(k), *_strides(v), *_strides(extra_k), *_strides(extra_v), *_strides(out),
        num_seqs, num_heads, seq_len, num_extra, head_dim, scale * LOG2E,
        STORE_LSE=store_lse, **config,
    )  # fmt: skip
    return out, lse


def attention_backward(
    q: Tensor, k: Tensor, v: Tensor, k_extra: Tensor, v_extra: Tensor, out: Tensor, grad_out: Tensor, lse: Tensor, scale: float
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Run the backward kernel; return the gradients of q, k, v [S, heads, L, d] and k_extra, v_extra [S, heads, N, d]."""
    num_seqs, num_heads, seq_len, head_dim = q.shape
    num_extra = k_extra.shape[2]
    grads = [torch.empty_like(t) for t in (q, k, v)]  # [S, heads, L, d] each
    grads += [torch.zeros_like(t) if num_extra == 0 else torch.empty_like(t) for t in (k_extra, v_extra)]  # [S, heads, N, d] each
    if q.numel() == 0:
        return tuple(g.zero_() for g in grads)
    grad_out = _unit_last_stride(grad_out)  # [S, heads, L, d]; e.g. out.sum().backward() gives all-zero strides
    config = _launch_config(q, num_extra, backward=True)
    dq, dk, dv, dke, dve = grads
    extra = (k_extra, v_extra, dke, dve) if num_extra > 0 else (k, v, dk, dv)  # never touched when N = 0
    grid = (triton.cdiv(num_seqs, config["G"]), num_heads)
    _attention_backward_kernel[grid](
        q, k, v, extra[0], extra[1], out, grad_out, lse, dq, dk, dv, extra[2], extra[3],
        *_strides(q), *_strides(k), *_strides(v), *_strides(extra[0]), *_strides(extra[1]), *_strides(out), *_strides(grad_out),
        *_strides(dq), *_strides(dk), *_strides(dv), *_strides(extra[2]), *_strides(extra[3]),
        num_seqs, num_heads, seq_len, num_extra, head_dim, scale, scale * LOG2E,
        **config,
    )  # fmt: skip
    return dq, dk, dv, dke, dve


class TemporalAttention(torch.autograd.Function):
    """Differentiable wrapper of the Triton kernels: the forward stores the LSE, the backward is the Triton backward kernel."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, k_extra: Tensor, v_extra: Tensor, scale: float) -> Tensor:
        """Compute the attention output [S, heads, L, d] and save what the backward needs."""
        out, lse = attention_forward(q, k, v, k_extra, v_extra, scale, store_lse=True)  # [S, heads, L, d], [S, heads, L]
        ctx.save_for_backward(q, k, v, k_extra, v_extra, out, lse)
        ctx.scale = scale
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        """Return the gradients of q, k, v, k_extra and v_extra (None for scale and for inputs that need none)."""
        q, k, v, k_extra, v_extra, out, lse = ctx.saved_tensors
        grads = attention_backward(q, k, v, k_extra, v_extra, out, grad_out, lse, ctx.scale)
        return (*(g if needed else None for g, needed in zip(grads, ctx.needs_input_grad[:5])), None)


def temporal_attention(q: Tensor, k: Tensor, v: Tensor, k_extra: Tensor, v_extra: Tensor, scale: float) -> Tensor:
    """Motion-augmented temporal attention with the Triton kernels; returns [S, heads, L, d].

    q, k, v are [S, heads, L, d] and k_extra, v_extra [S, heads, N, d] (N may be 0); inputs are
    validated by ``motionforge.kernels.temporal_attention``. Differentiable in all five
    tensors (Triton backward, LSE stored only when a gradient is needed); the result has q's dtype
    and q's memory layout.
    """
    q, k, v, k_extra, v_extra = (_unit_last_stride(t) for t in (q, k, v, k_extra, v_extra))
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, k_extra, v_extra)):
        return TemporalAttention.apply(q, k, v, k_extra, v_extra, scale)
    return attention_forward(q, k, v, k_extra, v_extra, scale, store_lse=False)[0]
