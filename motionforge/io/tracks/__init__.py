"""Track files in and out: every format people trade point tracks in, read into one :class:`TrackSet` and written from it.

========================  ===========================  ================================================
format                    files                        what it holds
========================  ===========================  ================================================
motionforge               ``.json`` object or list     tracks of [x, y] knots, canvas size, strength, visibility
point_list                ``.json`` list               DragNUWA / MOFA-Video drags: tracks of [x, y]
spline_editor             ``.json`` list of {x, y}     KJNodes SplineEditor coord_str: a point per frame per spline
spline_editor_normalized  ``.json`` list of {x, y}     SplineEditor normalized_str: 1 − v / mask height, one track
wan_move                  ``*_tracks.npy``             (T, N, 2) pixels, with ``*_visibility.npy`` (T, N)
ati                       ``.pth``                     ATI's editor: (N, 121, 1, 3) x, y, visible, times 8
tora                      ``.txt``                     Tora: one ``x,y`` per line on 256 × 256
========================  ===========================  ================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from motionforge.core.errors import InputError, OutputError
from motionforge.io.atomic import AtomicOutputs
from motionforge.io.tracks import ati, motionforge_json, spline_editor, tora, wan_move
from motionforge.io.tracks.trackset import TrackSet, resample_visibility

__all__ = ["FORMATS", "TrackSet", "detect_format", "read_tracks", "resample_visibility", "write_tracks"]


@dataclass(frozen=True)
class TrackFormat:
    """One track format: its name, file suffix, reader and writer, and what its files can hold."""

    name: str
    suffix: str
    read: Callable[..., TrackSet]
    write: Callable[[TrackSet, Callable[[str], Path], str], None]
    canvas: bool  # its files say the canvas size
    visibility: bool  # its files say where a point is hidden
    strength: bool  # its files hold a strength per track (others get it applied to the points)


FORMATS: dict[str, TrackFormat] = {
    f.name: f
    for f in (
        TrackFormat(
            "motionforge", ".json", motionforge_json.read_motionforge, motionforge_json.write_motionforge, True, True, True
        ),
        TrackFormat(
            "point_list", ".json", motionforge_json.read_motionforge, motionforge_json.write_point_list, False, False, False
        ),
        TrackFormat(
            "spline_editor", ".json", spline_editor.read_spline_editor, spline_editor.write_spline_editor, False, False, False
        ),
        TrackFormat(
            "spline_editor_normalized",
            ".json",
            spline_editor.read_spline_editor_normalized,
            spline_editor.write_spline_editor_normalized,
            False,
            False,
            False,
        ),
        TrackFormat("wan_move", ".npy", wan_move.read_wan_move, wan_move.write_wan_move, False, True, False),
        TrackFormat("ati", ".pth", ati.read_ati, ati.write_ati, True, True, False),
        TrackFormat("tora", ".txt", tora.read_tora, tora.write_tora, True, False, False),
    )
}
SUFFIXES = {".npy": "wan_move", ".pth": "ati", ".pt": "ati", ".txt": "tora"}


def _names() -> str:
    """The format names, for error messages."""
    return ", ".join(FORMATS)


def check_format(name: str, where: str) -> TrackFormat:
    """The format a user named, or a ConfigError-like InputError listing the known ones."""
    if name not in FORMATS:
        raise InputError(f"{where}={name!r} is not a track format; choose one of: {_names()} (or leave it unset to detect it)")
    return FORMATS[name]


def detect_format(path: str | Path) -> str:
    """The format of a track file, from its suffix and, for JSON, its content; an InputError naming the file when unknown."""
    path = Path(path)
    if path.is_dir():
        if (path / "motion_signal.mp4").is_file():
            raise InputError(
                f"{path} is a Time-to-Move folder, which holds a dense motion video, not tracks; use adapters=[time_to_move] "
                f"adapters.time_to_move.folder={path}"
            )
        raise InputError(f"{path} is a folder, not a track file; give one of the track files ({_names()})")
    suffix = path.suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if suffix != ".json":
        raise InputError(
            f"track file {path} has an unknown suffix {suffix or '(none)'!r}; give a .json, .npy (Wan-Move), .pth (ATI) or "
            ".txt (Tora) file, or name its format"
        )
    data = motionforge_json.read_json(path)
    if isinstance(data, dict):
        return "motionforge"
    if spline_editor.splines(data) is not None:
        return "spline_editor_normalized" if spline_editor.looks_normalised(data) else "spline_editor"
    return "motionforge"  # a bare list of tracks; its reader says what is wrong with it


def read_tracks(
    path: str | Path,
    format: str | None = None,
    *,
    canvas: tuple[float, float] | None = None,
    visibility: str | Path | None = None,
) -> tuple[TrackSet, str]:
    """Read a track file in any format (detected unless named): the track set and the format's name.

    ``canvas`` is used where the file says none (and is needed by the normalised SplineEditor
    variant); ``visibility`` names a Wan-Move visibility file other than the tracks' sibling.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"track file not found: {path}; check the path")
    name = check_format(format, "the track format").name if format is not None else detect_format(path)
    tracks = FORMATS[name].read(path, canvas=canvas, visibility=visibility)
    if tracks.canvas is None and canvas is not None:
        tracks.canvas = (float(canvas[0]), float(canvas[1]))
    return tracks, name


def write_tracks(tracks: TrackSet, path: str | Path, format: str | None = None) -> list[Path]:
    """Write a track set in a format (by the output's suffix unless named), atomically: every file or none; returns the files."""
    path = Path(path)
    if format is not None:
        chosen = check_format(format, "the output format")
    elif path.suffix.lower() in SUFFIXES:
        chosen = FORMATS[SUFFIXES[path.suffix.lower()]]
    elif path.suffix.lower() == ".json":
        chosen = FORMATS["motionforge"]
    else:
        raise InputError(f"cannot tell the format to write {path} in from its suffix; name one of: {_names()}")
    if path.is_dir():
        raise InputError(f"the output {path} is a folder; give a file name")
    folder = path.parent
    made = not folder.exists()
    written: list[str] = []

    def target(name: str) -> Path:
        """A temporary path for one output file, remembered for the list returned."""
        written.append(name)
        return outputs.path(name)

    try:
        with AtomicOutputs(folder) as outputs:
            chosen.write(tracks, target, path.name)
    except BaseException as exc:
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        if isinstance(exc, OSError):
            reason = exc.strerror or type(exc).__name__
            raise OutputError(f"cannot write {path} ({reason}); choose a folder you can write to") from exc
        raise
    return [folder / name for name in written]
