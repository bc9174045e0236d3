"""Drawing one frame of the warp preview from its layers' backward maps, on OpenCV (CPU) or on torch (any device).

A frame starts from the background plate moved by the background's map, and every layer in front
of it is moved by its own map and laid over it with its alpha ("over" compositing), back to front.
Both canvases draw the same frame from the same maps: :class:`OpenCVCanvas` with ``cv2.warpAffine``
and ``cv2.remap`` on uint8 pictures (fast on a CPU), :class:`TorchCanvas` with
:func:`motionforge.kernels.warp` on float tensors (the PyTorch reference, or Triton on CUDA). A map is
a coarse grid of source positions (:class:`~motionforge.backbones.warp.inversion.CoarseGrid`),
upsampled bilinearly, or None for a layer that does not move.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np
import torch
from einops import rearrange

from motionforge.backbones.warp.inversion import CoarseGrid, pixel_positions
from motionforge.kernels import warp

Box = tuple[int, int, int, int]  # x0, y0, x1, y1: pixel columns and rows, end exclusive
Map = tuple[CoarseGrid, torch.Tensor] | None  # a grid and its nodes' source positions [2, rows, cols]; None: no motion

PADDINGS = ("reflect", "border", "zeros")
_CV_BORDER = {"reflect": cv2.BORDER_REFLECT_101, "border": cv2.BORDER_REPLICATE, "zeros": cv2.BORDER_CONSTANT}


def footprint(alpha: np.ndarray) -> Box:
    """The box of a layer's pixels at frame 0 (alpha above 0): alpha [H, W] → (x0, y0, x1, y1)."""
    ys, xs = np.nonzero(alpha > 0)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def target_box(moved: Map, source: Box, height: int, width: int) -> Box | None:
    """The pixels of frame i that a layer's source box can reach under its map, or None when they are outside the frame."""
    if moved is None:
        return source
    grid, nodes = moved
    if grid.shape[0] < 2 or grid.shape[1] < 2:
        return (0, 0, width, height)
    corners = torch.stack([nodes[:, :-1, :-1], nodes[:, 1:, :-1], nodes[:, :-1, 1:], nodes[:, 1:, 1:]])  # [4, 2, r-1, c-1]
    low, high = corners.amin(dim=0), corners.amax(dim=0)  # [2, r-1, c-1] each cell's source box
    x0, y0, x1, y1 = source
    hit = (high[0] >= x0 - 2) & (low[0] <= x1 + 1) & (high[1] >= y0 - 2) & (low[1] <= y1 + 1)  # [r-1, c-1]
    if not bool(hit.any()):
        return None
    rows, cols = torch.nonzero(hit.any(dim=1))[:, 0], torch.nonzero(hit.any(dim=0))[:, 0]
    targets = grid.nodes(nodes.device)  # [2, rows, cols]
    left, right = float(targets[0, 0, int(cols.min())]), float(targets[0, 0, int(cols.max()) + 1])
    top, bottom = float(targets[1, int(rows.min()), 0]), float(targets[1, int(rows.max()) + 1, 0])
    return (max(0, int(left)), max(0, int(top)), min(width, int(np.ceil(right)) + 1), min(height, int(np.ceil(bottom)) + 1))


class Canvas(Protocol):
    """Draws frames: the moved background, then each moved layer over it."""

    def background(self, moved: Map) -> object:
        """A new frame: the background plate moved by its map."""
        ...

    def over(self, frame: object, layer: int, moved: Map) -> object:
        """Lay front layer ``layer`` (0 = the first in front of the background), moved by its map, over the frame."""
        ...


class OpenCVCanvas:
    """Frames as uint8 [H, W, 3] arrays, drawn with OpenCV: a bilinear warpAffine for the maps, remap for the pictures."""

    def __init__(self, image: torch.Tensor, plate: np.ndarray, alphas: list[np.ndarray], padding: str) -> None:
        """Take the picture [3, H, W] in [0, 1], the background plate uint8 [H, W, 3] and each front layer's alpha [H, W]."""
        self.image = to_uint8(image)  # [H, W, 3]
        self.height, self.width = self.image.shape[:2]
        self.plate = plate
        self.border = _CV_BORDER[padding]
        # Each front layer as RGBA with one pixel of transparent margin, so that beyond the frame its alpha is 0 whatever
        # the padding while its colour repeats the edge (no dark fringe where a layer leaves the picture's edge).
        self.layers = []
        for alpha in alphas:
            rgba = np.dstack([self.image, np.rint(alpha * 255).astype(np.uint8)])  # [H, W, 4]
            rgba = cv2.copyMakeBorder(rgba, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
            rgba[[0, -1], :, 3] = 0
            rgba[:, [0, -1], 3] = 0
            self.layers.append((rgba, footprint(alpha)))

    def _map(self, moved: Map, box: Box, shift: float = 0.0) -> np.ndarray:
        """Every pixel's source position inside a box of the frame, float32 [h, w, 2], plus ``shift``.

        Only the nodes around the box are upsampled: between its nodes a sub-grid interpolates as the whole grid does.
        """
        grid, nodes = moved
        step = grid.step
        x0, y0, x1, y1 = box
        low_x, low_y = (x0 + step - (step - 1) / 2) // step, (y0 + step - (step - 1) / 2) // step  # first node needed
        high_x, high_y = (x1 - 1 + step - (step - 1) / 2) // step + 1, (y1 - 1 + step - (step - 1) / 2) // step + 1  # last
        low_x, low_y, high_x, high_y = int(low_x), int(low_y), int(high_x), int(high_y)
        part = rearrange(nodes[:, low_y : high_y + 1, low_x : high_x + 1] + shift, "c r k -> r k c").contiguous().cpu().numpy()
        if step > 1:
            part = cv2.resize(part, (part.shape[1] * step, part.shape[0] * step), interpolation=cv2.INTER_LINEAR)
        left, top = x0 + step - low_x * step, y0 + step - low_y * step  # the box's corner in the upsampled part
        return np.ascontiguousarray(part[top : top + (y1 - y0), left : left + (x1 - x0)])

    def background(self, moved: Map) -> np.ndarray:
        """The plate moved by the background's map: uint8 [H, W, 3]."""
        if moved is None:
            return self.plate.copy()
        positions = self._map(moved, (0, 0, self.width, self.height))
        return cv2.remap(self.plate, positions, None, cv2.INTER_LINEAR, borderMode=self.border)

    def over(self, frame: np.ndarray, layer: int, moved: Map) -> np.ndarray:
        """Lay a front layer over the frame, only within the box of the frame it can reach."""
        rgba, source = self.layers[layer]
        box = target_box(moved, source, self.height, self.width)
        if box is None or box[2] <= box[0] or box[3] <= box[1]:
            return frame
        x0, y0, x1, y1 = box
        if moved is None:
            moved_layer = rgba[y0 + 1 : y1 + 1, x0 + 1 : x1 + 1]  # [h, w, 4]
        else:
            positions = self._map(moved, box, shift=1.0)  # +1: the margin
            moved_layer = cv2.remap(rgba, positions, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = moved_layer[..., 3].astype(np.float32) * (1 / 255)  # [h, w]
        crop = frame[y0:y1, x0:x1]
        frame[y0:y1, x0:x1] = cv2.blendLinear(np.ascontiguousarray(moved_layer[..., :3]), crop, alpha, 1.0 - alpha)
        return frame

    def finish(self, frame: np.ndarray) -> np.ndarray:
        """The frame as the backbone returns it: uint8 [H, W, 3]."""
        return frame


class TorchCanvas:
    """Frames as float [3, H, W] tensors in [0, 1], drawn with motionforge's kernels (the reference, or Triton on CUDA)."""

    def __init__(self, image: torch.Tensor, plate: torch.Tensor, alphas: list[torch.Tensor], padding: str) -> None:
        """Take the picture [3, H, W], the background plate [3, H, W] and each front layer's alpha [1, 1, H, W], on one device."""
        self.image, self.plate, self.alphas, self.padding = image[None], plate[None], alphas, padding
        self.height, self.width = image.shape[-2:]
        self.pixels = pixel_positions(self.height, self.width, image.device)  # [2, H, W]

    def _displacement(self, moved: Map, reflect: bool) -> torch.Tensor:
        """Every pixel's displacement to its source, [1, 2, H, W]; with ``reflect`` the source is mirrored into the frame."""
        grid, nodes = moved
        positions = grid.upsample(nodes)  # [2, H, W]
        if reflect:
            positions = torch.stack([_mirror(positions[0], self.width), _mirror(positions[1], self.height)])
        return (positions - self.pixels)[None]

    def background(self, moved: Map) -> torch.Tensor:
        """The plate moved by the background's map: [3, H, W]."""
        if moved is None:
            return self.plate[0].clone()
        reflect = self.padding == "reflect"
        padding = "border" if reflect else self.padding
        return warp(self.plate, self._displacement(moved, reflect), padding)[0]

    def over(self, frame: torch.Tensor, layer: int, moved: Map) -> torch.Tensor:
        """Lay a front layer over the frame: frame + alpha · (layer − frame)."""
        alpha = self.alphas[layer]  # [1, 1, H, W]
        if moved is None:
            return torch.lerp(frame, self.image[0], alpha[0])
        displacement = self._displacement(moved, reflect=False)
        colour = warp(self.image, displacement, "border")[0]  # [3, H, W]
        moved_alpha = warp(alpha, displacement, "zeros")[0]  # [1, H, W]
        return torch.lerp(frame, colour, moved_alpha)

    def finish(self, frame: torch.Tensor) -> np.ndarray:
        """The frame as the backbone returns it: uint8 [H, W, 3]."""
        return to_uint8(frame.clamp(0.0, 1.0))


def _mirror(position: torch.Tensor, size: int) -> torch.Tensor:
    """Positions reflected into [0, size − 1] about the edge pixels' centres (OpenCV's BORDER_REFLECT_101)."""
    if size <= 1:
        return torch.zeros_like(position)
    period = 2.0 * (size - 1)
    folded = torch.remainder(position, period)
    return torch.where(folded > size - 1, period - folded, folded)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A float picture [3, H, W] in [0, 1] as uint8 [H, W, 3], rounded as the engine rounds frames."""
    quantised = image.detach().float().mul(255).round_().clamp_(0, 255).to(torch.uint8).cpu()
    return np.ascontiguousarray(rearrange(quantised, "c h w -> h w c").numpy())
