"""The `preview` suite: frames per second of the warp backbone (the pixel-space preview), 64 frames at 512×512.

Each scene is rendered once to warm up, then ``repeats`` timed times. The same run times the floor
a warp preview cannot go under: one OpenCV ``remap`` of a frame (bilinear, float maps) at the
scene's size, so the render's cost is also reported as remaps per frame, a figure that travels
between machines better than seconds do. Last, the default run with every output is made at each
of ``memory_frames`` in its own process, for its peak memory against the number of frames.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from omegaconf import DictConfig

from motionforge.bench.report import bar_plot
from motionforge.bench.runs import animate_in_process
from motionforge.bench.settings import BenchSettings
from motionforge.core.config import compose_config
from motionforge.core.engine import animate
from motionforge.core.errors import ConfigError

COLUMNS = ["scene", "repeat", "num_frames", "size", "render_s", "fps", "remap_ms", "remaps_per_frame", "peak_rss_mb", "threads"]
TARGET_FPS = 60.0
TARGET_MEMORY_RATIO = 1.5  # peak memory at the most frames over that at the fewest
TARGET_REMAPS = 15.0  # the goal; 5 is the stretch
STRETCH_REMAPS = 5.0
REMAP_REPEATS = 200


def remap_seconds(height: int, width: int, repeats: int = REMAP_REPEATS) -> float:
    """The median time of one OpenCV remap of an RGB uint8 frame by float maps (a sub-pixel shift), seconds."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x, map_y = xs + 0.37, ys - 0.61
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(suite: DictConfig, settings: BenchSettings) -> list[dict[str, Any]]:
    """Animate the bundled sample in every scene on the warp backbone: a warm-up, then ``repeats`` timed runs each."""
    if int(suite.repeats) < 1:
        raise ConfigError(f"suite.repeats={suite.repeats} must be at least 1")
    if not suite.scenes:
        raise ConfigError("suite.scenes is empty; give at least one scene, e.g. 'suite.scenes={tracks:[]}'")
    threads = f"torch {torch.get_num_threads()}, opencv {cv2.getNumThreads()}"
    floor = remap_seconds(int(suite.height), int(suite.width))
    rows = []
    for scene, extra in suite.scenes.items():
        cfg = compose_config(
            [
                "backbone=warp", f"num_frames={suite.num_frames}", f"height={suite.height}", f"width={suite.width}",
                f"device={settings.device_name}", f"seed={settings.seed}", "output.save=false", "progress=false",
                *extra, *suite.overrides,
            ]
        )  # fmt: skip
        animate(cfg)
        for repeat in range(suite.repeats):
            render = animate(cfg).metadata["timings"]["render"]
            per_frame = render / suite.num_frames
            rows.append(
                {
                    "scene": scene,
                    "repeat": repeat,
                    "num_frames": suite.num_frames,
                    "size": f"{suite.width}×{suite.height}",
                    "render_s": render,
                    "fps": round(1.0 / per_frame, 2),
                    "remap_ms": round(floor * 1e3, 4),
                    "remaps_per_frame": round(per_frame / floor, 2),
                    "threads": threads,
                }
            )
    for frames in suite.memory_frames:  # the default run with every output, in its own process: its own peak
        folder = settings.folder / "runs" / f"memory-{frames}" if settings.folder else None
        overrides = [
            "backbone=warp", f"num_frames={frames}", f"height={suite.height}", f"width={suite.width}",
            f"device={settings.device_name}", f"seed={settings.seed}", "memory.insist=true", *suite.overrides,
        ]  # fmt: skip
        manifest = animate_in_process(overrides, folder, quiet=False)
        rows.append(
            {
                "scene": "memory",
                "repeat": 0,
                "num_frames": frames,
                "size": f"{suite.width}×{suite.height}",
                "render_s": manifest["timings"]["render"],
                "peak_rss_mb": manifest["peak_memory"]["rss_mb"],
                "threads": threads,
            }
        )
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per scene: the median frames per second and remaps per frame, against the goals; the memory against frames."""
    lines = []
    memory = sorted((r for r in rows if r["scene"] == "memory"), key=lambda r: r["num_frames"])
    if len(memory) >= 2:
        ratio = memory[-1]["peak_rss_mb"] / memory[0]["peak_rss_mb"]
        lines.append(
            f"warp preview, peak memory of the default run with every output: {memory[-1]['peak_rss_mb']:.0f} MB at "
            f"{memory[-1]['num_frames']} frames, {ratio:.2f}× the {memory[0]['peak_rss_mb']:.0f} MB at "
            f"{memory[0]['num_frames']} "
            f"(goal ≤ {TARGET_MEMORY_RATIO:g}×)"
        )
    for scene in dict.fromkeys(r["scene"] for r in rows if r["scene"] != "memory"):
        mine = [r for r in rows if r["scene"] == scene]
        fps = statistics.median(r["fps"] for r in mine)
        remaps = statistics.median(r["remaps_per_frame"] for r in mine)
        lines.append(
            f"warp preview, {scene}: median {fps:.1f} frames per second rendering {mine[0]['num_frames']} frames at "
            f"{mine[0]['size']} (goal ≥ {TARGET_FPS:g}), {remaps:.1f} remaps of a frame per frame "
            f"(one remap {mine[0]['remap_ms']:.2f} ms; goal ≤ {TARGET_REMAPS:g}, stretch ≤ {STRETCH_REMAPS:g}); "
            f"{mine[0]['threads']} threads"
        )
    return lines


def plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Frames per second of each timed repeat, one bar series per scene, with the goal as a line."""
    rows = [r for r in rows if r["scene"] != "memory"]
    scenes = list(dict.fromkeys(r["scene"] for r in rows))
    repeats = sorted({r["repeat"] for r in rows})
    bars = {
        scene: [next(r["fps"] for r in rows if r["scene"] == scene and r["repeat"] == k) for k in repeats] for scene in scenes
    }
    labels = [f"run {k + 1}" for k in repeats]
    return [bar_plot(folder / "fps.png", bars, labels, "frames per second", "Warp preview speed", line=TARGET_FPS)]
