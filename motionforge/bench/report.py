"""What a benchmark run writes: raw measurements as JSON lines, a markdown table, plots, and the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

MEASUREMENTS = "measurements.jsonl"
TABLE = "table.md"


def machine(device: torch.device) -> dict[str, Any]:
    """The machine a run measured: CPU model and cores, torch's threads, and the GPU when the device is CUDA."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "system": platform.system(),
    }


def machine_slug(info: dict[str, Any]) -> str:
    """A short file-name label for a machine: 'cpu', or the GPU's name."""
    return "cpu" if not info.get("gpu") else "".join(c if c.isalnum() else "-" for c in info["gpu"]).strip("-")


def cell(value: Any) -> str:
    """A table cell: numbers to 4 significant digits, missing values as '–'."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """The rows as a markdown table with the given columns."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_report(
    folder: Path,
    suite: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    summary: Sequence[str],
    info: dict[str, Any],
    command: str,
) -> list[Path]:
    """Write measurements.jsonl (one JSON object per measurement, with the suite and machine) and table.md; return them."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / MEASUREMENTS).open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({"suite": suite, **row, "machine": info}, sort_keys=True) + "\n")
    where = info["gpu"] or f"{info['cpu']}, {info['cores']} cores"
    lines = [
        f"# Benchmark suite `{suite}`",
        "",
        f"Machine: {where}; torch {info['torch']} ({info['torch_threads']} threads), Python {info['python']}.",
        f"Command: `{command}`",
        "",
        markdown_table(rows, columns),
    ]
    if summary:
        lines += ["", *[f"- {line}" for line in summary]]
    (folder / TABLE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [folder / MEASUREMENTS, folder / TABLE]


def snapshot(files: Sequence[Path], suite: str, info: dict[str, Any], results: Path) -> list[Path]:
    """Copy a run's table, measurements and plots to results/<suite>-<machine>[-<plot>].<ext>, replacing the last snapshot."""
    results.mkdir(parents=True, exist_ok=True)
    prefix = f"{suite}-{machine_slug(info)}"
    for old in results.glob(f"{prefix}.*"):
        old.unlink()
    for old in results.glob(f"{prefix}-*.png"):
        old.unlink()
    copied = []
    for path in files:
        name = f"{prefix}{path.suffix}" if path.name in (MEASUREMENTS, TABLE) else f"{prefix}-{path.name}"
        copied.append(Path(shutil.copyfile(path, results / name)))
    return copied


def group(rows: Sequence[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    """The rows grouped by one column's value, groups and rows in the rows' order."""
    grouped: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped


def series(
    rows: Sequence[dict[str, Any]], label: Callable[[dict[str, Any]], str], x: str, y: str
) -> dict[str, tuple[list[float], list[float]]]:
    """The rows' (x, y) values grouped into one named series per label, in the rows' order."""
    grouped: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        xs, ys = grouped.setdefault(label(row), ([], []))
        xs.append(row[x])
        ys.append(row[y])
    return grouped


def line_plot(path: Path, series: dict[str, tuple[list[float], list[float]]], xlabel: str, ylabel: str, title: str) -> Path:
    """A line plot of named (x, y) series, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        axes.plot(xs, ys, marker="o", label=label)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)
    if series:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return path


def bar_plot(
    path: Path, bars: dict[str, list[float]], groups: list[str], ylabel: str, title: str, line: float | None = None
) -> Path:
    """Grouped bars (one series per key, one group per label), with an optional horizontal reference line, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(len(bars), 1)
    for k, (label, values) in enumerate(bars.items()):
        axes.bar([g + k * width for g in range(len(groups))], values, width=width, label=label)
    axes.set_xticks([g + width * (len(bars) - 1) / 2 for g in range(len(groups))], groups, fontsize="small")
    if line is not None:
        axes.axhline(line, color="black", linestyle="--", linewidth=1)
    axes.set(ylabel=ylabel, title=title)
    axes.grid(alpha=0.3, axis="y")
    if len(bars) > 1:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return path
