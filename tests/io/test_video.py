"""Writing the clip: mp4, GIF and PNG frames, the same bytes for the same frames."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from motionforge.io import write_gif, write_mp4, write_png_frames
from tests.io.test_image import gradient


def moving_clip(frames: int = 6, width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth pattern sliding right one pixel per frame, uint8 [F, H, W, 3]."""
    base = gradient(width + frames, height)
    return np.stack([base[:, i : i + width] for i in range(frames)])


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
