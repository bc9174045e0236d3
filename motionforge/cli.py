"""The command line: ``motionforge animate [overrides]``, ``motionforge bench suite=<name>`` and ``motionforge plugins [--json]``.

``animate`` and ``bench`` are thin ``@hydra.main`` wrappers around :func:`run` and :func:`bench_run`, so Hydra's flags (``--cfg job``,
``-m`` sweeps, ``--help``, ``hydra.run.dir=…``) behave as in any Hydra app. Errors the user can
cause print ``error: <one sentence>`` and exit with status 2; ``MOTIONFORGE_DEBUG=1`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from motionforge.core.config import CONFIG_NAME, default_config, explain_hydra_error, store_schema
from motionforge.core.engine import animate
from motionforge.core.errors import MotionforgeError
from motionforge.core.registry import get_registry, list_plugins, motionforge_version

USAGE = """usage: motionforge <command> [arguments]

commands:
  animate [key=value ...]   animate an image (Hydra overrides; --cfg job prints the config, -m sweeps)
  bench suite=<name> [...]  run a benchmark suite: backbones, overhead, control, kernels, preview
  plugins [--json]          list the installed plugins and what they register

options:
  --version                 print motionforge's version
  -h, --help                show this help

examples:
  motionforge animate
  motionforge animate image=photo.jpg adapters.trajectory.file=tracks.json num_frames=24 fps=12
  motionforge animate adapters.trajectory.paths='[[[100,120],[180,120]]]'
  motionforge bench suite=preview
"""


def _debug() -> bool:
    """True when MOTIONFORGE_DEBUG asks for tracebacks instead of one-line errors."""
    return os.environ.get("MOTIONFORGE_DEBUG", "") not in ("", "0")


def _fail(message: str) -> int:
    """Print a one-line error and return the exit status for errors the user caused."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def _remove_hydra_files(run_dir: Path) -> None:
    """Remove what Hydra wrote into a failed run's folder, and the folder itself when that leaves it empty."""
    if not run_dir.is_dir():
        return
    shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
    for log_file in run_dir.glob("*.log"):
        log_file.unlink(missing_ok=True)
    if not any(run_dir.iterdir()):
        run_dir.rmdir()


def run(cfg: DictConfig) -> Path | None:
    """Run one animate job under Hydra, print its run folder, and clean up after a user error."""
    from hydra.core.hydra_config import HydraConfig

    hydra_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        video = animate(cfg)
    except MotionforgeError as exc:
        _remove_hydra_files(hydra_dir)
        if _debug():
            raise
        raise SystemExit(_fail(str(exc))) from None
    run_dir = video.metadata.get("run_dir")
    print(run_dir if run_dir else "output.save=false: nothing written")
    return Path(run_dir) if run_dir else None


@hydra.main(version_base="1.3", config_path="pkg://motionforge.conf", config_name=CONFIG_NAME)
def _hydra_animate(cfg: DictConfig) -> None:
    """Hydra's entry point for ``motionforge animate``."""
    run(cfg)


def bench_run(cfg: DictConfig) -> None:
    """Run one benchmark suite under Hydra, print its run folder, and clean up after a user error."""
    from hydra.core.hydra_config import HydraConfig

    from motionforge.bench.app import bench

    hydra_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        bench(cfg, hydra_dir)
    except MotionforgeError as exc:
        _remove_hydra_files(hydra_dir)
        if _debug():
            raise
        raise SystemExit(_fail(str(exc))) from None
    print(hydra_dir)


@hydra.main(version_base="1.3", config_path="pkg://motionforge.conf", config_name="bench")
def _hydra_bench(cfg: DictConfig) -> None:
    """Hydra's entry point for ``motionforge bench``."""
    bench_run(cfg)


def animate_command(overrides: Sequence[str]) -> int:
    """``motionforge animate``: hand the overrides to Hydra and report errors in one line."""
    return hydra_command(_hydra_animate, "animate", overrides)


def bench_command(overrides: Sequence[str]) -> int:
    """``motionforge bench``: hand the overrides to Hydra and report errors in one line."""
    return hydra_command(_hydra_bench, "bench", overrides)


def hydra_command(app: Callable[[], None], name: str, overrides: Sequence[str]) -> int:
    """Run a Hydra app with the overrides as its command line; errors the user caused are one line and status 2."""
    saved_argv, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let Hydra's errors reach us, to print them in one line
    sys.argv = [f"motionforge-{name}", *overrides]
    try:
        get_registry()
        store_schema()
        app()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MotionforgeError as exc:
        if _debug():
            raise
        return _fail(str(exc))
    except (HydraException, OmegaConfBaseException) as exc:
        if _debug():
            raise
        GlobalHydra.instance().clear()
        message = explain_hydra_error(exc, default_config() if name == "animate" else None)
        return _fail(message.replace("motionforge animate", f"motionforge {name}"))
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
    header = ["plugin", "version", "adapters", "backbones", "samplers"]
    table = [header] + [
        [r["name"], r["version"], _cell(r["adapters"]), _cell(r["backbones"]), _cell(r["samplers"])] for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``motionforge`` command."""
    args = list(sys.argv[1:] if argv is None else argv)
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
    return _fail(
        f"unknown command {command!r}; use 'motionforge animate', 'motionforge bench' or 'motionforge plugins' (see motionforge --help)"
    )


def console() -> None:
    """The console script: run :func:`main` and exit with its status."""
    sys.exit(main())
