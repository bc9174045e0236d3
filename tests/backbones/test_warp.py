"""The warp backbone: the picture moves where the plan says, frame 0 is the input, no holes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from motionforge import animate, compose_config
from motionforge.backbones.warp import backward_flow, fill_holes
from tests.conftest import textured_square_image


def red_centroid(frame: np.ndarray) -> np.ndarray:
    """(x, y) centroid of the bright-red square in a uint8 frame [H, W, 3]."""
    weight = np.clip((frame[..., 0].astype(float) - 90) / (255 - 90), 0, 1)
    ys, xs = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


def render(tmp_path, image: np.ndarray, *overrides: str):
    path = tmp_path / "input.png"
    Image.fromarray(image).save(path)
    return animate(compose_config([f"image={path}", "output.save=false", "progress=false", *overrides]))


@pytest.mark.parametrize("track", [[[128, 100], [188, 140]], [[128, 100], [150, 60], [190, 70], [200, 120]]])
def test_a_textured_square_lands_where_the_track_asks_in_every_frame(tmp_path, track) -> None:
    image = textured_square_image(size=256, square=16, centre=tuple(track[0]))
    video = render(tmp_path, image, f"adapters.trajectory.paths=[{track}]", "num_frames=12")
    requested = video.plan.tracks[0].numpy()  # [F, 2]
    start = red_centroid(video.frames[0])
    for i, frame in enumerate(video.frames):
        error = np.linalg.norm(red_centroid(frame) - (start + requested[i] - requested[0]))
        assert error < 1.0, f"frame {i}: the square is {error:.2f} px from where the track asks"


def test_frame_0_is_the_input_exactly(tmp_path) -> None:
    image = textured_square_image(size=64, square=12, centre=(30, 30))
    video = render(tmp_path, image, "adapters.trajectory.paths=[[[30,30],[50,40]]]", "num_frames=4")
    assert np.array_equal(video.frames[0], image)
    assert not np.array_equal(video.frames[-1], image)


def test_no_motion_gives_the_input_in_every_frame(tmp_path) -> None:
    image = textured_square_image(size=64, square=12, centre=(30, 30))
    video = render(tmp_path, image, "adapters=[]", "num_frames=5")
    assert all(np.array_equal(frame, image) for frame in video.frames)


def test_the_border_an_image_leaves_is_filled(tmp_path, wiggle_plugin) -> None:
    image = textured_square_image(size=64, square=12, centre=(30, 30))
    video = render(tmp_path, image, "adapters=[wiggle]", "adapters.wiggle.amplitude=10", "num_frames=3")
    last = video.frames[-1].astype(int)
    np.testing.assert_array_equal(last[:, :10], np.repeat(image[:, :1].astype(int), 10, axis=1))  # edge repeated
    np.testing.assert_array_equal(last[:, 10:], image[:, :-10].astype(int))  # everything else shifted 10 px


def test_zeros_padding_reads_black_outside(tmp_path, wiggle_plugin) -> None:
    image = textured_square_image(size=64, square=12, centre=(30, 30))
    video = render(tmp_path, image, "adapters=[wiggle]", "adapters.wiggle.amplitude=10", "num_frames=3", "backbone.padding=zeros")
    assert video.frames[-1][:, :9].max() == 0


def test_backward_flow_of_a_translation_points_back_everywhere() -> None:
    flow = torch.zeros(1, 2, 20, 30)
    flow[:, 0], flow[:, 1] = 4.0, -2.5
    back = backward_flow(flow, occlusion=0.5)
    torch.testing.assert_close(back, -flow)  # holes at the borders are filled with their neighbours' flow


def test_faster_motion_wins_where_two_points_land_on_one_pixel() -> None:
    flow = torch.zeros(1, 2, 1, 12)
    flow[0, 0, 0, 2] = 6.0  # pixel 2 jumps onto pixel 8, which stays put
    back = backward_flow(flow, occlusion=2.0)
    assert float(back[0, 0, 0, 8]) == pytest.approx(-6.0, abs=1e-4)


def test_fill_holes_keeps_valid_pixels_and_fills_the_rest() -> None:
    values = torch.randn(2, 3, 17, 23)
    valid = torch.rand(2, 1, 17, 23) > 0.7
    filled = fill_holes(values, valid)
    assert torch.equal(filled[valid.expand_as(values)], values[valid.expand_as(values)])
    assert torch.isfinite(filled).all()
    constant = fill_holes(torch.full((1, 2, 9, 9), 5.0) * valid[:1, :, :9, :9], valid[:1, :, :9, :9])
    torch.testing.assert_close(constant, torch.full((1, 2, 9, 9), 5.0))


def test_a_brush_with_no_motion_inside_is_kept_still_and_said_once(tmp_path, caplog) -> None:
    image = textured_square_image(size=64, square=12, centre=(30, 30))
    video = render(tmp_path, image, "adapters=[brush]", "adapters.brush.boxes=[[0,0,32,64]]", "num_frames=4")
    assert (video.frames == video.frames[0]).all()
    assert caplog.text.count("marked to animate freely") == 1 and "50.0% of the frame" in caplog.text
    assert video.metadata["plan"]["free_pixels"] == 32 * 64
