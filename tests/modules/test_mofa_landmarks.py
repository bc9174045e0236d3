"""MOFA-Video's landmark images: 68 points drawn as coloured lines on a 320×320 canvas, resized bilinearly, /255."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from motionforge.modules.mofa_landmarks import PARTS, draw_face, draw_faces


def face(scale: float = 1.0) -> np.ndarray:
    """68 points [68, 2]: on a circle of radius 100 around (160, 160) on the 320 canvas, times scale."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    return np.stack([160 + 100 * np.cos(angles), 160 + 100 * np.sin(angles)], axis=1) * scale


def test_each_part_is_drawn_in_its_colour_two_pixels_thick() -> None:
    drawn = draw_face(face(), 320, 320)  # the canvas size: no resizing
    assert drawn.shape == (320, 320, 3) and drawn.min() >= 0 and drawn.max() <= 1
    x1, y1 = face()[0].astype(int)  # the jaw's first segment, from point 1 to point 2
    x2, y2 = face()[1].astype(int)
    middle = ((x1 + x2) // 2, (y1 + y2) // 2)
    assert np.allclose(drawn[middle[1], middle[0]], np.array(PARTS[0][1]) / 255)
    assert not drawn[160, 160].any()  # the centre of the face holds no line
    flat = np.full((68, 2), 300.0)
    flat[:17] = np.stack([np.linspace(20, 180, 17), np.full(17, 100.0)], axis=1)  # the jaw along the row y = 100
    column = draw_face(flat, 320, 320)[:, 100].sum(axis=1) > 0  # [320] rows lit in the column x = 100
    assert column[99:102].all() and column.sum() == 3  # cv2's thickness 2: the row and one on each side


def test_other_frame_sizes_scale_the_points_to_320_and_resize_bilinearly() -> None:
    points = face(scale=0.4)  # a 128×128 frame's pixels
    canvas = draw_face(points * 320 / 128, 320, 320)
    assert np.allclose(draw_face(points, 128, 128), cv2.resize(canvas, (128, 128), interpolation=cv2.INTER_LINEAR))


def test_a_window_of_tracks_is_drawn_frame_by_frame() -> None:
    tracks = torch.from_numpy(np.stack([face(0.2), face(0.2) + 5], axis=1)).float()  # [68, 2, 2]
    drawn = draw_faces(tracks, torch.tensor([1, 0]), 64, 64)
    assert drawn.shape == (2, 3, 64, 64) and drawn.dtype == torch.float32
    assert torch.allclose(drawn[1], torch.from_numpy(draw_face(face(0.2), 64, 64)).permute(2, 0, 1).float())
    assert not torch.equal(drawn[0], drawn[1])
