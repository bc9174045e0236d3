"""Pictures of the motion: flow as colour (the Middlebury wheel) and the hint image (tracks and region over the picture).

Flows are ``[2, H, W]`` or ``[F, 2, H, W]`` displacements in pixels, x then y; pixel coordinates are (x, y) with the
origin at the centre of the top-left pixel.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


# Flow visualisation (Middlebury colour wheel, Baker et al. 2011)


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
    return flow_frames(flows, peak)


def flow_frames(flows: np.ndarray | torch.Tensor, peak: float) -> np.ndarray:
    """Colour some frames of flows [n, 2, H, W] on a given scale (``peak``: the magnitude of full colour); uint8 [n, H, W, 3]."""
    flows = _as_float_array(flows)
    if peak == 0.0:
        return np.full((flows.shape[0], flows.shape[2], flows.shape[3], 3), 255, dtype=np.uint8)
    return np.stack([flow_to_color(flow, max_magnitude=peak) for flow in flows])  # [n, H, W, 3]


def _as_float_array(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of an array or tensor, with non-finite entries (unknown flow) set to zero."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    values = np.asarray(values, dtype=np.float32)
    return np.where(np.isfinite(values), values, np.float32(0.0))


# Hint visualisation: tracks and region over the image

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
