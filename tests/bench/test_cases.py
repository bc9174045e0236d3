"""The control suite's built-in cases: deterministic, trackable, and followed by the warp backbone to within a pixel."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from motionforge import Video, animate, compose_config
from motionforge.bench.cases import Case, cases, overrides, save_case
from motionforge.bench.suites.control import reached, visibility
from motionforge.core.errors import ConfigError
from motionforge.metrics import brush_leakage, track_points, trajectory_epe

SIZE = 128  # a multiple of 8: the working frame is the picture, no resize
NAMES = [case.name for case in cases(SIZE)]


def render(case: Case, image_path: Path) -> Video:
    """Animate a saved case with the warp backbone (8 frames, nothing written) and return the Video."""
    return animate(compose_config([*overrides(case, image_path), "num_frames=8", "output.save=false", "progress=false"]))


def test_cases_are_the_same_bytes_every_time() -> None:
    first, second = cases(SIZE), cases(SIZE)
    assert [c.name for c in first] == [c.name for c in second] and len(first) == 6
    for a, b in zip(first, second):
        assert a.image.tobytes() == b.image.tobytes() and a.tracks == b.tracks and a.brush == b.brush
        assert a.image.dtype == np.uint8 and a.image.shape == (SIZE, SIZE, 3)
        assert len(a.objects) == len(a.tracks) and all(np.array_equal(m, n) and m.any() for m, n in zip(a.objects, b.objects))
    assert len({c.image.tobytes() for c in first}) == len(first)  # each case is its own picture


def shift(image: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """A picture [H, W, 3] moved by offset (x, y) pixels, bilinear, edges reflected."""
    matrix = np.array([[1.0, 0.0, offset[0]], [0.0, 1.0, offset[1]]])
    return cv2.warpAffine(image, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


GRID = np.stack(np.meshgrid(np.arange(16, SIZE - 16, 12.0), np.arange(16, SIZE - 16, 12.0)), axis=-1).reshape(-1, 2)  # [N, 2]


@pytest.mark.parametrize("offset", [(1.6, -0.7), (-3.3, 2.25)])
def test_every_picture_is_trackable_everywhere(offset) -> None:
    offset = np.asarray(offset)  # move each picture by a known sub-pixel amount; a grid of points and the track starts follow
    for case in cases(SIZE):
        starts = np.concatenate([GRID, [track[0] for track in case.tracks]])  # [N, 2]
        positions = track_points(np.stack([case.image, shift(case.image, offset)]), starts)  # [2, N, 2]
        error = np.linalg.norm(positions[1] - (starts + offset), axis=-1)  # [N], NaN where lost
        # measured: mean 0.03-0.05 px, worst 0.23 px (a point whose window cuts an object's rim)
        assert not np.isnan(error).any(), f"{case.name}: Lucas–Kanade lost a point"
        assert error.mean() < 0.1 and error.max() < 0.4, (
            f"{case.name}: points track {error.mean():.2f} px off, worst {error.max():.2f}"
        )


def test_a_flat_picture_would_not_be_trackable() -> None:
    flat = np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)  # what the texture is there to avoid
    positions = track_points(np.stack([flat, shift(flat, np.array([1.6, -0.7]))]), GRID)
    assert np.isnan(positions[1]).all()


def test_a_size_that_is_not_a_multiple_of_8_is_refused() -> None:
    with pytest.raises(ConfigError, match="multiple of 8"):
        cases(100)


def test_a_saved_case_reruns_from_its_folder(tmp_path) -> None:
    case = cases(SIZE)[NAMES.index("brushed")]
    folder = save_case(case, tmp_path / "brushed case")  # a space in the path: the image override is quoted
    assert np.array_equal(np.asarray(Image.open(folder / "image.png")), case.image)
    record = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    assert record["tracks"] == case.tracks and record["brush"] == case.brush and record["size"] == [SIZE, SIZE]
    assert record["overrides"] == overrides(case, folder / "image.png")
    assert "adapters=[trajectory,brush]" in record["overrides"] and record["command"].startswith("motionforge animate ")
    video = animate(compose_config([*record["overrides"], "num_frames=4", "output.save=false", "progress=false"]))
    assert video.frames.shape == (4, SIZE, SIZE, 3) and video.plan.region is not None


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_the_warp_backbone_follows_every_case_within_a_pixel(index, tmp_path) -> None:
    case = cases(SIZE)[index]
    video = render(case, save_case(case, tmp_path) / "image.png")
    tracks = video.plan.tracks.numpy()  # [N, F, 2] working pixels = image pixels here
    assert tracks.shape == (len(case.tracks), 8, 2) and np.allclose(tracks[:, 0], [t[0] for t in case.tracks])
    result = trajectory_epe(video.frames, tracks, visible=visibility(video.plan))  # the crossing square is hidden a while
    # measured at 128 px: max 0.29 / 0.47 / 0.05 / 0.33 / 0.11 / 0.19 px (the project's target is 1 px)
    assert result["lost"] == 0
    assert result["max"] < 1.0, result


def test_the_brushed_case_keeps_the_ground_where_the_box_does_not_go_still(tmp_path) -> None:
    case = cases(SIZE)[NAMES.index("brushed")]
    video = render(case, save_case(case, tmp_path) / "image.png")
    region = video.plan.region[0, 0].numpy()  # [H, W] the box at working size
    # measured: 0.0003; without leaving out where the box goes (it moves as one with the disc), 0.13
    assert brush_leakage(video.frames, region, reached=reached(video.plan)) < 0.01
