"""A render from the studio: the same config as its command line, through :func:`motionforge.core.engine.animate`, with the
files to take away (the command, the control files, a zip of everything the command needs)."""

from __future__ import annotations

import shutil
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from motionforge.core.errors import MotionforgeError
from motionforge.core.types import Step
from motionforge.studio.preview import run_engine
from motionforge.studio.state import COMMAND_NAME, Controls, command_line

RUN_FLAGS = ["output.frames=true"]  # the render keeps its frames as PNGs, and so does the command
BUNDLE_NAME = "motionforge-run.zip"


class Cancelled(MotionforgeError):
    """The user pressed Cancel during a render."""


@dataclass(frozen=True)
class Rendered:
    """What a render wrote: its run folder and the files shown and offered in the page."""

    run: Path  # the run folder: animation.mp4, flow.mp4, hint.png, frames/, manifest.json
    take: Path  # command.sh and the files it names
    command: str
    video: Path
    flow: Path | None
    hint: Path | None
    bundle: Path


def take_away(controls: Controls, files: Path, take: Path) -> tuple[str, Path]:
    """Copy the files the command names into take/, write command.sh there and zip them all; returns the command and the zip."""
    take.mkdir(parents=True, exist_ok=True)
    command = command_line([*controls.overrides(None), *RUN_FLAGS])
    names = controls.files()
    for name in names:
        shutil.copyfile(files / name, take / name)
    (take / COMMAND_NAME).write_text(command + "\n", encoding="utf-8")
    bundle = take / BUNDLE_NAME
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in [COMMAND_NAME, *names]:
            archive.write(take / name, name)
    return command, bundle


def render(
    controls: Controls,
    files: Path,
    folder: Path,
    cancel: threading.Event,
    progress: Callable[[int, int], None] | None = None,
) -> Rendered:
    """Render the controls with their backbone and sampler into folder/run, and the command that reproduces it into folder/take.

    ``cancel`` is checked after every denoiser call (a Cancelled error then ends the run, its folder removed);
    ``progress(done, total)`` is told of every call.
    """
    controls.write_files(files)
    take = folder / "take"
    command, bundle = take_away(controls, files, take)

    def step(state: Step) -> None:
        if cancel.is_set():
            raise Cancelled("the render was cancelled; nothing of it was kept")
        if progress is not None:
            progress(state.call, state.total)

    run = folder / "run"
    overrides = [*controls.overrides(files), *RUN_FLAGS, f"output.dir={_path(run)}", "progress=false"]
    try:
        run_engine(overrides, callback=step)
        if cancel.is_set():
            raise Cancelled("the render was cancelled; nothing of it was kept")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    flow, hint = run / "flow.mp4", run / "hint.png"
    return Rendered(
        run, take, command, run / "animation.mp4", flow if flow.exists() else None, hint if hint.exists() else None, bundle
    )


def _path(path: Path) -> str:
    """A folder as a quoted Hydra value."""
    from motionforge.core.config import hydra_string

    return hydra_string(str(path))
