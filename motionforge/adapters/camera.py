"""Camera moves as flow patterns (MOFA-Video): pan, zoom and rotation of the whole picture, combinable."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from einops import rearrange

from motionforge.core.errors import ConfigError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import MotionContext, MotionHint
from motionforge.core.values import is_point, plain

# Points per side of the grid drawn on hint.png to show the camera move.
GUIDE_POINTS = 3


@dataclass
class CameraConfig:
    """Parameters of the camera adapter: how the picture moves over the clip."""

    pan: Any = None  # [x, y]: the picture moves this many working pixels per frame (a camera panning right is [-2, 0])
    zoom: float = 1.0  # total scale over the clip about the centre: 1.5 zooms in to 150%, 0.8 out
    rotate: float = 0.0  # total degrees over the clip, clockwise on screen
    center: Any = None  # [x, y] in input-image pixels the zoom and rotation turn about; None = the frame's centre


def _pair(value: Any, key: str) -> np.ndarray | None:
    """A two-number setting [x, y], checked."""
    if value is None:
        return None
    value = plain(value)
    if not is_point(value):
        raise ConfigError(f"adapters.camera.{key}={value!r} must be two numbers [x, y]")
    return np.asarray(value, dtype=np.float64)


def camera_positions(
    points: np.ndarray,
    frame_times: np.ndarray,
    pan: np.ndarray,
    zoom: float,
    rotate: float,
    center: np.ndarray,
) -> np.ndarray:
    """Where the camera move takes points [N, 2] at each frame: [F, N, 2]; zoom and rotation grow evenly in log-scale and angle."""
    steps = np.arange(len(frame_times), dtype=np.float64)  # [F] frame index, for the per-frame pan
    scale = zoom**frame_times  # [F]
    angle = np.deg2rad(rotate) * frame_times  # [F]
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale  # [F]
    # with y pointing down, [[cos, -sin], [sin, cos]] turns +x towards +y: clockwise on screen
    linear = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # [F, 2, 2]
    offset = points - center  # [N, 2]
    moved = np.einsum("fij,nj->fni", linear, offset) + center  # [F, N, 2]
    return moved + steps[:, None, None] * pan  # [F, N, 2]


class CameraAdapter:
    """A camera move: a dense flow over the whole frame that adds to the object motion."""

    name = "camera"
    Config = CameraConfig

    def build(self, config: CameraConfig, context: MotionContext) -> MotionHint:
        """The flow of the pan, zoom and rotation at every pixel and frame, as a camera hint."""
        pan = _pair(config.pan, "pan")
        pan = np.zeros(2) if pan is None else pan
        if not (math.isfinite(config.zoom) and config.zoom > 0):
            raise ConfigError(f"adapters.camera.zoom={config.zoom} must be a positive number (1 keeps the size)")
        if not math.isfinite(config.rotate):
            raise ConfigError(f"adapters.camera.rotate={config.rotate} must be a finite number of degrees")
        if not pan.any() and config.zoom == 1 and config.rotate == 0:
            raise ConfigError(
                "the camera adapter has no move: set adapters.camera.pan=[x,y], adapters.camera.zoom or adapters.camera.rotate"
            )
        center = _pair(config.center, "center")
        height, width = context.height, context.width
        centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0]) if center is None else context.to_working(center)
        times = context.frame_times()  # [F]
        ys, xs = np.mgrid[0:height, 0:width]
        pixels = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)  # [H*W, 2]
        moved = camera_positions(pixels, times, pan, config.zoom, config.rotate, centre)  # [F, H*W, 2]
        flow = rearrange(torch.from_numpy(moved - pixels).float(), "f (h w) c -> f c h w", h=height)  # [F, 2, H, W]
        guide = np.stack(
            np.meshgrid(
                np.linspace(0, width - 1, GUIDE_POINTS + 2)[1:-1],
                np.linspace(0, height - 1, GUIDE_POINTS + 2)[1:-1],
            ),
            -1,
        )
        guide_tracks = camera_positions(guide.reshape(-1, 2), times, pan, config.zoom, config.rotate, centre)  # [F, G, 2]
        return MotionHint(
            flow=flow.to(context.device),
            camera=True,
            tracks=rearrange(torch.from_numpy(guide_tracks).float(), "f n c -> n f c"),
        )


@hookimpl
def register_adapters(register) -> None:
    """Register the camera adapter."""
    register(CameraAdapter)
