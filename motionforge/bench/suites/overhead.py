"""The `overhead` suite: the engine against the bare diffusers pipeline with the same weights, seed and steps, A B A B.

Both sides load the same local folders (tiny random ones saved to a temporary folder unless
``suite.folders`` names real checkpoints) and are warmed up once before the timed pairs. The
engine runs with no controls and the single sampler (and ``selective_noising=false`` for
AnimateDiff; Wan against WanImageToVideoPipeline, the tiny folder being wan_tiny's 2.1 layout),
which is the configuration that reproduces the pipeline's video; each pair records
both wall times, their ratio, and the largest pixel difference between the two videos.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from omegaconf import DictConfig
from PIL import Image

from motionforge.backbones.diffusion.loading import resolve_dtype
from motionforge.bench.report import group, line_plot, series
from motionforge.bench.settings import BenchSettings
from motionforge.core.config import check_run, compose_config
from motionforge.core.engine import animate, make_context
from motionforge.core.errors import ConfigError

COLUMNS = ["backbone", "num_frames", "height", "width", "steps", "pair", "engine_s", "pipeline_s", "ratio", "max_diff_255"]
TARGET = 1.05
BACKBONES = ("animatediff", "svd", "wan")


def run(suite: DictConfig, settings: BenchSettings) -> list[dict[str, Any]]:
    """Time ``repeats`` interleaved pairs per backbone."""
    if int(suite.repeats) < 1:
        raise ConfigError(f"suite.repeats={suite.repeats} must be at least 1")
    unknown = [b for b in suite.backbones if b not in BACKBONES]
    if unknown:
        raise ConfigError(f"suite.backbones has {unknown}; the overhead suite compares: {', '.join(BACKBONES)}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for backbone in suite.backbones:
            folders = checkpoint_folders(backbone, suite, Path(scratch))
            engine, pipeline = sides(backbone, folders, suite, settings)
            engine(), pipeline()  # warm-up: loading, caches, first-call costs
            for pair in range(suite.repeats):
                engine_s, engine_frames = timed(engine, settings.device)
                pipeline_s, pipeline_frames = timed(pipeline, settings.device)
                rows.append(
                    {
                        "backbone": backbone,
                        "num_frames": int(suite.num_frames[backbone]),
                        "height": int(suite.height),
                        "width": int(suite.width),
                        "steps": int(suite.steps),
                        "pair": pair,
                        "engine_s": round(engine_s, 4),
                        "pipeline_s": round(pipeline_s, 4),
                        "ratio": round(engine_s / pipeline_s, 4),
                        "max_diff_255": int(np.abs(engine_frames.astype(int) - pipeline_frames.astype(int)).max()),
                    }
                )
    return rows


def checkpoint_folders(backbone: str, suite: DictConfig, scratch: Path) -> dict[str, Path]:
    """The folders to load: the user's (suite.folders.svd, .animatediff, .motion_adapter and .wan), else tiny ones saved to scratch."""
    from motionforge.backbones.diffusion.tiny import save_tiny_motion_adapter, save_tiny_sd, save_tiny_svd
    from motionforge.backbones.diffusion.tiny_wan import save_tiny_wan

    given = suite.folders
    if backbone == "wan":
        return {"pretrained": Path(given.wan) if given.get("wan") else save_tiny_wan(scratch / "wan")}
    if backbone == "svd":
        return {"pretrained": Path(given.svd) if given.svd else save_tiny_svd(scratch / "svd")}
    return {
        "pretrained": Path(given.animatediff) if given.animatediff else save_tiny_sd(scratch / "sd15"),
        "motion_adapter": Path(given.motion_adapter) if given.motion_adapter else save_tiny_motion_adapter(scratch / "adapter"),
    }


def sides(
    backbone: str, folders: dict[str, Path], suite: DictConfig, settings: BenchSettings
) -> tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]:
    """The engine's run and the pipeline's run, each returning uint8 frames [F, H, W, 3]."""
    frames = suite.num_frames[backbone]
    overrides = [
        f"backbone={backbone}", *(f"backbone.{key}={path}" for key, path in folders.items()), "adapters=[]", "sampler=single",
        f"num_frames={frames}", f"steps={suite.steps}", f"height={suite.height}", f"width={suite.width}", f"seed={settings.seed}",
        f"device={settings.device_name}", "output.save=false", "progress=false",
    ]  # fmt: skip
    if backbone == "animatediff":
        overrides += ["backbone.selective_noising=false", f"prompt={suite.prompt}"]
    if backbone == "wan":
        overrides += [f"prompt={suite.prompt}"]
    cfg = compose_config(overrides)
    context, _ = make_context(check_run(cfg))
    picture = Image.fromarray(rearrange((context.image.cpu() * 255).round().byte(), "c h w -> h w c").numpy())
    dtype = resolve_dtype("auto", settings.device)
    common = {
        "num_frames": frames, "height": suite.height, "width": suite.width, "num_inference_steps": suite.steps, "output_type": "np",
    }  # fmt: skip
    if backbone == "svd":
        from diffusers import StableVideoDiffusionPipeline

        pipe = StableVideoDiffusionPipeline.from_pretrained(folders["pretrained"], dtype=dtype, local_files_only=True)
        call = {"image": picture, **common}
    elif backbone == "wan":
        from motionforge.backbones.diffusion.wan import WanBackbone
        from motionforge.backbones.diffusion.wan_folder import diffusers_pipeline

        pipe = diffusers_pipeline(folders["pretrained"], resolve_dtype("auto", settings.device, WanBackbone.cuda_dtype))
        call = {"image": picture, "prompt": suite.prompt, **common}
    else:
        from diffusers import AnimateDiffPipeline, MotionAdapter

        adapter = MotionAdapter.from_pretrained(folders["motion_adapter"], dtype=dtype, local_files_only=True)
        pipe = AnimateDiffPipeline.from_pretrained(
            folders["pretrained"], motion_adapter=adapter, dtype=dtype, local_files_only=True
        )
        call = {"prompt": suite.prompt, **common}
    pipe = pipe.to(settings.device)
    pipe.set_progress_bar_config(disable=True)

    def engine() -> np.ndarray:
        return animate(cfg).frames

    def pipeline() -> np.ndarray:
        output = pipe(**call, generator=torch.Generator().manual_seed(settings.seed)).frames[0]  # [F, H, W, 3] in [0, 1]
        return (np.asarray(output) * 255).round().astype(np.uint8)

    return engine, pipeline


def timed(run: Callable[[], np.ndarray], device: torch.device) -> tuple[float, np.ndarray]:
    """Wall seconds of one run (the GPU synchronised), and its frames."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    frames = run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, frames


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The median ratio per backbone against the goal."""
    lines = []
    for backbone, mine in group(rows, "backbone").items():
        median = statistics.median(r["ratio"] for r in mine)
        worst = max(r["max_diff_255"] for r in mine)
        lines.append(
            f"{backbone}: engine / pipeline median {median:.3f} over {len(mine)} pairs (goal ≤ {TARGET}); frames differ by ≤ {worst}/255"
        )
    return lines


def plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """The ratio of each pair, per backbone."""
    ratios = series(rows, lambda r: r["backbone"], "pair", "ratio")
    return [
        line_plot(
            folder / "cost_ratio.png", ratios, "pair", "engine seconds / pipeline seconds", "Engine overhead over diffusers"
        )
    ]
