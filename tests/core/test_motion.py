"""Fusing hints into a plan: the Gaussian densifier (eqs. 6-7), regions, resizing, motion strength."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from motionforge import MotionContext, MotionHint
from motionforge.core.motion import (
    DensifySettings,
    SparsePoints,
    densify_gaussian,
    fuse,
    motion_strength,
    resize_flow,
    sparse_points,
)


def direct_eqs_6_7(positions, flows, height, width, sigma, threshold, normalize):
    """Eqs. 6-7 evaluated pixel by pixel in float64: [F, 2, H, W]."""
    num_frames = flows.shape[1]
    out = np.zeros((num_frames, 2, height, width))
    for y in range(height):
        for x in range(width):
            weights = [math.exp(-((x - px) ** 2 + (y - py) ** 2) / sigma**2) for px, py in positions]
            total = sum(weights)
            if total < threshold:
                continue
            value = sum(w * flows[i] for i, w in enumerate(weights))  # [F, 2]
            out[:, :, y, x] = value / max(1.0, total) if normalize else value
    return out


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("sigma, threshold", [(3.0, 0.05), (8.0, 0.0), (1.5, 0.3)])
def test_densifier_matches_a_direct_evaluation(normalize, sigma, threshold) -> None:
    rng = np.random.default_rng(0)
    positions = np.array([[2.0, 3.0], [9.0, 1.0], [5.0, 7.0]])
    flows = rng.normal(size=(3, 4, 2)) * 5  # [N, F, 2]
    points = SparsePoints(torch.tensor(positions), torch.tensor(flows), torch.ones(3, 4, dtype=torch.float64))
    dense = densify_gaussian(points, 9, 12, DensifySettings(sigma, threshold, normalize))
    expected = direct_eqs_6_7(positions, flows, 9, 12, sigma, threshold, normalize)
    np.testing.assert_allclose(dense.numpy(), expected, atol=1e-12)


def test_default_sigma_is_170_at_512() -> None:
    assert DensifySettings().sigma_for(512, 384) == pytest.approx(170.0)
    assert DensifySettings().sigma_for(256, 128) == pytest.approx(85.0)


def test_a_lone_track_moves_its_start_pixel_exactly() -> None:
    points = SparsePoints(torch.tensor([[20.0, 10.0]]), torch.tensor([[[0.0, 0.0], [7.0, -3.0]]]), torch.ones(1, 2))
    dense = densify_gaussian(points, 32, 48, DensifySettings())
    assert dense[1, :, 10, 20].tolist() == pytest.approx([7.0, -3.0])
    assert float(dense[0].abs().max()) == 0.0


def _context(frames=3, height=8, width=10) -> MotionContext:
    return MotionContext(height, width, frames, torch.zeros(3, height, width), (width, height))


def _sparse_hint(x, y, dx, frames=3, height=8, width=10, weight=1.0) -> MotionHint:
    flow = torch.zeros(frames, 2, height, width)
    flow[:, 0, y, x] = torch.linspace(0, dx, frames)
    mask = torch.zeros(1, 1, height, width)
    mask[0, 0, y, x] = 1
    return MotionHint(flow=flow, mask=mask, weight=weight)


def test_sparse_points_read_the_masked_pixels() -> None:
    points = sparse_points(_sparse_hint(4, 2, 6.0, weight=0.5))
    assert points.positions.tolist() == [[4.0, 2.0]]
    assert points.flow[0, :, 0].tolist() == [0.0, 1.5, 3.0]
    assert points.weight.tolist() == [[1.0, 1.0, 1.0]]


def test_fuse_adds_dense_hints_and_densifies_sparse_ones_together() -> None:
    context = _context()
    dense = MotionHint(flow=torch.ones(3, 2, 8, 10), weight=2.0)
    plan = fuse({"a": _sparse_hint(1, 1, 4.0), "b": _sparse_hint(8, 6, -4.0), "c": dense}, context, DensifySettings(sigma=100.0))
    assert plan.sources == ["a", "b", "c"]
    both = densify_gaussian(SparsePoints.cat([sparse_points(_sparse_hint(1, 1, 4.0)), sparse_points(_sparse_hint(8, 6, -4.0))]), 8, 10, DensifySettings(sigma=100.0))
    torch.testing.assert_close(plan.flow, both + 2.0)


def test_region_removes_motion_outside_it() -> None:
    region = torch.zeros(1, 1, 8, 10)
    region[..., :, :5] = 1
    hint = MotionHint(flow=torch.ones(3, 2, 8, 10), region=region)
    plan = fuse({"h": hint}, _context(), DensifySettings())
    assert float(plan.flow[..., :5].min()) == 1.0 and float(plan.flow[..., 5:].abs().max()) == 0.0
    assert plan.region is not None


def test_no_hints_give_a_still_plan() -> None:
    plan = fuse({}, _context(), DensifySettings())
    assert plan.flow.shape == (3, 2, 8, 10) and float(plan.flow.abs().max()) == 0.0 and plan.tracks is None


def test_resizing_a_flow_rescales_its_displacements() -> None:
    flow = torch.zeros(2, 2, 16, 32)
    flow[:, 0], flow[:, 1] = 3.0, -2.0
    resized = resize_flow(flow, 32, 16)
    assert resized.shape == (2, 2, 32, 16)
    assert torch.allclose(resized[:, 0], torch.tensor(1.5)) and torch.allclose(resized[:, 1], torch.tensor(-4.0))


def test_motion_strength_of_a_steady_drift_is_its_speed() -> None:
    flow = torch.zeros(5, 2, 4, 4)
    flow[:, 0] = 3.0 * torch.arange(5.0)[:, None, None]
    flow[:, 1] = 4.0 * torch.arange(5.0)[:, None, None]
    assert motion_strength(flow) == pytest.approx(5.0)
