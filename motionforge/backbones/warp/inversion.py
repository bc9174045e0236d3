"""The backward flow of a layer: where each pixel of frame i comes from in frame 0, from the layer's forward flow f_{0→i}.

A layer's flow is smooth, or nearly (it is densified over the whole frame, never cut at an edge),
so the map p ↦ p + f(p) can be inverted point by point: for a target q, Newton's method solves
p + f(p) = q with the Jacobian I + ∇f from central differences, starting from the previous frame's
answer. It runs on a coarse grid of targets, 16 pixels apart, and the canvas upsamples the answer
bilinearly (:meth:`CoarseGrid.upsample`), which is exact for affine motion (a camera move) and close elsewhere. Every cell of
the grid is checked at its centre; the cells where the upsampled answer is off by more than
``TOLERANCE_PX`` (where the flow bends sharply, such as the rim of the densifier's
normalisation) are split into a grid twice as fine, solved there and checked again, down to
nodes ``FINEST_STEP`` pixels apart. Where the forward map folds (two sources landing on one
target: det(I + ∇f) ≤ 0 somewhere) there is no single inverse, and where a cell is still off by
more than ``ACCEPT_PX`` at the finest grid the flow has a jump: such a frame falls back to softmax
splatting (faster motion in front), with the holes it leaves filled from their surroundings.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from motionforge.motion.fuse import magnitude
from motionforge.kernels import splat
from motionforge.kernels.reference import EPS, METRIC_CLIP

COARSE_STEP = 16  # pixels between the coarsest grid's nodes
REFINE = 2  # each refinement halves the spacing (the grids' node arithmetic assumes 2)
FINEST_STEP = 2  # pixels between the finest grid's nodes
NEWTON_ITERATIONS = 8
NEWTON_TOLERANCE = 1e-3  # Newton stops once every node's source is this close (pixels)
TOLERANCE_PX = 0.15  # how far the upsampled map may be off at a cell's centre before the cell is refined (pixels)
ACCEPT_PX = 0.5  # how far it may be off at the finest grid (pixels)
SETTLED_PX = TOLERANCE_PX / 8  # a cell this close at its centre is not checked again at the finer grids (pixels)
UNIFORM_PX = 1e-4  # a frame whose flow varies less than this everywhere (pixels) moves every pixel alike
# The forward map counts as folding where det(I + ∇f), by differences FOLD_SPACING pixels apart, falls below this.
FOLD_DETERMINANT = 0.05
FOLD_SPACING = 2
# A target pixel that receives less splatting weight than this is treated as a hole.
COVERAGE_MIN = 1e-3


@dataclass(frozen=True)
class CoarseGrid:
    """Target nodes every ``step`` pixels, one more beyond each edge of the frame, placed as bilinear resizing places them.

    Node j of a row sits at x = step·j + (step − 1)/2, for j = −1 … ⌈W/step⌉: at the centre of a
    step × step block of pixels, which is where ``cv2.resize`` and torch's bilinear ``interpolate``
    (corners not aligned) put the samples they upsample from. Upsampling the nodes by ``step`` and
    cropping ``step`` pixels off each side (:meth:`upsample`) gives every pixel's value, with no
    edge left to extrapolate.
    """

    height: int
    width: int
    step: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of nodes."""
        return -(-self.height // self.step) + 2, -(-self.width // self.step) + 2

    @property
    def per_pixel(self) -> bool:
        """True when there is a node at every pixel (nothing to upsample)."""
        return self.step == 1

    @property
    def finest(self) -> bool:
        """True when this is the finest grid refinement goes to."""
        return self.step <= FINEST_STEP

    def finer(self) -> CoarseGrid:
        """The grid with REFINE times as many nodes along each side."""
        return CoarseGrid(self.height, self.width, max(1, self.step // REFINE))

    def _axis(self, count: int, device: torch.device) -> torch.Tensor:
        """Node positions along one side: [count]."""
        return self.step * (torch.arange(count, device=device, dtype=torch.float32) - 1) + (self.step - 1) / 2

    def nodes(self, device: torch.device) -> torch.Tensor:
        """The nodes' pixel positions: [2, rows, columns], x then y (computed once per grid and device; do not modify)."""
        return _node_positions(self, torch.device(device))

    def upsample(self, values: torch.Tensor) -> torch.Tensor:
        """Every pixel's value [C, H, W], bilinear between the nodes' values [C, rows, cols]."""
        if self.per_pixel:
            return values[:, 1:-1, 1:-1]
        rows, cols = self.shape
        up = F.interpolate(values[None], size=(rows * self.step, cols * self.step), mode="bilinear", align_corners=False)[0]
        return up[:, self.step : self.step + self.height, self.step : self.step + self.width]

    def resample(self, values: torch.Tensor, finer: CoarseGrid) -> torch.Tensor:
        """Values at this grid's nodes [C, rows, cols], bilinear at the next finer grid's nodes: [C, rows', cols'].

        The finer grid's node b lies at this grid's fractional index b/2 + 1/4, which is the output
        index b + 1 of torch's 2× bilinear upsampling (corners not aligned).
        """
        rows, cols = finer.shape
        up = F.interpolate(values[None], scale_factor=REFINE, mode="bilinear", align_corners=False)[0]  # [C, 2 rows, 2 cols]
        return up[:, 1 : rows + 1, 1 : cols + 1]

    def cell_centres(self, nodes: torch.Tensor) -> torch.Tensor:
        """The centres of the grid's cells, bilinear between their four nodes: [2, rows-1, cols-1] from [2, rows, cols]."""
        return 0.25 * (nodes[:, :-1, :-1] + nodes[:, 1:, :-1] + nodes[:, :-1, 1:] + nodes[:, 1:, 1:])

    def nodes_of_cells(self, cells: torch.Tensor, finer: CoarseGrid) -> torch.Tensor:
        """The nodes of the next finer grid inside the given cells of this one: bool [rows', cols'] from [rows-1, cols-1].

        Cell c (between nodes c and c + 1) holds the finer grid's nodes 2c and 2c + 1, along each side.
        """
        rows, cols = finer.shape
        inside = cells.repeat_interleave(REFINE, dim=0).repeat_interleave(REFINE, dim=1)  # [2 (rows-1), 2 (cols-1)]
        padded = torch.zeros(max(rows, inside.shape[0]), max(cols, inside.shape[1]), dtype=torch.bool, device=cells.device)
        padded[: inside.shape[0], : inside.shape[1]] = inside
        return padded[:rows, :cols]


@functools.lru_cache(maxsize=64)
def _node_positions(grid: CoarseGrid, device: torch.device) -> torch.Tensor:
    """The nodes' pixel positions of a grid: [2, rows, columns]."""
    rows, cols = grid.shape
    grid_y, grid_x = torch.meshgrid(grid._axis(rows, device), grid._axis(cols, device), indexing="ij")
    return torch.stack([grid_x, grid_y])  # [2, rows, cols]


def pixel_positions(height: int, width: int, device: torch.device) -> torch.Tensor:
    """Every pixel's own position: [2, H, W], x then y."""
    return CoarseGrid(height, width, 1).nodes(device)[:, 1:-1, 1:-1]


def sample(flow: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Bilinear values of a flow [2, H, W] at pixel positions [2, ...], replicating its edge beyond the frame: [2, ...]."""
    height, width = flow.shape[-2:]
    shape = positions.shape[1:]
    points = positions.reshape(2, 1, -1)  # [2, 1, P]
    scale = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], device=flow.device).view(2, 1, 1)
    grid = (points * scale - 1.0).permute(1, 2, 0)[None]  # [1, 1, P, 2] in grid_sample's [-1, 1]
    values = F.grid_sample(flow[None], grid, mode="bilinear", padding_mode="border", align_corners=True)  # [1, 2, 1, P]
    return values[0, :, 0].reshape(2, *shape)


def jacobian(flow: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f and ∇f at positions [2, ...], ∇f by central differences one pixel apart: [2, ...], [2, 2, ...] (∂f_i/∂x_j)."""
    offsets = torch.tensor([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], dtype=positions.dtype, device=positions.device)  # [5, 2]
    stencil = positions[None] + offsets.view(5, 2, *([1] * (positions.dim() - 1)))  # [5, 2, ...]
    values = sample(flow, stencil.transpose(0, 1))  # [2, 5, ...]
    d_dx = 0.5 * (values[:, 1] - values[:, 2])  # [2, ...]
    d_dy = 0.5 * (values[:, 3] - values[:, 4])  # [2, ...]
    return values[:, 0], torch.stack([d_dx, d_dy], dim=1)


def folds(flow: torch.Tensor) -> bool:
    """True when the map p ↦ p + f(p) of a flow [2, H, W] folds over somewhere, by differences FOLD_SPACING pixels apart."""
    step = FOLD_SPACING
    coarse = flow[:, ::step, ::step]  # [2, h, w]
    rows, cols = coarse.shape[1:]
    d_dx = (coarse[:, :, 1:] - coarse[:, :, :-1]) / step  # [2, h, w-1]
    d_dy = (coarse[:, 1:, :] - coarse[:, :-1, :]) / step  # [2, h-1, w]
    if rows > 1 and cols > 1:
        det = (1 + d_dx[0, :-1]) * (1 + d_dy[1, :, :-1]) - d_dy[0, :, :-1] * d_dx[1, :-1]  # [h-1, w-1]
    elif cols > 1:
        det = 1 + d_dx[0]  # a single row can only fold along x
    elif rows > 1:
        det = 1 + d_dy[1]
    else:
        return False
    return bool((det < FOLD_DETERMINANT).any())


def newton(flow: torch.Tensor, targets: torch.Tensor, guess: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Solve p + f(p) = q for every target q [2, ...] from a guess [2, ...]: the sources [2, ...] and the largest residual."""
    source = guess
    for _ in range(NEWTON_ITERATIONS):
        values, grad = jacobian(flow, source)
        error = source + values - targets  # [2, ...]
        if not error.numel() or float(error.abs().amax()) < NEWTON_TOLERANCE:
            return source, 0.0
        a, b = 1 + grad[0, 0], grad[0, 1]  # J = I + ∇f = [[a, b], [c, d]]
        c, d = grad[1, 0], 1 + grad[1, 1]
        det = (a * d - b * c).clamp(min=FOLD_DETERMINANT)
        source = source - torch.stack([d * error[0] - b * error[1], a * error[1] - c * error[0]]) / det
    return source, float((source + sample(flow, source) - targets).abs().amax())


def centre_errors(flow: torch.Tensor, grid: CoarseGrid, nodes: torch.Tensor, cells: torch.Tensor | None = None) -> torch.Tensor:
    """How far the bilinear map is from inverting the flow at each cell's centre, pixels: [rows-1, cols-1].

    With ``cells`` (bool [rows-1, cols-1]) only those cells are checked; the others read 0.
    """
    middle, aim = grid.cell_centres(nodes), _cell_centres(grid, flow.device)  # [2, rows-1, cols-1]
    if cells is None:
        return (middle + sample(flow, middle) - aim).abs().amax(dim=0)
    errors = torch.zeros(cells.shape, device=flow.device)
    chosen = middle[:, cells]  # [2, M]
    errors[cells] = (chosen + sample(flow, chosen) - aim[:, cells]).abs().amax(dim=0)
    return errors


@functools.lru_cache(maxsize=64)
def _cell_centres(grid: CoarseGrid, device: torch.device) -> torch.Tensor:
    """The pixel positions of a grid's cell centres: [2, rows-1, cols-1]."""
    return grid.cell_centres(grid.nodes(device))


def invert(
    flow: torch.Tensor, grid: CoarseGrid, guess: torch.Tensor | None
) -> tuple[CoarseGrid, torch.Tensor, torch.Tensor] | None:
    """Source positions of a grid's nodes under a forward flow [2, H, W], refined where the grid is too coarse.

    Returns the (possibly finer) grid, its nodes' sources [2, rows, cols] and the sources of the
    given grid's own nodes (the next frame's guess), or None where the map cannot be inverted node
    by node (a fold, or a jump that the finest grid cannot resolve).
    """
    if folds(flow):
        return None
    targets = grid.nodes(flow.device)  # [2, rows, cols]
    start = guess if guess is not None and guess.shape == targets.shape else targets - sample(flow, targets)
    nodes, residual = newton(flow, targets, start)
    if residual > TOLERANCE_PX:
        return None
    coarse = nodes
    errors = centre_errors(flow, grid, nodes)  # [rows-1, cols-1]
    while True:
        if grid.finest:
            return (grid, nodes, coarse) if not errors.numel() or float(errors.amax()) <= ACCEPT_PX else None
        bad = errors > TOLERANCE_PX
        if not bool(bad.any()):
            return grid, nodes, coarse
        finer = grid.finer()
        nodes_fine = grid.resample(nodes, finer)  # [2, rows', cols'] bilinear: the same map as before
        redo = grid.nodes_of_cells(bad, finer)  # [rows', cols'] the finer grid's nodes to solve again
        solved, residual = newton(flow, finer.nodes(flow.device)[:, redo], nodes_fine[:, redo])
        if residual > TOLERANCE_PX:
            return None
        nodes_fine[:, redo] = solved
        # Check again only around the cells that were not clearly good: a finer cell of a cell whose centre was
        # off by less than SETTLED_PX interpolates the same smooth map.
        unsure = (errors > SETTLED_PX).repeat_interleave(REFINE, dim=0).repeat_interleave(REFINE, dim=1)[None, None].float()
        unsure = F.max_pool2d(unsure, kernel_size=3, stride=1, padding=1)[0, 0] > 0  # [2 (rows-1), 2 (cols-1)] and around
        grid, nodes = finer, nodes_fine
        check = torch.zeros(grid.shape[0] - 1, grid.shape[1] - 1, dtype=torch.bool, device=flow.device)
        rows, cols = min(check.shape[0], unsure.shape[0]), min(check.shape[1], unsure.shape[1])
        check[:rows, :cols] = unsure[:rows, :cols]
        errors = centre_errors(flow, grid, nodes, check)


def splatted_backward(flow: torch.Tensor, occlusion: float) -> torch.Tensor:
    """For a forward flow [2, H, W], the displacement [2, H, W] from each target pixel back to its source, by softmax splatting.

    One summing splat carries the softmax-weighted backward flow, its weights and plain ones, so the
    softmax splat (faster motion in front, weight exp(occlusion · |f|)) and the coverage share one
    pass; pixels nothing lands on get the backward flow of their surroundings (push-pull).
    """
    flow = flow[None]  # [1, 2, H, W]
    metric = occlusion * magnitude(flow, keepdim=True)  # [1, 1, H, W]
    weight = metric.clamp(-METRIC_CLIP, METRIC_CLIP).exp()  # [1, 1, H, W]
    carried = torch.cat([-flow * weight, weight, torch.ones_like(weight)], dim=1)  # [1, 4, H, W]
    total = splat(carried, flow, "sum")  # [1, 4, H, W]
    back = total[:, :2] / (total[:, 2:3] + EPS)  # [1, 2, H, W]
    return fill_holes(back, total[:, 3:] > COVERAGE_MIN)[0]


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


class LayerInverse:
    """Backward maps of one layer, frame by frame: the frame-0 position that each pixel of frame i shows.

    Frames are asked for in order; each starts Newton's method from the previous frame's answer on
    the coarse grid. ``splatted`` counts the frames that fell back to splatting, for the run's record.
    """

    def __init__(self, height: int, width: int, occlusion: float) -> None:
        """Prepare for a layer of height × width pixels."""
        self.coarse = CoarseGrid(height, width, COARSE_STEP)
        self.occlusion = occlusion
        self.guess: torch.Tensor | None = None
        self.splatted = 0

    def sources(self, flow: torch.Tensor) -> tuple[CoarseGrid, torch.Tensor]:
        """The frame-0 position (x, y, pixels) that each node of a grid over frame i shows under the forward flow [2, H, W].

        Returns the grid and its nodes' positions [2, rows, cols]; upsampled bilinearly, they give
        every pixel's. A frame that moves every pixel alike (a brushed object dragged by one track, a
        camera pan) is a shift of the coarse grid; a frame that cannot be inverted comes back per
        pixel, splatted.
        """
        low, high = flow.amin(dim=(1, 2)), flow.amax(dim=(1, 2))  # [2] each
        if bool((high - low <= UNIFORM_PX).all()):
            self.guess = None
            return self.coarse, self.coarse.nodes(flow.device) - (0.5 * (low + high)).view(2, 1, 1)
        inverted = invert(flow, self.coarse, self.guess)
        if inverted is not None:
            grid, nodes, self.guess = inverted
            return grid, nodes
        self.splatted += 1
        self.guess = None
        height, width = flow.shape[-2:]
        positions = pixel_positions(height, width, flow.device) + splatted_backward(flow, self.occlusion)  # [2, H, W]
        return CoarseGrid(height, width, 1), F.pad(positions[None], (1, 1, 1, 1), mode="replicate")[0]
