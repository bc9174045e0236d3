"""Writing the clip: MP4 (H.264, whole or a few frames at a time), GIF, PNG frames and the flow as video, byte-deterministic.

Arrays of frames are uint8 ``[F, H, W, 3]`` RGB.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from motionforge.core.flowfield import FlowField
from motionforge.io.visualise import flow_frames


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float, crf: int = 18) -> None:
    """Encode frames as a byte-deterministic H.264 (libx264, yuv420p) MP4 through imageio-ffmpeg."""
    frames = _checked_frames(frames)  # [F, H, W, 3] uint8
    with Mp4Writer(path, (frames.shape[2], frames.shape[1]), fps, crf) as writer:
        writer.write(frames)


class Mp4Writer:
    """An H.264 MP4 written a few frames at a time (byte-deterministic, as :func:`write_mp4`), finished and checked on exit.

    >>> with Mp4Writer("clip.mp4", (64, 48), fps=8) as writer:   # doctest: +SKIP
    ...     writer.write(frames)  # uint8 [n, 48, 64, 3], as many times as there are chunks
    """

    def __init__(self, path: str | os.PathLike, size: tuple[int, int], fps: float, crf: int = 18) -> None:
        """Check the size (width, height), frame rate and quality; ffmpeg starts on entering the context."""
        width, height = size
        if height % 2 or width % 2:
            raise ValueError(f"yuv420p needs an even frame size, got {width}x{height}; pick even height and width")
        if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be an integer in [0, 51], got {crf!r}")
        self.path, self.size, self.fps, self.crf = Path(path), (width, height), _checked_fps(fps), int(crf)
        self.frames = 0

    def __enter__(self) -> Mp4Writer:
        """Start ffmpeg (a stale file of this name is removed first, so it is never taken for this run's)."""
        import imageio_ffmpeg

        if self.path.exists():
            self.path.unlink()
        self.writer = imageio_ffmpeg.write_frames(
            str(self.path),
            self.size,
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            fps=self.fps,
            quality=None,  # rate control is the -crf below
            codec="libx264",
            macro_block_size=1,  # never rescale: sizes are ours to choose
            ffmpeg_log_level="error",
            output_params=[
                "-crf", str(self.crf),
                "-preset", "medium",
                "-threads", "1",  # one x264 thread: the same frames give the same bytes
                "-fflags", "+bitexact",
                "-flags", "+bitexact",
                "-map_metadata", "-1",
            ],
        )  # fmt: skip
        self.writer.send(None)  # start ffmpeg
        return self

    def write(self, frames: np.ndarray) -> None:
        """Encode more frames: uint8 [n, H, W, 3] at the writer's size."""
        frames = _checked_frames(frames)
        if (frames.shape[2], frames.shape[1]) != self.size:
            raise ValueError(f"frames of {frames.shape[2]}x{frames.shape[1]} sent to a {self.size[0]}x{self.size[1]} video")
        for frame in frames:
            self.writer.send(np.ascontiguousarray(frame))  # [H, W, 3] uint8
        self.frames += len(frames)

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        """Wait for ffmpeg to finish the file, then check that it is whole."""
        self.writer.close()
        if kind is not None:
            return
        if self.frames == 0:
            raise ValueError("an MP4 needs at least one frame")
        if not self.path.is_file() or self.path.stat().st_size == 0:
            raise OSError(f"ffmpeg did not write {self.path}; check that its directory exists and is writable")
        if not _complete_mp4(self.path):
            raise OSError("ffmpeg stopped before it finished the video: is the disk full?")


def write_flow_mp4(path: str | os.PathLike, field: FlowField, fps: float, crf: int = 18) -> None:
    """Write a clip's flow as a colour-wheel MP4 on one scale, a few frames at a time (the flow is never held whole)."""
    peak = field.max_magnitude()
    with Mp4Writer(path, (field.width, field.height), fps, crf) as writer:
        for _, chunk in field.chunks():
            writer.write(flow_frames(chunk, peak))


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
