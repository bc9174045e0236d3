"""Run one benchmark suite from its Hydra config and write its measurements, table and plots into the run folder."""

from __future__ import annotations

import importlib
import shlex
import sys
from pathlib import Path
from types import ModuleType

from omegaconf import DictConfig

from motionforge.bench.report import machine, snapshot, write_report
from motionforge.bench.settings import BenchSettings
from motionforge.core.config import resolve_device
from motionforge.core.errors import ConfigError

SUITES = ("backbones", "overhead", "control", "kernels", "preview", "toy")
RESULTS = Path("benchmarks") / "results"  # the committed snapshots, relative to the repository root
PRIVATE = ("hydra.run.dir=", "hydra.sweep.dir=", "hydra.sweep.subdir=")  # left out of the recorded command


def suite_module(name: str) -> ModuleType:
    """The module of a suite by name; one sentence naming the suites otherwise."""
    if name not in SUITES:
        raise ConfigError(f"suite.name={name} is not a benchmark suite; choose one of: {', '.join(SUITES)}")
    return importlib.import_module(f"motionforge.bench.suites.{name}")


def bench(cfg: DictConfig, folder: Path) -> list[Path]:
    """Run the configured suite and write measurements.jsonl, table.md and its plots into folder (and a snapshot when asked)."""
    suite = suite_module(cfg.suite.name)
    device = resolve_device(cfg.device)
    settings = BenchSettings(device=device, device_name=str(cfg.device), seed=int(cfg.seed), folder=folder)
    rows = suite.run(cfg.suite, settings)
    info = machine(device)
    kept = [arg for arg in sys.argv[1:] if not arg.startswith(PRIVATE)]  # where it wrote is not how it measured
    command = "motionforge bench " + " ".join(shlex.quote(arg) for arg in kept)
    files = write_report(folder, cfg.suite.name, rows, suite.COLUMNS, suite.summary(rows), info, command.strip())
    files += suite.plots(rows, folder)
    if cfg.snapshot:
        snapshot(files, cfg.suite.name, info, RESULTS)
    return files
