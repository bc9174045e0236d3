"""The studio's overlay: the picture with the brush tinted, each track's PCHIP curve and arrow as the adapter uses it, and its knots."""

from __future__ import annotations

import numpy as np

from motionforge.io.visualise import draw_hint
from motionforge.motion.curves import resample_track
from motionforge.studio.state import Controls

CURVE_SAMPLES = 64  # points each drawn curve is sampled at
BRUSH_TINT = np.array([255, 64, 160], dtype=np.float32)  # the brushed area's colour
BRUSH_OPACITY = 0.35
KNOT = (255, 255, 255)
PICKED = (255, 40, 40)
OUTLINE = (20, 20, 20)


def curves(controls: Controls) -> np.ndarray:
    """Every complete track resampled as the trajectory adapter resamples it (PCHIP through the knots): [N, CURVE_SAMPLES, 2]."""
    tracks = controls.complete()
    if not tracks:
        return np.zeros((0, CURVE_SAMPLES, 2))
    return np.stack([resample_track(np.asarray(t.points, dtype=np.float64), CURVE_SAMPLES) for t in tracks])


def tint(picture: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The picture [H, W, 3] uint8 with the brushed area [H, W] bool tinted."""
    if mask is None or not mask.any():
        return picture.copy()
    blended = picture.astype(np.float32) * (1 - BRUSH_OPACITY) + BRUSH_TINT * BRUSH_OPACITY  # [H, W, 3]
    return np.where(mask[..., None], np.rint(blended).astype(np.uint8), picture)


def overlay(picture: np.ndarray, controls: Controls) -> np.ndarray:
    """Draw the controls over the picture [H, W, 3] uint8: brush tint, curves with arrows, pins as rings, knots as dots."""
    import cv2

    canvas = draw_hint(tint(picture, controls.mask), curves(controls))
    radius = max(2, round(min(picture.shape[:2]) / 160))
    for t, track in enumerate(controls.tracks):
        if track.is_pin and len(track.points) >= 2:
            continue  # draw_hint's ring marks it
        for k, (x, y) in enumerate(track.points):
            colour = PICKED if controls.selected == (t, k) else KNOT
            centre = (round(x), round(y))
            cv2.circle(canvas, centre, radius + 1, OUTLINE, -1, cv2.LINE_AA)
            cv2.circle(canvas, centre, radius, colour, -1, cv2.LINE_AA)
    if controls.selected is not None:
        t, k = controls.selected
        x, y = controls.tracks[t].points[k]
        cv2.circle(canvas, (round(x), round(y)), radius * 3, PICKED, max(1, radius // 2), cv2.LINE_AA)
    return canvas
