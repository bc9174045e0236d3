"""Examples and properties of backward bilinear warping (``motionforge.kernels.warp``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from motionforge.kernels import splat, warp

PADDINGS = ("zeros", "border")


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test with automatic backend selection, whatever the caller's environment says."""
    monkeypatch.delenv("MOTIONFORGE_KERNELS", raising=False)


def _gen(seed: int = 0) -> torch.Generator:
    """Return a seeded CPU generator so every example is reproducible."""
    return torch.Generator().manual_seed(seed)


def _grid_sample_warp(x: torch.Tensor, flow: torch.Tensor, padding: str) -> torch.Tensor:
    """Warp with ``grid_sample(align_corners=True)`` after converting pixel positions to [-1, 1]."""
    _, _, h, w = flow.shape
    pos_x = flow[:, 0] + torch.arange(w, dtype=flow.dtype)  # [B, H, W]
    pos_y = flow[:, 1] + torch.arange(h, dtype=flow.dtype)[:, None]  # [B, H, W]
    grid = torch.stack([2 * pos_x / (w - 1) - 1, 2 * pos_y / (h - 1) - 1], dim=-1)  # [B, H, W, 2]
    return F.grid_sample(x.expand(flow.shape[0], -1, -1, -1), grid, mode="bilinear", padding_mode=padding, align_corners=True)


def _constant_flow(batch: int, h: int, w: int, fx: float, fy: float) -> torch.Tensor:
    """Return a flow [B, 2, H, W] that moves every sample position by (fx, fy)."""
    return torch.tensor([fx, fy]).view(1, 2, 1, 1).expand(batch, 2, h, w).contiguous()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("padding", PADDINGS)
def test_zero_flow_is_the_identity_bit_for_bit(padding: str, dtype: torch.dtype) -> None:
    x = torch.randn(2, 3, 7, 9, generator=_gen()).to(dtype)
    out = warp(x, torch.zeros(2, 2, 7, 9, dtype=dtype), padding)
    assert out.dtype == dtype
    assert torch.equal(out, x)


@pytest.mark.parametrize(("h", "w"), [(1, 6), (5, 1), (1, 1)])
def test_zero_flow_is_the_identity_for_a_single_row_or_column(h: int, w: int) -> None:
    x = torch.randn(2, 3, h, w, generator=_gen(1))
    for padding in PADDINGS:
        assert torch.equal(warp(x, torch.zeros(2, 2, h, w), padding), x)


def test_single_row_samples_along_the_row_and_pads_across_it() -> None:
    x = torch.arange(5.0).view(1, 1, 1, 5)
    assert torch.equal(warp(x, _constant_flow(1, 1, 5, 0.5, 0.0)), torch.tensor([[[[0.5, 1.5, 2.5, 3.5, 2.0]]]]))
    assert torch.equal(warp(x, _constant_flow(1, 1, 5, 0.0, 0.25)), 0.75 * x)
    assert torch.equal(warp(x, _constant_flow(1, 1, 5, 0.0, 0.25), "border"), x)


@pytest.mark.parametrize("padding", PADDINGS)
def test_translation_by_three_reads_pixel_plus_three(padding: str) -> None:
    x = torch.randn(2, 3, 5, 8, generator=_gen(2))
    out = warp(x, _constant_flow(2, 5, 8, 3.0, 0.0), padding)
    assert torch.equal(out[..., :5], x[..., 3:])
    edge = x[..., 7:8].expand(-1, -1, -1, 3) if padding == "border" else torch.zeros_like(x[..., 5:])
    assert torch.equal(out[..., 5:], edge)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding", PADDINGS)
def test_matches_grid_sample_align_corners_on_flows_leaving_the_frame(padding: str, dtype: torch.dtype) -> None:
    gen = _gen(3)
    x = torch.randn(3, 4, 9, 11, generator=gen, dtype=dtype)
    flow = torch.randn(3, 2, 9, 11, generator=gen, dtype=dtype) * 6  # many positions leave the frame
    expected = _grid_sample_warp(x, flow, padding)
    torch.testing.assert_close(warp(x, flow, padding), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", PADDINGS)
def test_gradients_match_grid_sample(padding: str) -> None:
    gen = _gen(4)
    x = torch.randn(2, 3, 6, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    flow = (torch.randn(2, 2, 6, 7, generator=gen, dtype=torch.float64) * 3).requires_grad_(True)
    upstream = torch.randn(2, 3, 6, 7, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad((warp(x, flow, padding) * upstream).sum(), (x, flow))
    theirs = torch.autograd.grad((_grid_sample_warp(x, flow, padding) * upstream).sum(), (x, flow))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)


def test_gradient_with_respect_to_x_is_a_splat_of_the_upstream_gradient() -> None:
    gen = _gen(5)
    x = torch.randn(2, 3, 6, 7, generator=gen, requires_grad=True)
    flow = torch.randn(2, 2, 6, 7, generator=gen) * 2
    upstream = torch.randn(2, 3, 6, 7, generator=gen)
    (grad_x,) = torch.autograd.grad((warp(x, flow) * upstream).sum(), x)
    torch.testing.assert_close(grad_x, splat(upstream, flow, "sum"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", PADDINGS)
def test_non_finite_and_huge_positions_give_no_nan(padding: str) -> None:
    gen = _gen(6)
    x = torch.randn(1, 2, 5, 6, generator=gen)
    flow = torch.randn(1, 2, 5, 6, generator=gen)
    flow[0, 0, 0, 0] = float("nan")
    flow[0, 1, 1, 1] = float("inf")
    flow[0, 0, 2, 2] = float("-inf")
    flow[0, 1, 3, 3] = 1e12
    flow[0, 0, 4, 4] = -1e30
    out = warp(x, flow, padding)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0, :, 0, 0], torch.zeros(2))
    if padding == "zeros":
        for py, px in [(1, 1), (2, 2), (3, 3), (4, 4)]:
            assert torch.equal(out[0, :, py, px], torch.zeros(2))
    else:
        finite = flow.clone()
        finite[0, 0, 0, 0] = 0.0
        expected = warp(x, finite.clamp(-100, 100), padding)
        torch.testing.assert_close(out[..., 1:, :], expected[..., 1:, :])


@pytest.mark.parametrize("padding", PADDINGS)
def test_batch_one_source_broadcasts_to_every_flow(padding: str) -> None:
    gen = _gen(7)
    x = torch.randn(1, 3, 6, 7, generator=gen)
    flow = torch.randn(4, 2, 6, 7, generator=gen) * 2
    assert torch.equal(warp(x, flow, padding), warp(x.repeat(4, 1, 1, 1), flow, padding))


@pytest.mark.parametrize("padding", PADDINGS)
def test_channels_last_and_non_contiguous_inputs_match_contiguous(padding: str) -> None:
    gen = _gen(8)
    x = torch.randn(2, 3, 6, 7, generator=gen)
    flow = torch.randn(2, 2, 6, 7, generator=gen) * 2
    expected = warp(x, flow, padding)
    channels_last = warp(x.to(memory_format=torch.channels_last), flow.to(memory_format=torch.channels_last), padding)
    transposed_x = x.transpose(2, 3).contiguous().transpose(2, 3)
    sliced_flow = torch.randn(2, 4, 6, 7, generator=gen)[:, 1:3].copy_(flow)
    assert not transposed_x.is_contiguous() and not sliced_flow.is_contiguous()
    torch.testing.assert_close(channels_last, expected)
    torch.testing.assert_close(warp(transposed_x, sliced_flow, padding), expected)


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("padding", PADDINGS)
def test_half_precision_computes_in_float32(padding: str, dtype: torch.dtype, rtol: float) -> None:
    gen = _gen(9)
    x = torch.randn(2, 3, 8, 8, generator=gen).to(dtype)
    flow = (torch.randn(2, 2, 8, 8, generator=gen) * 2).to(dtype)
    out = warp(x, flow, padding)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), warp(x.float(), flow.float(), padding), rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("padding", PADDINGS)
def test_gradcheck(padding: str) -> None:
    gen = _gen(10)
    x = torch.randn(2, 2, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    flow = (torch.rand(2, 2, 5, 6, generator=gen, dtype=torch.float64) * 6 - 3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, f: warp(a, f, padding), (x, flow), eps=1e-6, atol=1e-5)


def test_gradcheck_broadcast_source() -> None:
    gen = _gen(11)
    x = torch.randn(1, 2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    flow = (torch.rand(3, 2, 4, 5, generator=gen, dtype=torch.float64) * 3 - 1.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, f: warp(a, f), (x, flow), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    ("x_shape", "flow_shape", "match"),
    [
        ((2, 3, 4, 5), (2, 4, 5), "4-D"),
        ((2, 3, 4, 5), (2, 1, 4, 5), "2 channels"),
        ((2, 3, 5, 5), (2, 2, 4, 5), "same height and width"),
        ((2, 3, 4, 5), (4, 2, 4, 5), "batch 1 or the flow's batch 4"),
    ],
)
def test_bad_shapes_raise_value_error_with_the_shapes(x_shape: tuple, flow_shape: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        warp(torch.zeros(x_shape), torch.zeros(flow_shape))
    assert str(list(x_shape)) in str(info.value) and str(list(flow_shape)) in str(info.value)


def test_unknown_padding_names_the_choices() -> None:
    with pytest.raises(ValueError, match="'zeros', 'border'"):
        warp(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2), "reflection")


def test_integer_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="floating-point"):
        warp(torch.zeros(1, 1, 2, 2, dtype=torch.int64), torch.zeros(1, 2, 2, 2))


def test_a_nan_in_x_reaches_only_the_pixels_that_sample_it() -> None:
    x = torch.ones(1, 1, 4, 4)
    x[0, 0, 0, 0] = float("nan")
    flow = torch.zeros(1, 2, 4, 4)
    flow[0, :, 3, 3] = 10.0  # this pixel samples outside the frame: zeros padding gives 0, not the NaN of pixel 0
    out = warp(x, flow, "zeros")
    assert torch.isnan(out[0, 0, 0, 0]) and int(torch.isnan(out).sum()) == 1 and out[0, 0, 3, 3] == 0
