"""The trajectory adapter: drag tracks drawn on the image become sparse motion hints (MOFA-Video eq. 4)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from motionforge.core.errors import ConfigError, InputError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.places import user_path
from motionforge.core.types import MotionContext, MotionHint, SparsePoints
from motionforge.io.tracks import FORMATS, TrackSet, read_tracks, resample_visibility
from motionforge.io.tracks.motionforge_json import parse_tracks
from motionforge.motion.curves import resample_track
from motionforge.motion.values import canvas_size, is_number, plain

log = logging.getLogger(__name__)


@dataclass
class TrajectoryConfig:
    """Parameters of the trajectory adapter."""

    paths: Any = None  # tracks inline: [[[x, y], ...], ...] in input-image pixels
    file: str | None = None  # a track file in any format motionforge reads (see motionforge.io.tracks)
    size: Any = None  # [W, H] of the canvas the points were drawn on; None = the file's own, else the input image
    strength: Any = 1.0  # object strength M_o: one number for every track, or a list with one per track
    format: str | None = None  # the file's track format; None = detect it (motionforge, spline_editor, wan_move, ati, tora, ...)
    visibility: str | None = None  # wan_move: its visibility .npy; None = the sibling *_visibility.npy, if any


def load_track_file(config: TrajectoryConfig, canvas: tuple[float, float] | None) -> TrackSet:
    """Read the config's track file in its format (named or detected), with the canvas the config gives."""
    if config.format is not None and config.format not in FORMATS:
        raise ConfigError(
            f"adapters.trajectory.format={config.format} is not a track format; choose one of: {', '.join(FORMATS)}, or null to detect it"
        )
    file = user_path(config.file)
    if not file.exists():
        raise InputError(f"track file not found: {config.file}; pass adapters.trajectory.file=/path/to/tracks.json")
    visibility = None if config.visibility is None else user_path(config.visibility)
    tracks, name = read_tracks(file, config.format, canvas=canvas, visibility=visibility)
    if config.visibility is not None and name != "wan_move":
        raise ConfigError(f"adapters.trajectory.visibility is for Wan-Move track files, and {config.file} is {name}; drop it")
    log.info("trajectory: %d track(s) of %d points from %s (%s)", tracks.num_tracks, tracks.num_points, config.file, name)
    return tracks


class TrajectoryAdapter:
    """Drag trajectories: each track's start pixel gets its displacement at every frame, densified later."""

    name = "trajectory"
    Config = TrajectoryConfig
    memory_per_pixel = 0  # its hint is a few sparse samples, not a flow per frame

    def tracks(self, config: TrajectoryConfig) -> TrackSet:
        """The tracks the config gives (inline or from its file), with their canvas size (None: the input image)."""
        if config.paths is not None and config.file is not None:
            raise ConfigError(
                "give the tracks either inline (adapters.trajectory.paths) or in a file (adapters.trajectory.file), not both"
            )
        if config.file is None and (config.format is not None or config.visibility is not None):
            key = "format" if config.format is not None else "visibility"
            raise ConfigError(f"adapters.trajectory.{key} describes a track file; set adapters.trajectory.file too, or drop it")
        size = canvas_size(plain(config.size), "adapters.trajectory.size") if config.size is not None else None
        if config.file is not None:
            tracks = load_track_file(config, size)
        elif config.paths is not None:
            tracks = parse_tracks(plain(config.paths), "adapters.trajectory.paths")
        else:
            raise ConfigError(
                "the trajectory adapter has no tracks: set adapters.trajectory.paths='[[[x0,y0],[x1,y1]]]' or "
                "adapters.trajectory.file=tracks.json, or drop the control with adapters=[]"
            )
        if size is not None:
            tracks.canvas = size
        return replace(tracks, strength=tracks.strength * _strengths(tracks.num_tracks, plain(config.strength)))

    def build(self, config: TrajectoryConfig, context: MotionContext) -> MotionHint:
        """Resample every track over the clip and put its displacements at its start pixel, counted only where it is seen.

        A point hidden at a frame, or outside the working frame there, asks for no motion at that
        frame (its sample's weight is 0 there); a track hidden at frame 0 asks for none at all.
        """
        tracks = self.tracks(config)
        height, width, num_frames = context.height, context.width, context.num_frames
        paths, seen = [], []
        for n in range(tracks.num_tracks):
            points = tracks.points(n)
            if tracks.canvas is not None:  # canvas pixels → input-image pixels (pixel-centre convention)
                points = (points + 0.5) * np.divide(context.source_size, tracks.canvas) - 0.5
            path = resample_track(context.to_working(points), num_frames)  # [F, 2]
            paths.append(path[0] + tracks.strength[n] * (path - path[0]))
            seen.append(resample_visibility(tracks.visibility(n), num_frames))
        paths_arr, visible = np.stack(paths), np.stack(seen)  # [N, F, 2], [N, F]
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
        hidden = inside & ~visible[:, 0]
        if hidden.any():
            log.warning(
                "trajectory: dropped track(s) %s, which are hidden at frame 0", ", ".join(str(i) for i in np.flatnonzero(hidden))
            )
        keep = inside & visible[:, 0]
        if not keep.any():
            raise InputError(
                "every track that starts in the picture is hidden at frame 0, so none can move it; check the visibility"
            )
        paths_arr, start, visible = paths_arr[keep], start[keep], visible[keep]
        in_frame = (
            (paths_arr[..., 0] >= -0.5)
            & (paths_arr[..., 0] <= width - 0.5)
            & (paths_arr[..., 1] >= -0.5)
            & (paths_arr[..., 1] <= height - 0.5)
        )  # [N, F]
        weight = torch.from_numpy(visible & in_frame).float()  # [N, F]: 0 where a point is hidden or out of the picture
        displacement = torch.from_numpy(paths_arr - paths_arr[:, :1]).float()  # [N, F, 2]
        # Each track is a sample at its start pixel; tracks sharing a pixel are averaged when the plan merges samples.
        points = SparsePoints(torch.from_numpy(start).float(), displacement, weight)
        return MotionHint(points=points, tracks=torch.from_numpy(paths_arr).float())


def _strengths(count: int, strength: Any) -> np.ndarray:
    """The config's strength factor for each of ``count`` tracks (one number for all, or one per track): [N]."""
    if is_number(strength):
        return np.full(count, float(strength))
    if isinstance(strength, (list, tuple)) and all(is_number(s) for s in strength):
        if len(strength) != count:
            raise ConfigError(
                f"adapters.trajectory.strength has {len(strength)} values for {count} tracks; give one number, or one per track"
            )
        return np.asarray(strength, dtype=np.float64)
    raise ConfigError(f"adapters.trajectory.strength={strength!r} must be a number or a list of numbers, one per track")


@hookimpl
def register_adapters(register) -> None:
    """Register the trajectory adapter."""
    register(TrajectoryAdapter)
