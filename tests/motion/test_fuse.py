"""Fusing hints into a plan: the Gaussian densifier (eqs. 6-7), regions, resizing, motion strength."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from motionforge import ConfigError, MotionContext, MotionHint
from motionforge.motion.fuse import (
    DensifySettings,
    SparsePoints,
    densify_gaussian,
    densify_partition,
    fuse,
    merge_points,
    motion_strength,
    resize_flow,
    sparse_points,
)


def direct_eqs_6_7(positions, flows, height, width, sigma, threshold, normalize):
    """Eqs. 6-7 evaluated pixel by pixel in float64, the cut-off at R faded in from R/2 (smoothstep): [F, 2, H, W]."""
    num_frames = flows.shape[1]
    out = np.zeros((num_frames, 2, height, width))
    for y in range(height):
        for x in range(width):
            weights = [math.exp(-((x - px) ** 2 + (y - py) ** 2) / sigma**2) for px, py in positions]
            total = sum(weights)
            ramp = min(max((total - threshold / 2) / (threshold / 2), 0.0), 1.0) if threshold > 0 else 1.0
            value = sum(w * flows[i] for i, w in enumerate(weights))  # [F, 2]
            out[:, :, y, x] = (value / max(1.0, total) if normalize else value) * ramp * ramp * (3 - 2 * ramp)
    return out


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("sigma, threshold", [(3.0, 0.05), (8.0, 0.0), (1.5, 0.3)])
def test_densifier_matches_a_direct_evaluation(normalize, sigma, threshold) -> None:
    rng = np.random.default_rng(0)
    positions = np.array([[2.0, 3.0], [9.0, 1.0], [5.0, 7.0]])
    flows = rng.normal(size=(3, 4, 2)) * 5  # [N, F, 2]
    points = SparsePoints(
        torch.tensor(positions),
        torch.tensor(flows),
        torch.ones(3, 4, dtype=torch.float64),
    )
    dense = densify_gaussian(points, 9, 12, DensifySettings(sigma, threshold, normalize))
    expected = direct_eqs_6_7(positions, flows, 9, 12, sigma, threshold, normalize)
    np.testing.assert_allclose(dense.numpy(), expected, atol=1e-12)


def test_default_sigma_is_170_at_512() -> None:
    assert DensifySettings().sigma_for(512, 384) == pytest.approx(170.0)
    assert DensifySettings().sigma_for(256, 128) == pytest.approx(85.0)


def test_a_lone_track_moves_its_start_pixel_exactly() -> None:
    points = SparsePoints(
        torch.tensor([[20.0, 10.0]]),
        torch.tensor([[[0.0, 0.0], [7.0, -3.0]]]),
        torch.ones(1, 2),
    )
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
    assert points.flow[0, :, 0].tolist() == [0.0, 3.0, 6.0]
    assert points.weight.tolist() == [[1.0, 1.0, 1.0]]


def test_fuse_adds_dense_hints_and_densifies_sparse_ones_together() -> None:
    context = _context()
    dense = MotionHint(flow=torch.ones(3, 2, 8, 10), weight=2.0)
    plan = fuse(
        {"a": _sparse_hint(1, 1, 4.0), "b": _sparse_hint(8, 6, -4.0), "c": dense},
        context,
        DensifySettings(sigma=100.0),
    )
    assert plan.sources == ["a", "b", "c"]
    both = densify_gaussian(
        SparsePoints.cat(
            [
                sparse_points(_sparse_hint(1, 1, 4.0)),
                sparse_points(_sparse_hint(8, 6, -4.0)),
            ]
        ),
        8,
        10,
        DensifySettings(sigma=100.0),
    )
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


# ---- the fusion rules -------------------------------------------------------------------------

# A Gaussian much wider than the test frames: every sample reaches every pixel with weight ~1.
WIDE = DensifySettings(sigma=1e4)


def _box_region(x0, y0, x1, y1, height=8, width=10) -> torch.Tensor:
    region = torch.zeros(1, 1, height, width)
    region[..., y0:y1, x0:x1] = 1
    return region


def test_samples_of_two_hints_on_one_pixel_are_averaged_by_weight() -> None:
    plan = fuse(
        {
            "a": _sparse_hint(4, 4, 6.0, weight=1.0),
            "b": _sparse_hint(4, 4, -3.0, weight=2.0),
        },
        _context(),
        DensifySettings(sigma=0.5, threshold=0.5),
    )
    assert plan.flow[-1, 0, 4, 4].item() == pytest.approx((1 * 6.0 + 2 * -3.0) / 3)
    merged = merge_points(
        [
            (sparse_points(_sparse_hint(4, 4, 6.0)), 1.0),
            (sparse_points(_sparse_hint(4, 4, -3.0)), 0.0),
        ]
    )
    assert len(merged) == 1 and merged.flow[0, -1, 0].item() == 6.0  # weight 0 leaves a hint out


def test_a_brush_with_a_track_inside_keeps_everything_outside_exactly_still() -> None:
    region = _box_region(0, 0, 5, 8)
    plan = fuse(
        {"brush": MotionHint(region=region), "track": _sparse_hint(2, 3, 4.0)},
        _context(),
        DensifySettings(),
    )
    assert float(plan.flow[..., 5:].abs().max()) == 0.0
    assert plan.flow[-1, 0, 3, 2].item() == pytest.approx(4.0) and float(plan.flow[1:, 0, :, :5].abs().min()) > 0


def test_tracks_outside_the_brush_move_only_the_outside() -> None:
    region = _box_region(0, 0, 5, 8)
    hints = {
        "brush": MotionHint(region=region),
        "inside": _sparse_hint(2, 3, 4.0),
        "outside": _sparse_hint(8, 3, -2.0),
    }
    plan = fuse(hints, _context(), WIDE)
    assert torch.allclose(plan.flow[-1, 0, :, :5], torch.tensor(4.0))  # the inside moves with the inside track only
    assert torch.allclose(plan.flow[-1, 0, :, 5:], torch.tensor(-2.0))  # and the outside with the outside one
    assert plan.free is not None and float(plan.free.sum()) == 0.0


def test_a_brush_with_no_motion_inside_is_free_for_the_backbone() -> None:
    region = _box_region(0, 0, 5, 8)
    plan = fuse(
        {"brush": MotionHint(region=region), "outside": _sparse_hint(8, 3, -2.0)},
        _context(),
        DensifySettings(),
    )
    torch.testing.assert_close(plan.free, region)
    assert float(plan.flow[..., :5].abs().max()) == 0.0 and float(plan.flow[1:, 0, :, 5:].abs().min()) > 0
    dense = fuse(
        {
            "brush": MotionHint(region=region),
            "field": MotionHint(flow=torch.ones(3, 2, 8, 10)),
        },
        _context(),
        DensifySettings(),
    )
    assert float(dense.free.sum()) == 0.0  # a dense field gives motion everywhere


def test_dense_fields_are_restricted_to_the_region_but_a_camera_moves_everything() -> None:
    region = _box_region(0, 0, 5, 8)
    hints = {
        "brush": MotionHint(region=region),
        "field": MotionHint(flow=torch.full((3, 2, 8, 10), 2.0), weight=0.5),
        "camera": MotionHint(flow=torch.full((3, 2, 8, 10), 3.0), camera=True),
    }
    plan = fuse(hints, _context(), DensifySettings())
    assert torch.allclose(plan.flow[..., :5], torch.tensor(4.0)) and torch.allclose(plan.flow[..., 5:], torch.tensor(3.0))
    contributions = plan.stats["contributions"]
    assert contributions["camera"]["kind"] == "camera" and contributions["field"]["mean_displacement"] == pytest.approx(
        2**0.5, abs=1e-4
    )
    assert contributions["brush"] == {"kind": "region", "region_pixels": 40}


def test_a_face_region_takes_the_landmarks_and_the_rest_the_trajectories() -> None:
    """MOFA-Video's hybrid blend: face = landmark motion, elsewhere = trajectory motion."""
    height, width = 24, 32
    context = _context(frames=3, height=height, width=width)
    face = _box_region(2, 2, 12, 12, height, width)
    flow = torch.zeros(3, 2, height, width)
    mask = torch.zeros(1, 1, height, width)
    for x, y in [
        (4, 4),
        (9, 4),
        (4, 9),
        (9, 9),
    ]:  # four landmarks that all move up by 3
        flow[:, 1, y, x] = torch.tensor([0.0, -1.5, -3.0])
        mask[0, 0, y, x] = 1
    landmark = MotionHint(flow=flow, mask=mask, region=face)
    trajectory = _sparse_hint(25, 18, 5.0, frames=3, height=height, width=width)
    plan = fuse({"landmark": landmark, "trajectory": trajectory}, context, WIDE)
    inside, outside = plan.flow[-1][:, 2:12, 2:12], plan.flow[-1][:, 14:, 14:]
    assert torch.allclose(inside[0], torch.tensor(0.0)) and torch.allclose(inside[1], torch.tensor(-3.0))
    assert torch.allclose(outside[0], torch.tensor(5.0)) and torch.allclose(outside[1], torch.tensor(0.0))
    assert plan.stats["contributions"]["landmark"]["samples"] == 4


def test_the_partition_densifier_moves_a_region_rigidly_with_one_track_and_blends_two() -> None:
    one = SparsePoints(torch.tensor([[3.0, 4.0]]), torch.tensor([[[0.0, 0.0], [5.0, -2.0]]]), torch.ones(1, 2))
    flow = densify_partition(one, 8, 10, DensifySettings(sigma=2.0))  # far narrower than the frame, no threshold
    assert torch.allclose(flow[-1, 0], torch.tensor(5.0)) and torch.allclose(flow[-1, 1], torch.tensor(-2.0))
    two = SparsePoints(
        torch.tensor([[0.0, 0.0], [9.0, 7.0]]),
        torch.tensor([[[0.0, 0.0], [4.0, 0.0]], [[0.0, 0.0], [-4.0, 0.0]]]),
        torch.ones(2, 2),
    )
    blended = densify_partition(two, 8, 10, DensifySettings(sigma=0.3))  # a kernel so narrow it underflows far from both
    assert (
        torch.isfinite(blended).all()
        and float(blended[-1, 0, 0, 0]) == pytest.approx(4.0)
        and float(blended[-1, 0, 7, 9]) == pytest.approx(-4.0)
    )
    assert float(blended[-1, 0].abs().max()) <= 4.0


def test_each_part_of_a_brush_follows_its_own_tracks_and_the_faster_part_is_nearer() -> None:
    height, width = 24, 40
    region = _box_region(2, 2, 12, 22, height, width) + _box_region(26, 2, 36, 22, height, width)  # two strokes
    hints = {
        "brush": MotionHint(region=region),
        "left": _sparse_hint(6, 10, 3.0, height=height, width=width),
        "right": _sparse_hint(30, 10, -8.0, height=height, width=width),
    }
    plan = fuse(hints, _context(height=height, width=width), DensifySettings())
    assert [layer.name for layer in plan.layers] == ["background", "region 1", "region 2"]
    slow, fast = plan.layers[1], plan.layers[2]  # back to front: the faster right stroke is in front
    assert torch.allclose(slow.flow[-1, 0], torch.tensor(3.0)) and torch.allclose(fast.flow[-1, 0], torch.tensor(-8.0))
    assert torch.allclose(plan.flow[-1, 0, 2:22, 2:12], torch.tensor(3.0))  # each stroke moves as one, with its own track
    assert torch.allclose(plan.flow[-1, 0, 2:22, 26:36], torch.tensor(-8.0))
    assert float(plan.flow[..., 14:24].abs().max()) == 0.0  # between the strokes nothing moves
    assert float(plan.layers[0].flow.abs().max()) == 0.0 and plan.layers[0].alpha is None


def test_a_region_fades_its_motion_outside_its_edge_over_the_feather() -> None:
    """No jump in the plan's flow across a face region's edge larger than the fade allows (the face moves, the body too)."""
    height, width, feather = 32, 48, 4.0
    face = _box_region(8, 8, 24, 24, height, width)
    landmark = _sparse_hint(16, 16, 6.0, height=height, width=width)
    landmark.region = face
    trajectory = _sparse_hint(40, 16, -3.0, height=height, width=width)
    plan = fuse(
        {"landmark": landmark, "trajectory": trajectory},
        _context(height=height, width=width),
        DensifySettings(sigma=1e4, feather=feather),
    )
    last = plan.flow[-1, 0]  # [H, W] x-motion: 6 on the face, -3 elsewhere (a very wide Gaussian)
    assert torch.allclose(last[8:24, 8:24], torch.tensor(6.0)) and torch.allclose(last[:, 32:], torch.tensor(-3.0))
    jump = max(float((last[:, 1:] - last[:, :-1]).abs().max()), float((last[1:] - last[:-1]).abs().max()))
    assert jump <= (6.0 - -3.0) / feather + 1e-4  # the 9 px difference spread over the fade, never a step
    hard = fuse(
        {"landmark": landmark, "trajectory": trajectory}, _context(height=height, width=width), DensifySettings(sigma=1e4)
    )
    assert float((hard.flow[-1, 0, :, 1:] - hard.flow[-1, 0, :, :-1]).abs().max()) == pytest.approx(9.0)  # feather 0: a step
    face_layer = plan.layers[1]
    assert (
        float(face_layer.alpha[0, 0, 16, 24]) == pytest.approx(0.75) and float(face_layer.alpha[0, 0, 16, 27]) == 0.0
    )  # 1 and 4 px out


def test_a_plan_without_regions_is_one_layer_whose_flow_is_the_plan() -> None:
    plan = fuse({"track": _sparse_hint(4, 4, 6.0)}, _context(), DensifySettings())
    assert len(plan.layers) == 1 and plan.layers[0].field is plan.field and plan.layers[0].alpha is None
    assert torch.equal(plan.layers[0].flow, plan.flow)
    scaled = fuse({"track": _sparse_hint(4, 4, 6.0), "strength": MotionHint(scale=0.5)}, _context(), DensifySettings())
    assert scaled.layers[0].field is scaled.field and float(scaled.flow[-1, 0, 4, 4]) == pytest.approx(
        0.5 * float(plan.flow[-1, 0, 4, 4])
    )


def test_a_plan_holds_its_flow_as_a_field_until_the_flow_is_read() -> None:
    """Nothing of the clip's size is computed by fusion: tracks are kept as spatial shares times their motion."""
    height, width, frames = 24, 32, 50
    flow = torch.zeros(frames, 2, height, width)
    flow[:, 0, 12, 16] = torch.linspace(0, 8, frames)
    mask = torch.zeros(1, 1, height, width)
    mask[0, 0, 12, 16] = 1
    plan = fuse({"track": MotionHint(flow=flow, mask=mask)}, _context(frames, height, width), DensifySettings(sigma=10.0))
    (term,) = plan.field.terms
    assert term.weights.shape == (1, height, width) and term.motion.shape == (1, frames, 2) and term.dense is None
    assert "_flow" in plan.__dict__ and not isinstance(plan.__dict__["_flow"], torch.Tensor)
    torch.testing.assert_close(plan.field[7], plan.field.frames(7, 8)[0])
    whole = plan.flow  # read once: computed and kept
    assert isinstance(plan.__dict__["_flow"], torch.Tensor) and plan.flow is whole
    torch.testing.assert_close(
        whole, densify_gaussian(sparse_points(MotionHint(flow=flow, mask=mask)), height, width, DensifySettings(sigma=10.0))
    )


def test_two_different_strength_asks_are_refused() -> None:
    with pytest.raises(ConfigError, match="a asks 2, b asks 3"):
        fuse(
            {"a": MotionHint(strength=2.0), "b": MotionHint(strength=3.0)},
            _context(),
            DensifySettings(),
        )


def _random_hints(draw_seed: int, kinds: list[str]) -> dict[str, MotionHint]:
    """Hints of the given kinds, with random values from one seed."""
    generator = torch.Generator().manual_seed(draw_seed)
    hints = {}
    for index, kind in enumerate(kinds):
        rand = lambda *shape: torch.rand(*shape, generator=generator)
        if kind == "sparse":
            mask = (rand(1, 1, 8, 10) < 0.1).float()
            hints[f"h{index}"] = MotionHint(flow=rand(3, 2, 8, 10) * 6 - 3, mask=mask, weight=float(rand(1)) + 0.1)
        elif kind == "dense":
            hints[f"h{index}"] = MotionHint(flow=rand(3, 2, 8, 10), weight=float(rand(1)))
        elif kind == "camera":
            hints[f"h{index}"] = MotionHint(flow=rand(3, 2, 8, 10), camera=True)
        elif kind == "region":
            hints[f"h{index}"] = MotionHint(region=(rand(1, 1, 8, 10) < 0.5).float())
        else:
            hints[f"h{index}"] = MotionHint(scale=float(rand(1)) + 0.5)
    return hints


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from(["sparse", "dense", "camera", "region", "scale"]),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 2**16),
    st.randoms(use_true_random=False),
)
def test_fusion_does_not_depend_on_the_order_adapters_are_listed(kinds, seed, random) -> None:
    hints = _random_hints(seed, kinds)
    names = list(hints)
    random.shuffle(names)
    first = fuse(hints, _context(), DensifySettings(sigma=3.0))
    second = fuse({name: hints[name] for name in names}, _context(), DensifySettings(sigma=3.0))
    assert torch.equal(first.flow, second.flow)
    assert (first.region is None and second.region is None) or torch.equal(first.region, second.region)
    assert first.stats == second.stats and first.strength == second.strength
