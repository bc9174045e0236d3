"""The `control` suite's built-in cases: textured scenes with objects to drag, made procedurally so anyone can rerun them.

Every case is a picture (multi-scale noise background, objects with their own texture and a dark
rim, so Lucas–Kanade and DIS find something to lock on everywhere), drag tracks in the trajectory
adapter's ``paths`` format, the brush for the cases that have one (the brush adapter's ``boxes``
or ``polygons``), all in image pixels, and the mask of the object each track drags (for the ghost
and tear measures). A size gives the same bytes on every run (seeded numpy generators, OpenCV
single-threaded resampling of them).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from motionforge.core.errors import ConfigError
from motionforge.io.opticalflow import single_threaded_opencv

SEED = 20240611
# Noise octaves: cell sizes in pixels at 256 px, each weighted by the square root of its size.
OCTAVES = (2, 4, 8, 16, 32)
# Gaussian blur (px at 256 px) over the finished picture.
BLUR = 0.8
# Image paths Hydra reads unquoted; any other character gets the path single-quoted.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./:+-]+")


@dataclass
class Case:
    """One benchmark case: a picture, its drag tracks and brush (image pixels), the objects they drag, and what it checks."""

    name: str
    image: np.ndarray  # uint8 [H, W, 3] RGB
    tracks: list[list[list[float]]]  # per track its [x, y] points, spread over the clip (adapters.trajectory.paths)
    brush: (
        dict[str, list] | None
    )  # the brush adapter's keys: {"boxes": [[x0, y0, x1, y1], …]} or {"polygons": …}; None = no brush
    description: str
    objects: list[np.ndarray]  # bool [H, W] per track: the object it drags, at frame 0


def noise(rng: np.random.Generator, height: int, width: int, scale: float = 1.0) -> np.ndarray:
    """Multi-scale value noise (bicubic-upsampled random grids, octaves summed): float [H, W] in [0, 1]."""
    total = np.zeros((height, width), dtype=np.float64)  # [H, W]
    for octave in OCTAVES:
        cell = max(1, round(octave * scale))
        grid = rng.random((height // cell + 3, width // cell + 3))  # [h, w] one value per cell
        upsampled = cv2.resize(grid, (grid.shape[1] * cell, grid.shape[0] * cell), interpolation=cv2.INTER_CUBIC)
        total += upsampled[cell : cell + height, cell : cell + width] * np.sqrt(cell)
    total -= total.min()
    return total / max(total.max(), 1e-12)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A muted textured ground: float [H, W, 3] in [0, 255], mid-tones so objects stand out."""
    scale = size / 256
    luma = noise(rng, size, size, scale)  # [H, W]
    tint = noise(rng, size, size, 2 * scale)  # [H, W] slow colour drift
    base = 50 + 140 * luma
    return np.stack([base * (0.8 + 0.3 * tint), base * 0.95, base * (1.1 - 0.3 * tint)], axis=-1)


def paste(image: np.ndarray, rng: np.random.Generator, mask: np.ndarray, colour: tuple[float, float, float]) -> None:
    """Paint an object into image [H, W, 3] where mask [H, W] is set: strong texture of its own colour, a dark rim."""
    size = image.shape[0]
    scale = size / 256
    pattern = noise(rng, size, size, 0.5 * scale)  # [H, W] finer than the ground
    ys, xs = np.mgrid[0:size, 0:size]
    period = 12 * scale
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * xs / period) * np.sin(2 * np.pi * ys / period)  # [H, W] smooth corners
    shade = 0.35 + 0.45 * pattern + 0.2 * grating  # [H, W] in [0.35, 1]
    fill = shade[..., None] * np.asarray(colour)  # [H, W, 3]
    rim = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, round(2 * scale))).astype(bool)
    image[mask] = fill[mask]
    image[rim] = 20.0


def disc(size: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    """The pixels whose centres lie within radius of centre (x, y): bool [H, W]."""
    ys, xs = np.mgrid[0:size, 0:size]
    return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2


def square(size: int, centre: tuple[float, float], half: float) -> np.ndarray:
    """The pixels whose centres lie within half of centre (x, y) on both axes: bool [H, W]."""
    ys, xs = np.mgrid[0:size, 0:size]
    return (np.abs(xs - centre[0]) <= half) & (np.abs(ys - centre[1]) <= half)


def _at(size: int, *fractions: float) -> list[float]:
    """Fractions of the side as whole image pixels: [v, …]."""
    return [float(round(f * size)) for f in fractions]


def _scene(size: int, seed: int, objects: list[tuple[np.ndarray, tuple[float, float, float]]]) -> np.ndarray:
    """A textured ground with the objects (mask, colour) painted on it: uint8 [H, W, 3]."""
    rng = np.random.default_rng(seed)
    image = background(rng, size)  # [H, W, 3]
    for mask, colour in objects:
        paste(image, rng, mask, colour)
    image = cv2.GaussianBlur(image, (0, 0), BLUR * size / 256)  # band-limit the edges so sub-pixel shifts resample cleanly
    return np.clip(image, 0, 255).round().astype(np.uint8)


def circle(centre: list[float], radius: float, corners: int = 48) -> list[list[float]]:
    """A polygon close around a circle, in the brush adapter's ``polygons`` format: [[x, y], …] image pixels."""
    angles = np.linspace(0.0, 2 * np.pi, corners, endpoint=False)
    reach = radius / np.cos(np.pi / corners)  # the polygon's edges touch the circle, its corners lie outside
    return [[round(centre[0] + reach * np.cos(a), 2), round(centre[1] + reach * np.sin(a), 2)] for a in angles]


def drag_disc(size: int) -> Case:
    """A textured disc dragged right across a quarter of the picture."""
    start, end = _at(size, 0.3, 0.5), _at(size, 0.55, 0.5)
    shape = disc(size, start, 0.14 * size)
    image = _scene(size, SEED, [(shape, (255, 190, 60))])
    return Case(
        "drag_disc",
        image,
        [[start, end]],
        None,
        "a textured disc on a textured ground, dragged right by a quarter of the width",
        [shape],
    )


def two_objects(size: int) -> Case:
    """A disc along an arc to the right and a square straight up, in opposite corners so their motions do not blend."""
    arc = [_at(size, 0.22, 0.24), _at(size, 0.3, 0.2), _at(size, 0.38, 0.24)]
    up = [_at(size, 0.76, 0.78), _at(size, 0.76, 0.62)]
    shapes = [disc(size, arc[0], 0.1 * size), square(size, up[0], 0.09 * size)]
    image = _scene(size, SEED + 1, [(shapes[0], (90, 200, 255)), (shapes[1], (255, 110, 150))])
    return Case(
        "two_objects",
        image,
        [arc, up],
        None,
        "a disc on a three-point arc to the right and a square dragged up, in opposite corners",
        shapes,
    )


def brushed(size: int) -> Case:
    """A disc dragged inside a brush box; everything outside the box must hold still."""
    start, end = _at(size, 0.45, 0.5), _at(size, 0.55, 0.55)
    shape = disc(size, start, 0.12 * size)
    image = _scene(size, SEED + 2, [(shape, (120, 255, 120))])
    box = _at(size, 0.2, 0.2, 0.8, 0.8)
    return Case(
        "brushed",
        image,
        [[start, end]],
        {"boxes": [box]},
        "a disc dragged inside a brush box; the ground outside the box must stay still",
        [shape],
    )


def slow_diagonal(size: int) -> Case:
    """A square dragged slowly down and right: a few pixels over the whole clip."""
    track = [_at(size, 0.35, 0.35), _at(size, 0.38, 0.38), _at(size, 0.41, 0.41)]
    shape = square(size, track[0], 0.11 * size)
    image = _scene(size, SEED + 3, [(shape, (230, 140, 255))])
    return Case(
        "slow_diagonal",
        image,
        [track],
        None,
        "a square dragged slowly down and right along the diagonal, 6% of the side over the whole clip",
        [shape],
    )


def out_of_brush(size: int) -> Case:
    """A small disc in a brush just larger than it, dragged far out of the brush: nothing of it may stay behind."""
    start, end = _at(size, 0.3, 0.5), _at(size, 0.3 + 80 / 256, 0.5)
    shape = disc(size, start, 12 / 256 * size)
    image = _scene(size, SEED + 4, [(shape, (255, 160, 40))])
    return Case(
        "out_of_brush",
        image,
        [[start, end]],
        {"polygons": [circle(start, 18 / 256 * size)]},
        "a disc of radius 12 in a brush of radius 18 (at 256 px), dragged 80 px out of it: no copy may stay behind",
        [shape],
    )


def crossing(size: int) -> Case:
    """Two brushed objects whose paths cross half way: the faster one passes in front, both stay whole."""
    fast = [_at(size, 0.25, 0.5), _at(size, 0.75, 0.5)]
    slow = [_at(size, 0.5, 0.35), _at(size, 0.5, 0.65)]
    shapes = [disc(size, fast[0], 0.1 * size), square(size, slow[0], 0.08 * size)]
    image = _scene(size, SEED + 5, [(shapes[0], (80, 170, 255)), (shapes[1], (255, 90, 130))])
    brush = [circle(fast[0], 0.13 * size), circle(slow[0], 0.12 * size)]
    return Case(
        "crossing",
        image,
        [fast, slow],
        {"polygons": brush},
        "a disc dragged right and a square dragged down, each in its own brush, crossing half way; the faster disc in front",
        shapes,
    )


def cases(size: int = 256) -> list[Case]:
    """The built-in cases at size×size pixels (a multiple of 8, 64 or more, so the working frame is the picture)."""
    if not (isinstance(size, int) and size >= 64 and size % 8 == 0):
        raise ConfigError(f"the control cases' size must be a multiple of 8 of at least 64 pixels; found {size!r}")
    with single_threaded_opencv():
        return [drag_disc(size), two_objects(size), brushed(size), slow_diagonal(size), out_of_brush(size), crossing(size)]


def _hydra_value(text: str) -> str:
    """A string as a Hydra override value: unquoted when it is plain, else single-quoted with quotes escaped."""
    if _PLAIN_PATH.fullmatch(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _compact(value: list) -> str:
    """A nested list of numbers as a Hydra list with no spaces: [[1.0,2.0],…]."""
    return json.dumps(value, separators=(",", ":"))


def overrides(case: Case, image_path: str | Path) -> list[str]:
    """The `motionforge animate` overrides that run a case on its saved picture (adapters, tracks, brush, working size)."""
    height, width = case.image.shape[:2]
    adapters = ["trajectory", "brush"] if case.brush else ["trajectory"]
    result = [
        f"image={_hydra_value(str(image_path))}",
        f"height={height}",
        f"width={width}",
        f"adapters=[{','.join(adapters)}]",
        f"adapters.trajectory.paths={_compact(case.tracks)}",
    ]
    for key, value in (case.brush or {}).items():
        result.append(f"adapters.brush.{key}={_compact(value)}")
    return result


def save_case(case: Case, folder: str | Path) -> Path:
    """Write a case as folder/image.png and folder/case.json (tracks, brush, description, the command); return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image_path = folder / "image.png"
    Image.fromarray(case.image).save(image_path)
    args = overrides(case, image_path)
    record = {
        "name": case.name,
        "description": case.description,
        "size": [int(case.image.shape[1]), int(case.image.shape[0])],
        "tracks": case.tracks,
        "brush": case.brush,
        "overrides": args,
        "command": " ".join(["motionforge", "animate", *(shlex.quote(a) for a in args)]),
    }
    (folder / "case.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return folder
