"""Examples and properties of forward splatting (``motionforge.kernels.splat``)."""

from __future__ import annotations

import pytest
import torch

from motionforge.kernels import splat

MODES = ("sum", "avg", "linear", "softmax")


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test with automatic backend selection, whatever the caller's environment says."""
    monkeypatch.delenv("MOTIONFORGE_KERNELS", raising=False)


def _gen(seed: int = 0) -> torch.Generator:
    """Return a seeded CPU generator so every example is reproducible."""
    return torch.Generator().manual_seed(seed)


def _metric_for(mode: str, batch: int, h: int, w: int, gen: torch.Generator, dtype=torch.float32) -> torch.Tensor | None:
    """Return a positive metric [B, 1, H, W] for linear/softmax and None for sum/avg."""
    if mode in ("sum", "avg"):
        return None
    return 0.5 + torch.rand(batch, 1, h, w, generator=gen, dtype=dtype)


def _flow_inside(batch: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Return a random flow [B, 2, H, W] whose targets all lie inside the frame."""
    target_x = torch.rand(batch, h, w, generator=gen) * (w - 1)  # [B, H, W]
    target_y = torch.rand(batch, h, w, generator=gen) * (h - 1)  # [B, H, W]
    return torch.stack([target_x - torch.arange(w), target_y - torch.arange(h)[:, None]], dim=1)


def _constant_flow(batch: int, h: int, w: int, fx: float, fy: float, dtype=torch.float32) -> torch.Tensor:
    """Return a flow [B, 2, H, W] that moves every pixel by (fx, fy)."""
    return torch.tensor([fx, fy], dtype=dtype).view(1, 2, 1, 1).expand(batch, 2, h, w).contiguous()


def test_sum_conserves_total_when_nothing_leaves_the_frame() -> None:
    gen = _gen()
    x = torch.randn(2, 3, 8, 9, generator=gen)
    out = splat(x, _flow_inside(2, 8, 9, gen), "sum")
    torch.testing.assert_close(out.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=1e-5, atol=1e-5)


def test_integer_translation_sum_is_exact() -> None:
    x = torch.randn(2, 3, 6, 7, generator=_gen())
    out = splat(x, _constant_flow(2, 6, 7, 2.0, 1.0), "sum")
    expected = torch.zeros_like(x)
    expected[:, :, 1:, 2:] = x[:, :, :-1, :-2]
    assert torch.equal(out, expected)


@pytest.mark.parametrize("mode", ["avg", "linear", "softmax"])
def test_integer_translation_normalised_modes(mode: str) -> None:
    gen = _gen(1)
    x = torch.randn(2, 3, 6, 7, generator=gen)
    metric = _metric_for(mode, 2, 6, 7, gen)
    out = splat(x, _constant_flow(2, 6, 7, -1.0, 2.0), mode, metric)
    expected = torch.zeros_like(x)
    expected[:, :, 2:, :-1] = x[:, :, :-2, 1:]
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


def test_avg_of_a_constant_is_that_constant_wherever_something_landed() -> None:
    gen = _gen(2)
    flow = torch.randn(2, 2, 8, 8, generator=gen) * 2.5
    x = torch.full((1, 4, 8, 8), 0.75)
    out = splat(x, flow, "avg")  # [B, 4, H, W]
    coverage = splat(torch.ones(1, 1, 8, 8), flow, "sum").expand_as(out)  # [B, 4, H, W]
    landed = coverage > 1e-3
    assert landed.float().mean() > 0.5
    torch.testing.assert_close(out[landed], torch.full_like(out[landed], 0.75), rtol=1e-4, atol=0)
    assert torch.equal(out[coverage == 0], torch.zeros_like(out[coverage == 0]))


def test_half_pixel_shift_splits_a_pixel_between_neighbours() -> None:
    x = torch.zeros(1, 1, 3, 4)
    x[0, 0, 1, 1] = 1.0
    out = splat(x, _constant_flow(1, 3, 4, 0.5, 0.0), "sum")
    expected = torch.zeros_like(x)
    expected[0, 0, 1, 1:3] = 0.5
    assert torch.equal(out, expected)


def test_corners_outside_the_frame_are_dropped_one_by_one() -> None:
    x = torch.ones(1, 1, 2, 2)
    out = splat(x, _constant_flow(1, 2, 2, 0.25, -0.5), "sum")
    # Every target is (px + 0.25, py - 0.5): shares landing on row -1 or column 2 are lost, the rest kept.
    expected = torch.tensor([[0.75, 1.0], [0.375, 0.5]])
    torch.testing.assert_close(out[0, 0], expected)


@pytest.mark.parametrize("mode", MODES)
def test_non_finite_and_huge_flows_drop_the_source(mode: str) -> None:
    gen = _gen(3)
    x = torch.randn(2, 3, 6, 7, generator=gen)
    flow = torch.randn(2, 2, 6, 7, generator=gen)
    metric = _metric_for(mode, 2, 6, 7, gen)
    bad = torch.zeros(2, 6, 7, dtype=torch.bool)
    bad[0, 1, 2] = bad[0, 3, 3] = bad[1, 0, 0] = bad[1, 5, 6] = bad[1, 2, 4] = True
    broken = flow.clone()
    broken[0, 0, 1, 2] = float("nan")
    broken[0, 1, 3, 3] = float("inf")
    broken[1, 0, 0, 0] = float("-inf")
    broken[1, 1, 5, 6] = 1e12
    broken[1, 0, 2, 4] = -1e30
    out = splat(x, broken, mode, metric)
    kept = (~bad)[:, None].float()  # [B, 1, H, W]
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, _splat_kept_sources(x, flow, mode, metric, kept), rtol=1e-5, atol=1e-5)


def _splat_kept_sources(x: torch.Tensor, flow: torch.Tensor, mode: str, metric: torch.Tensor | None, kept: torch.Tensor) -> torch.Tensor:
    """Return the splat of x in ``mode`` built from sum-splats, with only the ``kept`` [B, 1, H, W] sources taking part."""
    if mode == "sum":
        return splat(x * kept, flow, "sum")
    weight = {"avg": lambda: torch.ones_like(kept), "linear": lambda: metric, "softmax": lambda: metric.exp()}[mode]()
    return splat(x * weight * kept, flow, "sum") / (splat(weight * kept, flow, "sum") + 1e-7)


def test_gradient_stays_finite_when_some_flows_are_nan() -> None:
    gen = _gen(4)
    x = torch.randn(1, 2, 5, 6, generator=gen, requires_grad=True)
    flow = torch.randn(1, 2, 5, 6, generator=gen)
    flow[0, :, 2, 3] = float("nan")
    flow.requires_grad_(True)
    splat(x, flow, "avg").square().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[0, :, 2, 3].abs().sum() == 0
    assert torch.isfinite(flow.grad).all()


@pytest.mark.parametrize("mode", MODES)
def test_batch_one_source_broadcasts_to_every_flow(mode: str) -> None:
    gen = _gen(5)
    x = torch.randn(1, 3, 6, 7, generator=gen)
    flow = torch.randn(4, 2, 6, 7, generator=gen) * 2
    metric = _metric_for(mode, 4, 6, 7, gen)
    torch.testing.assert_close(splat(x, flow, mode, metric), splat(x.repeat(4, 1, 1, 1), flow, mode, metric))


def test_batch_one_metric_broadcasts_to_every_flow() -> None:
    gen = _gen(6)
    x = torch.randn(3, 2, 5, 6, generator=gen)
    flow = torch.randn(3, 2, 5, 6, generator=gen)
    metric = torch.randn(1, 1, 5, 6, generator=gen)
    torch.testing.assert_close(splat(x, flow, "softmax", metric), splat(x, flow, "softmax", metric.repeat(3, 1, 1, 1)))


@pytest.mark.parametrize("mode", MODES)
def test_channels_last_and_non_contiguous_inputs_match_contiguous(mode: str) -> None:
    gen = _gen(7)
    x = torch.randn(2, 3, 6, 7, generator=gen)
    flow = torch.randn(2, 2, 6, 7, generator=gen) * 2
    metric = _metric_for(mode, 2, 6, 7, gen)
    expected = splat(x, flow, mode, metric)
    channels_last = splat(
        x.to(memory_format=torch.channels_last),
        flow.to(memory_format=torch.channels_last),
        mode,
        None if metric is None else metric.to(memory_format=torch.channels_last),
    )
    wide_x = torch.randn(2, 6, 6, 14, generator=gen)
    wide_x[:, ::2, :, ::2] = x
    transposed_flow = flow.transpose(2, 3).contiguous().transpose(2, 3)
    strided = splat(wide_x[:, ::2, :, ::2], transposed_flow, mode, metric)
    assert not wide_x[:, ::2, :, ::2].is_contiguous() and not transposed_flow.is_contiguous()
    torch.testing.assert_close(channels_last, expected)
    torch.testing.assert_close(strided, expected)


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("mode", MODES)
def test_half_precision_accumulates_in_float32(mode: str, dtype: torch.dtype, rtol: float) -> None:
    gen = _gen(8)
    x = torch.randn(2, 3, 8, 8, generator=gen).to(dtype)
    flow = (torch.randn(2, 2, 8, 8, generator=gen) * 2).to(dtype)
    metric = _metric_for(mode, 2, 8, 8, gen)
    metric = None if metric is None else metric.to(dtype)
    out = splat(x, flow, mode, metric)
    expected = splat(x.float(), flow.float(), mode, None if metric is None else metric.float())
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected, rtol=rtol, atol=rtol * 1e-2)


def test_softmax_clips_the_metric_so_large_values_do_not_overflow() -> None:
    gen = _gen(9)
    x = torch.randn(1, 2, 5, 6, generator=gen)
    flow = torch.randn(1, 2, 5, 6, generator=gen)
    metric = torch.full((1, 1, 5, 6), 1e4)
    out = splat(x, flow, "softmax", metric)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, splat(x, flow, "softmax", torch.full_like(metric, 20.0)))


def test_splat_is_deterministic_on_cpu() -> None:
    gen = _gen(10)
    x = torch.randn(2, 4, 9, 9, generator=gen)
    flow = torch.randn(2, 2, 9, 9, generator=gen) * 0.3  # many sources land on the same pixels
    assert torch.equal(splat(x, flow, "avg"), splat(x, flow, "avg"))


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_every_mode(mode: str) -> None:
    gen = _gen(11)
    x = torch.randn(2, 2, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    flow = (torch.rand(2, 2, 5, 6, generator=gen, dtype=torch.float64) * 4 - 2).requires_grad_(True)
    inputs = [x, flow]
    metric = _metric_for(mode, 2, 5, 6, gen, dtype=torch.float64)
    if metric is not None:
        inputs.append(metric.requires_grad_(True))

    def run(*args: torch.Tensor) -> torch.Tensor:
        """Splat with the mode under test."""
        return splat(args[0], args[1], mode, args[2] if len(args) > 2 else None)

    assert torch.autograd.gradcheck(run, tuple(inputs), eps=1e-6, atol=1e-5)


def test_gradcheck_broadcast_source() -> None:
    gen = _gen(12)
    x = torch.randn(1, 2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    flow = (torch.rand(3, 2, 4, 5, generator=gen, dtype=torch.float64) * 3 - 1.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, f: splat(a, f, "avg"), (x, flow), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    ("x_shape", "flow_shape", "match"),
    [
        ((2, 3, 4), (2, 2, 4, 5), "4-D"),
        ((2, 3, 4, 5), (2, 3, 4, 5), "2 channels"),
        ((2, 3, 4, 6), (2, 2, 4, 5), "same height and width"),
        ((3, 3, 4, 5), (2, 2, 4, 5), "batch 1 or the flow's batch 2"),
    ],
)
def test_bad_shapes_raise_value_error_with_the_shapes(x_shape: tuple, flow_shape: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        splat(torch.zeros(x_shape), torch.zeros(flow_shape))
    assert str(list(x_shape)) in str(info.value) and str(list(flow_shape)) in str(info.value)


def test_unknown_mode_names_the_four_modes() -> None:
    with pytest.raises(ValueError, match="'sum', 'avg', 'linear', 'softmax'"):
        splat(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2), "soft")


@pytest.mark.parametrize("mode", ["linear", "softmax"])
def test_missing_metric_raises(mode: str) -> None:
    with pytest.raises(ValueError, match="needs a metric"):
        splat(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2), mode)


@pytest.mark.parametrize("mode", ["sum", "avg"])
def test_metric_given_to_a_mode_without_one_raises(mode: str) -> None:
    with pytest.raises(ValueError, match="takes no metric"):
        splat(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2), mode, torch.zeros(1, 1, 2, 2))


def test_metric_of_the_wrong_shape_raises() -> None:
    with pytest.raises(ValueError, match=r"metric \[2, 2, 2, 2\]"):
        splat(torch.zeros(2, 1, 2, 2), torch.zeros(2, 2, 2, 2), "linear", torch.zeros(2, 2, 2, 2))
