"""Putting user rasters (brush masks, flow fields, video frames) onto the working frame, as the image was.

A raster drawn on the input image (its size, or the same aspect at another size) goes through the
same crop and resize as the image, so a mask pixel or a flow vector lands on the picture content it
was drawn on. A raster already at the working size is taken as is. Any other aspect is an error
for rasters that must line up with the image, or is centre-cropped for ones that only need to
match in shape (a driving video).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from motionforge.core.errors import InputError
from motionforge.core.types import MotionContext

Box = tuple[float, float, float, float]
# Aspect ratios closer than this (relative) count as the same.
ASPECT_TOLERANCE = 0.01


def centred_box(width: int, height: int, target_width: int, target_height: int) -> Box:
    """The largest centred box of a width×height raster with the target's aspect, in pixel edges (x0, y0, x1, y1)."""
    if width * target_height > height * target_width:
        box_w = height * target_width / target_height
        x0 = (width - box_w) / 2.0
        return (x0, 0.0, x0 + box_w, float(height))
    if width * target_height < height * target_width:
        box_h = width * target_height / target_width
        y0 = (height - box_h) / 2.0
        return (0.0, y0, float(width), y0 + box_h)
    return (0.0, 0.0, float(width), float(height))


def raster_box(size: tuple[int, int], context: MotionContext, what: str, *, crop_other_aspects: bool = False) -> Box:
    """The box of a (W, H) raster that maps onto the working frame, in its pixel edges; ``what`` names it in errors."""
    width, height = size
    source_w, source_h = context.source_size
    source_box = context.source_box or (0.0, 0.0, float(source_w), float(source_h))
    if (width, height) == (context.width, context.height):
        return (0.0, 0.0, float(width), float(height))
    if abs(width * source_h - height * source_w) <= ASPECT_TOLERANCE * height * source_w:
        sx, sy = width / source_w, height / source_h
        return (source_box[0] * sx, source_box[1] * sy, source_box[2] * sx, source_box[3] * sy)
    if crop_other_aspects:
        return centred_box(width, height, context.width, context.height)
    raise InputError(
        f"{what} is {width}x{height}, which matches neither the input image ({source_w}x{source_h}) nor the "
        f"working frame ({context.width}x{context.height}); make it at the image's size or aspect ratio"
    )


def _grid(box: Box, size: tuple[int, int], context: MotionContext, device: torch.device) -> torch.Tensor:
    """grid_sample coordinates [1, H, W, 2] of every working pixel's centre inside the box of a (W, H) raster."""
    width, height = size
    x0, y0, x1, y1 = box
    xs = x0 + (torch.arange(context.width, device=device, dtype=torch.float64) + 0.5) * (x1 - x0) / context.width
    ys = y0 + (torch.arange(context.height, device=device, dtype=torch.float64) + 0.5) * (y1 - y0) / context.height
    gx = (2.0 * xs / width - 1.0)[None, :].expand(context.height, -1)  # [H, W]
    gy = (2.0 * ys / height - 1.0)[:, None].expand(-1, context.width)  # [H, W]
    return torch.stack([gx, gy], dim=-1)[None].float()  # [1, H, W, 2]


def fit_raster(values: torch.Tensor, context: MotionContext, box: Box, mode: str = "bilinear") -> torch.Tensor:
    """Resample rasters [T, C, h, w] over the box onto the working frame: [T, C, H, W] (mode bilinear | nearest)."""
    size = (values.shape[-1], values.shape[-2])
    if box == (0.0, 0.0, float(size[0]), float(size[1])) and size == (context.width, context.height):
        return values.float().clone()
    grid = _grid(box, size, context, values.device).expand(values.shape[0], -1, -1, -1)  # [T, H, W, 2]
    return F.grid_sample(values.float(), grid, mode=mode, padding_mode="border", align_corners=False)


def fit_flow(flow: torch.Tensor, context: MotionContext, box: Box) -> torch.Tensor:
    """Resample flows [T, 2, h, w] in raster pixels onto the working frame, in working pixels: [T, 2, H, W]."""
    x0, y0, x1, y1 = box
    fitted = fit_raster(flow, context, box)  # [T, 2, H, W]
    scale = torch.tensor([context.width / (x1 - x0), context.height / (y1 - y0)], dtype=fitted.dtype, device=fitted.device)
    return fitted * scale.view(1, 2, 1, 1)
