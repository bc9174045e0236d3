"""The `preview` suite: frames per second of the warp backbone (the pixel-space preview), 64 frames at 512×512."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from motionforge.bench.report import bar_plot
from motionforge.bench.settings import BenchSettings
from motionforge.core.config import compose_config
from motionforge.core.engine import animate
from motionforge.core.errors import ConfigError

COLUMNS = ["repeat", "num_frames", "size", "render_s", "fps", "total_s"]
TARGET_FPS = 30.0


def run(suite: DictConfig, settings: BenchSettings) -> list[dict[str, Any]]:
    """Animate the bundled sample with its tracks on the warp backbone, once to warm up, then ``repeats`` timed times."""
    if int(suite.repeats) < 1:
        raise ConfigError(f"suite.repeats={suite.repeats} must be at least 1")
    cfg = compose_config(
        [
            "backbone=warp", f"num_frames={suite.num_frames}", f"height={suite.height}", f"width={suite.width}",
            f"device={settings.device_name}", f"seed={settings.seed}", "output.save=false", "progress=false", *suite.overrides,
        ]
    )  # fmt: skip
    animate(cfg)
    rows = []
    for repeat in range(suite.repeats):
        timings = animate(cfg).metadata["timings"]
        rows.append(
            {
                "repeat": repeat,
                "num_frames": suite.num_frames,
                "size": f"{suite.width}×{suite.height}",
                "render_s": timings["render"],
                "fps": round(suite.num_frames / timings["render"], 2),
                "total_s": round(sum(timings.values()), 4),
            }
        )
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The median frames per second of the render, against the goal."""
    fps = statistics.median(r["fps"] for r in rows)
    size, frames = rows[0]["size"], rows[0]["num_frames"]
    return [f"warp preview: median {fps:.1f} frames per second rendering {frames} frames at {size} (goal ≥ {TARGET_FPS:g})"]


def plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Frames per second of each timed repeat, with the goal as a line."""
    return [
        bar_plot(
            folder / "fps.png", {"fps": [r["fps"] for r in rows]}, [f"run {r['repeat'] + 1}" for r in rows],
            "frames per second", "Warp preview speed", line=TARGET_FPS,
        )
    ]  # fmt: skip
