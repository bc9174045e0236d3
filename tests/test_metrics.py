"""Control-adherence metrics on synthetic videos whose motion is known exactly: a textured disc shifted by sub-pixel steps."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from motionforge.core.errors import InputError
from motionforge.metrics import brush_leakage, motion_magnitude, temporal_error, track_points, trajectory_epe

SIZE = 128
CENTRE = np.array([44.0, 64.0])  # (x, y) of the disc in frame 0
RADIUS = 26.0
# Points well inside the disc, so every tracking window sees only the disc's texture.
STARTS = CENTRE + np.array([[0.0, 0.0], [-5.5, -3.8], [5.0, 4.0], [-2.0, 6.0]])  # [N, 2]


def texture(seed: int) -> np.ndarray:
    """Multi-scale value noise: float [SIZE, SIZE] in [0, 1]."""
    rng = np.random.default_rng(seed)
    total = np.zeros((SIZE, SIZE))
    for cell in (2, 4, 8, 16):
        grid = rng.random((SIZE // cell + 3, SIZE // cell + 3))
        total += cv2.resize(grid, (grid.shape[1] * cell, grid.shape[0] * cell), interpolation=cv2.INTER_CUBIC)[
            :SIZE, :SIZE
        ] * np.sqrt(cell)
    return (total - total.min()) / (total.max() - total.min())


def shifted(image: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """An image [H, W] moved by offset (x, y) pixels, bilinear, edges reflected."""
    matrix = np.array([[1.0, 0.0, offset[0]], [0.0, 1.0, offset[1]]])
    return cv2.warpAffine(image, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def rgb(gray: np.ndarray) -> np.ndarray:
    """Float gray [H, W] in 0…255 as a uint8 RGB frame [H, W, 3]."""
    return np.repeat(np.clip(gray, 0, 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def disc_video(step: tuple[float, float], num_frames: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured disc moving by `step` px per frame over a still textured ground: frames [F, H, W, 3], offsets [F, 2], disc masks [F, H, W]."""
    ground, skin = texture(0) * 180 + 30, texture(1) * 255
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    disc = (((xs - CENTRE[0]) ** 2 + (ys - CENTRE[1]) ** 2) <= RADIUS**2).astype(np.float64)  # [H, W]
    offsets = np.arange(num_frames)[:, None] * np.asarray(step)  # [F, 2]
    frames, masks = [], []
    for offset in offsets:
        cover = shifted(disc, offset)  # [H, W] antialiased edge
        frames.append(rgb(ground * (1 - cover) + shifted(skin, offset) * cover))
        masks.append(cover > 0)
    return np.stack(frames), offsets, np.stack(masks)


def targets_for(offsets: np.ndarray, starts: np.ndarray = STARTS) -> np.ndarray:
    """Where each start point is asked to be in every frame: [N, F, 2]."""
    return starts[:, None, :] + offsets[None, :, :]


@pytest.mark.parametrize("step", [(0.37, 0.21), (1.37, 0.5), (3.3, -1.7), (9.3, -4.1)])
def test_exact_subpixel_motion_has_an_end_point_error_under_0_3_px(step) -> None:
    frames, offsets, _ = disc_video(step)
    result = trajectory_epe(frames, targets_for(offsets))
    # measured: mean 0.03 px, max 0.08 px at every step (9.3 px a frame is 65 px by the last frame)
    assert result["lost"] == 0
    assert result["mean"] < 0.3 and result["max"] < 0.3, result
    assert result["per_frame"][0] == 0.0 and len(result["per_frame"]) == len(frames)


def test_targets_off_by_3_px_give_an_error_of_3_px() -> None:
    frames, offsets, _ = disc_video((1.37, 0.5))
    targets = targets_for(offsets)
    targets[:, 1:, 0] += 3.0  # the control asks for 3 px further right than the video goes
    result = trajectory_epe(frames, targets)
    assert result["per_frame"][0] == 0.0
    assert np.allclose(result["per_frame"][1:], 3.0, atol=0.3), result["per_frame"]
    assert abs(result["mean"] - 3.0) < 0.3


def test_tracking_follows_a_large_motion_without_drift() -> None:
    frames, offsets, _ = disc_video((2.3, 1.1), num_frames=24)  # 53 px right, 25 px down by the end
    positions = track_points(frames, STARTS)  # [F, N, 2]
    error = np.linalg.norm(positions - targets_for(offsets).transpose(1, 0, 2), axis=-1)  # [F, N]
    assert error.max() < 0.3, error.max(axis=1)


def test_a_point_that_leaves_the_frame_is_lost_and_reported() -> None:
    ground = texture(2) * 200 + 20
    offsets = np.arange(6)[:, None] * np.array([7.0, 0.0])  # the whole picture pans right 7 px a frame
    frames = np.stack([rgb(shifted(ground, offset)) for offset in offsets])
    starts = np.array([[40.0, 60.0], [118.0, 60.0]])  # the second reaches the right edge by frame 2
    positions = track_points(frames, starts)
    assert np.isnan(positions[-1, 1]).all() and not np.isnan(positions[:, 0]).any()
    result = trajectory_epe(frames, targets_for(offsets, starts))
    assert result["lost"] == 1
    assert result["mean"] < 0.3  # the lost track counts only while it was followed


def test_tracking_is_deterministic() -> None:
    frames, _, _ = disc_video((3.3, -1.7))
    assert np.array_equal(track_points(frames, STARTS), track_points(frames, STARTS), equal_nan=True)


def test_a_still_background_gives_zero_leakage() -> None:
    frames, _, masks = disc_video((2.5, 1.0))
    region = masks.any(axis=0)  # the disc's whole path; everything else holds still
    # DIS spreads the disc's flow ~16 px onto the ground (0.011 leakage if counted); pixels that did not change count as still
    assert brush_leakage(frames, region) == 0.0
    assert motion_magnitude(frames)[region].mean() > 1.0


def test_motion_everywhere_leaks_as_much_as_it_moves_inside() -> None:
    ground = texture(3) * 200 + 20
    frames = np.stack([rgb(shifted(ground, np.array([1.5, 0.5]) * i)) for i in range(6)])  # a pan: all pixels move alike
    region = np.zeros((SIZE, SIZE), dtype=bool)
    region[32:96, 32:96] = True
    assert brush_leakage(frames, region) == pytest.approx(1.0, abs=0.15)


def test_leakage_without_motion_inside_is_inf_and_without_any_motion_zero() -> None:
    frames, _, masks = disc_video((2.5, 1.0))
    corner = np.zeros((SIZE, SIZE), dtype=bool)
    corner[:20, 100:] = True  # a brush where the disc never goes: everything that moves is outside it
    assert not (corner & masks.any(axis=0)).any()
    assert brush_leakage(frames, corner) == math.inf
    still = np.repeat(frames[:1], 4, axis=0)
    assert brush_leakage(still, masks[0]) == 0.0


@pytest.mark.parametrize("fill", [False, True])
def test_an_empty_or_full_region_is_a_value_error(fill) -> None:
    frames, _, _ = disc_video((1.0, 0.0), num_frames=3)
    with pytest.raises(ValueError, match="region"):
        brush_leakage(frames, np.full((SIZE, SIZE), fill))


def test_a_static_video_has_zero_temporal_error() -> None:
    frames, _, _ = disc_video((0.0, 0.0), num_frames=5)
    assert temporal_error(frames) == 0.0


def test_a_moving_video_warps_onto_itself_better_than_a_shuffled_one() -> None:
    frames, _, _ = disc_video((4.0, 1.5))
    coherent = temporal_error(frames)
    shuffled = temporal_error(frames[[0, 7, 1, 6, 2, 5, 3, 4]])  # jumps of up to 7 frames: 30 px, wide disocclusions
    # measured: 1.05 levels in order, 4.14 shuffled
    assert coherent < 1.5
    assert shuffled > 2.5 * coherent


BAD_INPUTS = [
    ("float frames", lambda f: (f.astype(np.float32), STARTS), "uint8"),
    ("gray frames", lambda f: (f[..., 0], STARTS), r"shape \[F, H, W, 3\]"),
    ("one frame", lambda f: (f[:1], STARTS), "at least 2 frames"),
    (
        "start outside",
        lambda f: (f, np.array([[10.0, 10.0], [140.0, 20.0]])),
        r"start point 1 \(140, 20\) lies outside the 128x128 frame",
    ),
    ("start NaN", lambda f: (f, np.array([[np.nan, 10.0]])), "NaN"),
    ("starts not pairs", lambda f: (f, np.zeros((3, 3))), r"\[N, 2\]"),
]


@pytest.mark.parametrize("name, make, message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_tracking_inputs_raise_one_sentence_input_errors(name, make, message) -> None:
    frames, _, _ = disc_video((1.0, 0.0), num_frames=3)
    with pytest.raises(InputError, match=message):
        track_points(*make(frames))


def test_other_bad_inputs_raise_input_errors() -> None:
    frames, offsets, _ = disc_video((1.0, 0.0), num_frames=3)
    with pytest.raises(InputError, match=r"targets must have shape \[N, F, 2\] with F=3"):
        trajectory_epe(frames, targets_for(offsets)[:, :2])
    with pytest.raises(InputError, match=r"region must be \[H, W\] = \[128, 128\]"):
        brush_leakage(frames, np.ones((64, 64), dtype=bool))
    with pytest.raises(InputError, match=r"region values must lie in \[0, 1\]"):
        brush_leakage(frames, np.full((SIZE, SIZE), 255, dtype=np.uint8))
    with pytest.raises(InputError, match="at least 2 frames"):
        temporal_error(frames[:1])
    with pytest.raises(InputError, match="DIS preset 'slow'"):
        temporal_error(frames, preset="slow")
