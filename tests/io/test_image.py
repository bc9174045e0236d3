"""Reading the input image and fitting it onto the working frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from motionforge.core.errors import ConfigError, InputError
from motionforge.io import fit_image, read_image, working_size


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth RGB test picture, uint8 [H, W, 3]."""
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    rgb = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)), (x + y) / 2 * np.ones((height, width))], -1)
    return (rgb * 255).round().astype(np.uint8)


# ---------------------------------------------------------------- read_image


def test_read_png_and_jpeg_as_rgb(tmp_path):
    picture = Image.fromarray(gradient())
    picture.save(tmp_path / "a.png")
    picture.save(tmp_path / "a.jpg", quality=95)
    png = read_image(tmp_path / "a.png")
    jpg = read_image(str(tmp_path / "a.jpg"))
    assert png.mode == jpg.mode == "RGB"
    assert png.size == jpg.size == (64, 48)
    assert np.array_equal(np.asarray(png), gradient())
    assert np.abs(np.asarray(jpg, dtype=int) - gradient()).mean() < 3


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(gradient(40, 20)).save(tmp_path / "phone.jpg", exif=exif)
    assert read_image(tmp_path / "phone.jpg").size == (20, 40)


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 4:, 3] = 255  # left half fully transparent, right half opaque red-ish
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    rgb = np.asarray(read_image(tmp_path / "cut.png"))
    assert rgb.shape == (8, 8, 3)
    assert (rgb[:, :4] == 255).all()
    assert (rgb[:, 4:] == (200, 0, 0)).all()


def test_grayscale_and_16_bit_become_rgb(tmp_path):
    Image.fromarray(np.full((6, 5), 77, np.uint8), "L").save(tmp_path / "gray.png")
    Image.fromarray(np.full((6, 5), 65535, np.uint16)).save(tmp_path / "deep.png")
    gray = read_image(tmp_path / "gray.png")
    deep = read_image(tmp_path / "deep.png")
    assert gray.mode == deep.mode == "RGB"
    assert (np.asarray(gray) == 77).all()
    assert (np.asarray(deep) == 255).all()


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (4, 4), (0, 0, 0, 0)).save(tmp_path / "print.jpg")
    image = read_image(tmp_path / "print.jpg")
    assert image.mode == "RGB" and image.size == (4, 4)


def bad_image(tmp_path, kind: str):
    """Paths that read_image must refuse."""
    if kind == "missing":
        return tmp_path / "nope.jpg"
    if kind == "directory":
        return tmp_path
    if kind == "text":
        (tmp_path / "notes.png").write_text("not a picture\nat all\n")
        return tmp_path / "notes.png"
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.jpg"


@pytest.mark.parametrize(
    "kind, words",
    [("missing", "not found"), ("directory", "directory"), ("text", "not an image"), ("truncated", "truncated")],
)
def test_bad_images_raise_one_line_input_error(tmp_path, kind, words):
    with pytest.raises(InputError) as caught:
        read_image(bad_image(tmp_path, kind))
    message = str(caught.value)
    assert words in message
    assert "\n" not in message
    assert "image=" in message or "pass" in message


# ---------------------------------------------------------------- working_size


def test_working_size_default_rule():
    assert working_size((512, 512), None, None) == (512, 512)
    assert working_size((1000, 750), None, None) == (512, 384)
    assert working_size((300, 451), None, None) == (304, 448)  # no upscaling, nearest multiples of 8
    assert working_size((4000, 10), None, None) == (512, 8)  # never below one multiple
    assert working_size((3, 2), None, None) == (8, 8)


def test_working_size_one_side_follows_the_aspect():
    assert working_size((1000, 750), height=240, width=None) == (320, 240)
    assert working_size((1000, 750), height=None, width=256) == (256, 192)


def test_working_size_both_given_are_kept():
    assert working_size((1000, 750), height=320, width=576) == (576, 320)


@pytest.mark.parametrize("height, width, suggestion", [(500, None, "504"), (None, -8, "8"), (0, 64, "8"), (None, 13, "16")])
def test_working_size_rejects_sides_that_are_not_multiples(height, width, suggestion):
    with pytest.raises(ConfigError, match=suggestion):
        working_size((640, 480), height, width)


# ---------------------------------------------------------------- fit_image


def test_fit_crop_takes_the_centred_box_with_the_target_aspect():
    image = Image.fromarray(gradient(200, 100))
    tensor, box = fit_image(image, (64, 64))  # square target from a 2:1 picture
    assert box == (50.0, 0.0, 150.0, 100.0)
    assert tensor.shape == (3, 64, 64) and tensor.dtype == torch.float32
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0

    _, tall_box = fit_image(image, (32, 64))
    x0, y0, x1, y1 = tall_box
    assert (x1 - x0) / (y1 - y0) == pytest.approx(0.5)
    assert (x0 + x1) / 2 == pytest.approx(100.0) and (y0, y1) == (0.0, 100.0)


def test_fit_stretch_uses_the_whole_image():
    tensor, box = fit_image(Image.fromarray(gradient(200, 100)), (64, 64), mode="stretch")
    assert box == (0.0, 0.0, 200.0, 100.0)
    assert tensor.shape == (3, 64, 64)


def test_fit_same_size_keeps_pixels_exactly():
    pixels = gradient(64, 48)
    tensor, box = fit_image(Image.fromarray(pixels), (64, 48))
    assert box == (0.0, 0.0, 64.0, 48.0)
    assert torch.equal(tensor, torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)


def test_fit_unknown_mode_names_the_choices():
    with pytest.raises(ConfigError, match="crop.*stretch"):
        fit_image(Image.fromarray(gradient()), (64, 48), mode="pad")
