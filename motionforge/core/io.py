"""Reading inputs and writing outputs: the input image, working sizes, videos, GIFs, PNG frames,
flow and hint visualisations, JSON files, and the temporary-name-then-rename discipline that leaves
no partial output behind.

Arrays of frames are uint8 ``[F, H, W, 3]`` RGB; flows are ``[2, H, W]`` or ``[F, 2, H, W]``
displacements in pixels, x then y; pixel coordinates are (x, y) with the origin at the centre of
the top-left pixel.
"""

from __future__ import annotations

import json
import math
import operator
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from motionforge.core.errors import ConfigError, InputError
from motionforge.core.fields import centred_box
from motionforge.core.places import user_path

__all__ = [
    "AtomicOutputs",
    "draw_hint",
    "fit_image",
    "flow_to_color",
    "flow_video",
    "read_image",
    "working_size",
    "write_gif",
    "write_json",
    "write_mp4",
    "write_png_frames",
]

FIT_MODES = ("crop", "stretch")
_WHITE = (255, 255, 255)


# --------------------------------------------------------------------------------------------
# Reading the input image
# --------------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike) -> Image.Image:
    """Open the user's image, apply its EXIF orientation and return it as RGB (transparency over white)."""
    path = user_path(path)
    hint = "pass image=/path/to/picture.jpg"
    if not path.exists():
        raise InputError(f"image file not found: {path}; {hint} with a file that exists")
    if path.is_dir():
        raise InputError(f"image path is a directory, not a file: {path}; {hint}")
    try:
        with Image.open(path) as opened:
            opened.load()  # decode everything now so truncated files fail here, not later
            upright = ImageOps.exif_transpose(opened)
        return _to_rgb(upright)
    except UnidentifiedImageError as err:
        raise InputError(
            f"cannot read {path}: it is not an image Pillow recognises; {hint} (PNG, JPEG, WebP, …)"
        ) from err
    except Image.DecompressionBombError as err:
        raise InputError(
            f"image {path} is too large to open safely ({_reason(err)}); pass a smaller image"
        ) from err
    except Exception as err:  # Pillow raises many types on corrupt files: OSError, SyntaxError, ValueError…
        reason = _reason(err)
        if "truncated" in reason.lower():
            fix = "re-export or re-download it and pass the complete file"
            raise InputError(f"image file {path} is truncated ({reason}); {fix}") from err
        raise InputError(f"cannot read image {path} ({reason}); {hint} with a valid picture") from err


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: transparency composited over white, high bit depths rescaled."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _wide_gray_to_rgb(image)
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_gray_to_rgb(image: Image.Image) -> Image.Image:
    """Map 16/32-bit integer or float grayscale to 8-bit RGB (16-bit ranges scaled, floats in [0, 1] scaled)."""
    gray = np.asarray(image, dtype=np.float64)  # [H, W]
    gray = np.where(np.isfinite(gray), gray, 0.0)
    peak = float(gray.max()) if gray.size else 0.0
    if image.mode.startswith("I;16") or (image.mode == "I" and peak > 255):
        gray = gray / 257.0  # 0…65535 → 0…255
    elif image.mode == "F" and peak <= 1.0:
        gray = gray * 255.0
    gray8 = np.clip(np.rint(gray), 0, 255).astype(np.uint8)  # [H, W] uint8
    return Image.fromarray(np.repeat(gray8[:, :, None], 3, axis=2), "RGB")


def _reason(err: BaseException) -> str:
    """A short, one-line reason from an exception (its message, or its type name when it has none)."""
    text = " ".join(str(err).split()).rstrip(".")
    return text or type(err).__name__


# --------------------------------------------------------------------------------------------
# Working size and fitting the image onto it
# --------------------------------------------------------------------------------------------


def working_size(
    source_size: tuple[int, int],
    height: int | None,
    width: int | None,
    max_side: int = 512,
    multiple: int = 8,
) -> tuple[int, int]:
    """Choose the working frame (W, H) from the image's size and the user's optional height/width."""
    source_w, source_h = (int(v) for v in source_size)
    if source_w <= 0 or source_h <= 0:
        raise ValueError(f"source_size must be positive (W, H), got {source_size!r}")
    if multiple <= 0 or max_side < multiple:
        raise ValueError(f"need 0 < multiple <= max_side, got multiple={multiple}, max_side={max_side}")
    height = _checked_side("height", height, multiple)
    width = _checked_side("width", width, multiple)
    if height is not None and width is not None:
        return width, height
    if height is not None:
        return _round_to_multiple(height * source_w / source_h, multiple), height
    if width is not None:
        return width, _round_to_multiple(width * source_h / source_w, multiple)
    scale = min(1.0, max_side / max(source_w, source_h))  # shrink, never enlarge
    ceiling = max(multiple, max_side // multiple * multiple)  # keep the longer side ≤ max_side
    return (
        min(_round_to_multiple(source_w * scale, multiple), ceiling),
        min(_round_to_multiple(source_h * scale, multiple), ceiling),
    )


def _checked_side(name: str, value: Any, multiple: int) -> int | None:
    """Return a user-given side as int, or raise ConfigError suggesting the nearest valid value."""
    if value is None:
        return None
    try:
        side = operator.index(value)
    except TypeError:
        side = None
    if isinstance(value, bool) or side is None:
        raise ConfigError(f"{name} must be a whole number of pixels, got {value!r}; use e.g. {name}=512")
    if side <= 0 or side % multiple:
        suggestion = _round_to_multiple(max(side, 1), multiple)
        raise ConfigError(
            f"{name}={side} is not a positive multiple of {multiple}; use {name}={suggestion} "
            f"or leave it unset to follow the image"
        )
    return side


def _round_to_multiple(value: float, multiple: int) -> int:
    """Round to the nearest multiple (halves up), never below one multiple."""
    return max(multiple, int(math.floor(value / multiple + 0.5)) * multiple)


def fit_image(
    image: Image.Image, size: tuple[int, int], mode: str = "crop"
) -> tuple[torch.Tensor, tuple[float, float, float, float]]:
    """Resize the image onto the working frame (W, H); return it as [3, H, W] float in [0, 1] and the source box used."""
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive (W, H), got {size!r}")
    source_w, source_h = image.size
    if mode == "crop":
        box = centred_box(source_w, source_h, width, height)
    elif mode == "stretch":
        box = (0.0, 0.0, float(source_w), float(source_h))
    else:
        choices = ", ".join(repr(m) for m in FIT_MODES)
        raise ConfigError(f"unknown fit mode {mode!r}; use one of {choices}")
    rgb = _to_rgb(image)
    whole = box == (0.0, 0.0, float(source_w), float(source_h))
    if whole and (source_w, source_h) == (width, height):
        fitted = rgb  # already the right size: keep the pixels exactly
    else:
        fitted = rgb.resize((width, height), Image.Resampling.LANCZOS, box=box)
    pixels = np.array(fitted, dtype=np.uint8)  # [H, W, 3] uint8
    tensor = torch.from_numpy(pixels).permute(2, 0, 1).to(torch.float32) / 255.0  # [3, H, W]
    return tensor.contiguous(), box


# --------------------------------------------------------------------------------------------
# Writing videos, GIFs, frames and JSON
# --------------------------------------------------------------------------------------------


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


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write data as strict UTF-8 JSON (NaN and infinities become null), 2-space indent, sorted keys, a trailing newline."""
    text = json.dumps(_strict(data), indent=2, sort_keys=True, ensure_ascii=False, default=_json_default, allow_nan=False)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text + "\n")


def _strict(value: Any) -> Any:
    """The value with every NaN or infinite float (numpy's and torch's too) replaced by None, for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)):
        return _strict(_json_default(value))
    return value


def _json_default(value: Any) -> Any:
    """Serialise the non-JSON values a manifest meets: paths, numpy scalars and arrays, tensors."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON: {value!r}")


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


# --------------------------------------------------------------------------------------------
# Flow visualisation (Middlebury colour wheel, Baker et al. 2011)
# --------------------------------------------------------------------------------------------


def _color_wheel() -> np.ndarray:
    """The 55-colour Middlebury wheel as float [55, 3] in [0, 255]: red→yellow→green→cyan→blue→magenta."""
    segments = ((15, 0, 1, True), (6, 1, 0, False), (4, 1, 2, True), (11, 2, 1, False), (13, 2, 0, True), (6, 0, 2, False))
    rows = []
    for length, full, ramp, rising in segments:
        # each segment holds channel `full` at 255 and ramps channel `ramp` up (or down)
        steps = np.floor(255.0 * np.arange(length) / length)
        block = np.zeros((length, 3))
        block[:, full] = 255.0
        block[:, ramp] = steps if rising else 255.0 - steps
        rows.append(block)
    return np.concatenate(rows, axis=0)  # [55, 3]


_WHEEL = _color_wheel().astype(np.float32)


def flow_to_color(flow: np.ndarray | torch.Tensor, max_magnitude: float | None = None) -> np.ndarray:
    """Colour a flow [2, H, W] (pixels, x then y) with the Middlebury wheel; returns uint8 [H, W, 3]."""
    flow = _as_float_array(flow)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must be [2, H, W], got {list(flow.shape)}")
    u, v = flow[0], flow[1]  # [H, W] each
    magnitude = np.hypot(u, v)  # [H, W]
    if max_magnitude is None:
        max_magnitude = float(magnitude.max()) if magnitude.size else 0.0
        if max_magnitude == 0.0:
            return np.full(u.shape + (3,), 255, dtype=np.uint8)  # no motion: white
    elif not (math.isfinite(max_magnitude) and max_magnitude > 0):
        raise ValueError(f"max_magnitude must be a positive number, got {max_magnitude!r}")
    return _wheel_colors(u / max_magnitude, v / max_magnitude)


def _wheel_colors(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Map normalised flow components [H, W] to wheel colours uint8 [H, W, 3] (magnitude > 1 drawn darker)."""
    count = _WHEEL.shape[0]
    radius = np.hypot(u, v)  # [H, W]
    angle = np.arctan2(-v, -u) / np.pi  # [-1, 1]; +x flow sits at ±1
    angle = np.where(angle >= 1.0, -1.0, angle)  # one angle, one colour: +x is the wheel's first colour
    position = (angle + 1.0) / 2.0 * (count - 1)  # [H, W] in [0, count - 1)
    k0 = np.floor(position).astype(np.int64)
    k1 = (k0 + 1) % count
    frac = (position - k0)[..., None]  # [H, W, 1]
    color = ((1.0 - frac) * _WHEEL[k0] + frac * _WHEEL[k1]) / 255.0  # [H, W, 3] in [0, 1]
    inside = (radius <= 1.0)[..., None]
    color = np.where(inside, 1.0 - radius[..., None] * (1.0 - color), color * 0.75)
    return np.clip(np.floor(255.0 * color), 0, 255).astype(np.uint8)


def flow_video(flows: np.ndarray | torch.Tensor) -> np.ndarray:
    """Colour a clip of flows [F, 2, H, W] on one scale (the clip's largest magnitude); returns uint8 [F, H, W, 3]."""
    flows = _as_float_array(flows)
    if flows.ndim != 4 or flows.shape[1] != 2:
        raise ValueError(f"flows must be [F, 2, H, W], got {list(flows.shape)}")
    peak = float(np.hypot(flows[:, 0], flows[:, 1]).max()) if flows.size else 0.0
    if peak == 0.0:
        return np.full((flows.shape[0], flows.shape[2], flows.shape[3], 3), 255, dtype=np.uint8)
    return np.stack([flow_to_color(flow, max_magnitude=peak) for flow in flows])  # [F, H, W, 3]


def _as_float_array(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of an array or tensor, with non-finite entries (unknown flow) set to zero."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    values = np.asarray(values, dtype=np.float32)
    return np.where(np.isfinite(values), values, np.float32(0.0))


# --------------------------------------------------------------------------------------------
# Hint visualisation: tracks and region over the image
# --------------------------------------------------------------------------------------------

# Saturated colours, distinct on most pictures; tracks cycle through them.
_TRACK_PALETTE = (
    (255, 48, 48),
    (32, 200, 255),
    (255, 214, 0),
    (60, 230, 90),
    (255, 64, 220),
    (255, 140, 0),
    (140, 90, 255),
    (0, 240, 200),
    (200, 255, 40),
    (255, 105, 150),
    (40, 120, 255),
    (230, 230, 230),
)
_OUTLINE = (16, 16, 16)
_OUTSIDE_REGION_BRIGHTNESS = 0.35
_SUBPIXEL_BITS = 4  # OpenCV `shift`: coordinates in 1/16 pixel
_STILL_TOLERANCE = 0.5  # pixels: a track that never moves further than this is drawn as a pin
_MANY_TRACKS = 24  # more tracks than this are drawn with thinner strokes


def draw_hint(
    image: np.ndarray,
    tracks: np.ndarray | torch.Tensor | None,
    region: np.ndarray | torch.Tensor | None = None,
) -> np.ndarray:
    """Draw a motion hint over the image: region dimmed outside, tracks as outlined arrows, still points as rings."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    height, width = image.shape[:2]
    canvas = image.copy()  # [H, W, 3] uint8
    if region is not None:
        canvas = _dim_outside(canvas, region)
    if tracks is None:
        return canvas
    tracks = _as_tracks(tracks)  # [N, F, 2]
    if tracks.shape[0] == 0:
        return canvas

    import cv2

    canvas = np.ascontiguousarray(canvas)
    thickness = max(1, round(min(height, width) / 200))
    if tracks.shape[0] > _MANY_TRACKS:  # dense marker sets (face landmarks): thinner strokes
        thickness = max(1, thickness // 2)
    for index, track in enumerate(tracks):
        points = track[np.isfinite(track).all(axis=1)]  # [F', 2]
        if len(points) == 0:
            continue
        color = _TRACK_PALETTE[index % len(_TRACK_PALETTE)]
        if np.abs(points - points[0]).max() < _STILL_TOLERANCE:
            _draw_pin(cv2, canvas, points[0], color, thickness)
        else:
            _draw_arrow_track(cv2, canvas, points, color, thickness)
    return canvas


def _dim_outside(canvas: np.ndarray, region: np.ndarray | torch.Tensor) -> np.ndarray:
    """Darken the image where the region [H, W] in [0, 1] is low; full brightness where it is 1."""
    height, width = canvas.shape[:2]
    region = _as_float_array(region)
    while region.ndim > 2 and region.shape[0] == 1:
        region = region[0]  # accept [1, 1, H, W] / [1, H, W] as well as [H, W]
    if region.shape != (height, width):
        raise ValueError(f"region must be [H, W] = [{height}, {width}], got {list(region.shape)}")
    region = np.clip(region, 0.0, 1.0)
    gain = _OUTSIDE_REGION_BRIGHTNESS + (1.0 - _OUTSIDE_REGION_BRIGHTNESS) * region  # [H, W]
    return np.clip(np.rint(canvas * gain[..., None]), 0, 255).astype(np.uint8)


def _as_tracks(tracks: np.ndarray | torch.Tensor) -> np.ndarray:
    """Tracks as float64 [N, F, 2] (non-finite positions kept as NaN and skipped when drawing)."""
    if isinstance(tracks, torch.Tensor):
        tracks = tracks.detach().to("cpu", torch.float64).numpy()
    tracks = np.asarray(tracks, dtype=np.float64)
    if tracks.ndim != 3 or tracks.shape[2] != 2:
        raise ValueError(f"tracks must be [N, F, 2] (x, y), got {list(tracks.shape)}")
    return tracks


def _fixed(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates [..., 2] → OpenCV fixed-point int32 for `shift=_SUBPIXEL_BITS`."""
    return np.rint(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)


def _draw_arrow_track(cv2: Any, canvas: np.ndarray, points: np.ndarray, color: tuple, thickness: int) -> None:
    """Draw one moving track [F, 2]: polyline, start dot, arrowhead (no longer than 60% of the track), over a dark outline."""
    dot_radius = thickness + 1
    extent = float(np.linalg.norm(points - points[-1], axis=1).max())
    head = _arrowhead(points, length=min(4.0 * thickness + 6.0, 0.6 * extent))  # [3, 2] or None
    for ink, extra in ((_OUTLINE, 2), (color, 0)):
        width = thickness + extra
        cv2.polylines(canvas, [_fixed(points)], False, ink, width, cv2.LINE_AA, _SUBPIXEL_BITS)
        centre = tuple(int(c) for c in _fixed(points[0]))
        radius = int(round((dot_radius + extra / 2) * (1 << _SUBPIXEL_BITS)))
        cv2.circle(canvas, centre, radius, ink, -1, cv2.LINE_AA, _SUBPIXEL_BITS)
        if head is not None:
            if extra:
                cv2.polylines(canvas, [_fixed(head)], True, ink, extra, cv2.LINE_AA, _SUBPIXEL_BITS)
            cv2.fillConvexPoly(canvas, _fixed(head), ink, cv2.LINE_AA, _SUBPIXEL_BITS)


def _arrowhead(points: np.ndarray, length: float) -> np.ndarray | None:
    """Triangle [3, 2] with its tip at the track's last point, pointing along its final direction."""
    tip = points[-1]
    distances = np.linalg.norm(points[:-1] - tip, axis=1)  # [F-1]
    far_enough = np.nonzero(distances >= min(length, distances.max()) * 0.5)[0]
    if len(far_enough) == 0 or distances.max() == 0:
        return None
    tail = points[far_enough[-1]]  # the latest point far enough back to give a stable direction
    direction = (tip - tail) / np.linalg.norm(tip - tail)
    normal = np.array([-direction[1], direction[0]])
    base = tip - direction * length
    return np.stack([tip, base + normal * length * 0.55, base - normal * length * 0.55])


def _draw_pin(cv2: Any, canvas: np.ndarray, point: np.ndarray, color: tuple, thickness: int) -> None:
    """Draw a still point as a ring over a dark outline."""
    centre = tuple(int(c) for c in _fixed(point))
    radius = int(round((thickness + 2.0) * (1 << _SUBPIXEL_BITS)))
    cv2.circle(canvas, centre, radius, _OUTLINE, thickness + 2, cv2.LINE_AA, _SUBPIXEL_BITS)
    cv2.circle(canvas, centre, radius, color, thickness, cv2.LINE_AA, _SUBPIXEL_BITS)


# --------------------------------------------------------------------------------------------
# Atomic outputs
# --------------------------------------------------------------------------------------------


class AtomicOutputs:
    """Writes a run's files under temporary names and renames them into place only when all succeeded."""

    def __init__(self, directory: str | os.PathLike) -> None:
        """Create the output directory (parents too) and start with nothing pending."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pending: dict[str, Path] = {}  # final name → temporary path

    def path(self, name: str) -> Path:
        """A temporary path to write `name` to; a name without suffix is a directory, created empty."""
        if name in self._pending:
            return self._pending[name]
        if not name or name in (".", "..") or Path(name).name != name or os.sep in name or "/" in name:
            raise ValueError(f"output name must be a plain file or folder name, got {name!r}")
        stem, suffix = Path(name).stem, Path(name).suffix
        temporary = self.directory / f".{stem}.partial{suffix}"  # suffix last: writers infer the format
        _remove(temporary)  # a leftover from a run that crashed hard
        if not suffix:
            temporary.mkdir()
        self._pending[name] = temporary
        return temporary

    def commit(self) -> list[Path]:
        """Rename every temporary that was written to its final name (replacing what is there); return the finals."""
        finals: list[Path] = []
        try:
            for name, temporary in list(self._pending.items()):
                if not (temporary.exists() or temporary.is_symlink()):
                    del self._pending[name]  # asked for but never written: nothing to publish
                    continue
                final = self.directory / name
                if final.is_dir() and not final.is_symlink():
                    shutil.rmtree(final)
                elif temporary.is_dir() and (final.exists() or final.is_symlink()):
                    final.unlink()
                os.replace(temporary, final)
                del self._pending[name]
                finals.append(final)
        except BaseException:
            self.discard()
            raise
        return finals

    def discard(self) -> None:
        """Remove every temporary written so far."""
        for temporary in self._pending.values():
            _remove(temporary)
        self._pending.clear()

    def __enter__(self) -> AtomicOutputs:
        """Use as `with AtomicOutputs(dir) as out:`; commits on success, discards on an exception."""
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        """Commit when the block succeeded; otherwise discard the temporaries and let the exception propagate."""
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False


def _remove(path: Path) -> None:
    """Delete a file, link or directory tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
