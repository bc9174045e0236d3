"""KJNodes' SplineEditor output: ``coord_str`` (one ``{"x", "y"}`` per frame per spline, in canvas pixels) and ``normalized_str``.

``coord_str`` is one spline's list ``[{"x": .., "y": ..}, …]`` or a list of such lists; the points
are the spline sampled once per frame, on the node's mask_width × mask_height canvas (which the
string does not hold). ``normalized_str`` maps each value v to 1 − v / mask_height (x too, as the
node does with its default min 0 and max 1) and runs every spline's points into one list, so it
holds one track; reading it needs the canvas.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from motionforge.core.errors import InputError
from motionforge.io.tracks.motionforge_json import read_json
from motionforge.io.tracks.trackset import TrackSet, check_array, gather

LAYOUT = 'a list of {"x": .., "y": ..} points, or a list of such lists (one per spline)'


def is_point_dict(value: Any) -> bool:
    """True for one ``{"x": number, "y": number}`` point."""
    return isinstance(value, dict) and "x" in value and "y" in value and is_number_like(value["x"]) and is_number_like(value["y"])


def is_number_like(value: Any) -> bool:
    """True for a real number (finite or not: NaN is refused later with its own sentence)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def splines(data: Any) -> list[list[dict]] | None:
    """The splines of a parsed coord_str (one flat list is one spline), or None when it is not that layout."""
    if isinstance(data, list) and data and all(is_point_dict(p) for p in data):
        return [data]
    if isinstance(data, list) and data and all(isinstance(s, list) and s and all(is_point_dict(p) for p in s) for s in data):
        return data
    return None


def looks_normalised(data: Any) -> bool:
    """True when every value lies in [−1, 1] and some are fractions: normalized_str, not pixel coordinates (which the node rounds).

    1 − x / mask_height goes below 0 on canvases wider than tall (to −0.78 at 16:9), so the test
    allows down to −1.
    """
    found = splines(data) or []
    values = np.array([[p["x"], p["y"]] for spline in found for p in spline], dtype=np.float64)
    return bool(values.size) and bool(((values >= -1) & (values <= 1)).all()) and not bool((values == np.round(values)).all())


def _read_points(path: str | Path, what: str) -> list[np.ndarray]:
    """The splines of a SplineEditor file as point arrays [P, 2], checked."""
    found = splines(read_json(path))
    if found is None:
        raise InputError(f"{what} {path} is not SplineEditor output; it must be {LAYOUT}")
    return [check_array([[p["x"], p["y"]] for p in spline], str(path), what) for spline in found]


def read_spline_editor(path: str | Path, **_: Any) -> TrackSet:
    """Read a SplineEditor coord_str: one track per spline, one point per frame, canvas not known (the node's mask size)."""
    return gather(_read_points(path, "SplineEditor file"), None, None)


def read_spline_editor_normalized(path: str | Path, *, canvas: tuple[float, float] | None = None, **_: Any) -> TrackSet:
    """Read a SplineEditor normalized_str back to canvas pixels (v = (1 − n) · mask_height); needs the canvas."""
    if canvas is None:
        raise InputError(
            f"normalised SplineEditor file {path} holds values relative to the node's mask height, which it does not say; "
            "give the canvas size (adapters.trajectory.size=[W,H], or --canvas WxH)"
        )
    points = _read_points(path, "normalised SplineEditor file")
    return gather([(1.0 - p) * canvas[1] for p in points], None, canvas)


def write_spline_editor(tracks: TrackSet, target: Callable[[str], Path], name: str) -> None:
    """Write a coord_str: a list of splines of ``{"x", "y"}`` per frame (strength applied; visibility and canvas are not kept)."""
    flat = tracks.baked().per_frame()
    data = [[{"x": round(float(x), 3), "y": round(float(y), 3)} for x, y in track] for track in flat.tracks]
    target(name).write_text(json.dumps(data) + "\n", encoding="utf-8")


def write_spline_editor_normalized(tracks: TrackSet, target: Callable[[str], Path], name: str) -> None:
    """Write a normalized_str: one track as 1 − v / H per value; more than one track cannot be told apart in it."""
    if tracks.num_tracks != 1:
        raise InputError(
            f"a normalised SplineEditor file holds one track and this set has {tracks.num_tracks}; "
            "write the pixel variant (format spline_editor) instead"
        )
    if tracks.canvas is None:
        raise InputError("a normalised SplineEditor file needs the canvas size; give it with --canvas WxH")
    flat = tracks.baked().per_frame()
    height = tracks.canvas[1]
    data = [{"x": round(1.0 - float(x) / height, 7), "y": round(1.0 - float(y) / height, 7)} for x, y in flat.tracks[0]]
    target(name).write_text(json.dumps(data) + "\n", encoding="utf-8")
