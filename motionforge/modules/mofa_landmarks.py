"""MOFA-Video's landmark images: a 68-point face drawn as coloured polylines, the keypoint adapter's input.

The keypoint adapter was trained on faces drawn this way: the points scaled onto a 320×320 canvas
(x·320/W, y·320/H, truncated to whole pixels), each part of the iBUG 68-point layout drawn as
lines of its own colour, two pixels thick, the canvas resized to the frame's H×W and divided by
255. MOFA's code passes ``cv2.INTER_NEAREST`` where ``cv2.resize`` takes its output array, so the
resize it runs is the default bilinear one; that is what is reproduced here.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import torch

CANVAS = 320  # the training resolution the line width was chosen for
THICKNESS = 2
NUM_POINTS = 68
# (the part's points in the iBUG 68 layout, 1-based as usually listed; its RGB colour)
PARTS: tuple[tuple[tuple[int, ...], tuple[int, int, int]], ...] = (
    (tuple(range(1, 18)), (10, 200, 10)),  # jaw
    ((43, 44, 45, 46, 47, 48, 43), (180, 200, 10)),  # left eye
    ((23, 24, 25, 26, 27), (180, 220, 10)),  # left eyebrow
    ((37, 38, 39, 40, 41, 42, 37), (10, 200, 180)),  # right eye
    ((18, 19, 20, 21, 22), (10, 220, 180)),  # right eyebrow
    ((28, 29, 30, 31), (10, 200, 250)),  # nose bridge
    ((32, 33, 34, 35, 36), (250, 200, 10)),  # nostrils
    ((55, 56, 57, 58), (10, 180, 20)),  # outer lip, bottom left
    ((49, 60, 59, 58), (20, 10, 180)),  # outer lip, bottom right
    ((65, 66, 67), (100, 100, 30)),  # inner lip, bottom left
    ((61, 68, 67), (100, 150, 50)),  # inner lip, bottom right
    ((52, 53, 54, 55), (20, 80, 100)),  # outer lip, top left
    ((52, 51, 50, 49), (80, 100, 20)),  # outer lip, top right
    ((63, 64, 65), (120, 100, 200)),  # inner lip, top left
    ((63, 62, 61), (150, 120, 100)),  # inner lip, top right
)


def draw_face(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """One face's 68 points [68, 2] (x, y in H×W frame pixels) → its drawing, float [H, W, 3] in [0, 1]."""
    canvas = np.zeros((CANVAS, CANVAS, 3))  # [320, 320, 3] RGB, 0–255
    scaled = np.asarray(points, dtype=np.float64) * np.array([CANVAS / width, CANVAS / height])  # [68, 2]
    for indices, colour in PARTS:
        part = scaled[np.array(indices) - 1]  # [n, 2]
        for (x1, y1), (x2, y2) in itertools.pairwise(part):
            cv2.line(canvas, (int(x1), int(y1)), (int(x2), int(y2)), colour, thickness=THICKNESS)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_LINEAR) / 255.0  # [H, W, 3]


def draw_faces(tracks: torch.Tensor, frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The landmark tracks [68, F, 2] drawn at the window's frames [Fw]: [Fw, 3, H, W] float32 in [0, 1]."""
    points = tracks.detach().cpu().double().numpy()  # [68, F, 2]
    drawn = [draw_face(points[:, int(frame)], height, width) for frame in frames.tolist()]
    return torch.from_numpy(np.stack(drawn)).permute(0, 3, 1, 2).float()  # [Fw, 3, H, W]
