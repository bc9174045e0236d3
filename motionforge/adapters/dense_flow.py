"""The dense_flow adapter: a whole motion field — from flow files or a driving video — as a dense hint.

This is Motion-I2V's zero-shot video-to-video path: the displacement fields of a source video (or
fields made elsewhere) drive the animation of the still image, pixel by pixel.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from motionforge.core.errors import ConfigError, InputError
from motionforge.io.flowfiles import read_flow
from motionforge.core.hookspecs import hookimpl
from motionforge.motion import fields
from motionforge.io.opticalflow import (
    DIS_PRESETS,
    chain_flows,
    resample_in_time,
    video_flow,
)
from motionforge.core.types import MotionContext, MotionHint
from motionforge.core.places import user_path

log = logging.getLogger(__name__)

KINDS = ("displacement", "consecutive")
METHODS = ("direct", "chained")


@dataclass
class DenseFlowConfig:
    """Parameters of the dense_flow adapter (give exactly one of ``file`` and ``video``).

    A file's fields are in its raster's pixels and go through the image's crop and resize. With
    ``kind=displacement`` each field is f_{0→i}: if the first field is all zero it is frame 0,
    otherwise the fields are frames 1..T and a zero frame 0 is put before them. With
    ``kind=consecutive`` the fields are f_{k→k+1} (k = 0..T−1), chained into T+1 frames. Either way
    the frames are then spread over the clip (linear in normalised time, first and last exact).
    """

    file: str | None = None  # .npy [T, 2, h, w], or a folder of Middlebury .flo files (sorted by name), in the raster's pixels
    kind: str = "displacement"  # what the file's fields are: displacement (f_{0→i}) | consecutive (f_{k→k+1}, chained)
    video: str | None = None  # a driving video (mp4, avi, gif, …): its motion, measured by DIS optical flow
    method: str = "direct"  # video: direct (frame start → each frame) | chained (between consecutive frames used)
    preset: str = "medium"  # video: DIS preset, ultrafast | fast | medium
    start: int = 0  # video: the first frame used (the one that lines up with the image)
    stride: int | None = None  # video: frames start, start+stride, …; None spreads start…last over the clip
    scale: float = 1.0  # the flow is multiplied by this


def fields_to_displacement(flows: torch.Tensor, kind: str) -> torch.Tensor:
    """Turn a file's fields [T, 2, h, w] into displacements f_{0→i} with a zero frame 0: [T or T+1, 2, h, w].

    ``displacement``: each field is f_{0→i}; if the first field is all zero it is frame 0, otherwise
    the fields are frames 1..T and a zero frame 0 is put before them. ``consecutive``: the fields
    are f_{k→k+1}, k = 0..T−1, chained into f_{0→i} for T+1 frames.
    """
    if kind == "consecutive":
        return chain_flows(flows)
    if bool((flows[0] == 0).all()):
        return flows
    return torch.cat([torch.zeros_like(flows[:1]), flows])


def file_flow(config: DenseFlowConfig, context: MotionContext) -> torch.Tensor:
    """The flow a file or .flo folder gives, on the working frame in working pixels, over the clip: [F, 2, H, W]."""
    path = user_path(config.file)
    raw = torch.from_numpy(read_flow(path)).to(context.device)  # [T, 2, h, w] raster pixels
    flows = fields_to_displacement(raw, config.kind)  # [T', 2, h, w]
    if flows.shape[0] < 2:
        raise InputError(
            f"flow file {path} holds only one field and it is all zero (frame 0); a flow control needs at least one "
            "more frame, with the displacement from frame 0"
        )
    height, width = flows.shape[-2:]
    box = fields.raster_box((width, height), context, what=f"flow file {path.name}")
    return resample_in_time(fields.fit_flow(flows, context, box), context.num_frames)


def _check(config: DenseFlowConfig) -> None:
    """Raise a ConfigError for a config that names no source, two sources, or an unknown option."""
    if (config.file is None) == (config.video is None):
        given = "both" if config.file is not None else "neither"
        raise ConfigError(
            f"the dense_flow adapter needs exactly one source and got {given}: set adapters.dense_flow.file=flow.npy "
            "(or a folder of .flo files) or adapters.dense_flow.video=clip.mp4"
        )
    choices = (("kind", KINDS), ("method", METHODS), ("preset", tuple(DIS_PRESETS)))
    for key, allowed in choices:
        if getattr(config, key) not in allowed:
            raise ConfigError(f"adapters.dense_flow.{key}={getattr(config, key)} is not one of: {', '.join(allowed)}")
    if config.start < 0:
        raise ConfigError(f"adapters.dense_flow.start={config.start} must be 0 or more (a video frame index)")
    if config.stride is not None and config.stride < 1:
        raise ConfigError(
            f"adapters.dense_flow.stride={config.stride} must be at least 1, or null to spread the video over the clip"
        )
    if not math.isfinite(config.scale):
        raise ConfigError(f"adapters.dense_flow.scale={config.scale} must be a finite number")
    if config.video is not None and config.kind != "displacement":
        raise ConfigError(
            "adapters.dense_flow.kind applies to flow files; for a video choose adapters.dense_flow.method=direct|chained"
        )


class DenseFlowAdapter:
    """A dense motion field as the control: every pixel's displacement from frame 0, for every frame."""

    name = "dense_flow"
    Config = DenseFlowConfig

    def build(self, config: DenseFlowConfig, context: MotionContext) -> MotionHint:
        """Read the file or measure the video, fit it to the working frame and the clip, and scale it."""
        _check(config)
        if config.file is not None:
            flow = file_flow(config, context)  # [F, 2, H, W]
        else:
            flow = video_flow(
                config.video, context, start=config.start, stride=config.stride, method=config.method, preset=config.preset
            )  # [F, 2, H, W]
        flow = flow.to(context.device, torch.float32) * float(config.scale)
        log.info("dense_flow: mean displacement at the last frame %.2f px", float(flow[-1].norm(dim=0).mean()))
        return MotionHint(flow=flow.contiguous(), mask=None)


@hookimpl
def register_adapters(register) -> None:
    """Register the dense_flow adapter."""
    register(DenseFlowAdapter)
