"""Writing the clip: mp4 (H.264 through imageio-ffmpeg), GIF and numbered PNG frames, byte-identical for the same frames.

Arrays of frames are uint8 ``[F, H, W, 3]`` RGB.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float, crf: int = 18) -> None:
    """Encode frames as a byte-deterministic H.264 (libx264, yuv420p) MP4 through imageio-ffmpeg."""
    import imageio_ffmpeg

    frames = _checked_frames(frames)  # [F, H, W, 3] uint8
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs an even frame size, got {width}x{height}; pick even height and width")
    fps = _checked_fps(fps)
    if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an integer in [0, 51], got {crf!r}")
    path = Path(path)
    if path.exists():
        path.unlink()  # so a stale file is never mistaken for this run's output
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        fps=fps,
        quality=None,  # rate control is the -crf below
        codec="libx264",
        macro_block_size=1,  # never rescale: sizes are ours to choose
        ffmpeg_log_level="error",
        output_params=[
            "-crf", str(int(crf)),
            "-preset", "medium",
            "-threads", "1",  # one x264 thread: the same frames give the same bytes
            "-fflags", "+bitexact",
            "-flags", "+bitexact",
            "-map_metadata", "-1",
        ],
    )
    writer.send(None)  # start ffmpeg
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))  # [H, W, 3] uint8
    finally:
        writer.close()  # waits for ffmpeg to finish the file
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"ffmpeg did not write {path}; check that its directory exists and is writable")
    if not _complete_mp4(path):
        raise OSError("ffmpeg stopped before it finished the video: is the disk full?")


def _complete_mp4(path: Path) -> bool:
    """True when an MP4's top-level boxes cover the whole file and include 'moov' (ffmpeg writes it last: a cut file lacks it)."""
    size, offset, boxes = path.stat().st_size, 0, set()
    with open(path, "rb") as handle:
        while offset + 8 <= size:
            handle.seek(offset)
            header = handle.read(16)
            length, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if length == 1 and len(header) == 16:  # a 64-bit size follows the type
                length = int.from_bytes(header[8:16], "big")
            elif length == 0:  # the box runs to the end of the file
                length = size - offset
            if length < 8:
                return False
            boxes.add(kind)
            offset += length
    return offset == size and b"moov" in boxes


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: float) -> None:
    """Write frames as an endlessly looping animated GIF (one shared palette, no dithering, deterministic)."""
    frames = _checked_frames(frames)  # [F, H, W, 3] uint8
    duration = max(1, round(1000.0 / _checked_fps(fps)))  # ms per frame; GIF stores centiseconds
    palette = _gif_palette(frames)
    images = [Image.fromarray(frame, "RGB").quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    images[0].save(
        Path(path),
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=duration,
        loop=0,
        optimize=False,
        disposal=1,
    )


def _gif_palette(frames: np.ndarray, samples: int = 4) -> Image.Image:
    """A 256-colour palette for the whole clip, from a few evenly spaced frames (no flicker between frames)."""
    picks = np.linspace(0, len(frames) - 1, min(samples, len(frames))).round().astype(int)
    montage = Image.fromarray(np.concatenate(list(frames[picks]), axis=0), "RGB")  # [k*H, W, 3]
    return montage.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def write_png_frames(directory: str | os.PathLike, frames: np.ndarray) -> None:
    """Write each frame as 00000.png, 00001.png, … into an existing directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"frame directory does not exist: {directory}")
    frames = _checked_frames(frames)  # [F, H, W, 3] uint8
    for index, frame in enumerate(frames):
        Image.fromarray(frame, "RGB").save(directory / f"{index:05d}.png", format="PNG")


def _checked_frames(frames: np.ndarray) -> np.ndarray:
    """Validate a clip as uint8 [F, H, W, 3] with at least one frame; return it C-contiguous."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be uint8 [F, H, W, 3] with F ≥ 1, got {frames.dtype} {list(frames.shape)}")
    return np.ascontiguousarray(frames)


def _checked_fps(fps: float) -> float:
    """Validate a frame rate as a positive finite number."""
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return fps
