"""The background plate: what a moving layer uncovers is filled from the background around it, never from the layer."""

from __future__ import annotations

import numpy as np
import pytest

from motionforge.backbones.warp.plate import background_plate
from motionforge.bench.cases import disc


def picture() -> tuple[np.ndarray, np.ndarray]:
    """A smooth blue-to-green ground with a red disc on it: uint8 [64, 64, 3] and the disc bool [64, 64]."""
    ys, xs = np.mgrid[0:64, 0:64]
    image = np.stack([np.full_like(xs, 40), 60 + 2 * xs, 200 - 2 * ys], axis=-1).astype(np.uint8)
    shape = disc(64, (30.0, 34.0), 10.0)
    image[shape] = (230, 30, 30)
    return image, shape


@pytest.mark.parametrize("fill", ["inpaint", "smooth"])
def test_the_hole_a_layer_leaves_is_filled_from_the_ground_around_it(fill) -> None:
    image, shape = picture()
    plate = background_plate(image, [shape], fill)
    assert np.array_equal(plate[~shape], image[~shape])  # only the hole changes
    red = plate[shape].astype(int)
    assert red[:, 0].max() < 100  # no trace of the red disc
    ys, xs = np.nonzero(shape)
    ground = np.stack([np.full_like(xs, 40), 60 + 2 * xs, 200 - 2 * ys], axis=-1)
    assert np.abs(red - ground).mean() < 12  # close to the ground that surrounds it


def test_no_layers_in_front_leave_the_picture_as_it_is() -> None:
    image, _ = picture()
    assert background_plate(image, [], "inpaint") is image
    assert background_plate(image, [np.zeros((64, 64), dtype=bool)], "smooth") is image
