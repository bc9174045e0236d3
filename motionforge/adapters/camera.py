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
from motionforge.motion.values import is_point, plain

# Points per side of the grid drawn on hint.png to show the camera move.
GUIDE_POINTS = 3
# The total zoom factors a clip can take: beyond them the picture shrinks to a dot or grows past any frame.
ZOOM_RANGE = (0.01, 100.0)


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


def camera_transforms(
    frame_times: np.ndarray, pan: np.ndarray, zoom: float, rotate: float, center: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The camera move at each frame as an affine map p → A p + b: A [F, 2, 2], b [F, 2]; zoom and turn grow evenly."""
    steps = np.arange(len(frame_times), dtype=np.float64)  # [F] frame index, for the per-frame pan
    scale = zoom**frame_times  # [F] even in log-scale
    angle = np.deg2rad(rotate) * frame_times  # [F]
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale  # [F]
    # with y pointing down, [[cos, -sin], [sin, cos]] turns +x towards +y: clockwise on screen
    linear = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # [F, 2, 2]
    shift = center - linear @ center + steps[:, None] * pan  # [F, 2]: turn about the centre, then pan
    return linear, shift


def camera_positions(points: np.ndarray, linear: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Where the camera move takes points [N, 2] at each frame: [F, N, 2]."""
    return np.einsum("fij,nj->fni", linear, points) + shift[:, None, :]


def camera_flow(linear: np.ndarray, shift: np.ndarray, height: int, width: int) -> torch.Tensor:
    """The displacement the camera move gives every pixel of an H×W frame: [F, 2, H, W] float32."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij")
    pixels = torch.stack([xs.flatten(), ys.flatten()])  # [2, H*W]
    moves = torch.from_numpy(linear) - torch.eye(2, dtype=torch.float64)  # [F, 2, 2]: A - I
    flow = moves @ pixels + torch.from_numpy(shift)[..., None]  # [F, 2, H*W]
    return rearrange(flow.float(), "f c (h w) -> f c h w", h=height)


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
        if not ZOOM_RANGE[0] <= config.zoom <= ZOOM_RANGE[1]:
            raise ConfigError(
                f"adapters.camera.zoom={config.zoom:g} must be between {ZOOM_RANGE[0]:g} and {ZOOM_RANGE[1]:g} "
                "(the total scale over the clip; 1.3 zooms in to 130%)"
            )
        if not math.isfinite(config.rotate):
            raise ConfigError(f"adapters.camera.rotate={config.rotate} must be a finite number of degrees")
        if not pan.any() and config.zoom == 1 and config.rotate == 0:
            raise ConfigError(
                "the camera adapter has no move: set adapters.camera.pan=[x,y], adapters.camera.zoom or adapters.camera.rotate"
            )
        center = _pair(config.center, "center")
        height, width = context.height, context.width
        centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0]) if center is None else context.to_working(center)
        linear, shift = camera_transforms(context.frame_times(), pan, config.zoom, config.rotate, centre)
        flow = camera_flow(linear, shift, height, width)  # [F, 2, H, W]
        guide_x = np.linspace(0, width - 1, GUIDE_POINTS + 2)[1:-1]
        guide_y = np.linspace(0, height - 1, GUIDE_POINTS + 2)[1:-1]
        guide = np.stack(np.meshgrid(guide_x, guide_y), -1).reshape(-1, 2)  # [G, 2]
        guide_tracks = camera_positions(guide, linear, shift)  # [F, G, 2]
        return MotionHint(
            flow=flow.to(context.device),
            camera=True,
            tracks=rearrange(torch.from_numpy(guide_tracks).float(), "f n c -> n f c"),
        )


@hookimpl
def register_adapters(register) -> None:
    """Register the camera adapter."""
    register(CameraAdapter)
