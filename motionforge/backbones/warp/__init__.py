"""The warp backbone: a pixel-space preview that moves the picture along the plan, layer by layer, with no weights.

The plan's layers (:class:`motionforge.MotionLayer`) are drawn back to front, as in a compositing
program: the background first, each region (a brushed object, a face) over it, the faster one
nearer. Every layer moves with its own smooth flow, so its content keeps its shape up to and
across its edge; its alpha carries the soft edge along with it. Frame i shows at each pixel the
frame-0 content that the layer's forward flow f_{0→i} brings there: the backward map comes from
inverting f_{0→i} (:mod:`.inversion`). What a moving layer uncovers is the background plate, the
picture with the layers in front taken out and filled from around them (:mod:`.plate`), so no copy
of a dragged object stays behind; what the picture's own edge uncovers is read beyond the edge by
``padding`` (mirrored by default). Frame 0 is the input exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from motionforge.backbones.warp.canvas import PADDINGS, OpenCVCanvas, TorchCanvas, to_uint8
from motionforge.backbones.warp.inversion import LayerInverse
from motionforge.backbones.warp.plate import FILLS, background_plate
from motionforge.core.errors import ConfigError
from motionforge.core.flowfield import CHUNK_FRAMES
from motionforge.core.hookspecs import hookimpl
from motionforge.core.memory import RunShape
from motionforge.core.types import RenderRequest

log = logging.getLogger(__name__)

CANVASES = ("auto", "opencv", "torch")
OPENCV_MAX_SIDE = 32767  # OpenCV's remap works on pictures of fewer pixels a side than this (its layers have a 1 px margin)
# Bytes per pixel of one frame while it is drawn: a chunk of each layer's flow and what computing it takes (about three
# copies of CHUNK_FRAMES frames of x, y floats), the plate, the layers' RGBA copies, the maps, the Newton grids
# (measured: peak RSS at 256×256 and 512×512 against frames).
DRAWING_BYTES_PER_PIXEL = 3 * CHUNK_FRAMES * 2 * 4 + 64


@dataclass
class WarpConfig:
    """Parameters of the warp backbone, checked as they are composed (one sentence for a value it cannot use)."""

    padding: str = "reflect"  # what the picture's edge reveals: reflect (mirrored content) | border (the edge repeated) | zeros
    fill: str = "smooth"  # what a moving layer reveals: smooth (the ground around it, blurred in) | inpaint (OpenCV's)
    occlusion: float = 0.5  # where a layer folds onto itself, weight exp(occlusion × |motion| px): faster in front
    canvas: str = "auto"  # auto (opencv on a CPU, torch elsewhere or past OpenCV's size) | opencv | torch (the kernels)

    def __post_init__(self) -> None:
        """Refuse values the warp backbone cannot use."""
        for key, choices in (("padding", PADDINGS), ("fill", FILLS), ("canvas", CANVASES)):
            value = getattr(self, key)
            if value not in choices:
                raise ConfigError(f"backbone.{key}={value} is not one of: {', '.join(choices)}")
        if not np.isfinite(self.occlusion):
            raise ConfigError(
                f"backbone.occlusion={self.occlusion} is not a finite number; give a number (NaN and infinity mean nothing here)"
            )
        if self.occlusion < 0:
            raise ConfigError(f"backbone.occlusion={self.occlusion} must be zero or more")


class WarpBackbone:
    """Pixel-space preview: composites the plan's layers, each warped along its own flow; no model, no sampler."""

    name = "warp"
    Config = WarpConfig
    reads_whole_plan = False  # it reads each layer's flow a few frames at a time
    draws_uint8 = True

    def render(self, config: WarpConfig, request: RenderRequest) -> np.ndarray:
        """Render every frame of the plan: uint8 frames [F, H, W, 3]."""
        context, plan = request.context, request.plan
        if plan.free is not None and bool((plan.free >= 0.5).any()):
            share = float((plan.free >= 0.5).float().mean()) * 100
            log.warning(
                "warp: %.1f%% of the frame is marked to animate freely (a region with no motion given inside it); "
                "the warp preview has nothing to move there and keeps it still, diffusion backbones animate it",
                share,
            )
        fits_opencv = max(context.height, context.width) + 2 <= OPENCV_MAX_SIDE
        if config.canvas == "opencv" and not fits_opencv:
            raise ConfigError(
                f"backbone.canvas=opencv draws frames up to {OPENCV_MAX_SIDE - 2} pixels a side, not "
                f"{context.width}x{context.height}; use backbone.canvas=torch (or auto)"
            )
        use_opencv = config.canvas == "opencv" or (config.canvas == "auto" and context.device.type == "cpu" and fits_opencv)
        device = torch.device("cpu") if use_opencv else context.device
        image = context.image.to(device)  # [3, H, W]
        front = plan.layers[1:]  # the background is drawn from the plate
        cores = [layer.core[0, 0].cpu().numpy() for layer in front]  # [H, W] each
        plate = background_plate(to_uint8(image), cores, config.fill)  # [H, W, 3]
        if use_opencv:
            canvas = OpenCVCanvas(image, plate, [layer.alpha[0, 0].cpu().numpy() for layer in front], config.padding)
        else:
            plate_tensor = torch.from_numpy(plate).to(device).permute(2, 0, 1).float() / 255  # [3, H, W]
            canvas = TorchCanvas(image, plate_tensor, [layer.alpha.to(device) for layer in front], config.padding)
        inverses = [LayerInverse(context.height, context.width, config.occlusion) for _ in plan.layers]
        frames = np.empty((plan.num_frames, context.height, context.width, 3), dtype=np.uint8)  # [F, H, W, 3]
        frames[0] = to_uint8(image)
        with tqdm(total=plan.num_frames - 1, disable=not request.progress, desc="warp") as bar:
            for start in range(1, plan.num_frames, CHUNK_FRAMES):  # each layer's flow a few frames at a time
                stop = min(start + CHUNK_FRAMES, plan.num_frames)
                flows = [layer.field.frames(start, stop).to(device) for layer in plan.layers]  # [n, 2, H, W] each
                for offset in range(stop - start):
                    moved = [self._map(inverse, flow[offset]) for inverse, flow in zip(inverses, flows)]
                    frame = canvas.background(moved[0])
                    for index, moved_layer in enumerate(moved[1:]):
                        frame = canvas.over(frame, index, moved_layer)
                    frames[start + offset] = canvas.finish(frame)
                bar.update(stop - start)
        splatted = sum(inverse.splatted for inverse in inverses)
        if splatted:
            request.notes.append(
                f"warp: {splatted} layer frame(s) fold onto themselves and were splatted (faster motion in front)"
            )
        return frames

    def memory_estimate(self, config: WarpConfig, shape: RunShape) -> dict[str, int]:
        """What render holds at its peak: the clip in uint8 and one frame's drawing buffers."""
        return {"frames": 3 * shape.pixels, "drawing": DRAWING_BYTES_PER_PIXEL * shape.frame_pixels}

    @staticmethod
    def _map(inverse: LayerInverse, flow: torch.Tensor) -> Any:
        """A layer's backward map for one frame from its forward flow [2, H, W], or None when it does not move."""
        if not bool(flow.any()):
            return None
        return inverse.sources(flow)


@hookimpl
def register_backbones(register: Any) -> None:
    """Register the warp backbone."""
    register(WarpBackbone)
