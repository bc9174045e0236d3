"""The camera adapter: pan, zoom and rotation as flow patterns over the whole frame."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from motionforge import ConfigError, MotionContext
from motionforge.adapters.camera import CameraAdapter, CameraConfig


def context(width=65, height=49, frames=5, source=None, box=None) -> MotionContext:
    return MotionContext(
        height,
        width,
        frames,
        torch.zeros(3, height, width),
        source or (width, height),
        source_box=box,
    )


def camera_flow(ctx=None, **config) -> torch.Tensor:
    hint = CameraAdapter().build(CameraConfig(**config), ctx or context())
    assert hint.camera and hint.mask is None and hint.region is None
    return hint.flow  # [F, 2, H, W]


def test_pan_moves_every_pixel_by_the_same_steps() -> None:
    flow = camera_flow(pan=[2.0, -1.0])
    for i in range(5):
        assert torch.allclose(flow[i, 0], torch.tensor(2.0 * i)) and torch.allclose(flow[i, 1], torch.tensor(-1.0 * i))


def test_zoom_keeps_its_centre_and_moves_a_corner_by_the_expected_amount() -> None:
    flow = camera_flow(zoom=1.5)
    centre = (32, 24)  # the centre pixel of a 65x49 frame
    assert float(flow[:, :, centre[1], centre[0]].abs().max()) < 1e-5
    # the top-left corner sits (-32, -24) from the centre: at the end it is 1.5 times as far
    assert flow[-1, :, 0, 0].tolist() == pytest.approx([-16.0, -12.0], abs=1e-4)
    # halfway through the clip the scale is 1.5 ** 0.5 (an even zoom speed)
    assert flow[2, :, 0, 0].tolist() == pytest.approx([(1.5**0.5 - 1) * -32, (1.5**0.5 - 1) * -24], abs=1e-4)


def test_zoom_about_a_given_centre_in_image_pixels() -> None:
    ctx = context(width=32, height=24, source=(64, 48))
    flow = camera_flow(ctx, zoom=0.5, center=[10.5, 20.5])  # image pixel (10.5, 20.5) is working pixel (5, 10)
    assert float(flow[:, :, 10, 5].abs().max()) < 1e-5


def test_rotation_turns_clockwise_on_screen() -> None:
    flow = camera_flow(rotate=90.0)
    # a point right of the centre ends below it (y grows downwards): (32+10, 24) → (32, 24+10)
    assert flow[-1, :, 24, 42].tolist() == pytest.approx([-10.0, 10.0], abs=1e-4)
    angle = math.radians(45.0)  # the middle frame has turned half way
    assert flow[2, :, 24, 42].tolist() == pytest.approx([10 * math.cos(angle) - 10, 10 * math.sin(angle)], abs=1e-4)


def test_moves_combine_and_frame_0_is_still() -> None:
    flow = camera_flow(pan=[1.0, 0.0], zoom=1.2, rotate=-15.0)
    assert float(flow[0].abs().max()) == 0.0
    corner = np.array([0.0, 0.0]) - np.array([32.0, 24.0])
    turn = math.radians(-15.0)
    rotated = 1.2 * np.array(
        [
            math.cos(turn) * corner[0] - math.sin(turn) * corner[1],
            math.sin(turn) * corner[0] + math.cos(turn) * corner[1],
        ]
    )
    expected = rotated + np.array([32.0, 24.0]) + np.array([4.0, 0.0])
    assert flow[-1, :, 0, 0].tolist() == pytest.approx(expected.tolist(), abs=1e-4)


def test_the_hint_carries_guide_tracks_for_the_hint_image() -> None:
    hint = CameraAdapter().build(CameraConfig(pan=[3.0, 0.0]), context())
    assert hint.tracks.shape == (9, 5, 2)
    assert torch.allclose(hint.tracks[:, -1] - hint.tracks[:, 0], torch.tensor([12.0, 0.0]))


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "the camera adapter has no move"),
        ({"zoom": 0.0}, "zoom=0.0 must be a positive number"),
        ({"pan": [1.0]}, r"pan=\[1.0\] must be two numbers"),
        (
            {"pan": [1.0, 0.0], "center": "middle"},
            "center='middle' must be two numbers",
        ),
        ({"rotate": float("inf")}, "rotate=inf must be a finite number"),
    ],
)
def test_bad_camera_moves_say_what_is_wrong(config, message) -> None:
    with pytest.raises(ConfigError, match=message):
        camera_flow(**config)
