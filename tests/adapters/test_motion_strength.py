"""The motion_strength adapter: a target global motion strength M_s, or a factor, for the whole plan."""

from __future__ import annotations

import pytest
import torch

from motionforge import ConfigError, MotionContext, MotionHint
from motionforge.adapters.motion_strength import (
    MotionStrengthAdapter,
    MotionStrengthConfig,
)
from motionforge.motion.fuse import DensifySettings, fuse, motion_strength

CONTEXT = MotionContext(32, 40, 6, torch.zeros(3, 32, 40), (40, 32))


def hint(**config) -> MotionHint:
    return MotionStrengthAdapter().build(MotionStrengthConfig(**config), CONTEXT)


def swirl() -> MotionHint:
    """A dense hint whose speed varies over space and time."""
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(40.0), indexing="ij")
    steps = torch.tensor([0.0, 1.0, 3.0, 4.0, 7.0, 8.0])[:, None, None]
    return MotionHint(flow=torch.stack([steps * xs / 40, -steps * ys / 32], dim=1))


def test_value_and_scale_become_the_hint_s_strength_and_scale() -> None:
    assert hint(value=3.0).strength == 3.0 and hint(value=3.0).flow is None
    assert hint(scale=0.5).scale == 0.5 and hint(scale=0.5).strength is None


@pytest.mark.parametrize("target", [0.25, 1.0, 6.5])
def test_value_gives_the_asked_strength_within_one_percent(target) -> None:
    plan = fuse(
        {"swirl": swirl(), "motion_strength": hint(value=target)},
        CONTEXT,
        DensifySettings(),
    )
    assert motion_strength(plan.flow) == pytest.approx(target, rel=0.01)
    assert plan.strength == target
    assert plan.stats["motion_strength"]["before"] == pytest.approx(motion_strength(swirl().flow), abs=1e-4)
    assert plan.stats["motion_strength"]["after"] == pytest.approx(target, rel=0.01)


def test_scale_multiplies_the_plan() -> None:
    plan = fuse(
        {"swirl": swirl(), "motion_strength": hint(scale=2.0)},
        CONTEXT,
        DensifySettings(),
    )
    torch.testing.assert_close(plan.flow, 2 * swirl().flow)
    assert plan.strength == pytest.approx(2 * motion_strength(swirl().flow), rel=1e-4)


def test_a_still_plan_passes_the_strength_on_and_warns(caplog) -> None:
    plan = fuse({"motion_strength": hint(value=2.0)}, CONTEXT, DensifySettings())
    assert plan.strength == 2.0 and float(plan.flow.abs().max()) == 0.0
    assert "no motion to rescale" in caplog.text


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "neither is set"),
        ({"value": 1.0, "scale": 2.0}, "both are set"),
        ({"value": -1.0}, r"value=-1.0 must be a finite number, zero or more"),
        ({"scale": float("nan")}, "scale=nan must be"),
    ],
)
def test_bad_settings_say_what_is_wrong(config, message) -> None:
    with pytest.raises(ConfigError, match=message):
        hint(**config)
