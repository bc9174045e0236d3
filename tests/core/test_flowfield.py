"""A flow field: a clip's flow kept as its parts and read a few frames at a time, the same numbers as the whole tensor."""

from __future__ import annotations

import pytest
import torch

from motionforge import FlowField, SparsePoints
from motionforge.core.flowfield import Term
from motionforge.motion.fuse import motion_strength

FRAMES, HEIGHT, WIDTH = 11, 6, 9


def parts() -> tuple[FlowField, torch.Tensor]:
    """A field of two spread tracks, a dense flow and a masked, scaled copy; and the same flow as one tensor."""
    generator = torch.Generator().manual_seed(0)
    weights = torch.rand(2, HEIGHT, WIDTH, generator=generator)  # [N, H, W]
    motion = torch.randn(2, FRAMES, 2, generator=generator)  # [N, F, 2]
    dense = torch.randn(FRAMES, 2, HEIGHT, WIDTH, generator=generator)
    mask = torch.rand(HEIGHT, WIDTH, generator=generator)
    field = FlowField.spread(weights, motion) + FlowField.of(dense) + FlowField.of(dense).masked(mask).scaled(0.5)
    whole = torch.einsum("nhw,nfc->fchw", weights, motion) + dense + 0.5 * dense * mask
    return field, whole


def test_every_way_of_reading_a_field_gives_the_whole_tensors_numbers() -> None:
    field, whole = parts()
    assert field.shape == (FRAMES, 2, HEIGHT, WIDTH) and len(field) == FRAMES
    torch.testing.assert_close(field.tensor(), whole)
    torch.testing.assert_close(field[4], whole[4])
    torch.testing.assert_close(field[-1], whole[-1])
    torch.testing.assert_close(field.frames(3, 7), whole[3:7])
    torch.testing.assert_close(torch.cat([chunk for _, chunk in field.chunks(4)]), whole)
    assert [start for start, _ in field.chunks(4)] == [0, 4, 8]
    with pytest.raises(IndexError):
        field[FRAMES]


def test_measures_read_chunk_by_chunk_match_the_whole_clips() -> None:
    field, whole = parts()
    assert field.max_magnitude() == pytest.approx(float(torch.hypot(whole[:, 0], whole[:, 1]).max()), rel=1e-5)
    assert field.motion_strength() == pytest.approx(motion_strength(whole), rel=1e-5)


def test_blending_two_fields_by_a_mask_is_their_pixelwise_mix() -> None:
    field, whole = parts()
    other = FlowField.of(torch.ones(FRAMES, 2, HEIGHT, WIDTH))
    alpha = torch.linspace(0, 1, WIDTH).expand(HEIGHT, WIDTH)
    torch.testing.assert_close(field.lerp(other, alpha).tensor(), torch.lerp(whole, torch.ones_like(whole), alpha))


def test_a_lone_dense_field_is_read_without_a_copy() -> None:
    flow = torch.randn(FRAMES, 2, HEIGHT, WIDTH)
    assert FlowField.of(flow).tensor() is flow
    assert FlowField([], FRAMES, HEIGHT, WIDTH, flow.device).tensor().abs().max() == 0


def test_a_spread_term_is_one_product_per_frame() -> None:
    term = Term(weights=torch.ones(3, HEIGHT, WIDTH) / 3, motion=torch.arange(3 * FRAMES * 2.0).view(3, FRAMES, 2))
    frame = term.frames(2, 3)[0]  # [2, H, W]: the mean of the three tracks' displacements at frame 2, everywhere
    expected = torch.arange(3 * FRAMES * 2.0).view(3, FRAMES, 2)[:, 2].mean(dim=0)
    torch.testing.assert_close(frame, expected.view(2, 1, 1).expand(2, HEIGHT, WIDTH))


def test_sparse_samples_raster_onto_their_pixels_and_share_one_by_averaging() -> None:
    flow = torch.tensor([[[0.0, 0.0], [2.0, 4.0]], [[0.0, 0.0], [4.0, 0.0]], [[0.0, 0.0], [-1.0, 1.0]]])  # [3, F=2, 2]
    points = SparsePoints(torch.tensor([[1.2, 2.0], [0.8, 2.1], [5.0, 4.0]]), flow, torch.ones(3, 2))
    raster, mask = points.raster(HEIGHT, WIDTH)
    assert raster.shape == (2, 2, HEIGHT, WIDTH) and mask.shape == (1, 1, HEIGHT, WIDTH) and int(mask.sum()) == 2
    assert raster[-1, :, 2, 1].tolist() == [3.0, 2.0]  # the first two round to pixel (1, 2): their mean
    assert raster[-1, :, 4, 5].tolist() == [-1.0, 1.0]
