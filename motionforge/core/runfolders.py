"""The folders a Hydra run of ours writes: chosen by ``output.dir`` (Hydra's files included), checked before any work,
and removed again, with every folder the run made, when it fails, is interrupted or saves nothing.

``conf/config.yaml`` sets ``hydra.run.dir`` and ``hydra.sweep.dir`` through the ``motionforge.run_dir``
resolver and installs :class:`RunFolders` as a Hydra callback: before Hydra makes the folder, the
callback records which folders do not exist yet, makes them and writes a probe file there, so a
place that cannot be written is one sentence before anything runs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from motionforge.core.errors import ConfigError, MotionforgeError
from motionforge.core.places import missing_folders, prepare_folder, remove_folders, user_path

HYDRA_FILES = (".hydra", "multirun.yaml")
_SCRATCH = Path(tempfile.gettempdir()) / f"motionforge-nothing-saved-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Refused(BaseException):
    """A run refused before it started (its folder cannot be made); carries the one-sentence error past Hydra's callbacks."""

    def __init__(self, error: MotionforgeError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _State:
    """What the current Hydra run (or sweep) made: its folder and the folders created for it, outermost first."""

    folder: Path | None = None
    made: list[Path] = field(default_factory=list)
    sweep: bool = False
    started: bool = False  # a job's task function has started (Hydra's own files are written)
    app: str = ""  # the command running: animate | bench
    job_dir: Path | None = None  # the folder of the job running now, while it runs
    job: str = ""  # 'sweep job 3 (seed=2)' while a sweep job runs
    status: str = ""  # '; jobs 0-2 are complete in …' for that job


STATE = _State()


def run_dir(save: Any, chosen: Any, default: str) -> str:
    """The ``motionforge.run_dir`` resolver: a scratch folder when nothing is saved, else output.dir, else Hydra's default."""
    if save is False or str(save).lower() == "false":
        return str(_SCRATCH)
    if chosen not in (None, ""):
        return str(user_path(str(chosen)))
    return default


def register_resolver() -> None:
    """Register ``motionforge.run_dir`` with OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver("motionforge.run_dir"):
        OmegaConf.register_new_resolver("motionforge.run_dir", run_dir)


def _remove_scratch() -> None:
    """Remove the scratch folder of runs that saved nothing, at exit."""
    shutil.rmtree(_SCRATCH, ignore_errors=True)


atexit.register(_remove_scratch)


def _prepare(config: DictConfig, folder_key: str, sweep: bool) -> None:
    """Record, make and probe the run's (or sweep's) folder; a place that cannot be written is refused."""
    folder = Path(str(OmegaConf.select(config, folder_key)))
    chosen = OmegaConf.select(config, "output.dir", default=None)
    saving = OmegaConf.select(config, "output.save", default=True) is not False
    given = any(str(o).startswith(f"{folder_key}=") for o in OmegaConf.select(config, "hydra.overrides.hydra", default=[]) or [])
    key = "output.dir" if chosen and saving else (folder_key if given else None)
    if chosen and saving and Path(os.path.abspath(folder)) != Path(os.path.abspath(user_path(str(chosen)))):
        raise Refused(ConfigError(f"output.dir={chosen} and {folder_key}={folder} name different folders; give only one of them"))
    STATE.folder, STATE.sweep, STATE.made = folder, sweep, missing_folders(folder)
    try:
        prepare_folder(folder, key)
    except MotionforgeError as exc:
        STATE.made = []
        raise Refused(exc) from exc


class RunFolders(Callback):
    """Hydra callback: checks the run's folder before Hydra makes it, and remembers what it had to make."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before a single run: make and probe hydra.run.dir."""
        _prepare(config, "hydra.run.dir", sweep=False)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before a sweep: make and probe hydra.sweep.dir."""
        _prepare(config, "hydra.sweep.dir", sweep=True)


def remove_hydra_files(folder: Path) -> None:
    """Remove what Hydra wrote into a run folder (.hydra/, the log, multirun.yaml), and the folder when that empties it."""
    if not folder.is_dir():
        return
    for name in HYDRA_FILES:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists():
            target.unlink(missing_ok=True)
    for log_file in folder.glob("*.log"):
        log_file.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


def discard(job_folder: Path | None = None) -> None:
    """Undo a failed, interrupted or nothing-saved run: its job folder's Hydra files, and every folder it made that is left empty.

    In a sweep, the sweep's folder (and multirun.yaml) goes only when no other job is left in it.
    """
    scratch = _SCRATCH.resolve()
    if job_folder is not None:
        remove_hydra_files(job_folder)
        if job_folder.resolve() == scratch or scratch in job_folder.resolve().parents:
            shutil.rmtree(job_folder, ignore_errors=True)
    folder = STATE.folder
    if folder is None:
        return
    if folder.is_dir() and (not STATE.sweep or not any(p.name not in HYDRA_FILES for p in folder.iterdir())):
        remove_hydra_files(folder)
    if folder.resolve() == scratch:
        shutil.rmtree(folder, ignore_errors=True)
    remove_folders(STATE.made)


def reset() -> None:
    """Forget the current run's folders (a new command starts)."""
    STATE.folder, STATE.made, STATE.sweep, STATE.started, STATE.job, STATE.status = None, [], False, False, "", ""
    STATE.app, STATE.job_dir = "", None
