"""Kernels: forward splatting and backward warping of feature maps, and motion-augmented temporal attention.

Each operation is one public function that checks its inputs and dispatches to a backend (the
PyTorch reference, Triton, or xformers; see :mod:`motionforge.kernels.dispatch`). Positions are in
pixels with the origin at the centre of the top-left pixel; a flow is a displacement
``[B, 2, H, W]`` with channel 0 = x (columns) and channel 1 = y (rows).
"""

from __future__ import annotations

from torch import Tensor

from motionforge.kernels.dispatch import BACKENDS, kernel_for, resolve_backend

__all__ = ["BACKENDS", "SPLAT_MODES", "WARP_PADDINGS", "resolve_backend", "splat", "temporal_attention", "warp"]

SPLAT_MODES: tuple[str, ...] = ("sum", "avg", "linear", "softmax")
WARP_PADDINGS: tuple[str, ...] = ("zeros", "border")


def _shape(t: Tensor) -> str:
    """Format a tensor's shape for error messages."""
    return str(list(t.shape))


def _check_x_and_flow(op: str, x: Tensor, flow: Tensor) -> None:
    """Raise ValueError unless x is [B or 1, C, H, W] and flow is [B, 2, H, W], both float, on one device."""
    shapes = f"x {_shape(x)} and flow {_shape(flow)}"
    if x.dim() != 4 or flow.dim() != 4:
        raise ValueError(f"{op} expects 4-D x [B, C, H, W] and flow [B, 2, H, W], got {shapes}.")
    if flow.shape[1] != 2:
        raise ValueError(f"{op} expects a flow with 2 channels (x and y displacement), got {shapes}.")
    if x.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"{op} expects x and flow with the same height and width, got {shapes}.")
    if x.shape[0] not in (1, flow.shape[0]):
        raise ValueError(f"{op} expects x with batch 1 or the flow's batch {flow.shape[0]}, got {shapes}.")
    if not (x.is_floating_point() and flow.is_floating_point()):
        raise ValueError(f"{op} expects floating-point x and flow, got x {x.dtype} and flow {flow.dtype}.")
    if x.device != flow.device:
        raise ValueError(f"{op} expects x and flow on one device, got x on {x.device} and flow on {flow.device}.")


def _check_metric(mode: str, metric: Tensor | None, flow: Tensor) -> None:
    """Raise ValueError unless the metric matches the mode: absent for sum/avg, [B or 1, 1, H, W] otherwise."""
    if mode not in SPLAT_MODES:
        raise ValueError(f"Unknown splat mode {mode!r}; choose one of 'sum', 'avg', 'linear', 'softmax'.")
    if mode in ("sum", "avg"):
        if metric is not None:
            raise ValueError(
                f"splat mode {mode!r} takes no metric (only 'linear' and 'softmax' use one), got metric {_shape(metric)}."
            )
        return
    if metric is None:
        raise ValueError(f"splat mode {mode!r} needs a metric of shape [B or 1, 1, H, W], got none.")
    batch, _, h, w = flow.shape
    if metric.dim() != 4 or metric.shape[1] != 1 or metric.shape[-2:] != flow.shape[-2:] or metric.shape[0] not in (1, batch):
        raise ValueError(
            f"splat expects a metric of shape [{batch} or 1, 1, {h}, {w}] for flow {_shape(flow)}, got metric {_shape(metric)}."
        )
    if not metric.is_floating_point() or metric.device != flow.device:
        raise ValueError(
            f"splat expects a floating-point metric on the flow's device {flow.device}, got {metric.dtype} on {metric.device}."
        )


def splat(x: Tensor, flow: Tensor, mode: str = "sum", metric: Tensor | None = None, *, backend: str | None = None) -> Tensor:
    """Forward-warp ``x`` [B or 1, C, H, W] by ``flow`` [B, 2, H, W] with softmax splatting; returns [B, C, H, W].

    Each source pixel at (px, py) sends its value to the 4 integer neighbours of (px + fx, py + fy)
    with bilinear weights; corners outside the frame and sources with non-finite targets are dropped.
    Modes: ``sum`` splat(x); ``avg`` splat(x) / (splat(1) + eps); ``linear`` splat(x·m) / (splat(m) + eps);
    ``softmax`` splat(x·e^m) / (splat(e^m) + eps) with m clipped to [-20, 20]; eps = 1e-7 and
    ``metric`` m is [B or 1, 1, H, W], required for linear and softmax only. Half-precision inputs
    accumulate in float32 and the result has x's dtype. Differentiable in x, flow and metric.
    """
    _check_x_and_flow("splat", x, flow)
    _check_metric(mode, metric, flow)
    args = (x, flow, mode, metric)
    return kernel_for("splat", backend, x.device, args)(*args)


def warp(x: Tensor, flow: Tensor, padding: str = "zeros", *, backend: str | None = None) -> Tensor:
    """Backward-warp ``x`` [B or 1, C, H, W] by ``flow`` [B, 2, H, W]: bilinear samples at (px + fx, py + fy).

    Matches ``grid_sample(mode="bilinear", align_corners=True, padding_mode=padding)`` for
    ``padding`` in ("zeros", "border"), computed in pixel units so zero flow returns x exactly.
    Non-finite sample positions give 0 (with border padding, ±inf clamps to the edge and NaN gives 0).
    Half-precision inputs compute in float32 and the result has x's dtype. Differentiable in x and flow.
    """
    _check_x_and_flow("warp", x, flow)
    if padding not in WARP_PADDINGS:
        raise ValueError(f"Unknown warp padding {padding!r}; choose one of 'zeros', 'border'.")
    args = (x, flow, padding)
    return kernel_for("warp", backend, x.device, args)(*args)


def _check_attention(q: Tensor, k: Tensor, v: Tensor, k_extra: Tensor, v_extra: Tensor) -> None:
    """Raise ValueError unless q, k, v are [S, heads, L, d] and k_extra, v_extra [S, heads, N, d], alike in dtype and device."""
    named = {"q": q, "k": k, "v": v, "k_extra": k_extra, "v_extra": v_extra}
    shapes = ", ".join(f"{name} {_shape(t)}" for name, t in named.items())
    if any(t.dim() != 4 for t in named.values()):
        raise ValueError(f"temporal_attention expects 4-D [S, heads, L, d] tensors, got {shapes}.")
    if k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"temporal_attention expects q, k and v of one shape [S, heads, L, d], got {shapes}.")
    if k_extra.shape != v_extra.shape or k_extra.shape[:2] != q.shape[:2] or k_extra.shape[3] != q.shape[3]:
        raise ValueError(f"temporal_attention expects k_extra and v_extra of shape [S, heads, N, d] matching q, got {shapes}.")
    if len({t.dtype for t in named.values()}) != 1 or not q.is_floating_point():
        raise ValueError(f"temporal_attention expects floating-point tensors of one dtype, got {[str(t.dtype) for t in named.values()]}.")
    if len({t.device for t in named.values()}) != 1:
        raise ValueError(f"temporal_attention expects every tensor on one device, got {[str(t.device) for t in named.values()]}.")


def temporal_attention(
    q: Tensor, k: Tensor, v: Tensor, k_extra: Tensor, v_extra: Tensor, scale: float | None = None, *, backend: str | None = None
) -> Tensor:
    """Motion-augmented temporal attention (Motion-I2V): frames attend over their own keys plus warped-reference keys.

    q, k, v are [S, heads, L, d] (SDPA's layout: S spatial sequences, L frames) and k_extra,
    v_extra [S, heads, N, d] (the reference frame's features warped to each frame). For each
    sequence and head, the L queries attend over the L + N keys; without a mask the order of the
    keys does not matter, so they are never interleaved. ``scale`` defaults to 1/sqrt(d); the
    softmax runs in float32 and the result [S, heads, L, d] has q's dtype.
    """
    _check_attention(q, k, v, k_extra, v_extra)
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    args = (q, k, v, k_extra, v_extra, scale)
    return kernel_for("temporal_attention", backend, q.device, args)(*args)
