"""The live preview: the drawn controls run through :func:`motionforge.core.engine.animate` on the warp backbone, nothing saved,
encoded for the page with the plan's flow beside it."""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from omegaconf import DictConfig

from motionforge.core.config import compose_config
from motionforge.core.engine import animate
from motionforge.core.registry import get_registry
from motionforge.core.types import StepCallback, Video
from motionforge.io.visualise import flow_frames
from motionforge.studio.state import Controls

ENGINE = threading.Lock()  # one engine call at a time: Hydra's compose state is global to the process
FLOW_STRIDE = 2  # the flow is coloured at every second pixel: half the size, a quarter of the work
PREVIEW_CRF = 23


@dataclass(frozen=True)
class Preview:
    """One preview: its clip's file, the run it came from (for its flow), how long it took and what it shows."""

    video: Path  # the warp preview, H.264
    run: Video  # the engine's result, frames and plan
    seconds: float  # from the call to the clip written
    size: tuple[int, int]  # (W, H)
    num_frames: int


_COMPOSED: dict[tuple, DictConfig] = {}  # the last few previews' configs, by their overrides and the registry they saw
COMPOSED_KEPT = 8


def composed(overrides: list[str]) -> DictConfig:
    """compose_config(overrides), kept for the next edit with the same overrides (a copy each time: Hydra's compose is ~0.07 s)."""
    key = (tuple(overrides), id(get_registry()))
    if key not in _COMPOSED:
        while len(_COMPOSED) >= COMPOSED_KEPT:
            _COMPOSED.pop(next(iter(_COMPOSED)))
        _COMPOSED[key] = compose_config(overrides)
    return copy.deepcopy(_COMPOSED[key])


def run_engine(overrides: list[str], callback: StepCallback | None = None, reuse: bool = False) -> Video:
    """Compose the run config from the overrides, as the command line does, and animate it (one engine call at a time).

    ``reuse`` takes the config composed for the same overrides before, if any (the preview's edits mostly change file contents).
    """
    with ENGINE:
        cfg = composed(overrides) if reuse else compose_config(overrides)
        return animate(cfg, callback=callback)


def write_quick_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """Encode uint8 frames [F, H, W, 3] as a small H.264 MP4 quickly (x264's ultrafast preset, one thread): for the page only."""
    import imageio_ffmpeg

    height, width = frames.shape[1:3]
    frames = frames[:, : height - height % 2, : width - width % 2]  # yuv420p needs even sides
    params = ["-preset", "ultrafast", "-crf", str(PREVIEW_CRF), "-threads", "1", "-movflags", "+faststart"]
    writer = imageio_ffmpeg.write_frames(
        str(path), (frames.shape[2], frames.shape[1]), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
        output_params=params, macro_block_size=1, ffmpeg_log_level="error",
    )  # fmt: skip
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def flow_colours(video: Video) -> np.ndarray:
    """The plan's flow coloured on one scale at every FLOW_STRIDE-th pixel: uint8 [F, H/s, W/s, 3] (white: no plan or no motion)."""
    frames = video.frames  # [F, H, W, 3]
    if video.plan is None:
        return np.full_like(frames[:, ::FLOW_STRIDE, ::FLOW_STRIDE], 255)
    field = video.plan.field
    peak = field.max_magnitude()
    chunks = [flow_frames(chunk[:, :, ::FLOW_STRIDE, ::FLOW_STRIDE], peak) for _, chunk in field.chunks()]  # [n, 2, h, w] each
    return np.concatenate(chunks)


def preview(controls: Controls, files: Path, out: Path, name: str) -> Preview:
    """Run the controls on the warp backbone with nothing saved and write the clip as out/<name>.mp4."""
    start = time.perf_counter()
    controls.write_files(files)
    overrides = [*controls.overrides(files, backbone="warp"), "output.save=false", "progress=false"]
    video = run_engine(overrides, reuse=True)
    out.mkdir(parents=True, exist_ok=True)
    clip = out / f"{name}.mp4"
    write_quick_mp4(clip, video.frames, video.fps)
    height, width = video.frames.shape[1:3]
    return Preview(clip, video, round(time.perf_counter() - start, 3), (width, height), len(video.frames))


def flow_preview(made: Preview) -> Path:
    """Write the preview's flow in the colour wheel beside its clip (<name>-flow.mp4), at half size."""
    flow = made.video.with_name(made.video.stem + "-flow.mp4")
    write_quick_mp4(flow, flow_colours(made.run), made.run.fps)
    return flow


def picture_array(image: torch.Tensor) -> np.ndarray:
    """A [3, H, W] float picture in [0, 1] as uint8 [H, W, 3]."""
    return rearrange(image.mul(255).round().clamp(0, 255).to(torch.uint8), "c h w -> h w c").numpy()
