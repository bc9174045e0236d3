"""Resampling tracks in time: linear for two points, PCHIP for more, endpoints held exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionforge.motion.curves import pchip, resample_track

coordinate = st.floats(min_value=-2000, max_value=2000, allow_nan=False, allow_infinity=False)
point = st.tuples(coordinate, coordinate)
track = st.lists(point, min_size=2, max_size=8)
frames = st.integers(min_value=2, max_value=200)


@settings(max_examples=200, deadline=None)
@given(track, frames)
def test_endpoints_are_exact_and_every_frame_has_a_point(points, num_frames) -> None:
    path = resample_track(np.array(points), num_frames)
    assert path.shape == (num_frames, 2)
    assert np.array_equal(path[0], points[0]) and np.array_equal(path[-1], points[-1])
    assert np.isfinite(path).all()


@settings(max_examples=200, deadline=None)
@given(point, point, st.integers(min_value=2, max_value=12), frames)
def test_evenly_spaced_collinear_points_move_linearly(start, end, knots, num_frames) -> None:
    start, end = np.array(start), np.array(end)
    points = start + np.linspace(0, 1, knots)[:, None] * (end - start)
    expected = start + np.linspace(0, 1, num_frames)[:, None] * (end - start)
    np.testing.assert_allclose(resample_track(points, num_frames), expected, atol=1e-9 * (1 + np.abs(end - start).max()))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100), min_size=3, max_size=8), frames)
def test_monotone_points_give_a_monotone_path(steps, num_frames) -> None:
    xs = np.cumsum(steps)
    path = resample_track(np.stack([xs, -2 * xs], axis=1), num_frames)
    assert (np.diff(path[:, 0]) >= -1e-9).all() and (np.diff(path[:, 1]) <= 1e-9).all()


def test_the_path_passes_through_every_knot_frame() -> None:
    points = np.array([[0.0, 0.0], [10.0, 30.0], [40.0, 35.0]])
    path = resample_track(points, 5)  # knots at frames 0, 2, 4
    np.testing.assert_allclose(path[[0, 2, 4]], points, atol=1e-12)


def test_pchip_matches_scipy() -> None:
    interpolate = pytest.importorskip("scipy.interpolate")
    rng = np.random.default_rng(3)
    for count in (3, 4, 7):
        t = np.sort(rng.uniform(0, 1, count))
        y = rng.normal(size=(count, 2)) * 40
        query = np.linspace(t[0], t[-1], 50)
        np.testing.assert_allclose(pchip(t, y, query), interpolate.PchipInterpolator(t, y, axis=0)(query), atol=1e-9)
