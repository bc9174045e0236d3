"""The in-memory track set every track format reads into and writes from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from motionforge.core.errors import InputError
from motionforge.motion.curves import resample_track


@dataclass
class TrackSet:
    """Point tracks on a canvas: positions per frame, visibility per frame, the canvas size and each track's strength.

    ``tracks`` [N, T, 2] are (x, y) canvas pixels (origin at the centre of the top-left pixel);
    ``visible`` [N, T] says where a point is seen (False: hidden, no motion is asked for it there).
    A track's points are spread evenly over the clip (point 0 at frame 0, the last at the last
    frame). ``lengths`` [N] is set when tracks have their own number of points (motionforge's JSON
    lets each track have as many knots as it likes): track n is then its first ``lengths[n]``
    points, the rest repeat its last; None means every track has T points.
    """

    tracks: np.ndarray  # [N, T, 2] float64
    visible: np.ndarray  # [N, T] bool
    canvas: tuple[float, float] | None = None  # (W, H) of the canvas the points are on; None = not known
    strength: np.ndarray = field(default_factory=lambda: np.ones(0))  # [N] motion multiplier per track
    lengths: np.ndarray | None = None  # [N] int, or None when every track has T points

    def __post_init__(self) -> None:
        """Default strengths of 1, and the arrays as float64 / bool."""
        self.tracks = np.asarray(self.tracks, dtype=np.float64)
        self.visible = np.asarray(self.visible, dtype=bool)
        if self.strength is None or len(self.strength) == 0:
            self.strength = np.ones(self.tracks.shape[0])
        self.strength = np.asarray(self.strength, dtype=np.float64)

    @property
    def num_tracks(self) -> int:
        """N, the number of tracks."""
        return int(self.tracks.shape[0])

    @property
    def num_points(self) -> int:
        """T, the number of points of the longest track."""
        return int(self.tracks.shape[1])

    def points(self, index: int) -> np.ndarray:
        """Track ``index``'s own points, [P, 2]."""
        length = self.num_points if self.lengths is None else int(self.lengths[index])
        return self.tracks[index, :length]

    def visibility(self, index: int) -> np.ndarray:
        """Track ``index``'s own visibility, bool [P]."""
        length = self.num_points if self.lengths is None else int(self.lengths[index])
        return self.visible[index, :length]

    def per_frame(self) -> TrackSet:
        """The same tracks with one point per frame for all: tracks with fewer points are resampled to T (PCHIP, as the adapter draws them)."""
        if self.lengths is None or bool((self.lengths == self.num_points).all()):
            return TrackSet(self.tracks, self.visible, self.canvas, self.strength)
        count = self.num_points
        tracks = np.stack([resample_track(self.points(n), count) for n in range(self.num_tracks)])  # [N, T, 2]
        visible = np.stack([resample_visibility(self.visibility(n), count) for n in range(self.num_tracks)])  # [N, T]
        return TrackSet(tracks, visible, self.canvas, self.strength)

    def baked(self) -> TrackSet:
        """The tracks with each strength applied to its motion (p0 + s (p − p0)) and strengths reset to 1, for formats that hold none."""
        if bool((self.strength == 1.0).all()):
            return self
        start = self.tracks[:, :1]  # [N, 1, 2]
        tracks = start + self.strength[:, None, None] * (self.tracks - start)
        return TrackSet(tracks, self.visible, self.canvas, None, self.lengths)

    def rescaled(self, canvas: tuple[float, float]) -> TrackSet:
        """The tracks moved onto another canvas size (pixel-centre convention); the set must know its own canvas."""
        if self.canvas is None:
            raise ValueError("a track set without a canvas cannot be rescaled")
        scale = np.divide(canvas, self.canvas)
        tracks = (self.tracks + 0.5) * scale - 0.5
        return TrackSet(tracks, self.visible, (float(canvas[0]), float(canvas[1])), self.strength, self.lengths)


def resample_visibility(visible: np.ndarray, num_frames: int) -> np.ndarray:
    """Spread a track's visibility over num_frames frames like its points: a frame is visible when the points on both sides of it are; [P] → [F].

    Points sit at normalised times j/(P−1) and frames at i/(F−1); a frame on a point takes that
    point's visibility, one between two points is hidden if either of them is (no motion is asked
    where the track is not known to be seen).
    """
    visible = np.asarray(visible, dtype=bool)
    count = len(visible)
    if count == num_frames:
        return visible.copy()
    position = np.linspace(0.0, count - 1.0, num_frames)  # [F] in point units
    lower = np.floor(position + 1e-9).astype(np.int64).clip(0, count - 1)
    upper = np.ceil(position - 1e-9).astype(np.int64).clip(0, count - 1)
    return visible[lower] & visible[upper]


def check_array(values: np.ndarray, path: str, what: str) -> np.ndarray:
    """Raise an InputError naming the file when an array holds NaN or infinite values; return it as float64."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise InputError(
            f"{what} {path} holds {bad} NaN or infinite value{'s' if bad != 1 else ''}; every coordinate must be a finite number"
        )
    return values


def gather(
    tracks: list[np.ndarray],
    visible: list[np.ndarray] | None,
    canvas: tuple[float, float] | None,
    strength: list[float] | None = None,
) -> TrackSet:
    """A track set from per-track points [P, 2] (and visibility [P]) of any lengths; a one-point track is a pin (it holds still)."""
    tracks = [np.repeat(t, 2, axis=0) if len(t) == 1 else t for t in tracks]
    seen = (
        [np.ones(len(t), dtype=bool) for t in tracks]
        if visible is None
        else [np.repeat(v, 2) if len(v) == 1 else np.asarray(v, dtype=bool) for v in visible]
    )
    lengths = np.array([len(t) for t in tracks], dtype=np.int64)  # [N]
    count = int(lengths.max())
    padded = np.stack([np.concatenate([t, np.repeat(t[-1:], count - len(t), axis=0)]) for t in tracks])  # [N, T, 2]
    shown = np.stack([np.concatenate([v, np.repeat(v[-1:], count - len(v))]) for v in seen])  # [N, T]
    return TrackSet(
        padded, shown, canvas, None if strength is None else np.asarray(strength), None if (lengths == count).all() else lengths
    )
