"""Optical flow from a driving video: reading and fitting frames, DIS, chaining, interpolating in time."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from motionforge import InputError, MotionContext
from motionforge.io.opticalflow import (
    chain_flows,
    count_frames,
    dis_flow,
    interpolate_frames,
    read_frames,
    resample_in_time,
    video_flow,
    video_positions,
)

STEP = (2, 1)  # (x, y) pixels per frame the synthetic texture moves


def smooth_texture(height: int, width: int, seed: int = 0, sigma: float = 4.0) -> np.ndarray:
    """Gaussian-blurred random noise stretched to 0…255, something DIS can track: uint8 [h, w, 3]."""
    noise = np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
    blurred = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    return (blurred * 255).round().astype(np.uint8)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 8.0) -> Path:
    """Write RGB frames [h, w, 3] as a lossless FFV1 .avi (so the test sees exactly these pixels)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write FFV1 video here"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def translating_video(
    path: Path, frames: int = 8, size: tuple[int, int] = (96, 96), step: tuple[int, int] = STEP, sigma: float = 4.0
) -> Path:
    """A smooth texture moving by ``step`` pixels per frame, cut from a larger texture (no wrap-around seams)."""
    width, height = size
    margin = max(abs(step[0]), abs(step[1])) * frames + 8
    texture = smooth_texture(height + 2 * margin, width + 2 * margin, sigma=sigma)
    clip = []
    for i in range(frames):
        x0, y0 = margin - i * step[0], margin - i * step[1]  # the window moves back, the content forward
        clip.append(texture[y0 : y0 + height, x0 : x0 + width])
    return write_video(path, clip)


def context(width: int = 96, height: int = 96, frames: int = 8, source: tuple[int, int] | None = None) -> MotionContext:
    """A run's context with a blank image (the video path does not look at the picture)."""
    return MotionContext(height, width, frames, torch.zeros(3, height, width), source or (width, height))


def interior_mean(flow: torch.Tensor, margin: int = 16) -> torch.Tensor:
    """Mean (x, y) displacement per frame away from the border, where content enters and leaves: [F, 2]."""
    return flow[:, :, margin:-margin, margin:-margin].mean(dim=(2, 3))


# ---- chaining and time ---------------------------------------------------------------------


def test_chaining_a_constant_translation_adds_it_up() -> None:
    consecutive = torch.zeros(4, 2, 10, 12)
    consecutive[:, 0], consecutive[:, 1] = 1.5, -0.5
    chained = chain_flows(consecutive)
    assert chained.shape == (5, 2, 10, 12)
    expected = torch.arange(5.0)[:, None] * torch.tensor([1.5, -0.5])  # [5, 2]
    torch.testing.assert_close(chained.mean(dim=(2, 3)), expected)
    assert float(chained.std(dim=(2, 3)).max()) == 0.0


def test_chaining_samples_the_next_flow_where_the_point_has_moved() -> None:
    height, width = 40, 40
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    consecutive = torch.zeros(2, 2, height, width)
    consecutive[0, 0], consecutive[0, 1] = 3.0, 2.0  # frame 0 → 1: every point moves (3, 2)
    consecutive[1, 0], consecutive[1, 1] = 0.1 * ys, -0.05 * xs  # frame 1 → 2: depends on where the point is
    chained = chain_flows(consecutive)
    # the point (10, 20) is at (13, 22) in frame 1, where the next flow is (0.1·22, −0.05·13) = (2.2, −0.65)
    torch.testing.assert_close(chained[2, :, 20, 10], torch.tensor([3.0 + 2.2, 2.0 - 0.65]))


def test_interpolating_between_frames_is_linear() -> None:
    flows = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 2, 2, 2) * 4  # frame k: 4k everywhere
    out = interpolate_frames(flows, np.array([0.0, 0.25, 1.5, 2.0]))
    assert out[:, 0, 0, 0].tolist() == [0.0, 1.0, 6.0, 8.0]


def test_resampling_in_time_keeps_the_ends_exact() -> None:
    flows = torch.randn(3, 2, 4, 5)
    out = resample_in_time(flows, 5)
    assert torch.equal(out[0], flows[0]) and torch.equal(out[-1], flows[-1]) and torch.equal(out[2], flows[1])
    torch.testing.assert_close(out[1], (flows[0] + flows[1]) / 2)
    assert resample_in_time(flows, 3) is flows


def test_video_positions_spread_or_stride() -> None:
    np.testing.assert_allclose(video_positions(9, 5, 0, None), [0, 2, 4, 6, 8])
    np.testing.assert_allclose(video_positions(9, 3, 2, None), [2, 5, 8])
    np.testing.assert_allclose(video_positions(0, 4, 1, 2), [1, 3, 5, 7])


# ---- reading video ---------------------------------------------------------------------------


def test_frames_are_read_fitted_and_grey(tmp_path) -> None:
    frames = [np.full((60, 120, 3), 40 * i, dtype=np.uint8) for i in range(4)]
    frames[0][:, :30] = 255  # a bright band the centred crop cuts away
    path = write_video(tmp_path / "wide.avi", frames)
    assert count_frames(path) == 4
    fitted, decoded = read_frames(path, [0, 2], context(width=32, height=32, source=(32, 32)))
    assert sorted(fitted) == [0, 2] and decoded == 3  # stops after the last frame asked for
    assert fitted[0].shape == (32, 32) and fitted[0].dtype == np.uint8
    assert int(fitted[0].max()) == 0 and int(fitted[2].min()) == 80  # the band is gone; grey 80 stays 80


def test_dis_measures_a_translation(tmp_path) -> None:
    texture = smooth_texture(140, 140)
    first, second = texture[20:116, 20:116], texture[17:113, 15:111]  # content moves (+5, +3)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (first, second)]
    flow = dis_flow(grey[0], grey[1])
    assert flow.shape == (2, 96, 96) and flow.dtype == torch.float32
    assert interior_mean(flow[None])[0].tolist() == pytest.approx([5.0, 3.0], abs=0.2)


def test_dis_is_deterministic_and_restores_opencv_threads(tmp_path) -> None:
    path = translating_video(tmp_path / "clip.avi", frames=4)
    before = cv2.getNumThreads()
    first = video_flow(path, context(frames=4))
    assert cv2.getNumThreads() == before
    assert torch.equal(first, video_flow(path, context(frames=4)))


def test_a_video_of_another_size_gives_working_pixels(tmp_path) -> None:
    path = translating_video(tmp_path / "big.avi", frames=5, size=(192, 192), step=(4, 2))
    flow = video_flow(path, context(frames=5))  # 192 → 96: half the pixels, half the motion
    expected = torch.arange(5.0)[:, None] * torch.tensor([2.0, 1.0])
    torch.testing.assert_close(interior_mean(flow), expected, atol=0.5, rtol=0)


def test_a_missing_video(tmp_path) -> None:
    with pytest.raises(InputError, match="video not found: .*gone.mp4; pass adapters.dense_flow.video="):
        video_flow(tmp_path / "gone.mp4", context())


def test_a_file_that_is_not_a_video(tmp_path) -> None:
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(InputError, match="OpenCV cannot read video .*notes.mp4"):
        video_flow(tmp_path / "notes.mp4", context())


@pytest.mark.parametrize("stride", [None, 1])
def test_a_one_frame_video(tmp_path, stride) -> None:
    path = write_video(tmp_path / "still.avi", [smooth_texture(64, 64)])
    with pytest.raises(InputError, match="still.avi has 1 frame; a driving video needs at least 2"):
        video_flow(path, context(64, 64, frames=4), stride=stride)


@pytest.mark.parametrize("stride", [None, 1])
def test_start_out_of_range(tmp_path, stride) -> None:
    path = translating_video(tmp_path / "clip.avi", frames=4, size=(64, 64))
    with pytest.raises(InputError, match=r"start=7 is out of range: video .*clip.avi has 4 frames, so start must be 0 to 2"):
        video_flow(path, context(64, 64, frames=4), start=7, stride=stride)


def test_a_stride_past_the_end(tmp_path) -> None:
    path = translating_video(tmp_path / "clip.avi", frames=6, size=(64, 64))
    with pytest.raises(InputError, match="clip.avi has 6 frames, but start=1 and stride=2 ask for frame 7"):
        video_flow(path, context(64, 64, frames=4), start=1, stride=2)
