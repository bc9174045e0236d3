"""Pictures of the motion: flow as colour, and the hint image."""

from __future__ import annotations

import numpy as np
import torch

from motionforge.io import draw_hint, flow_to_color, flow_video
from tests.io.test_image import gradient


# ---------------------------------------------------------------- flow visualisation


def constant_flow(u: float, v: float, size: int = 4) -> np.ndarray:
    """A flow [2, size, size] moving every pixel by (u, v)."""
    return np.stack([np.full((size, size), u), np.full((size, size), v)])


def test_zero_flow_is_white():
    assert (flow_to_color(np.zeros((2, 5, 6))) == 255).all()
    assert flow_to_color(torch.zeros(2, 5, 6)).shape == (5, 6, 3)


def test_rightward_flow_is_the_wheels_first_colour_red():
    color = flow_to_color(constant_flow(3.0, 0.0))
    assert color.dtype == np.uint8 and color.shape == (4, 4, 3)
    assert tuple(color[0, 0]) == (255, 0, 0)


def test_four_directions_give_four_hues():
    colors = {tuple(flow_to_color(constant_flow(u, v))[0, 0]) for u, v in [(1, 0), (-1, 0), (0, 1), (0, -1)]}
    assert len(colors) == 4
    assert all(max(c) - min(c) > 100 for c in colors)  # saturated, not grey


def test_magnitude_beyond_the_scale_is_darker():
    inside = flow_to_color(constant_flow(2.0, 0.0), max_magnitude=2.0)[0, 0]
    beyond = flow_to_color(constant_flow(4.0, 0.0), max_magnitude=2.0)[0, 0]
    assert beyond.astype(int).sum() < inside.astype(int).sum()


def test_flow_video_uses_one_scale_for_the_clip():
    flows = np.stack([constant_flow(0, 0), constant_flow(1.0, 0), constant_flow(2.0, 0)])  # [3, 2, 4, 4]
    video = flow_video(torch.from_numpy(flows))
    assert video.shape == (3, 4, 4, 3) and video.dtype == np.uint8
    saturation = video.max(-1).astype(int) - video.min(-1).astype(int)  # [F, H, W]
    assert saturation[0].max() == 0  # no motion: white
    assert 0 < saturation[1].mean() < saturation[2].mean()
    assert (flow_video(np.zeros((2, 2, 3, 3))) == 255).all()


# ---------------------------------------------------------------- draw_hint


def test_draw_hint_draws_tracks_and_pins():
    image = np.full((64, 96, 3), 128, np.uint8)
    tracks = np.array(
        [
            [[10, 10], [30, 20], [60, 40]],  # moves: polyline with an arrowhead
            [[80, 50], [80, 50], [80, 50]],  # never moves: a ring
        ],
        dtype=np.float32,
    )
    drawn = draw_hint(image, torch.from_numpy(tracks))
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    changed = (drawn != image).any(-1)  # [H, W]
    assert changed[10, 10] and changed[20, 30] and changed[40, 60]
    assert changed[50, 80 + 5]  # on the pin's ring
    assert (image == 128).all()  # the input is left alone
    assert np.array_equal(draw_hint(image, tracks), drawn)  # deterministic


def test_draw_hint_dims_outside_the_region():
    image = np.full((16, 16, 3), 200, np.uint8)
    region = np.zeros((16, 16))
    region[:, :8] = 1.0
    drawn = draw_hint(image, None, region)
    assert (drawn[:, :8] == 200).all()
    assert (drawn[:, 8:] < 200).all()


def test_draw_hint_with_nothing_returns_the_image():
    image = gradient()
    assert np.array_equal(draw_hint(image, None), image)
    assert np.array_equal(draw_hint(image, np.zeros((0, 4, 2))), image)
