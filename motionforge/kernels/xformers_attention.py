"""xformers backend for motion-augmented temporal attention: ``memory_efficient_attention`` over the concatenated keys.

Loaded only where xformers imports and the tensors are on CUDA (see :mod:`motionforge.kernels.dispatch`).
xformers takes 4-D ``[batch, M, heads, d]`` inputs and only needs the last dimension contiguous, so
SDPA-layout tensors go in as ``transpose(1, 2)`` views. Its kernels put the batch on a CUDA grid
axis capped at 65 535 (facebookresearch/xformers#845, pytorch/pytorch#142228: "invalid
configuration argument"), so S is processed in chunks of at most 65 535 sequences.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import xformers.ops
from torch import Tensor

MAX_BATCH = 65_535  # largest CUDA grid y/z dimension; xformers puts the batch there

Attend = Callable[[Tensor, Tensor, Tensor, float], Tensor]


def _attend(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
    """Call xformers on q [B, L, heads, d] and k, v [B, M, heads, d]; returns [B, L, heads, d]."""
    return xformers.ops.memory_efficient_attention(q, k, v, scale=scale)


def chunked(attend: Attend, q: Tensor, k: Tensor, v: Tensor, scale: float, max_batch: int | None = None) -> Tensor:
    """Run ``attend`` on slices of at most ``max_batch`` (default MAX_BATCH) sequences; returns [S, L, heads, d].

    q is [S, L, heads, d] and k, v [S, M, heads, d]; one call when S fits.
    """
    num_seqs = q.shape[0]
    max_batch = MAX_BATCH if max_batch is None else max_batch
    if num_seqs <= max_batch:
        return attend(q, k, v, scale)
    parts = []
    for start in range(0, num_seqs, max_batch):
        part = slice(start, start + max_batch)
        parts.append(attend(q[part], k[part], v[part], scale))  # [≤max_batch, L, heads, d]
    return torch.cat(parts, dim=0)  # [S, L, heads, d]


def _unit_last_stride(t: Tensor) -> Tensor:
    """Return t itself when its last dimension is contiguous, else a contiguous copy (xformers needs only that)."""
    return t if t.stride(-1) == 1 else t.contiguous()


def temporal_attention(q: Tensor, k: Tensor, v: Tensor, k_extra: Tensor, v_extra: Tensor, scale: float) -> Tensor:
    """Motion-augmented temporal attention with xformers; returns [S, heads, L, d].

    q, k, v are [S, heads, L, d] and k_extra, v_extra [S, heads, N, d] (N may be 0); inputs are
    validated by ``motionforge.kernels.temporal_attention``. Differentiable through
    xformers' own backward; the result has q's dtype.
    """
    keys = torch.cat([k, k_extra], dim=2).transpose(1, 2)  # [S, L+N, heads, d], a view of [S, heads, L+N, d]
    values = torch.cat([v, v_extra], dim=2).transpose(1, 2)  # [S, L+N, heads, d]
    queries = _unit_last_stride(q).transpose(1, 2)  # [S, L, heads, d]
    out = chunked(_attend, queries, keys, values, scale)  # [S, L, heads, d]
    return out.transpose(1, 2)  # [S, heads, L, d]
