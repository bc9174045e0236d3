"""Resampling point sequences in time: linear for two points, monotone cubic (PCHIP) for more."""

from __future__ import annotations

import numpy as np


def pchip_slopes(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch–Carlson derivatives at the knots of a monotone piecewise-cubic interpolant; t [P], y [P, D] → [P, D]."""
    h = np.diff(t)[:, None]  # [P-1, 1]
    delta = np.diff(y, axis=0) / h  # [P-1, D] secant slopes
    if len(t) == 2:
        return np.repeat(delta, 2, axis=0)
    slopes = np.zeros_like(y)
    # interior knots: weighted harmonic mean of the neighbouring secants, zero at extrema
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same_sign = delta[:-1] * delta[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # masked out below where signs differ
        harmonic = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    slopes[1:-1] = np.where(same_sign, harmonic, 0.0)
    slopes[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    slopes[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return slopes


def _end_slope(h0: np.ndarray, h1: np.ndarray, d0: np.ndarray, d1: np.ndarray) -> np.ndarray:
    """One-sided three-point slope at an end knot, limited so the curve stays monotone."""
    slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    slope = np.where(np.sign(slope) != np.sign(d0), 0.0, slope)
    overshoot = (np.sign(d0) != np.sign(d1)) & (np.abs(slope) > np.abs(3 * d0))
    return np.where(overshoot, 3 * d0, slope)


def pchip(t: np.ndarray, y: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Evaluate the PCHIP interpolant of knots (t [P], y [P, D]) at query times [M] → [M, D]; exact at the knots."""
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    query = np.clip(np.asarray(query, dtype=np.float64), t[0], t[-1])
    slopes = pchip_slopes(t, y)
    segment = np.clip(np.searchsorted(t, query, side="right") - 1, 0, len(t) - 2)  # [M]
    h = (t[segment + 1] - t[segment])[:, None]  # [M, 1]
    s = ((query - t[segment]) / h[:, 0])[:, None]  # [M, 1] position inside the segment, 0…1
    h00 = 2 * s**3 - 3 * s**2 + 1
    h10 = s**3 - 2 * s**2 + s
    h01 = -2 * s**3 + 3 * s**2
    h11 = s**3 - s**2
    return h00 * y[segment] + h10 * h * slopes[segment] + h01 * y[segment + 1] + h11 * h * slopes[segment + 1]


def resample_track(points: np.ndarray, num_frames: int) -> np.ndarray:
    """Spread a track's points over the clip: point 0 at frame 0, the last at the last frame; [P, 2] → [F, 2].

    The points are knots at equal steps of the normalised time i/(F-1); two points interpolate
    linearly, three or more by PCHIP on x and y separately (as the drag interfaces of MOFA-Video and
    Motion-I2V do). The first and last frames hold the first and last points exactly.
    """
    points = np.asarray(points, dtype=np.float64)
    knots = np.linspace(0.0, 1.0, len(points))
    times = np.linspace(0.0, 1.0, num_frames)
    if len(points) == 2:
        path = points[0] + times[:, None] * (points[1] - points[0])
    else:
        path = pchip(knots, points, times)
    path[0], path[-1] = points[0], points[-1]
    return path
