"""What the toy world's ground truth lets us measure on any video of a toy clip: sprite integrity and where sprites may move.

A sprite's colour mass in a frame is the number of pixels of its hue: their direction in RGB within
``HUE_COSINE`` of the sprite's colour and their brightness between ``BRIGHTNESS`` times its own (the
striped blobs are shaded down to 0.72). A sprite keeps its integrity in a frame when that mass is
within ``TOLERANCE`` (20%) of what the ground truth expects there: frame 0's mass scaled as the
clip's own frames scale it (zoom, antialiasing), so only what the model did counts.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

HUE_COSINE = 0.97
BRIGHTNESS = (0.6, 1.15)
TOLERANCE = 0.2


def hue_pixels(frames: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The pixels of a sprite's colour [3] (its hue, at its brightness or shaded) in uint8 RGB frames [..., H, W, 3]: bool [..., H, W]."""
    pixels = frames.astype(np.float64)  # [..., H, W, 3]
    target = colour.astype(np.float64)
    norm = np.linalg.norm(pixels, axis=-1) + 1e-9  # [..., H, W]
    cosine = (pixels @ target) / (norm * np.linalg.norm(target))
    ratio = norm / np.linalg.norm(target)
    return (cosine >= HUE_COSINE) & (ratio >= BRIGHTNESS[0]) & (ratio <= BRIGHTNESS[1])


def colour_mass(frames: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Pixels of a sprite's colour [3] in each frame of uint8 RGB frames [F, H, W, 3]: [F]."""
    return hue_pixels(frames, colour).reshape(len(frames), -1).sum(axis=1)


def integrity(frames: np.ndarray, truth: np.ndarray, colours: np.ndarray, steady: float = 0.1) -> np.ndarray:
    """Each sprite's colour mass over the one the ground truth expects, per frame: [S, F] (1 = intact; NaN where not judged).

    frames [F, H, W, 3] uint8 (a generated video of a toy clip), truth [F, H, W, 3] the clip's own
    frames, colours [S, 3]. The expected mass at frame t is the video's mass at frame 0 times the
    truth's mass ratio t/0 (so zoom and antialiasing count as in the truth); frames where the truth's
    mass is more than ``steady`` away from its frame-0 mass (a sprite going behind another or coming
    out, or leaving the frame) are not judged, since where the model puts it decides what is hidden.
    """
    ratios = np.full((len(colours), len(frames)), np.nan)
    for s, colour in enumerate(colours):
        mass, real = colour_mass(frames, colour).astype(np.float64), colour_mass(truth, colour).astype(np.float64)  # [F]
        if mass[0] == 0 or real[0] == 0:
            continue
        judged = np.abs(real / real[0] - 1) <= steady  # [F]
        expected = mass[0] * real / real[0]  # [F]
        ratios[s, judged] = mass[judged] / expected[judged]
    return ratios


def intact(ratios: np.ndarray) -> bool:
    """Whether every sprite stays within the tolerance in every frame (sprites hidden at frame 0 do not count)."""
    known = ratios[~np.isnan(ratios)]
    return bool(np.all(np.abs(known - 1) <= TOLERANCE))


def path_region(tracks: np.ndarray, radii: np.ndarray, size: tuple[int, int], margin: float = 2.0) -> np.ndarray:
    """The strip a user would brush for these tracks: discs of radius r + margin along each track [N, F, 2]: bool [H, W]."""
    height, width = size
    region = np.zeros((height, width), dtype=np.uint8)
    for track, radius in zip(tracks, radii):
        for a, b in itertools.pairwise(track):
            cv2.line(region, tuple(round(v) for v in a), tuple(round(v) for v in b), 1, int(2 * (radius + margin)))
        for point in track:
            cv2.circle(region, tuple(round(v) for v in point), int(np.ceil(radius + margin)), 1, -1)
    return region.astype(bool)


def sprite_region(masks: np.ndarray, margin: int = 2) -> np.ndarray:
    """Every pixel a sprite covers in some frame, grown by ``margin`` px: bool [H, W] (the rest should hold still)."""
    union = masks.any(axis=(0, 1)).astype(np.uint8)  # [H, W]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return cv2.dilate(union, kernel) > 0


def trackable(masks: np.ndarray, tracks: np.ndarray, visible: np.ndarray, margin: int = 6) -> np.ndarray:
    """Where each sprite's centre can be followed by a tracker: seen, and no nearer sprite within ``margin`` px: bool [S, F].

    masks [S, F, H, W] the visible masks (sprites later in the list are nearer), tracks [S, F, 2],
    visible [S, F]. A tracker matches a window around the point, so a nearer sprite in that window
    drags it along: such a frame is as good as hidden.
    """
    count, frames, height, width = masks.shape
    out = visible.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    for s in range(count - 1):
        for f in range(frames):
            near = cv2.dilate(masks[s + 1 :, f].any(axis=0).astype(np.uint8), kernel) > 0  # [H, W]
            x, y = np.round(tracks[s, f]).astype(int)
            if 0 <= x < width and 0 <= y < height and near[y, x]:
                out[s, f] = False
    return out
