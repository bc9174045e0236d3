"""The `kernels` suite: splat, warp and temporal attention per backend at the backbones' sizes (motionforge.bench.kernels)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from motionforge.bench import kernels
from motionforge.bench.report import bar_plot
from motionforge.bench.settings import BenchSettings
from motionforge.core.errors import ConfigError

COLUMNS = ["op", "case", "backend", "microseconds", "gb_per_s", "floor_fraction", "speedup", "note"]
NO_GPU = "no CUDA device here: skipped the GPU timings (pass device=cpu to time the backends that run on a CPU)"

log = logging.getLogger(__name__)
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def run(suite: DictConfig, settings: BenchSettings) -> list[dict[str, Any]]:
    """Time every case on every backend (the reference first), as benchmarks/kernels.py does."""
    if int(suite.repeats) < 1:
        raise ConfigError(f"suite.repeats={suite.repeats} must be at least 1")
    if suite.dtype not in DTYPES:
        raise ConfigError(f"suite.dtype={suite.dtype} is not one of: {', '.join(DTYPES)}")
    backends = list(suite.backends)
    if not backends or backends[0] != "reference":
        raise ConfigError(f"suite.backends={backends} must start with reference (the speed-ups are over it)")
    if settings.device.type != "cuda" and settings.device_name == "auto":
        log.warning("kernels: %s", NO_GPU)
        return [{"op": "-", "case": "-", "backend": "-", "note": NO_GPU}]
    results = kernels.run_suite(settings.device, DTYPES[suite.dtype], backends, float(suite.scale), int(suite.repeats))
    return [asdict(result) for result in results]


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The best speed-up over the reference of each backend that ran (or why nothing ran)."""
    lines = [r["note"] for r in rows if r["op"] == "-"]
    rows = [r for r in rows if r["op"] != "-"]
    for backend in dict.fromkeys(r["backend"] for r in rows if r["backend"] != "reference"):
        speedups = [r["speedup"] for r in rows if r["backend"] == backend and r["speedup"]]
        if speedups:
            lines.append(f"{backend}: speed-up over the reference from {min(speedups):.2f}× to {max(speedups):.2f}×")
    return lines


def plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Microseconds per case, one bar per backend (none when nothing ran)."""
    rows = [r for r in rows if r["op"] != "-"]
    if not rows:
        return []
    cases = list(dict.fromkeys(f"{r['op']}\n{r['case']}" for r in rows))
    bars: dict[str, list[float]] = {}
    for backend in dict.fromkeys(r["backend"] for r in rows):
        timed = {f"{r['op']}\n{r['case']}": r["microseconds"] or 0.0 for r in rows if r["backend"] == backend}
        bars[backend] = [timed.get(case, 0.0) for case in cases]
    return [bar_plot(folder / "kernels.png", bars, cases, "microseconds", "Kernel time per case")]
