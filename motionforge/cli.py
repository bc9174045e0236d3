"""The command line: ``motionforge animate [overrides]``, ``motionforge bench suite=<name>``, ``motionforge plugins [--json]``
``motionforge weights check PATH``, ``motionforge tracks convert IN OUT``, ``motionforge toy make DIR``,
``motionforge train model=NAME`` and ``motionforge studio``.

``animate``, ``bench`` and ``train`` are thin ``@hydra.main`` wrappers around :func:`run`, :func:`bench_run` and :func:`train_run`, so Hydra's flags (``--cfg job``,
``-m`` sweeps, ``--help``, ``hydra.run.dir=…``) behave as in any Hydra app. Errors the user can
cause print ``error: <one sentence>`` and exit with status 2; ``MOTIONFORGE_DEBUG=1`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from motionforge.core import runfolders
from motionforge.core.config import CONFIG_NAME, default_config, explain_hydra_error, store_schema
from motionforge.core.engine import animate
from motionforge.core.errors import MotionforgeError
from motionforge.core.registry import get_registry, list_plugins, motionforge_version

USAGE = """usage: motionforge <command> [arguments]

commands:
  animate [key=value ...]   animate an image (Hydra overrides; --cfg job prints the config, -m sweeps)
  bench suite=<name> [...]  run a benchmark suite: backbones, overhead, control, kernels, preview
  plugins [--json]          list the installed plugins and what they register
  weights check PATH [...]  say which released module a weights file or folder holds, and whether every key and shape fits
  tracks convert IN OUT     convert a track file between formats (motionforge, spline_editor, wan_move, ati, tora, ...)
  toy make DIR [...]        write a toy dataset: procedural clips of sprites with their tracks and masks
  train model=NAME [...]    train a toy-world model (vae, unet, adapter) with accelerate (Hydra overrides)
  studio [--host H] [--port P] [--allow DIR]
                            a local web page: draw the motion, watch the preview, render, take the command away

options:
  --version                 print motionforge's version
  -h, --help                show this help

examples:
  motionforge animate
  motionforge animate image=photo.jpg adapters.trajectory.file=tracks.json num_frames=24 fps=12
  motionforge animate adapters.trajectory.paths='[[[100,120],[180,120]]]'
  motionforge bench suite=preview
  motionforge studio
"""


def _debug() -> bool:
    """True when MOTIONFORGE_DEBUG asks for tracebacks instead of one-line errors."""
    return os.environ.get("MOTIONFORGE_DEBUG", "") not in ("", "0")


def _fail(message: str) -> int:
    """Print a one-line error and return the exit status for errors the user caused."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def _job_label() -> str:
    """'sweep job 3 (seed=2 num_frames=1)' inside a sweep, '' in a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return ""
    overrides = " ".join(o for o in hydra_cfg.overrides.task if not o.startswith("hydra."))
    return f"sweep job {hydra_cfg.job.num} ({overrides})"


def _sweep_status() -> str:
    """'; jobs 0-2 are complete in multirun/…' for the sweep job running now ('' outside sweeps)."""
    from hydra.core.hydra_config import HydraConfig

    num = int(HydraConfig.get().job.num)
    where = HydraConfig.get().sweep.dir
    if num == 0:
        return "; no job of the sweep completed"
    return f"; job 0 is complete in {where}" if num == 1 else f"; jobs 0-{num - 1} are complete in {where}"


def _run_job(cfg: DictConfig, job: Callable[[Path], Any]) -> Any:
    """Run one Hydra job of ours; on a failure, remove what it wrote and report a user error in one line naming the sweep job."""
    from hydra.core.hydra_config import HydraConfig

    job_dir = Path(HydraConfig.get().runtime.output_dir)
    runfolders.STATE.job = _job_label()
    runfolders.STATE.status = _sweep_status() if runfolders.STATE.job else ""
    runfolders.STATE.started, runfolders.STATE.job_dir = True, job_dir
    try:
        return job(job_dir)
    except MotionforgeError as exc:
        runfolders.discard(job_dir)
        if _debug():
            raise
        label = runfolders.STATE.job
        message = f"{label} failed: {exc}{runfolders.STATE.status}" if label else str(exc)
        raise SystemExit(_fail(message)) from None
    except BaseException:
        runfolders.discard(job_dir)
        raise
    finally:
        runfolders.STATE.job_dir = None


def run(cfg: DictConfig) -> Path | None:
    """Run one animate job under Hydra, print its run folder, and clean up after a failure (or when nothing is saved)."""

    def job(job_dir: Path) -> Path | None:
        video = animate(cfg)
        if not cfg.output.save:
            runfolders.discard(job_dir)
            print("output.save=false: nothing written")
            return None
        run_dir = video.metadata["run_dir"]
        print(run_dir)
        return Path(run_dir)

    return _run_job(cfg, job)


@hydra.main(version_base="1.3", config_path="pkg://motionforge.conf", config_name=CONFIG_NAME)
def _hydra_animate(cfg: DictConfig) -> None:
    """Hydra's entry point for ``motionforge animate``."""
    run(cfg)


def bench_run(cfg: DictConfig) -> None:
    """Run one benchmark suite under Hydra, print its run folder, and clean up after a failure."""
    from motionforge.bench.app import bench

    def job(job_dir: Path) -> None:
        bench(cfg, job_dir)
        print(job_dir)

    _run_job(cfg, job)


@hydra.main(version_base="1.3", config_path="pkg://motionforge.conf", config_name="bench")
def _hydra_bench(cfg: DictConfig) -> None:
    """Hydra's entry point for ``motionforge bench``."""
    bench_run(cfg)


def train_run(cfg: DictConfig) -> None:
    """Run one training task under Hydra and print its model folder; a failure removes only what Hydra wrote (checkpoints stay)."""
    from motionforge.train.app import run_training

    def job(job_dir: Path) -> None:
        print(run_training(cfg, job_dir))

    _run_job(cfg, job)


@hydra.main(version_base="1.3", config_path="pkg://motionforge.conf", config_name="train")
def _hydra_train(cfg: DictConfig) -> None:
    """Hydra's entry point for ``motionforge train``."""
    train_run(cfg)


def train_command(overrides: Sequence[str]) -> int:
    """``motionforge train``: hand the overrides to Hydra and report errors in one line."""
    return hydra_command(_hydra_train, "train", overrides)


def animate_command(overrides: Sequence[str]) -> int:
    """``motionforge animate``: hand the overrides to Hydra and report errors in one line."""
    return hydra_command(_hydra_animate, "animate", overrides)


def bench_command(overrides: Sequence[str]) -> int:
    """``motionforge bench``: hand the overrides to Hydra and report errors in one line."""
    return hydra_command(_hydra_bench, "bench", overrides)


def hydra_command(app: Callable[[], None], name: str, overrides: Sequence[str]) -> int:
    """Run a Hydra app with the overrides as its command line; errors the user caused are one line and status 2.

    Ctrl-C is one line and status 130; whatever the command had written of the interrupted run is removed.
    """
    saved_argv, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let Hydra's errors reach us, to print them in one line
    sys.argv = [f"motionforge-{name}", *overrides]
    runfolders.reset()
    runfolders.STATE.app = name
    try:
        get_registry()
        store_schema()
        app()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except runfolders.Refused as exc:
        runfolders.discard()
        if _debug():
            raise exc.error from None
        return _fail(str(exc.error))
    except KeyboardInterrupt:
        runfolders.discard()
        if _debug():
            raise
        label = runfolders.STATE.job
        where = f" in {label}{runfolders.STATE.status}" if label else "; nothing of this run was kept"
        print(f"interrupted (Ctrl-C){where}", file=sys.stderr)
        return 130
    except MotionforgeError as exc:
        runfolders.discard()
        if _debug():
            raise
        return _fail(str(exc))
    except (HydraException, OmegaConfBaseException) as exc:
        runfolders.discard()
        if _debug():
            raise
        GlobalHydra.instance().clear()
        compose = default_config if name == "animate" else None
        return _fail(explain_hydra_error(exc, overrides, compose, app=name))
    except OSError as exc:
        if runfolders.STATE.started or runfolders.STATE.folder is None:
            raise  # not Hydra's own files: a bug keeps its traceback
        folder = runfolders.STATE.folder
        runfolders.discard()
        if _debug():
            raise
        reason = exc.strerror or exc
        return _fail(f"could not write Hydra's files into the run folder {folder} ({reason}); choose a folder you can write")
    finally:
        sys.argv = saved_argv
        if saved_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full_error
        GlobalHydra.instance().clear()
    return 0


def _cell(values: list[str]) -> str:
    """A table cell listing names, or '-' when there are none."""
    return ", ".join(values) if values else "-"


def plugins_command(argv: Sequence[str]) -> int:
    """``motionforge plugins``: every plugin, its version and what it registers (a table, or JSON)."""
    parser = argparse.ArgumentParser(prog="motionforge plugins", description="List the installed plugins.")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    args = parser.parse_args(list(argv))
    try:
        rows = list_plugins()
    except MotionforgeError as exc:
        if _debug():
            raise
        return _fail(str(exc))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ["plugin", "version", "adapters", "backbones", "samplers", "status"]
    table = [header] + [
        [r["name"], r["version"], _cell(r["adapters"]), _cell(r["backbones"]), _cell(r["samplers"]),
         f"broken: {r['broken']}" if r["broken"] else "ok"]
        for r in rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def weights_command(argv: Sequence[str]) -> int:
    """``motionforge weights check PATH …``: which released module each path holds, and whether every key and shape matches.

    Exit status 0 when every path matches its module, 1 when one does not (or is no known module),
    2 when a path is missing or unreadable.
    """
    parser = argparse.ArgumentParser(
        prog="motionforge weights", description="Check released module weights by their keys and shapes (no data is read)."
    )
    actions = parser.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="say which module each path holds and whether every key and shape matches")
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a weights file or folder")
    check.add_argument("--json", action="store_true", help="print JSON for machines")
    args = parser.parse_args(list(argv))
    from motionforge.modules import catalog

    verdicts = []
    for path in args.paths:
        try:
            verdicts.append(catalog.check(path))
        except MotionforgeError as exc:
            if _debug():
                raise
            return _fail(str(exc))
    if args.json:
        print(json.dumps([verdict.record() for verdict in verdicts], indent=2))
    else:
        for verdict in verdicts:
            print(verdict.line())
    return max(verdict.status for verdict in verdicts)


def studio_command(argv: Sequence[str]) -> int:
    """``motionforge studio``: serve the drawing page on a local address (127.0.0.1 unless --host says otherwise)."""
    from motionforge.studio import DEFAULT_HOST, DEFAULT_PORT, launch

    parser = argparse.ArgumentParser(
        prog="motionforge studio", description="Draw the motion in a browser, preview and render it."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"the address to serve on ({DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the port ({DEFAULT_PORT})")
    parser.add_argument(
        "--allow", type=Path, action="append", default=[], metavar="DIR",
        help="a folder whose files plugin settings typed in the page may name (model folders); repeat for more",
    )  # fmt: skip
    args = parser.parse_args(list(argv))
    missing = [str(folder) for folder in args.allow if not folder.is_dir()]
    if missing:
        return _fail(f"--allow {missing[0]} is not a folder; give a folder that exists")
    if not 0 < args.port < 65536:
        return _fail(f"--port {args.port} is not a port; give a number from 1 to 65535")
    try:
        launch(args.host, args.port, args.allow)
    except OSError as exc:
        if _debug():
            raise
        reason = exc.strerror or "the port is in use"
        return _fail(
            f"the studio cannot listen on {args.host}:{args.port} ({reason}); choose another --port, or stop what uses it"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``motionforge`` command (Ctrl-C anywhere: one line, status 130)."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        if _debug():
            raise
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return 130


def _main(args: list[str]) -> int:
    """Dispatch a command line to its command."""
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "--version":
        print(f"motionforge {motionforge_version()}")
        return 0
    if command == "animate":
        return animate_command(rest)
    if command == "bench":
        return bench_command(rest)
    if command == "plugins":
        return plugins_command(rest)
    if command == "weights":
        return weights_command(rest)
    if command == "train":
        return train_command(rest)
    if command == "toy":
        from motionforge.toy_cli import toy_command

        return toy_command(rest)
    if command == "tracks":
        from motionforge.tracks_cli import tracks_command

        return tracks_command(rest)
    if command == "studio":
        return studio_command(rest)
    return _fail(
        f"unknown command {command!r}; use 'motionforge animate', 'motionforge bench', 'motionforge plugins', "
        "'motionforge weights check', 'motionforge tracks convert', 'motionforge toy make', 'motionforge train' "
        "or 'motionforge studio' (see motionforge --help)"
    )


def console() -> None:
    """The console script: run :func:`main` and exit with its status."""
    sys.exit(main())
