"""The time_to_move adapter: a Time-to-Move folder's motion signal becomes the plan, its mask the region, its frame and prompt the run's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from motionforge import ConfigError, InputError, MotionContext, animate, compose_config
from motionforge.adapters.time_to_move import TimeToMoveAdapter, TimeToMoveConfig
from motionforge.cli import main
from motionforge.io.video import write_mp4
from motionforge.motion.fuse import DensifySettings, fuse
from tests.conftest import red_centroid, textured_square_image

SIZE, SQUARE, STEP = 64, 20, 2  # a 64×64 clip; a 20-pixel square moving 2 px right per frame


def make_folder(tmp_path, frames: int = 5, prompt: str | None = "a red square slides right"):
    """A tiny Time-to-Move folder: the square's picture, its sliding animation, its mask per frame, a prompt."""
    folder = tmp_path / "example"
    folder.mkdir(parents=True)
    centres = [(22 + STEP * i, 32) for i in range(frames)]
    signal = np.stack([textured_square_image(size=SIZE, square=SQUARE, centre=c) for c in centres])  # [T, H, W, 3]
    masks = np.zeros_like(signal)
    for i, (x, y) in enumerate(centres):
        masks[i, y - SQUARE // 2 : y + SQUARE // 2, x - SQUARE // 2 : x + SQUARE // 2] = 255
    Image.fromarray(signal[0]).save(folder / "first_frame.png")
    write_mp4(folder / "motion_signal.mp4", signal, fps=8)
    write_mp4(folder / "mask.mp4", masks, fps=8)
    if prompt is not None:
        (folder / "prompt.txt").write_text(prompt + "\n")
    return folder


def context(frames: int = 5) -> MotionContext:
    return MotionContext(SIZE, SIZE, frames, torch.zeros(3, SIZE, SIZE), (SIZE, SIZE))


def test_the_signal_is_the_flow_and_the_mask_the_region(tmp_path) -> None:
    folder = make_folder(tmp_path)
    hint = TimeToMoveAdapter().build(TimeToMoveConfig(folder=str(folder)), context())
    assert hint.flow.shape == (5, 2, SIZE, SIZE) and hint.mask is None
    assert hint.region.shape == (1, 1, SIZE, SIZE) and hint.region[0, 0, 32, 22] == 1 and hint.region[0, 0, 5, 5] == 0
    assert abs(float(hint.region.sum()) - SQUARE * SQUARE) < 2 * SQUARE  # the square at frame 0 (the codec blurs its edge)
    inside = hint.flow[:, :, 27:38, 17:28].mean(dim=(2, 3))  # [F, 2] over the square's interior
    expected = torch.tensor([[STEP * i, 0.0] for i in range(5)])
    assert float((inside - expected).abs().max()) < 0.75


def test_the_plan_moves_only_inside_the_mask(tmp_path) -> None:
    ctx = context()
    hint = TimeToMoveAdapter().build(TimeToMoveConfig(folder=str(make_folder(tmp_path))), ctx)
    plan = fuse({"time_to_move": hint}, ctx, DensifySettings(feather=0.0))
    assert float(plan.flow[:, :, :5, :].abs().max()) == 0.0  # far from the square: still
    assert float(plan.flow[-1, 0, 32, 22]) == pytest.approx(STEP * 4, abs=0.75)


def test_the_folder_brings_the_picture_and_the_prompt(tmp_path) -> None:
    folder = make_folder(tmp_path)
    assert TimeToMoveAdapter().inputs(TimeToMoveConfig(folder=str(folder))) == {
        "image": str(folder / "first_frame.png"),
        "prompt": "a red square slides right",
    }
    assert TimeToMoveAdapter().inputs(TimeToMoveConfig(folder=str(make_folder(tmp_path / "b", prompt=None))))["prompt"] == ""


def test_animate_with_a_folder_takes_its_picture_prompt_and_motion(tmp_path) -> None:
    folder = make_folder(tmp_path)
    run = tmp_path / "run"
    argv = ["adapters=[time_to_move]", f"adapters.time_to_move.folder={folder}", "num_frames=5", "progress=false"]
    quick = ["output.frames=true", "output.gif=false", "output.mp4=false", "output.flow=false", "output.hint=false"]
    assert main(["animate", *argv, *quick, f"output.dir={run}"]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["image"] == str(folder / "first_frame.png") and manifest["prompt"] == "a red square slides right"
    frames = [np.asarray(Image.open(p)) for p in sorted((run / "frames").glob("*.png"))]
    start = red_centroid(frames[0])
    assert np.linalg.norm(red_centroid(frames[-1]) - (start + [STEP * 4, 0])) < 1.5
    other = tmp_path / "other.png"
    Image.fromarray(textured_square_image(size=SIZE, square=SQUARE, centre=(40, 40))).save(other)
    video = animate(compose_config([*argv, f"image={other}", "prompt=mine", "output.save=false"]))  # given ones win
    assert video.metadata["image"] == str(other) and video.metadata["prompt"] == "mine"


def test_a_folder_missing_a_file_is_named(tmp_path) -> None:
    folder = make_folder(tmp_path)
    (folder / "mask.mp4").unlink()
    with pytest.raises(InputError, match=f"Time-to-Move folder {folder} has no mask.mp4"):
        TimeToMoveAdapter().build(TimeToMoveConfig(folder=str(folder)), context())
    with pytest.raises(InputError, match="Time-to-Move folder not found"):
        TimeToMoveAdapter().build(TimeToMoveConfig(folder=str(tmp_path / "nowhere")), context())
    with pytest.raises(ConfigError, match="needs its folder"):
        TimeToMoveAdapter().build(TimeToMoveConfig(), context())


def test_a_black_mask_is_refused(tmp_path) -> None:
    folder = make_folder(tmp_path)
    write_mp4(folder / "mask.mp4", np.zeros((5, SIZE, SIZE, 3), np.uint8), fps=8)
    with pytest.raises(InputError, match="is all black"):
        TimeToMoveAdapter().build(TimeToMoveConfig(folder=str(folder)), context())
