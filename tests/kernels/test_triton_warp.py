"""The Triton backward warp (``warp(..., backend="triton")``) against the PyTorch reference, run by Triton's interpreter on CPU.

Tolerances, Triton against the reference on the same inputs:
- forward, every dtype: the kernel forms the same weights, products and summation order as the reference in the
  same compute dtype, so under the interpreter the outputs are bit-identical (measured max error 0 for fp32, fp64,
  fp16 and bf16). The tolerances below allow one rounding step of the output dtype, which a GPU's FMA contraction
  could cost: fp32 1e-6, fp64 1e-12, fp16 1e-3 (2^-10) and bf16 8e-3 (2^-7), relative and absolute.
- gradients: grad_x sums up to 4·B splat shares and grad_flow sums over C channels in another order than autograd,
  so fp32 gets 1e-5 (measured ≤ 1e-6 on values of order 1-10), fp64 1e-12, and half-precision gradients (computed
  in fp32, rounded once) one step of their dtype.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from motionforge.kernels import warp

PADDINGS = ("zeros", "border")
# (rtol, atol) per dtype, as explained in the module docstring.
FORWARD_TOL = {torch.float32: 1e-6, torch.float64: 1e-12, torch.float16: 1e-3, torch.bfloat16: 8e-3}
GRAD_TOL = {torch.float32: 1e-5, torch.float64: 1e-12, torch.float16: 1e-3, torch.bfloat16: 8e-3}

# name → (x shape, flow batch): odd sizes, B = 1 and 3, a batch-1 x broadcast over 3 flows, two pixel tiles
# (9·8 = 72 > BLOCK_P = 64) and two channel tiles (C = 130 > 128).
SHAPES = {
    "b1-odd": ((1, 3, 5, 7), 1),
    "b3": ((3, 3, 5, 7), 3),
    "broadcast": ((1, 3, 5, 7), 3),
    "two-pixel-tiles": ((1, 2, 9, 8), 1),
    "two-channel-tiles": ((1, 130, 2, 3), 1),
}


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test without a MOTIONFORGE_KERNELS override from the caller's environment."""
    monkeypatch.delenv("MOTIONFORGE_KERNELS", raising=False)


def _gen(seed: int = 0) -> torch.Generator:
    """Return a seeded CPU generator so every example is reproducible."""
    return torch.Generator().manual_seed(seed)


def _both(x: torch.Tensor, flow: torch.Tensor, padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the Triton and the reference warp [B, C, H, W] of the same inputs."""
    return warp(x, flow, padding, backend="triton"), warp(x, flow, padding, backend="reference")


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    """Assert equal dtypes and values within tol (relative and absolute), NaN-free."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert not torch.isnan(actual).any()
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol)


def _nasty_flow(batch: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Return a flow [B, 2, H, W] that leaves the frame, with NaN, ±inf, huge entries and positions exactly on the edges."""
    flow = torch.randn(batch, 2, h, w, generator=gen) * 4  # many positions fall outside the frame
    flow[0, 0, 0, 0] = float("nan")
    flow[0, :, 1, 1] = torch.tensor([0.0, float("inf")])  # straight down to +inf
    flow[-1, 0, 2, 2] = float("-inf")
    flow[-1, 1, 3, 3] = 1e12
    flow[0, 0, 4, 4] = -1e30
    flow[0, 0, 1, 0] = w - 1.0  # exactly on the right edge: border padding's clamp passes its gradient
    flow[0, 1, 0, 2] = -1.0  # one pixel above the frame
    return flow


def _flow_off_the_grid(batch: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Return a float64 flow [B, 2, H, W] whose positions keep ≥ 0.1 px from every integer, where the derivative jumps.

    Positions lie in cells -1 … size-1, so some sit half outside the frame (and, with border padding, get clamped
    flat), but none lies within 0.1 px of a corner, the frame's edge or the border clamp.
    """
    cell_x = torch.randint(-1, w, (batch, h, w), generator=gen)  # [B, H, W]
    cell_y = torch.randint(-1, h, (batch, h, w), generator=gen)  # [B, H, W]
    frac = 0.1 + 0.8 * torch.rand(batch, 2, h, w, generator=gen, dtype=torch.float64)  # [B, 2, H, W]
    pos = torch.stack([cell_x, cell_y], dim=1).double() + frac  # [B, 2, H, W]
    grid = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(h), indexing="xy")).double()  # [2, H, W]
    return pos - grid


def _grads(backend: str, x: torch.Tensor, flow: torch.Tensor, upstream: torch.Tensor, padding: str) -> tuple[torch.Tensor, ...]:
    """Return (grad_x, grad_flow) of Σ upstream · warp(x, flow) through one backend."""
    x = x.detach().requires_grad_(True)
    flow = flow.detach().requires_grad_(True)
    out = warp(x, flow, padding, backend=backend)  # [B, C, H, W]
    return torch.autograd.grad((out * upstream).sum(), (x, flow))


# --- forward ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("padding", PADDINGS)
def test_matches_reference_on_flows_leaving_the_frame(padding: str, name: str) -> None:
    x_shape, batch = SHAPES[name]
    gen = _gen(1)
    x = torch.randn(x_shape, generator=gen)
    flow = torch.randn(batch, 2, *x_shape[2:], generator=gen) * 3
    ours, expected = _both(x, flow, padding)
    assert ours.shape == (batch, *x_shape[1:]) and ours.is_contiguous()
    _assert_close(ours, expected, FORWARD_TOL[torch.float32])


@pytest.mark.parametrize("padding", PADDINGS)
def test_matches_grid_sample_align_corners(padding: str) -> None:
    gen = _gen(2)
    x = torch.randn(2, 3, 5, 7, generator=gen)
    flow = torch.randn(2, 2, 5, 7, generator=gen) * 3
    pos_x = flow[:, 0] + torch.arange(7.0)  # [B, H, W]
    pos_y = flow[:, 1] + torch.arange(5.0)[:, None]  # [B, H, W]
    grid = torch.stack([2 * pos_x / 6 - 1, 2 * pos_y / 4 - 1], dim=-1)  # [B, H, W, 2] in [-1, 1]
    expected = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=True)
    # grid_sample un-normalises (2p/(W-1) - 1 → p) in fp32, which moves positions by ~1e-6 px: 1e-5 covers it.
    torch.testing.assert_close(warp(x, flow, padding, backend="triton"), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", PADDINGS)
def test_strided_inputs_match_the_reference(padding: str) -> None:
    gen = _gen(3)
    wide = torch.randn(2, 6, 5, 7, generator=gen)
    flow = torch.randn(2, 2, 5, 7, generator=gen) * 2
    sliced = wide[:, 1:4]  # channel slice: [2, 3, 5, 7] with the strides of [2, 6, 5, 7]
    transposed = wide[:, :3].transpose(2, 3).contiguous().transpose(2, 3)  # column-major planes
    channels_last = wide[:, :3].contiguous(memory_format=torch.channels_last)
    strided_flow = torch.randn(2, 2, 7, 5, generator=gen).transpose(2, 3).copy_(flow)  # non-contiguous flow
    for x in (sliced, transposed, channels_last):
        assert not x.is_contiguous()
        for f in (flow, strided_flow):
            ours, expected = _both(x, f, padding)
            _assert_close(ours, expected, FORWARD_TOL[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("padding", PADDINGS)
def test_half_precision_computes_in_float32(padding: str, dtype: torch.dtype) -> None:
    # bf16 loads work in the interpreter; its fp32 → bf16 cast truncates, so the kernel rounds bf16 stores itself.
    gen = _gen(4)
    x = torch.randn(3, 3, 5, 7, generator=gen).to(dtype)
    flow = _nasty_flow(3, 5, 7, gen).to(dtype)
    ours, expected = _both(x, flow, padding)
    _assert_close(ours, expected, FORWARD_TOL[dtype])
    broadcast, expected = _both(x[:1], flow, padding)
    _assert_close(broadcast, expected, FORWARD_TOL[dtype])


@pytest.mark.parametrize("padding", PADDINGS)
def test_non_finite_and_huge_flows_match_the_reference_without_nan(padding: str) -> None:
    gen = _gen(5)
    x = torch.randn(2, 3, 5, 7, generator=gen)
    flow = _nasty_flow(2, 5, 7, gen)
    flow[1] = flow[1] * 1e6  # every position of the second flow lands far away (or on the edge, with border)
    ours, expected = _both(x, flow, padding)
    _assert_close(ours, expected, FORWARD_TOL[torch.float32])
    assert torch.equal(ours[0, :, 0, 0], torch.zeros(3))  # NaN gives 0 with either padding
    if padding == "zeros":
        assert torch.equal(ours[0, :, 1, 1], torch.zeros(3))  # +inf is outside the frame
    else:
        assert torch.equal(ours[0, :, 1, 1], x[0, :, 4, 1])  # +inf clamps to the bottom row, same column


# --- known answers --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("padding", PADDINGS)
def test_zero_flow_is_the_identity_bit_for_bit(padding: str, dtype: torch.dtype) -> None:
    x = torch.randn(2, 3, 5, 7, generator=_gen(6)).to(dtype)
    out = warp(x, torch.zeros(2, 2, 5, 7, dtype=dtype), padding, backend="triton")
    assert out.dtype == dtype
    assert torch.equal(out, x)


@pytest.mark.parametrize("padding", PADDINGS)
def test_integer_translation_is_a_shifted_copy_inside_the_frame(padding: str) -> None:
    x = torch.randn(2, 3, 5, 7, generator=_gen(7))
    flow = torch.tensor([2.0, -1.0]).view(1, 2, 1, 1).expand(2, 2, 5, 7)  # sample 2 px right, 1 px up
    out = warp(x, flow, padding, backend="triton")
    assert torch.equal(out[..., 1:, :5], x[..., :4, 2:])


# --- gradients ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", PADDINGS)
def test_gradcheck_full_jacobian(padding: str) -> None:
    gen = _gen(8)
    x = torch.randn(1, 2, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    flow = _flow_off_the_grid(1, 2, 3, gen).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, f: warp(a, f, padding, backend="triton"), (x, flow), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("x_batch", [1, 2])
@pytest.mark.parametrize("padding", PADDINGS)
def test_gradcheck_random_projections_with_broadcast_source(padding: str, x_batch: int) -> None:
    # The full Jacobian costs one interpreted launch per entry; fast mode checks random projections of it instead.
    gen = _gen(9)
    x = torch.randn(x_batch, 3, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    flow = _flow_off_the_grid(2, 4, 5, gen).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, f: warp(a, f, padding, backend="triton"), (x, flow), eps=1e-6, atol=1e-7, fast_mode=True
    )


@pytest.mark.parametrize("name", ["b3", "broadcast", "two-channel-tiles"])
@pytest.mark.parametrize("padding", PADDINGS)
def test_float32_gradients_match_reference_autograd(padding: str, name: str) -> None:
    x_shape, batch = SHAPES[name]
    gen = _gen(10)
    x = torch.randn(x_shape, generator=gen)
    flow = _nasty_flow(batch, *x_shape[2:], gen) if x_shape[2] >= 5 else torch.randn(batch, 2, *x_shape[2:], generator=gen) * 2
    upstream = torch.randn(batch, *x_shape[1:], generator=gen)
    ours = _grads("triton", x, flow, upstream, padding)
    expected = _grads("reference", x, flow, upstream, padding)
    for a, b in zip(ours, expected):
        _assert_close(a, b, GRAD_TOL[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_gradients_match_reference_autograd(dtype: torch.dtype) -> None:
    gen = _gen(11)
    x = torch.randn(1, 3, 5, 7, generator=gen).to(dtype)
    flow = _nasty_flow(2, 5, 7, gen).to(dtype)
    upstream = torch.randn(2, 3, 5, 7, generator=gen).to(dtype)
    for padding in PADDINGS:
        ours = _grads("triton", x, flow, upstream, padding)
        expected = _grads("reference", x, flow, upstream, padding)
        for a, b in zip(ours, expected):
            _assert_close(a, b, GRAD_TOL[dtype])


@pytest.mark.parametrize("padding", PADDINGS)
def test_gradient_of_one_input_with_a_broadcast_upstream(padding: str) -> None:
    # out.sum() hands backward a stride-0 grad_out; only the input that asks for a gradient gets one.
    gen = _gen(12)
    x = torch.randn(2, 3, 5, 7, generator=gen).to(memory_format=torch.channels_last)
    flow = torch.randn(2, 2, 5, 7, generator=gen) * 2
    for wants_x in (True, False):
        a = x.clone().requires_grad_(wants_x)
        f = flow.clone().requires_grad_(not wants_x)
        target = a if wants_x else f
        (ours,) = torch.autograd.grad(warp(a, f, padding, backend="triton").sum(), target)
        (expected,) = torch.autograd.grad(warp(a, f, padding, backend="reference").sum(), target)
        _assert_close(ours, expected, GRAD_TOL[torch.float32])
