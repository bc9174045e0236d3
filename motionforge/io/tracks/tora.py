"""Tora's text tracks: one ``x,y`` per line on a 256 × 256 canvas; motionforge also reads and writes several, blank-line separated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from motionforge.core.errors import InputError
from motionforge.io.tracks.trackset import TrackSet, check_array, gather

CANVAS = (256.0, 256.0)
LAYOUT = "one 'x,y' point per line (a blank line between tracks)"


def read_tora(path: str | Path, **_: Any) -> TrackSet:
    """Read Tora's text tracks: every block of 'x,y' lines is one track, on the 256 × 256 canvas."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"Tora track file {path} is not a UTF-8 text file; it must hold {LAYOUT}") from exc
    blocks: list[list[list[float]]] = [[]]
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            if blocks[-1]:
                blocks.append([])
            continue
        parts = line.replace(" ", "").strip("()[]").split(",")
        try:
            if len(parts) != 2:
                raise ValueError
            blocks[-1].append([float(parts[0]), float(parts[1])])
        except ValueError:
            raise InputError(f"line {number} of Tora track file {path} is {line[:40]!r}; it must hold {LAYOUT}") from None
    tracks = [check_array(block, str(path), "Tora track file") for block in blocks if block]
    if not tracks:
        raise InputError(f"Tora track file {path} holds no points; it must hold {LAYOUT}")
    return gather(tracks, None, CANVAS)


def write_tora(tracks: TrackSet, target: Callable[[str], Path], name: str) -> None:
    """Write Tora's text tracks on the 256 × 256 canvas (strength applied; visibility is not kept)."""
    if tracks.canvas is None:
        raise InputError(
            "Tora's tracks are on a 256x256 canvas, and these tracks' canvas is not known; give it with --canvas WxH"
        )
    flat = tracks.baked().rescaled(CANVAS)
    blocks = ["\n".join(f"{x:.3f},{y:.3f}" for x, y in flat.points(n)) for n in range(flat.num_tracks)]
    target(name).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
