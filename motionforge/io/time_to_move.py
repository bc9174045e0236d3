"""Time-to-Move's input folder: ``first_frame.png``, ``mask.mp4``, ``motion_signal.mp4`` and ``prompt.txt``.

TTM's tools (cut-and-drag, camera) write one such folder per example: the picture, a crude
animation of it (the motion signal), the mask of what moves in each frame of that animation, and
the text prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from motionforge.core.errors import InputError
from motionforge.core.places import user_path

REQUIRED = ("first_frame.png", "mask.mp4", "motion_signal.mp4")


@dataclass(frozen=True)
class TimeToMoveFolder:
    """The files of one Time-to-Move example, checked to be there, and its prompt ('' when it has no prompt.txt)."""

    folder: Path
    first_frame: Path
    mask: Path
    motion_signal: Path
    prompt: str


def read_folder(folder: str | Path) -> TimeToMoveFolder:
    """Check a Time-to-Move folder and read its prompt; an InputError naming the folder and what it lacks."""
    path = user_path(folder)
    if not path.is_dir():
        raise InputError(f"Time-to-Move folder not found: {folder}; give the folder holding {', '.join(REQUIRED)} and prompt.txt")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise InputError(
            f"Time-to-Move folder {folder} has no {', '.join(missing)}; it must hold {', '.join(REQUIRED)} (and prompt.txt)"
        )
    prompt_file = path / "prompt.txt"
    try:
        prompt = " ".join(prompt_file.read_text(encoding="utf-8").split()) if prompt_file.is_file() else ""
    except UnicodeDecodeError as exc:
        raise InputError(f"prompt.txt in Time-to-Move folder {folder} is not UTF-8 text; save it as UTF-8") from exc
    return TimeToMoveFolder(path, path / "first_frame.png", path / "mask.mp4", path / "motion_signal.mp4", prompt)
