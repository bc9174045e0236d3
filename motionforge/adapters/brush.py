"""The motion brush (Motion-I2V, MOFA-Video): a region where motion is allowed; outside it the picture stays still.

The brush only marks the region; :func:`motionforge.motion.fuse.fuse` applies it: trajectories that
start inside are densified and kept inside, those that start outside move only the outside, and
a region with no motion given inside it is left for diffusion backbones to animate freely.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from motionforge.core.errors import ConfigError, InputError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import MotionContext, MotionHint
from motionforge.motion import fields
from motionforge.motion.values import is_number, is_point_list, plain
from motionforge.core.places import user_path

log = logging.getLogger(__name__)


@dataclass
class BrushConfig:
    """Parameters of the brush adapter; mask, polygons and boxes add up to one region."""

    mask: str | None = None  # an image drawn on the input picture: white animates (or opaque, on a transparent canvas)
    polygons: Any = None  # [[[x, y], ...], ...] in input-image pixels
    boxes: Any = None  # [[x0, y0, x1, y1], ...] in input-image pixels (edges)
    invert: bool = False  # animate everything except the brushed area
    feather: float = 0.0  # working pixels over which the region's edge fades from 1 to 0


def read_mask(path: str) -> np.ndarray:
    """Read a brush mask image as bool [h, w]: white (or, on a transparent canvas, opaque) marks the region."""
    file = user_path(path)
    if not file.is_file():
        raise InputError(f"brush mask not found: {path}; pass adapters.brush.mask=/path/to/mask.png")
    try:
        with Image.open(file) as image:
            image.load()
            bands = image.getbands()
            if "A" in bands or "a" in bands or (image.mode == "P" and "transparency" in image.info):
                alpha = np.asarray(image.convert("RGBA"))[..., 3]  # [h, w]
                if alpha.min() != alpha.max():
                    return alpha >= 128
            gray = np.asarray(image.convert("L"))  # [h, w]
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"brush mask {path} is not a readable image ({exc.__class__.__name__}); save it as a PNG") from exc
    return gray >= 128


def _polygons(value: Any) -> list[np.ndarray]:
    """The polygons a config gives, checked: a list of [P ≥ 3, 2] arrays (one polygon may be given unwrapped)."""
    value = plain(value)
    if is_point_list(value):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or not all(is_point_list(p) for p in value):
        raise ConfigError(
            f"adapters.brush.polygons must be a list of polygons, each a list of [x, y] number pairs; found {str(value)[:60]}"
        )
    short = [i for i, p in enumerate(value) if len(p) < 3]
    if short:
        raise ConfigError(f"brush polygon {short[0]} has {len(value[short[0]])} points; a polygon needs at least 3")
    return [np.asarray(p, dtype=np.float64) for p in value]


def _boxes(value: Any) -> list[np.ndarray]:
    """The boxes a config gives, checked: a list of [x0, y0, x1, y1] with x1 > x0 and y1 > y0 (one box may be unwrapped)."""
    value = plain(value)
    if isinstance(value, (list, tuple)) and len(value) == 4 and all(is_number(v) for v in value):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"adapters.brush.boxes must be a list of [x0, y0, x1, y1] boxes; found {str(value)[:60]}")
    boxes = []
    for index, box in enumerate(value):
        if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(is_number(v) for v in box)):
            raise ConfigError(f"brush box {index} must be four numbers [x0, y0, x1, y1]; found {str(box)[:60]}")
        if not (box[2] > box[0] and box[3] > box[1]):
            raise ConfigError(f"brush box {index} {list(box)} is empty; it needs x1 > x0 and y1 > y0")
        boxes.append(np.asarray(box, dtype=np.float64))
    return boxes


def _edges_to_working(context: MotionContext, edges: np.ndarray) -> np.ndarray:
    """Map pixel-edge coordinates [..., 2] on the input image onto the working frame's pixel edges."""
    x0, y0, x1, y1 = context.source_box or (
        0.0,
        0.0,
        float(context.source_size[0]),
        float(context.source_size[1]),
    )
    scale = np.array([context.width / (x1 - x0), context.height / (y1 - y0)])
    return (np.asarray(edges, dtype=np.float64) - np.array([x0, y0])) * scale


def rasterise_boxes(boxes: list[np.ndarray], context: MotionContext) -> np.ndarray:
    """The working pixels whose centres lie in any box: bool [H, W]."""
    centres_x = np.arange(context.width) + 0.5  # [W] pixel centres in edge coordinates
    centres_y = np.arange(context.height) + 0.5  # [H]
    inside = np.zeros((context.height, context.width), dtype=bool)
    for box in boxes:
        (ex0, ey0), (ex1, ey1) = _edges_to_working(context, box.reshape(2, 2))
        inside |= ((centres_y >= ey0) & (centres_y < ey1))[:, None] & ((centres_x >= ex0) & (centres_x < ex1))[None, :]
    return inside


def rasterise_polygons(polygons: list[np.ndarray], context: MotionContext) -> np.ndarray:
    """The working pixels inside any polygon (vertices in input-image pixels): bool [H, W]."""
    import cv2

    canvas = np.zeros((context.height, context.width), dtype=np.uint8)
    shift = 4  # sub-pixel vertex precision: 1/16 px
    for polygon in polygons:
        vertices = np.round(context.to_working(polygon) * (1 << shift)).astype(np.int32)  # [P, 2]
        cv2.fillPoly(canvas, [vertices], 1, lineType=cv2.LINE_8, shift=shift)
    return canvas.astype(bool)


def feathered(region: np.ndarray, feather: float) -> np.ndarray:
    """Soften a bool region [H, W] into [0, 1] float32: a linear ramp `feather` pixels wide, centred on the edge."""
    if feather <= 0 or region.all() or not region.any():
        return region.astype(np.float32)
    import cv2

    inside = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)  # [H, W] distance to the nearest outside pixel
    outside = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, 5)  # distance to the nearest inside pixel
    signed = np.where(region, inside - 0.5, 0.5 - outside)  # [H, W] > 0 inside, the edge at 0
    return np.clip(0.5 + signed / feather, 0.0, 1.0).astype(np.float32)


class BrushAdapter:
    """The motion brush: marks the region where motion is allowed, from a mask image, polygons or boxes."""

    name = "brush"
    Config = BrushConfig
    memory_per_pixel = 0  # its hint is one region, not a flow per frame

    def build(self, config: BrushConfig, context: MotionContext) -> MotionHint:
        """The brushed region at the working size, as a region hint [1, 1, H, W]."""
        if config.mask is None and config.polygons is None and config.boxes is None:
            raise ConfigError(
                "the brush adapter has nothing to paint: set adapters.brush.mask=mask.png, "
                "adapters.brush.polygons='[[[x,y],...]]' or adapters.brush.boxes='[[x0,y0,x1,y1]]'"
            )
        if not (math.isfinite(config.feather) and config.feather >= 0):
            raise ConfigError(f"adapters.brush.feather={config.feather} must be a number of pixels, zero or more")
        region = np.zeros((context.height, context.width), dtype=bool)  # [H, W]
        if config.mask is not None:
            mask = read_mask(config.mask)  # [h, w]
            box = fields.raster_box((mask.shape[1], mask.shape[0]), context, f"brush mask {config.mask}")
            fitted = fields.fit_raster(torch.from_numpy(mask)[None, None].float(), context, box, mode="nearest")
            region |= fitted[0, 0].numpy() >= 0.5
            if not mask.any():
                raise InputError(f"brush mask {config.mask} is all black; paint the area that may move in white")
        if config.polygons is not None:
            region |= rasterise_polygons(_polygons(config.polygons), context)
        if config.boxes is not None:
            region |= rasterise_boxes(_boxes(config.boxes), context)
        if config.invert:
            region = ~region
        if not region.any():
            raise InputError(
                "the brush covers no pixel of the working frame"
                + (
                    " once inverted; it covers the whole picture, so drop invert"
                    if config.invert
                    else "; give its shapes in the input image's pixels"
                )
            )
        soft = feathered(region, float(config.feather))  # [H, W]
        return MotionHint(region=torch.from_numpy(soft)[None, None].to(context.device))


@hookimpl
def register_adapters(register) -> None:
    """Register the brush adapter."""
    register(BrushAdapter)
