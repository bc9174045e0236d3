"""Inverting a layer's forward flow: exact for camera moves, within a fraction of a pixel for tracks, splatted where it folds."""

from __future__ import annotations

import math

import pytest
import torch

from motionforge.backbones.warp.inversion import (
    ACCEPT_PX,
    COARSE_STEP,
    CoarseGrid,
    LayerInverse,
    fill_holes,
    pixel_positions,
    sample,
    splatted_backward,
)
from motionforge.motion.fuse import DensifySettings, SparsePoints, densify_gaussian

HEIGHT, WIDTH = 96, 128


def upsampled(grid: CoarseGrid, nodes: torch.Tensor) -> torch.Tensor:
    """Every pixel's source [2, H, W] from the grid's nodes, as the canvases upsample them."""
    return grid.upsample(nodes)


def residual(flow: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """How far each pixel's source, moved by the flow, lands from the pixel: [H, W] pixels."""
    pixels = pixel_positions(flow.shape[-2], flow.shape[-1], flow.device)
    return (sources + sample(flow, sources) - pixels).abs().amax(dim=0)


def affine(matrix: list[list[float]], centre: tuple[float, float]) -> torch.Tensor:
    """The forward flow [2, H, W] of x ↦ A (x − c) + c."""
    pixels = pixel_positions(HEIGHT, WIDTH, torch.device("cpu"))
    c = torch.tensor(centre).view(2, 1, 1)
    moved = torch.einsum("ij,jhw->ihw", torch.tensor(matrix), pixels - c) + c
    return moved - pixels


def test_a_translation_is_inverted_exactly_on_the_coarsest_grid() -> None:
    flow = torch.zeros(2, HEIGHT, WIDTH)
    flow[0], flow[1] = 7.25, -3.5
    grid, nodes = LayerInverse(HEIGHT, WIDTH, 0.5).sources(flow)
    assert grid == CoarseGrid(HEIGHT, WIDTH, COARSE_STEP)
    torch.testing.assert_close(upsampled(grid, nodes), pixel_positions(HEIGHT, WIDTH, flow.device) - flow[:, :1, :1])


def test_a_zoom_with_a_turn_is_inverted_exactly_at_every_pixel() -> None:
    angle = math.radians(8)
    scale = 1.5
    matrix = [[scale * math.cos(angle), -scale * math.sin(angle)], [scale * math.sin(angle), scale * math.cos(angle)]]
    flow = affine(matrix, (64.0, 48.0))  # about the centre: every source lies in the frame, where the flow is affine
    grid, nodes = LayerInverse(HEIGHT, WIDTH, 0.5).sources(flow)
    assert grid.step == COARSE_STEP  # an affine map is bilinear: the coarse grid is exact
    assert float(residual(flow, upsampled(grid, nodes)).max()) < 1e-3


def track_flow(moves: list[tuple[float, float, float, float]], settings: DensifySettings) -> torch.Tensor:
    """The densifier's flow [2, H, W] for tracks (x, y, dx, dy) at their last frame."""
    positions = torch.tensor([[float(x), float(y)] for x, y, _, _ in moves])
    flow = torch.tensor([[[0.0, 0.0], [dx, dy]] for _, _, dx, dy in moves])  # [N, 2 frames, 2]
    points = SparsePoints(positions, flow, torch.ones(len(moves), 2))
    return densify_gaussian(points, HEIGHT, WIDTH, settings)[-1]


def test_the_densifiers_bend_is_refined_until_every_pixel_is_within_tolerance() -> None:
    # two tracks pulling apart and a pin: the normalisation max(1, total weight) bends the flow along a curve
    flow = track_flow([(30, 40, 25, -10), (100, 60, -20, 15), (64, 90, 0, 0)], DensifySettings(sigma=40.0, threshold=0.0))
    inverse = LayerInverse(HEIGHT, WIDTH, 0.5)
    grid, nodes = inverse.sources(flow)
    assert grid.step < COARSE_STEP  # the bend asked for a finer grid
    assert inverse.splatted == 0
    assert float(residual(flow, upsampled(grid, nodes)).max()) <= ACCEPT_PX


def test_a_fold_falls_back_to_splatting_with_the_faster_point_in_front() -> None:
    flow = torch.zeros(2, 1, 12)
    flow[0, 0, 2] = 6.0  # pixel 2 jumps onto pixel 8, which stays put
    inverse = LayerInverse(1, 12, occlusion=2.0)
    grid, nodes = inverse.sources(flow)
    assert grid.per_pixel and inverse.splatted == 1
    assert float(grid.upsample(nodes)[0, 0, 8]) == pytest.approx(2.0, abs=1e-3)  # pixel 8 shows pixel 2


def test_the_next_frame_starts_from_this_frames_answer() -> None:
    inverse = LayerInverse(HEIGHT, WIDTH, 0.5)
    flow = affine([[1.1, 0.0], [0.0, 1.1]], (64.0, 48.0))
    inverse.sources(flow)
    assert inverse.guess is not None and inverse.guess.shape == (2, *inverse.coarse.shape)


def test_splatted_backward_flow_of_a_translation_points_back_everywhere() -> None:
    flow = torch.zeros(2, 20, 30)
    flow[0], flow[1] = 4.0, -2.5
    torch.testing.assert_close(splatted_backward(flow, occlusion=0.5), -flow)  # the borders' holes take their neighbours' flow


def test_fill_holes_keeps_valid_pixels_and_fills_the_rest() -> None:
    values = torch.randn(2, 3, 17, 23)
    valid = torch.rand(2, 1, 17, 23) > 0.7
    filled = fill_holes(values, valid)
    assert torch.equal(filled[valid.expand_as(values)], values[valid.expand_as(values)])
    assert torch.isfinite(filled).all()
    constant = fill_holes(torch.full((1, 2, 9, 9), 5.0) * valid[:1, :, :9, :9], valid[:1, :, :9, :9])
    torch.testing.assert_close(constant, torch.full((1, 2, 9, 9), 5.0))


def test_a_grids_upsampled_nodes_are_where_they_say_and_refinement_finds_the_cells_nodes() -> None:
    grid = CoarseGrid(HEIGHT, WIDTH, COARSE_STEP)
    nodes = grid.nodes(torch.device("cpu"))
    torch.testing.assert_close(grid.upsample(nodes), pixel_positions(HEIGHT, WIDTH, nodes.device))  # positions upsample exactly
    finer = grid.finer()
    torch.testing.assert_close(grid.resample(nodes, finer), finer.nodes(nodes.device))
    bad = torch.zeros(grid.shape[0] - 1, grid.shape[1] - 1, dtype=torch.bool)
    bad[1, 2] = True  # the cell between nodes (x 23.5 … 39.5, y 7.5 … 23.5)
    redo = grid.nodes_of_cells(bad, finer)
    where = finer.nodes(nodes.device)[:, redo]  # [2, M]
    assert redo.shape == finer.shape and int(redo.sum()) == 4  # the finer nodes at x, y ∈ {27.5, 35.5} × {11.5, 19.5}
    assert (
        float(where[0].min()) >= 23.5
        and float(where[0].max()) <= 39.5
        and float(where[1].min()) >= 7.5
        and float(where[1].max()) <= 23.5
    )
