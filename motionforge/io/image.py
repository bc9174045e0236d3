"""Reading the input image and fitting it onto the working frame: EXIF orientation, RGB, working sizes, crop or stretch."""

from __future__ import annotations

import math
import operator
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from motionforge.core.errors import ConfigError, InputError
from motionforge.core.places import user_path
from motionforge.motion.fields import centred_box


FIT_MODES = ("crop", "stretch")
_WHITE = (255, 255, 255)


# Reading the input image


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


# Working size and fitting the image onto it


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
