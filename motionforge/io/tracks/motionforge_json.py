"""motionforge's own track JSON, and the bare point lists of DragNUWA's and MOFA-Video's drag demos.

motionforge's file is ``{"size": [W, H], "tracks": [...]}`` or the bare list of tracks; a track is
a list of [x, y] points (knots spread over the clip) or ``{"points": [...], "strength": s,
"visible": [true, ...]}``. A point list (DragNUWA, MOFA-Video) is the bare list alone: each drag
a list of [x, y] pairs on the canvas the user clicked on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from motionforge.core.errors import InputError
from motionforge.io.tracks.trackset import TrackSet, gather
from motionforge.motion.values import canvas_size, is_number, is_point

FORMAT = (
    'a list of tracks, each a list of [x, y] points (or {"points": [...], "strength": s, "visible": [...]}), '
    'or {"tracks": [...], "size": [W, H]}'
)


def read_json(path: str | Path) -> Any:
    """The parsed JSON of a track file, or an InputError naming the file."""
    file = Path(path)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"track file {path} is not a UTF-8 text file; it must be JSON: {FORMAT}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"track file {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc


def parse_tracks(data: Any, where: str) -> TrackSet:
    """Check and convert a list of tracks as a user wrote it (inline or in a file); ``where`` names the source in errors."""
    if not isinstance(data, (list, tuple)) or not data:
        raise InputError(f"{where} must be {FORMAT}; found {type(data).__name__} {str(data)[:60]}")
    if all(is_point(p) for p in data):
        raise InputError(f"{where} holds one track's points, not a list of tracks; wrap it in one more list: [[[x, y], ...]]")
    points, visible, strengths = [], [], []
    for index, item in enumerate(data):
        strength, seen = 1.0, None
        if isinstance(item, dict):
            if "points" not in item:
                raise InputError(f"track {index} in {where} is an object without 'points'; write {{\"points\": [[x, y], ...]}}")
            strength = item.get("strength", 1.0)
            if not is_number(strength):
                raise InputError(f"track {index} in {where} has strength {strength!r}; it must be a number")
            seen = item.get("visible")
            item = item["points"]
        if _has_nonfinite(item):
            raise InputError(
                f"track {index} in {where} holds NaN or infinite coordinates; every coordinate must be a finite number"
            )
        if not isinstance(item, (list, tuple)) or not all(is_point(p) for p in item):
            raise InputError(f"track {index} in {where} must be a list of [x, y] number pairs; found {str(item)[:60]}")
        if len(item) < 2:
            raise InputError(
                f"track {index} in {where} has {len(item)} point{'s' if len(item) != 1 else ''}; "
                "a track needs at least 2 points (start and end)"
            )
        if seen is not None and not (
            isinstance(seen, (list, tuple)) and len(seen) == len(item) and all(isinstance(v, bool) for v in seen)
        ):
            raise InputError(
                f"track {index} in {where} has 'visible' {str(seen)[:60]}; it must be a list of true/false, one per point ({len(item)})"
            )
        points.append(np.asarray(item, dtype=np.float64))
        visible.append(np.ones(len(item), dtype=bool) if seen is None else np.asarray(seen, dtype=bool))
        strengths.append(float(strength))
    return gather(points, visible, None, strengths)


def _has_nonfinite(item: Any) -> bool:
    """True when a track's point list holds a NaN or infinite number."""
    return isinstance(item, (list, tuple)) and any(
        isinstance(v, float) and not math.isfinite(v) for p in item if isinstance(p, (list, tuple)) for v in p
    )


def read_motionforge(path: str | Path, **_: Any) -> TrackSet:
    """Read motionforge's track JSON (or a bare point list): its tracks and, when it says so, the canvas size."""
    data = read_json(path)
    size = None
    if isinstance(data, dict):
        if "tracks" not in data:
            raise InputError(f"track file {path} is a JSON object without 'tracks'; it must be {FORMAT}")
        size = canvas_size(data.get("size"), str(path))
        data = data["tracks"]
    tracks = parse_tracks(data, str(path))
    tracks.canvas = size
    return tracks


def _track_entries(tracks: TrackSet, rich: bool) -> list[Any]:
    """Each track as JSON: its points (3 decimals), with strength and visibility when ``rich`` and not the defaults."""
    entries: list[Any] = []
    for n in range(tracks.num_tracks):
        points = [[round(float(x), 3), round(float(y), 3)] for x, y in tracks.points(n)]
        seen = tracks.visibility(n)
        if not rich or (tracks.strength[n] == 1.0 and seen.all()):
            entries.append(points)
            continue
        entry: dict[str, Any] = {"points": points}
        if tracks.strength[n] != 1.0:
            entry["strength"] = float(tracks.strength[n])
        if not seen.all():
            entry["visible"] = [bool(v) for v in seen]
        entries.append(entry)
    return entries


def write_motionforge(tracks: TrackSet, target: Callable[[str], Path], name: str) -> None:
    """Write motionforge's JSON: the canvas size when known, every track with its strength and visibility."""
    entries = _track_entries(tracks, rich=True)
    body = ",\n".join("  " + json.dumps(entry) for entry in entries)  # one track per line
    if tracks.canvas is None:
        text = f"[\n{body}\n]\n"
    else:
        size = json.dumps([_number(v) for v in tracks.canvas])
        text = f'{{\n "size": {size},\n "tracks": [\n{body}\n ]\n}}\n'
    target(name).write_text(text, encoding="utf-8")


def write_point_list(tracks: TrackSet, target: Callable[[str], Path], name: str) -> None:
    """Write a bare point list (DragNUWA / MOFA-Video): each track a list of [x, y], strength applied to the points."""
    entries = _track_entries(tracks.baked(), rich=False)
    target(name).write_text(json.dumps(entries) + "\n", encoding="utf-8")


def _number(value: float) -> int | float:
    """A whole number as an int (for a tidy JSON size), anything else as it is."""
    return int(value) if float(value).is_integer() else float(value)
