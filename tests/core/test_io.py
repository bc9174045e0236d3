"""Examples of reading inputs and writing outputs with motionforge.core.io."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

from motionforge.core.errors import ConfigError, InputError
from motionforge.core.io import (
    AtomicOutputs,
    draw_hint,
    fit_image,
    flow_to_color,
    flow_video,
    read_image,
    working_size,
    write_gif,
    write_json,
    write_mp4,
    write_png_frames,
)


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth RGB test picture, uint8 [H, W, 3]."""
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    rgb = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)), (x + y) / 2 * np.ones((height, width))], -1)
    return (rgb * 255).round().astype(np.uint8)


def moving_clip(frames: int = 6, width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth pattern sliding right one pixel per frame, uint8 [F, H, W, 3]."""
    base = gradient(width + frames, height)
    return np.stack([base[:, i : i + width] for i in range(frames)])


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


# ---------------------------------------------------------------- write_mp4


def test_mp4_round_trip_and_same_bytes_twice(tmp_path):
    clip = moving_clip()
    write_mp4(tmp_path / "a.mp4", clip, fps=8)
    write_mp4(tmp_path / "b.mp4", clip, fps=8)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()

    reader = imageio.get_reader(tmp_path / "a.mp4", format="FFMPEG")
    try:
        decoded = np.stack([frame for frame in reader.iter_data()])
        assert reader.get_meta_data()["fps"] == pytest.approx(8)
    finally:
        reader.close()
    assert decoded.shape == clip.shape
    assert np.abs(decoded.astype(int) - clip).mean() < 6


def test_mp4_odd_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_mp4(tmp_path / "odd.mp4", np.zeros((2, 15, 16, 3), np.uint8), fps=8)


def test_mp4_writes_nothing_to_the_console(tmp_path, capfd):
    write_mp4(tmp_path / "quiet.mp4", moving_clip(2), fps=4)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# ---------------------------------------------------------------- write_gif and PNG frames


def test_gif_round_trip_and_same_bytes_twice(tmp_path):
    clip = moving_clip(frames=4)
    write_gif(tmp_path / "a.gif", clip, fps=10)
    write_gif(tmp_path / "b.gif", clip, fps=10)
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 4
        assert gif.size == (64, 48)
        assert gif.info["duration"] == 100
        assert gif.info["loop"] == 0


def test_png_frames_are_numbered(tmp_path):
    clip = moving_clip(frames=3)
    write_png_frames(tmp_path, clip)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "00002.png")), clip[2])


def test_json_is_sorted_indented_utf8(tmp_path):
    write_json(tmp_path / "m.json", {"b": 1, "a": "é", "p": tmp_path / "x", "n": np.float32(0.5)})
    text = (tmp_path / "m.json").read_text(encoding="utf-8")
    assert text.startswith('{\n  "a": "é",\n  "b": 1,')
    assert text.endswith("}\n")


# ---------------------------------------------------------------- flow visualisation


def constant_flow(u: float, v: float, size: int = 4) -> np.ndarray:
    """A flow [2, size, size] moving every pixel by (u, v)."""
    return np.stack([np.full((size, size), u), np.full((size, size), v)])


def test_zero_flow_is_white():
    assert (flow_to_color(np.zeros((2, 5, 6))) == 255).all()
    assert flow_to_color(torch.zeros(2, 5, 6)).shape == (5, 6, 3)


def test_rightward_flow_is_the_wheels_first_colour_red():
    color = flow_to_color(constant_flow(3.0, 0.0))
    assert color.dtype == np.uint8 and color.shape == (4, 4, 3)
    assert tuple(color[0, 0]) == (255, 0, 0)


def test_four_directions_give_four_hues():
    colors = {tuple(flow_to_color(constant_flow(u, v))[0, 0]) for u, v in [(1, 0), (-1, 0), (0, 1), (0, -1)]}
    assert len(colors) == 4
    assert all(max(c) - min(c) > 100 for c in colors)  # saturated, not grey


def test_magnitude_beyond_the_scale_is_darker():
    inside = flow_to_color(constant_flow(2.0, 0.0), max_magnitude=2.0)[0, 0]
    beyond = flow_to_color(constant_flow(4.0, 0.0), max_magnitude=2.0)[0, 0]
    assert beyond.astype(int).sum() < inside.astype(int).sum()


def test_flow_video_uses_one_scale_for_the_clip():
    flows = np.stack([constant_flow(0, 0), constant_flow(1.0, 0), constant_flow(2.0, 0)])  # [3, 2, 4, 4]
    video = flow_video(torch.from_numpy(flows))
    assert video.shape == (3, 4, 4, 3) and video.dtype == np.uint8
    saturation = video.max(-1).astype(int) - video.min(-1).astype(int)  # [F, H, W]
    assert saturation[0].max() == 0  # no motion: white
    assert 0 < saturation[1].mean() < saturation[2].mean()
    assert (flow_video(np.zeros((2, 2, 3, 3))) == 255).all()


# ---------------------------------------------------------------- draw_hint


def test_draw_hint_draws_tracks_and_pins():
    image = np.full((64, 96, 3), 128, np.uint8)
    tracks = np.array(
        [
            [[10, 10], [30, 20], [60, 40]],  # moves: polyline with an arrowhead
            [[80, 50], [80, 50], [80, 50]],  # never moves: a ring
        ],
        dtype=np.float32,
    )
    drawn = draw_hint(image, torch.from_numpy(tracks))
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    changed = (drawn != image).any(-1)  # [H, W]
    assert changed[10, 10] and changed[20, 30] and changed[40, 60]
    assert changed[50, 80 + 5]  # on the pin's ring
    assert (image == 128).all()  # the input is left alone
    assert np.array_equal(draw_hint(image, tracks), drawn)  # deterministic


def test_draw_hint_dims_outside_the_region():
    image = np.full((16, 16, 3), 200, np.uint8)
    region = np.zeros((16, 16))
    region[:, :8] = 1.0
    drawn = draw_hint(image, None, region)
    assert (drawn[:, :8] == 200).all()
    assert (drawn[:, 8:] < 200).all()


def test_draw_hint_with_nothing_returns_the_image():
    image = gradient()
    assert np.array_equal(draw_hint(image, None), image)
    assert np.array_equal(draw_hint(image, np.zeros((0, 4, 2))), image)


# ---------------------------------------------------------------- AtomicOutputs


def test_atomic_outputs_commit_only_final_names(tmp_path):
    target = tmp_path / "run" / "out"
    with AtomicOutputs(target) as out:
        write_gif(out.path("animation.gif"), moving_clip(2), fps=10)
        write_json(out.path("manifest.json"), {"ok": True})
        write_png_frames(out.path("frames"), moving_clip(2))
        assert out.path("animation.gif").name == ".animation.partial.gif"
    assert sorted(p.name for p in target.iterdir()) == ["animation.gif", "frames", "manifest.json"]
    assert sorted(p.name for p in (target / "frames").iterdir()) == ["00000.png", "00001.png"]


def test_atomic_outputs_leave_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with AtomicOutputs(tmp_path) as out:
            write_json(out.path("manifest.json"), {})
            write_png_frames(out.path("frames"), moving_clip(1))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_outputs_replace_existing_results(tmp_path):
    (tmp_path / "manifest.json").write_text("old")
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "99999.png").write_text("stale")
    with AtomicOutputs(tmp_path) as out:
        write_json(out.path("manifest.json"), {"new": 1})
        write_png_frames(out.path("frames"), moving_clip(1))
    assert "new" in (tmp_path / "manifest.json").read_text()
    assert [p.name for p in (tmp_path / "frames").iterdir()] == ["00000.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "manifest.json"]
