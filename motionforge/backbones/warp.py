"""The warp backbone: each frame is the input image moved along the plan's flow (a preview with no weights).

Frame i is rendered by backward warping: the plan's forward flow f_{0→i} is splatted onto the
frame it points to (softmax splatting, faster motion in front), giving for every reached pixel q the
displacement back to its source; pixels nothing reaches (disocclusions, the border an image moves
away from) get the backward flow of their surroundings by push-pull filling; then the image is
sampled bilinearly at q + b(q). Every pixel gets a value and frame 0 is the input exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from motionforge.core.errors import ConfigError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.memory import FLOAT_BYTES, RunShape
from motionforge.core.motion import magnitude
from motionforge.core.types import RenderRequest
from motionforge.kernels import splat, warp
from motionforge.kernels.reference import EPS, METRIC_CLIP

log = logging.getLogger(__name__)

PADDINGS = ("border", "zeros")
# A target pixel that receives less splatting weight than this is treated as a hole.
COVERAGE_MIN = 1e-3
# Bytes per pixel of each frame warped at once: the splat's carried values and sums, the backward flow, the hole filling
# (measured: peak RSS against batch_frames at 512×512).
BATCH_BYTES_PER_PIXEL = 112


@dataclass
class WarpConfig:
    """Parameters of the warp backbone."""

    occlusion: float = (
        0.5  # where several points land on one pixel, weight exp(occlusion × |motion| px): faster in front; 0 averages
    )
    padding: str = "border"  # what is read outside the picture: border (repeat the edge) | zeros (black)
    batch_frames: int = 8  # frames warped at once (memory against speed)


def fill_holes(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Fill invalid pixels of values [B, C, H, W] from their valid surroundings (push-pull); valid [B, 1, H, W] bool."""
    if bool(valid.all()) or max(values.shape[-2:]) <= 1:
        return values
    weight = valid.to(values.dtype)
    # pull: a half-resolution image averaged over valid pixels only (the pooling divisor cancels)
    pooled_weight = F.avg_pool2d(weight, 2, ceil_mode=True)  # [B, 1, h, w]
    pooled = F.avg_pool2d(values * weight, 2, ceil_mode=True) / pooled_weight.clamp(min=1e-12)  # [B, C, h, w]
    coarse = fill_holes(pooled, pooled_weight > 0)
    # push: the filled coarse image, upsampled, fills the holes of this level
    up = F.interpolate(coarse, size=values.shape[-2:], mode="bilinear", align_corners=False)
    return torch.where(valid, values, up)


def backward_flow(flow: torch.Tensor, occlusion: float) -> torch.Tensor:
    """For forward flows [B, 2, H, W], the displacement from each target pixel back to its source, holes filled.

    One summing splat carries the softmax-weighted backward flow, its weights and plain ones, so
    the softmax splat (Niklaus & Liu's normalised form) and the coverage share one pass.
    """
    metric = occlusion * magnitude(flow, keepdim=True)  # [B, 1, H, W]
    weight = metric.clamp(-METRIC_CLIP, METRIC_CLIP).exp()  # [B, 1, H, W]
    carried = torch.cat([-flow * weight, weight, torch.ones_like(weight)], dim=1)  # [B, 4, H, W]
    total = splat(carried, flow, "sum")  # [B, 4, H, W]
    back = total[:, :2] / (total[:, 2:3] + EPS)  # [B, 2, H, W]
    return fill_holes(back, total[:, 3:] > COVERAGE_MIN)


class WarpBackbone:
    """Pixel-space preview: warps the input image along the plan, frame by frame; no model, no sampler."""

    name = "warp"
    Config = WarpConfig

    def render(self, config: WarpConfig, request: RenderRequest) -> torch.Tensor:
        """Render every frame of the plan: float frames [F, 3, H, W] in [0, 1]."""
        if config.padding not in PADDINGS:
            raise ConfigError(f"backbone.padding={config.padding} is not a padding; choose one of: {', '.join(PADDINGS)}")
        if config.batch_frames < 1:
            raise ConfigError(f"backbone.batch_frames={config.batch_frames} must be at least 1")
        if config.occlusion < 0:
            raise ConfigError(f"backbone.occlusion={config.occlusion} must be zero or more")
        context, plan = request.context, request.plan
        if plan.free is not None and bool((plan.free >= 0.5).any()):
            share = float((plan.free >= 0.5).float().mean()) * 100
            log.warning(
                "warp: %.1f%% of the frame is marked to animate freely (a region with no motion given inside it); "
                "the warp preview has nothing to move there and keeps it still, diffusion backbones animate it",
                share,
            )
        image = context.image.to(context.device)[None]  # [1, 3, H, W]
        frames = [image]
        todo = range(1, plan.num_frames)
        with tqdm(total=len(todo), disable=not request.progress, desc="warp") as bar:
            for start in range(1, plan.num_frames, config.batch_frames):
                flow = plan.flow[start : start + config.batch_frames].to(image)  # [b, 2, H, W]
                back = backward_flow(flow, config.occlusion)  # [b, 2, H, W]
                frames.append(warp(image, back, config.padding).clamp(0.0, 1.0))  # [b, 3, H, W]
                bar.update(len(flow))
        return torch.cat(frames)  # [F, 3, H, W]

    def memory_estimate(self, config: WarpConfig, shape: RunShape) -> dict[str, int]:
        """What render holds at its peak: every frame as float, twice while they are joined, and one batch's buffers."""
        batch = max(1, min(config.batch_frames, shape.num_frames - 1))
        return {
            "frames": 2 * 3 * FLOAT_BYTES * shape.pixels,
            "warp buffers": BATCH_BYTES_PER_PIXEL * batch * shape.frame_pixels,
        }


@hookimpl
def register_backbones(register: Any) -> None:
    """Register the warp backbone."""
    register(WarpBackbone)
