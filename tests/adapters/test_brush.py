"""The brush adapter: a region from a mask image, polygons or boxes, through the image's crop, inverted or feathered."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from motionforge import ConfigError, InputError, MotionContext
from motionforge.adapters.brush import BrushAdapter, BrushConfig


def context(width=64, height=48, source=None, box=None) -> MotionContext:
    source = source or (width, height)
    return MotionContext(height, width, 4, torch.zeros(3, height, width), source, source_box=box)


def region(ctx=None, **config) -> np.ndarray:
    hint = BrushAdapter().build(BrushConfig(**config), ctx or context())
    assert hint.flow is None and hint.region.shape == (
        1,
        1,
        (ctx or context()).height,
        (ctx or context()).width,
    )
    return hint.region[0, 0].numpy()


def save_mask(path, array: np.ndarray, mode="L") -> str:
    Image.fromarray(array.astype(np.uint8), mode=mode).save(path)
    return str(path)


def test_a_box_covers_the_pixels_whose_centres_lie_in_it() -> None:
    painted = region(boxes=[[10, 5, 20, 15]])
    expected = np.zeros((48, 64))
    expected[5:15, 10:20] = 1
    np.testing.assert_array_equal(painted, expected)


def test_one_box_may_be_given_unwrapped_and_boxes_follow_the_crop() -> None:
    # a 128x48 image cropped to its centred 64x48 box at working 32x24: x 32..96 → 0..32, halved
    ctx = context(width=32, height=24, source=(128, 48), box=(32.0, 0.0, 96.0, 48.0))
    painted = region(ctx, boxes=[40, 8, 56, 24])
    expected = np.zeros((24, 32))
    expected[4:12, 4:12] = 1
    np.testing.assert_array_equal(painted, expected)


def test_a_white_mask_drawn_on_the_image_is_the_region(tmp_path) -> None:
    mask = np.zeros((96, 128))
    mask[20:40, 30:70] = 255
    painted = region(mask=save_mask(tmp_path / "mask.png", mask))  # twice the working size: nearest-neighbour
    assert painted.sum() == 10 * 20 and painted[10:20, 15:35].all()


def test_an_rgba_mask_uses_its_alpha(tmp_path) -> None:
    rgba = np.zeros((48, 64, 4))
    rgba[..., :3] = 255  # white everywhere: the painted strokes are the opaque pixels
    rgba[0:10, 0:10, 3] = 255
    painted = region(mask=save_mask(tmp_path / "strokes.png", rgba, "RGBA"))
    assert painted.sum() == 100 and painted[:10, :10].all()


def test_a_polygon_fills_its_inside() -> None:
    painted = region(polygons=[[[10, 10], [40, 10], [40, 30], [10, 30]]])
    assert painted[10:31, 10:41].all() and painted.sum() == 21 * 31
    assert region(polygons=[[10, 10], [40, 10], [10, 30]]).sum() > 0  # one polygon, unwrapped


def test_shapes_add_up_and_invert_swaps_inside_and_outside() -> None:
    both = region(boxes=[[0, 0, 8, 8]], polygons=[[[50, 30], [60, 30], [60, 40], [50, 40]]])
    assert both[:8, :8].all() and both[35, 55] == 1
    inverted = region(boxes=[[0, 0, 8, 8]], invert=True)
    assert inverted[:8, :8].sum() == 0 and inverted.sum() == 64 * 48 - 64


def test_feather_ramps_the_edge_and_keeps_the_half_level_on_it() -> None:
    sharp = region(boxes=[[16, 16, 48, 40]])
    soft = region(boxes=[[16, 16, 48, 40]], feather=8.0)
    np.testing.assert_array_equal(soft >= 0.5, sharp == 1)
    assert soft[28, 32] == 1.0 and soft[0, 0] == 0.0
    assert 0 < soft[28, 14] < 0.5 < soft[28, 17] < 1  # a ramp across the left edge


BAD = {
    "nothing to paint": ({}, ConfigError, "has nothing to paint"),
    "negative feather": (
        {"boxes": [[0, 0, 4, 4]], "feather": -1.0},
        ConfigError,
        "feather=-1.0 must be",
    ),
    "a box upside down": (
        {"boxes": [[10, 10, 5, 20]]},
        ConfigError,
        "is empty; it needs x1 > x0",
    ),
    "a box of three numbers": (
        {"boxes": [[1, 2, 3]]},
        ConfigError,
        "must be four numbers",
    ),
    "a polygon of two points": (
        {"polygons": [[[1, 2], [3, 4]]]},
        ConfigError,
        "has 2 points; a polygon needs at least 3",
    ),
    "a polygon of strings": (
        {"polygons": [["a", "b"]]},
        ConfigError,
        "must be a list of polygons",
    ),
    "a box outside the picture": (
        {"boxes": [[500, 500, 600, 600]]},
        InputError,
        "covers no pixel of the working frame",
    ),
    "everything, inverted": (
        {"boxes": [[0, 0, 64, 48]], "invert": True},
        InputError,
        "once inverted",
    ),
    "a missing mask": (
        {"mask": "nowhere/mask.png"},
        InputError,
        "brush mask not found: nowhere/mask.png",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_brushes_say_what_is_wrong(case) -> None:
    config, error, message = BAD[case]
    with pytest.raises(error, match=message.replace("[", r"\[").replace("(", r"\(")):
        region(**config)


def test_bad_mask_files_are_named(tmp_path) -> None:
    (tmp_path / "fake.png").write_text("not a picture")
    with pytest.raises(InputError, match="fake.png is not a readable image"):
        region(mask=str(tmp_path / "fake.png"))
    with pytest.raises(InputError, match="black.png is all black"):
        region(mask=save_mask(tmp_path / "black.png", np.zeros((48, 64))))
    with pytest.raises(InputError, match=r"is 50x50, which matches neither the input image \(64x48\)"):
        region(mask=save_mask(tmp_path / "square.png", np.full((50, 50), 255)))
