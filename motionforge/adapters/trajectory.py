"""The trajectory adapter: drag tracks drawn on the image become sparse motion hints (MOFA-Video eq. 4)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from motionforge.core.errors import ConfigError, InputError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import MotionContext, MotionHint, SparsePoints
from motionforge.motion.curves import resample_track
from motionforge.motion.values import canvas_size, is_number, is_point, plain
from motionforge.core.places import user_path

log = logging.getLogger(__name__)

FORMAT = (
    'a list of tracks, each a list of [x, y] points (or {"points": [...], "strength": s}), '
    'or {"tracks": [...], "size": [W, H]}'
)


@dataclass
class TrajectoryConfig:
    """Parameters of the trajectory adapter."""

    paths: Any = None  # tracks inline: [[[x, y], ...], ...] in input-image pixels
    file: Optional[str] = None  # a JSON file of tracks (see FORMAT)
    size: Any = None  # [W, H] of the canvas the points were drawn on; None = the input image
    strength: Any = 1.0  # object strength M_o: one number for every track, or a list with one per track


@dataclass(frozen=True)
class Track:
    """One user track: its points on the drawing canvas and its strength multiplier."""

    points: np.ndarray  # [P, 2] (x, y)
    strength: float = 1.0


def parse_tracks(data: Any, where: str) -> list[Track]:
    """Check and convert a list of tracks as a user wrote it; ``where`` names the source in errors."""
    if not isinstance(data, (list, tuple)) or not data:
        raise InputError(f"{where} must be {FORMAT}; found {type(data).__name__} {str(data)[:60]}")
    if all(is_point(p) for p in data):
        raise InputError(f"{where} holds one track's points, not a list of tracks; wrap it in one more list: [[[x, y], ...]]")
    tracks = []
    for index, item in enumerate(data):
        strength = 1.0
        if isinstance(item, dict):
            if "points" not in item:
                raise InputError(f"track {index} in {where} is an object without 'points'; write {{\"points\": [[x, y], ...]}}")
            strength = item.get("strength", 1.0)
            if not is_number(strength):
                raise InputError(f"track {index} in {where} has strength {strength!r}; it must be a number")
            item = item["points"]
        if not isinstance(item, (list, tuple)) or not all(
            is_point(p) for p in item
        ):
            raise InputError(f"track {index} in {where} must be a list of [x, y] number pairs; found {str(item)[:60]}")
        if len(item) < 2:
            raise InputError(
                f"track {index} in {where} has {len(item)} point{'s' if len(item) != 1 else ''}; "
                "a track needs at least 2 points (start and end)"
            )
        tracks.append(Track(np.asarray(item, dtype=np.float64), float(strength)))
    return tracks


def load_track_file(path: str) -> tuple[list[Track], tuple[float, float] | None]:
    """Read a JSON track file: its tracks and, when it says so, the canvas size they were drawn on."""
    file = user_path(path)
    if not file.is_file():
        raise InputError(f"track file not found: {path}; pass adapters.trajectory.file=/path/to/tracks.json")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"track file {path} is not a UTF-8 text file; it must be JSON: {FORMAT}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"track file {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    size = None
    if isinstance(data, dict):
        if "tracks" not in data:
            raise InputError(f"track file {path} is a JSON object without 'tracks'; it must be {FORMAT}")
        size = canvas_size(data.get("size"), path)
        data = data["tracks"]
    return parse_tracks(data, path), size


class TrajectoryAdapter:
    """Drag trajectories: each track's start pixel gets its displacement at every frame, densified later."""

    name = "trajectory"
    Config = TrajectoryConfig
    memory_per_pixel = 0  # its hint is a few sparse samples, not a flow per frame

    def tracks(self, config: TrajectoryConfig) -> tuple[list[Track], tuple[float, float] | None]:
        """The tracks the config gives (inline or from its file) and the canvas size they refer to."""
        if config.paths is not None and config.file is not None:
            raise ConfigError("give the tracks either inline (adapters.trajectory.paths) or in a file (adapters.trajectory.file), not both")
        if config.file is not None:
            tracks, size = load_track_file(config.file)
        elif config.paths is not None:
            tracks, size = parse_tracks(plain(config.paths), "adapters.trajectory.paths"), None
        else:
            raise ConfigError(
                "the trajectory adapter has no tracks: set adapters.trajectory.paths='[[[x0,y0],[x1,y1]]]' or "
                "adapters.trajectory.file=tracks.json, or drop the control with adapters=[]"
            )
        if config.size is not None:
            size = canvas_size(plain(config.size), "adapters.trajectory.size")
        return _apply_strength(tracks, plain(config.strength)), size

    def build(self, config: TrajectoryConfig, context: MotionContext) -> MotionHint:
        """Resample every track over the clip and put its displacements at its start pixel."""
        tracks, canvas = self.tracks(config)
        height, width, num_frames = context.height, context.width, context.num_frames
        paths = []
        for track in tracks:
            points = track.points
            if canvas is not None:  # canvas pixels → input-image pixels (pixel-centre convention)
                points = (points + 0.5) * np.divide(context.source_size, canvas) - 0.5
            path = resample_track(context.to_working(points), num_frames)  # [F, 2]
            paths.append(path[0] + track.strength * (path - path[0]))
        paths_arr = np.stack(paths)  # [N, F, 2]
        start = np.rint(paths_arr[:, 0]).astype(np.int64)  # [N, 2] start pixel (x, y)
        inside = (start[:, 0] >= 0) & (start[:, 0] < width) & (start[:, 1] >= 0) & (start[:, 1] < height)
        if not inside.any():
            raise InputError(
                f"every track starts outside the {width}x{height} working frame; give points in the input "
                "image's pixels, or set adapters.trajectory.size=[W,H] to the canvas they were drawn on"
            )
        if not inside.all():
            dropped = ", ".join(str(i) for i in np.flatnonzero(~inside))
            log.warning("trajectory: dropped track(s) %s, which start outside the working frame", dropped)
        paths_arr, start = paths_arr[inside], start[inside]
        displacement = torch.from_numpy(paths_arr - paths_arr[:, :1]).float()  # [N, F, 2]
        # Each track is a sample at its start pixel; tracks sharing a pixel are averaged when the plan merges samples.
        points = SparsePoints(torch.from_numpy(start).float(), displacement, torch.ones(displacement.shape[:2]))
        return MotionHint(points=points, tracks=torch.from_numpy(paths_arr).float())


def _apply_strength(tracks: list[Track], strength: Any) -> list[Track]:
    """Multiply each track's strength by the config's (one number, or one per track)."""
    if is_number(strength):
        factors = [float(strength)] * len(tracks)
    elif isinstance(strength, (list, tuple)) and all(is_number(s) for s in strength):
        if len(strength) != len(tracks):
            raise ConfigError(
                f"adapters.trajectory.strength has {len(strength)} values for {len(tracks)} tracks; give one number, or one per track"
            )
        factors = [float(s) for s in strength]
    else:
        raise ConfigError(f"adapters.trajectory.strength={strength!r} must be a number or a list of numbers, one per track")
    return [Track(t.points, t.strength * f) for t, f in zip(tracks, factors)]


@hookimpl
def register_adapters(register) -> None:
    """Register the trajectory adapter."""
    register(TrajectoryAdapter)
