"""Every control end to end through `motionforge animate` on the warp backbone: the moved feature is where the controls say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motionforge.cli import main

FRAMES = 6
# 1.5 px: how far a feature may land from where the controls put it
TOLERANCE = 1.5


def two_squares(size: int = 128) -> np.ndarray:
    """Grey picture with a textured red square centred at (40, 40) and a textured blue one at (92, 88): uint8 [H, W, 3]."""
    image = np.full((size, size, 3), 90, dtype=np.uint8)
    texture = np.random.default_rng(0).integers(0, 60, size=(16, 16), dtype=np.uint8)
    image[32:48, 32:48] = np.stack([np.full_like(texture, 255), texture, texture], axis=-1)
    image[80:96, 84:100] = np.stack([texture, texture, np.full_like(texture, 255)], axis=-1)
    return image


def centroid(frame: np.ndarray, channel: int) -> np.ndarray:
    """(x, y) centroid of the pixels where one channel stands out above the grey: channel 0 red, 2 blue."""
    weight = np.clip((frame[..., channel].astype(float) - 90) / (255 - 90), 0, 1)
    ys, xs = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


def animate(tmp_path: Path, *overrides: str) -> tuple[np.ndarray, dict]:
    """Run the CLI on the two-squares picture; return the PNG frames [F, H, W, 3] and the manifest."""
    image = tmp_path / "squares.png"
    if not image.exists():
        Image.fromarray(two_squares()).save(image)
    run = tmp_path / "run"
    status = main(
        ["animate", f"image={image}", f"num_frames={FRAMES}", "progress=false", "output.frames=true", "output.gif=false"]
        + ["output.mp4=false", *overrides, f"hydra.run.dir={run}"]
    )
    assert status == 0
    frames = np.stack([np.asarray(Image.open(p)) for p in sorted((run / "frames").glob("*.png"))])
    return frames, json.loads((run / "manifest.json").read_text())


def assert_follows(frames: np.ndarray, channel: int, expected: np.ndarray) -> None:
    """The square of this channel is at the expected (x, y) [F, 2] in every frame, within the tolerance."""
    for i, frame in enumerate(frames):
        error = np.linalg.norm(centroid(frame, channel) - expected[i])
        assert error < TOLERANCE, f"frame {i}: the square is {error:.2f} px from where the controls put it"


STEPS = np.linspace(0.0, 1.0, FRAMES)[:, None]  # [F, 1] normalised time
RED, BLUE = np.array([39.5, 39.5]), np.array([91.5, 87.5])  # the squares' centroids in the input


def test_camera_pan_moves_the_picture_by_the_same_steps(tmp_path) -> None:
    frames, _ = animate(tmp_path, "adapters=[camera]", "adapters.camera.pan=[2,-1]")
    assert_follows(frames, 0, RED + np.arange(FRAMES)[:, None] * np.array([2.0, -1.0]))


def test_camera_zoom_moves_a_feature_away_from_the_centre(tmp_path) -> None:
    frames, _ = animate(tmp_path, "adapters=[camera]", "adapters.camera.zoom=1.25")
    centre = np.array([63.5, 63.5])
    assert_follows(frames, 2, centre + 1.25**STEPS * (BLUE - centre))


def test_a_brush_moves_as_one_with_its_track_and_the_rest_holds_still(tmp_path) -> None:
    frames, manifest = animate(
        tmp_path,
        "adapters=[trajectory,brush]",
        "adapters.trajectory.paths=[[[40,40],[50,48]]]",
        "adapters.brush.boxes=[[16,16,72,72]]",
    )
    assert_follows(frames, 0, RED + STEPS * np.array([10.0, 8.0]))
    outside = np.ones((128, 128), dtype=bool)
    outside[16 - 5 : 72 + 8 + 5, 16 - 5 : 72 + 10 + 5] = False  # the box, where it goes, its 4 px fade and a pixel of taps
    assert (frames[:, outside] == frames[0][outside]).all(), "pixels the brushed box does not reach changed"
    assert manifest["plan"]["contributions"]["brush"]["region_pixels"] == 56 * 56


def test_a_track_outside_the_brush_moves_only_the_outside(tmp_path) -> None:
    frames, _ = animate(
        tmp_path,
        "adapters=[trajectory,brush]",
        "adapters.trajectory.paths=[[[40,40],[48,46]],[[92,88],[80,94]]]",
        "adapters.brush.boxes=[[16,16,64,64]]",
    )
    assert_follows(frames, 0, RED + STEPS * np.array([8.0, 6.0]))
    assert_follows(frames, 2, BLUE + STEPS * np.array([-12.0, 6.0]))


def test_motion_strength_rescales_a_track_to_the_asked_strength(tmp_path) -> None:
    frames, manifest = animate(
        tmp_path,
        "adapters=[trajectory,motion_strength]",
        "adapters.trajectory.paths=[[[40,40],[52,46]]]",
        "adapters.motion_strength.value=0.5",
    )
    strength = manifest["plan"]["motion_strength"]
    assert strength["after"] == pytest.approx(0.5, rel=0.01) and manifest["plan"]["strength"] == 0.5
    factor = strength["after"] / strength["before"]
    assert_follows(frames, 0, RED + STEPS * factor * np.array([12.0, 6.0]))


def test_camera_adds_to_a_track(tmp_path) -> None:
    frames, _ = animate(
        tmp_path,
        "adapters=[trajectory,camera]",
        "adapters.trajectory.paths=[[[40,40],[50,40]]]",
        "adapters.camera.pan=[0,1.5]",
    )
    pan = np.arange(FRAMES)[:, None] * np.array([0.0, 1.5])
    assert_follows(frames, 0, RED + STEPS * np.array([10.0, 0.0]) + pan)


def test_landmarks_on_a_face_region_and_a_track_elsewhere_hybrid(tmp_path) -> None:
    """MOFA-Video's hybrid: the landmark region takes the landmark motion, the rest the trajectory's."""
    ring = np.array([[40 + 9 * np.cos(a), 40 + 9 * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 12, endpoint=False)])
    sequence = np.stack([ring + t * np.array([-6.0, 9.0]) for t in np.linspace(0, 1, 4)])  # [4, 12, 2]
    path = tmp_path / "landmarks.json"
    path.write_text(json.dumps(sequence.tolist()))
    frames, manifest = animate(
        tmp_path,
        "adapters=[landmark,trajectory]",
        f"adapters.landmark.file={path}",
        "adapters.landmark.face_region=true",
        "adapters.trajectory.paths=[[[92,88],[100,76]]]",
    )
    assert_follows(frames, 0, RED + STEPS * np.array([-6.0, 9.0]))
    assert_follows(frames, 2, BLUE + STEPS * np.array([8.0, -12.0]))
    assert manifest["plan"]["contributions"]["landmark"]["samples"] == 12
