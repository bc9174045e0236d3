"""What the studio's page has drawn, as data: tracks, pins, a brush mask, a camera move and the run's choices.

A :class:`Controls` becomes the files and overrides a script would use: :meth:`Controls.write_files` writes
the tracks JSON and the brush PNG, :meth:`Controls.overrides` gives the Hydra overrides that name them, and
:func:`command_line` the ``motionforge animate`` line that runs the same config from the folder holding them.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from motionforge.core.config import hydra_string
from motionforge.core.errors import InputError

TRACKS_NAME = "tracks.json"
BRUSH_NAME = "brush.png"
COMMAND_NAME = "command.sh"
DRAWN_ADAPTERS = ("trajectory", "brush", "camera", "motion_strength", "landmark", "dense_flow")  # set by the page's own controls
PICK_RADIUS = 12.0  # pixels: how near a click must be to a point to pick it
TRACK_KNOTS = 5  # knots of a track drawn with one drag
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")  # strings Hydra reads unquoted as themselves
_NUMBER = re.compile(r"[-+]?(\d[\d_]*\.?[\d_]*(e[-+]?\d+)?|inf|nan)", re.IGNORECASE)
_KEYWORDS = ("true", "false", "null", "inf", "nan")


@dataclass
class Track:
    """One drawn track: its knots in input-image pixels (all equal for a pin) and its strength."""

    points: list[tuple[float, float]]
    strength: float = 1.0

    @property
    def is_pin(self) -> bool:
        """True when every knot is the same point: the track holds that spot still."""
        return all(p == self.points[0] for p in self.points)


@dataclass
class Camera:
    """A camera move as the camera adapter takes it: pan per frame, total zoom and rotation."""

    pan_x: float = 0.0  # working pixels per frame
    pan_y: float = 0.0
    zoom: float = 1.0  # total scale over the clip
    rotate: float = 0.0  # total degrees over the clip, clockwise

    @property
    def moves(self) -> bool:
        """True when the camera moves at all."""
        return (self.pan_x, self.pan_y, self.zoom, self.rotate) != (0.0, 0.0, 1.0, 0.0)


@dataclass
class Controls:
    """Everything drawn and chosen in the studio; file fields are names inside the session's folder."""

    size: tuple[int, int]  # (W, H) of the picture
    image: str | None = None  # the uploaded picture's file name; None = the bundled sample
    tracks: list[Track] = field(default_factory=list)
    mask: np.ndarray | None = None  # bool [H, W] on the picture: where the brush allows motion
    camera: Camera = field(default_factory=Camera)
    motion_scale: float = 1.0  # multiplies the fused motion (the motion_strength adapter); 1 = as drawn
    landmark: str | None = None  # an uploaded landmark .npy
    video: str | None = None  # an uploaded driving video
    backbone: str = "warp"
    sampler: str = "single"
    extra_adapters: list[str] = field(default_factory=list)  # registry adapters picked besides the drawn ones
    settings: dict[str, Any] = field(default_factory=dict)  # plugin Config fields set in the page: key → value
    num_frames: int = 16
    fps: float = 8.0
    seed: int = 0
    steps: int = 25
    prompt: str = ""
    height: int | None = None
    width: int | None = None
    active: int | None = None  # the track that clicks in track mode extend; None = the next click starts one
    selected: tuple[int, int] | None = None  # the (track, knot) picked in move mode, moved by the next click

    def complete(self) -> list[Track]:
        """The tracks that have two knots or more (a track being drawn with one knot is not used yet)."""
        return [track for track in self.tracks if len(track.points) >= 2]

    def click(self, mode: str, x: float, y: float, radius: float = 20.0) -> None:
        """Apply one click on the picture at (x, y): extend a track, drop a pin, pick or move a knot, paint or erase."""
        width, height = self.size
        x, y = min(max(float(x), 0.0), width - 1.0), min(max(float(y), 0.0), height - 1.0)
        if mode != "track":
            self._leave_track()
        if mode == "track":
            if self.active is None or self.active >= len(self.tracks):
                self.tracks.append(Track([(x, y)]))
                self.active = len(self.tracks) - 1
            else:
                self.tracks[self.active].points.append((x, y))
        elif mode == "pin":
            self.tracks.append(Track([(x, y), (x, y)]))
            self.active = None
        elif mode == "move":
            if self.selected is None:
                self.selected = self.picked(x, y)
                return
            t, k = self.selected
            track = self.tracks[t]
            track.points = [(x, y)] * len(track.points) if track.is_pin else [*track.points[:k], (x, y), *track.points[k + 1 :]]
            self.selected = None
        elif mode in ("brush", "erase"):
            import cv2

            canvas = np.zeros((height, width), dtype=np.uint8) if self.mask is None else self.mask.astype(np.uint8)
            cv2.circle(canvas, (round(x), round(y)), max(1, round(radius)), 0 if mode == "erase" else 1, -1)
            self.mask = canvas.astype(bool)
        else:
            raise InputError(f"unknown drawing mode {mode!r}; choose track, pin, move, brush or erase")

    def drag(self, mode: str, path: list[tuple[float, float]], radius: float = 20.0) -> None:
        """Apply one drag across the picture along path: move the point it starts on, paint or erase a stroke, or draw a track."""
        width, height = self.size
        path = [(min(max(float(x), 0.0), width - 1.0), min(max(float(y), 0.0), height - 1.0)) for x, y in path]
        if len(path) < 2:
            raise InputError("a drag needs a start and an end; click instead to place one point")
        self._leave_track()
        if mode == "move":
            self.selected = self.picked(*path[0])
            if self.selected is None:
                raise InputError(
                    f"no point within {PICK_RADIUS:g} px of where the drag started; start it on a point (a white dot)"
                )
            self.click("move", *path[-1])
        elif mode in ("brush", "erase"):
            import cv2

            canvas = np.zeros((height, width), dtype=np.uint8) if self.mask is None else self.mask.astype(np.uint8)
            line = np.rint(np.asarray(path)).astype(np.int32)  # [P, 2]
            ink, thickness = (0 if mode == "erase" else 1), max(1, round(radius))
            cv2.polylines(canvas, [line], False, ink, 2 * thickness)
            for x, y in line[[0, -1]]:
                cv2.circle(canvas, (int(x), int(y)), thickness, ink, -1)
            self.mask = canvas.astype(bool)
        elif mode == "track":
            self.tracks.append(Track(knots_along(path)))
            self.active = None
        else:
            self.click(mode, *path[-1])

    def _leave_track(self) -> None:
        """Stop extending the track being drawn (another kind of edit began); a one-knot track is dropped."""
        if self.active is not None:
            self.tracks, self.active = self.complete(), None

    def end_track(self) -> None:
        """Finish the track being drawn: the next click in track mode starts a new one (a one-knot track is dropped)."""
        self.tracks = self.complete()
        self.active, self.selected = None, None

    def delete(self, index: int) -> None:
        """Remove track ``index`` (numbered from 0)."""
        if not 0 <= index < len(self.tracks):
            raise InputError(f"there is no track {index + 1}; pick one of the {len(self.tracks)} drawn")
        del self.tracks[index]
        self.active, self.selected = None, None

    def adapters(self) -> list[str]:
        """The adapters the run uses, in order: those the drawing implies, then the ones picked."""
        drawn = {
            "trajectory": bool(self.complete()),
            "brush": self.mask is not None and bool(self.mask.any()),
            "camera": self.camera.moves,
            "motion_strength": self.motion_scale != 1.0,
            "landmark": self.landmark is not None,
            "dense_flow": self.video is not None,
        }
        return [name for name in DRAWN_ADAPTERS if drawn[name]] + [a for a in self.extra_adapters if a not in DRAWN_ADAPTERS]

    def tracks_json(self) -> dict[str, Any]:
        """The tracks as a motionforge track file: knots in the picture's pixels, its size and each track's strength."""
        tracks = []
        for track in self.complete():
            entry: dict[str, Any] = {"points": [[round(x, 2), round(y, 2)] for x, y in track.points]}
            if track.strength != 1.0:
                entry["strength"] = track.strength
            tracks.append(entry)
        return {"size": list(self.size), "tracks": tracks}

    def write_files(self, folder: Path) -> list[Path]:
        """Write the control files the overrides name (tracks JSON, brush PNG) into folder; returns them."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        if "trajectory" in self.adapters():
            path = folder / TRACKS_NAME
            path.write_text(json.dumps(self.tracks_json(), indent=1) + "\n", encoding="utf-8")
            written.append(path)
        if "brush" in self.adapters():
            path = folder / BRUSH_NAME
            Image.fromarray(self.mask.astype(np.uint8) * 255, mode="L").save(path, optimize=False)
            written.append(path)
        return written

    def files(self) -> list[str]:
        """The names of every file the overrides point at: the picture, the control files, the uploads."""
        names = [self.image] if self.image else []
        adapters = self.adapters()
        names += [TRACKS_NAME] if "trajectory" in adapters else []
        names += [BRUSH_NAME] if "brush" in adapters else []
        return names + [name for name in (self.landmark, self.video) if name]

    def overrides(self, folder: Path | None = None, backbone: str | None = None) -> list[str]:
        """The Hydra overrides of this run, files named inside folder (None: bare names, for the command line).

        ``backbone`` replaces the chosen backbone (the preview runs ``warp``); that backbone's settings are then left out.
        """
        where = (lambda name: str(folder / name)) if folder is not None else (lambda name: name)
        chosen = backbone or self.backbone
        adapters = self.adapters()
        out: list[str] = []
        if self.image:
            out.append(f"image={_quoted(where(self.image))}")
        out.append(f"adapters=[{','.join(adapters)}]")
        if "trajectory" in adapters:
            out.append(f"adapters.trajectory.file={_quoted(where(TRACKS_NAME))}")
        if "brush" in adapters:
            out.append(f"adapters.brush.mask={_quoted(where(BRUSH_NAME))}")
        if "camera" in adapters:
            cam = self.camera
            out += [f"adapters.camera.pan=[{_num(cam.pan_x)},{_num(cam.pan_y)}]"]
            out += [f"adapters.camera.zoom={_num(cam.zoom)}", f"adapters.camera.rotate={_num(cam.rotate)}"]
        if "motion_strength" in adapters:
            out.append(f"adapters.motion_strength.scale={_num(self.motion_scale)}")
        if "landmark" in adapters:
            out.append(f"adapters.landmark.file={_quoted(where(self.landmark))}")
        if "dense_flow" in adapters:
            out.append(f"adapters.dense_flow.video={_quoted(where(self.video))}")
        out += [f"backbone={chosen}", f"sampler={self.sampler}"]
        for key, value in sorted(self.settings.items()):
            plugin = key.split(".")[0]
            if plugin == "backbone" and chosen != self.backbone:
                continue
            if plugin == "adapters" and key.split(".")[1] not in adapters:
                continue
            out.append(f"{key}={hydra_value(value)}")
        out += [f"num_frames={self.num_frames}", f"fps={_num(self.fps)}", f"seed={self.seed}", f"steps={self.steps}"]
        if self.prompt:
            out.append(f"prompt={_quoted(self.prompt)}")
        out += [f"height={self.height}"] if self.height else []
        out += [f"width={self.width}"] if self.width else []
        return out

    def picked(self, x: float, y: float) -> tuple[int, int] | None:
        """The (track, knot) nearest to (x, y) within PICK_RADIUS pixels, or None."""
        best, where = PICK_RADIUS, None
        for t, track in enumerate(self.tracks):
            for k, (px, py) in enumerate(track.points):
                distance = math.hypot(px - x, py - y)
                if distance <= best:
                    best, where = distance, (t, k)
        return where


def knots_along(path: list[tuple[float, float]], most: int = TRACK_KNOTS) -> list[tuple[float, float]]:
    """At most ``most`` knots spread evenly along a drawn path's length, its ends kept: the track a drag draws."""
    points = np.asarray(path, dtype=np.float64)  # [P, 2]
    length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])  # [P] arc length
    if length[-1] == 0:
        return [tuple(points[0])] * 2
    count = int(min(most, max(2, len(points))))
    at = np.linspace(0.0, length[-1], count)
    knots = np.stack([np.interp(at, length, points[:, 0]), np.interp(at, length, points[:, 1])], axis=1)  # [K, 2]
    return [(round(float(x), 2), round(float(y), 2)) for x, y in knots]


def _num(value: float) -> str:
    """A number as Hydra reads it back exactly (integers without a trailing .0)."""
    if not math.isfinite(value):
        raise InputError(f"{value} is not a finite number; give a finite value")
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _quoted(text: str) -> str:
    """A string as a Hydra value: bare when Hydra reads it back as that string, else in Hydra's quotes (the shell's are :func:`command_line`'s job)."""
    if _BARE.fullmatch(text) and text.lower() not in _KEYWORDS and not _NUMBER.fullmatch(text):
        return text
    return hydra_string(text)


def _shell(override: str) -> str:
    """An override quoted for a POSIX shell: as it is when safe, in double quotes when that suffices, else shlex's quoting."""
    if shlex.quote(override) == override:
        return override
    if not re.search(r'["$`\\!]', override):
        return f'"{override}"'
    return shlex.quote(override)


def hydra_value(value: Any) -> str:
    """A plugin setting as a Hydra override value: true/false, a number, null, a quoted string or a JSON list."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _num(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    return _quoted(str(value))


def command_line(overrides: list[str]) -> str:
    """The shell line that runs these overrides: ``motionforge animate`` and each override quoted for a POSIX shell."""
    return " ".join(["motionforge", "animate", *(_shell(o) for o in overrides)])


def tracks_from_file(path: Path, size: tuple[int, int], label: str) -> list[Track]:
    """Read a track file in any format motionforge reads, as editable tracks on the picture's pixels (hidden points kept as knots)."""
    from motionforge.io.tracks import read_tracks

    tracks, _ = read_tracks(path)
    out = []
    for n in range(tracks.num_tracks):
        points = tracks.points(n)  # [P, 2] canvas pixels
        if tracks.canvas is not None:  # canvas pixels → picture pixels (pixel-centre convention, as the adapter maps them)
            points = (points + 0.5) * np.divide(size, tracks.canvas) - 0.5
        knots = [(float(x), float(y)) for x, y in points]
        out.append(Track(knots if len(knots) >= 2 else knots * 2, float(tracks.strength[n])))
    if not out:
        raise InputError(f"the track file {label} holds no tracks; draw some or load another file")
    return out


def mask_from_file(path: Path, size: tuple[int, int], label: str) -> np.ndarray:
    """Read a brush mask image as bool [H, W] on the picture (white, or opaque, marks the region), resized to it."""
    from motionforge.adapters.brush import read_mask

    mask = read_mask(str(path))  # [h, w] bool
    if (mask.shape[1], mask.shape[0]) != tuple(size):
        resized = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)
        mask = np.asarray(resized) >= 128
    if not mask.any():
        raise InputError(f"the brush mask {label} marks nothing (no white pixels); paint the region in white")
    return mask
