"""The overlay draws what the run will use: each track's PCHIP curve with its arrow, pins as rings, the brush tinted."""

from __future__ import annotations

import numpy as np

from motionforge.motion.curves import resample_track
from motionforge.studio.draw import CURVE_SAMPLES, curves, overlay, tint
from motionforge.studio.state import Controls, Track


def grey(width: int = 160, height: int = 120) -> np.ndarray:
    """A flat grey picture, uint8 [H, W, 3]."""
    return np.full((height, width, 3), 128, np.uint8)


def test_the_curves_are_the_trajectory_adapters_resampling() -> None:
    knots = [(20.0, 100.0), (60.0, 30.0), (140.0, 40.0)]
    controls = Controls(size=(160, 120), tracks=[Track(knots), Track([(5.0, 5.0)])])  # the one-knot track is still being drawn
    drawn = curves(controls)
    assert drawn.shape == (1, CURVE_SAMPLES, 2)
    assert np.allclose(drawn[0], resample_track(np.asarray(knots), CURVE_SAMPLES))


def test_the_overlay_marks_the_curve_between_the_knots_and_leaves_the_rest() -> None:
    knots = [(20.0, 100.0), (60.0, 30.0), (140.0, 40.0)]
    picture = grey()
    drawn = overlay(picture, Controls(size=(160, 120), tracks=[Track(knots)]))
    changed = np.abs(drawn.astype(int) - picture).sum(axis=2) > 0  # [H, W]
    for x, y in resample_track(np.asarray(knots), 9)[1:-1]:  # points of the curve itself, off the knots
        assert changed[round(y), round(x)], (x, y)
    assert not changed[110, 150] and not changed[5, 5]


def test_a_picked_knot_is_drawn_in_red() -> None:
    controls = Controls(size=(160, 120), tracks=[Track([(40.0, 60.0), (120.0, 60.0)])])
    controls.click("move", 40, 60)
    drawn = overlay(grey(), controls)
    r, g, b = drawn[60, 40].astype(int)
    assert r > 200 and g < 100 and b < 100


def test_the_brush_tint_covers_the_mask_only() -> None:
    mask = np.zeros((120, 160), bool)
    mask[10:30, 10:50] = True
    tinted = tint(grey(), mask)
    assert (tinted[mask] != 128).any(axis=1).all() and (tinted[~mask] == 128).all()
