"""The background plate: the still picture with the layers in front of it taken out, so that what they reveal is background.

Where a layer moves away, the pixels it uncovers show the plate; without one they would show the
layer's own first frame (a copy of the dragged object left behind). The plate is the picture with
the cores of the front layers (where their alpha is 1) filled from the pixels around them, which
belong to the background: their fading edges lie outside the layers, so frame 0 still composes
to the picture exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

FILLS = ("smooth", "inpaint")
# How far around each filled pixel OpenCV's inpainting looks, in pixels.
INPAINT_RADIUS = 5


def background_plate(image: np.ndarray, cores: list[np.ndarray], fill: str) -> np.ndarray:
    """The picture uint8 [H, W, 3] with the union of the cores bool [H, W] filled from around them: uint8 [H, W, 3].

    ``fill`` is ``smooth`` (a push-pull average of the surrounding colours: a soft continuation of
    the background, the default) or ``inpaint`` (OpenCV's fast-marching inpainting, Telea 2004:
    the surroundings carried inward along their edges, which keeps lines but can draw the hole's
    outline into it).
    """
    if not cores:
        return image
    hole = np.logical_or.reduce(cores)  # [H, W]
    if not hole.any():
        return image
    if hole.all():
        return image.copy()  # nothing to fill from: the layers cover everything and the background is never seen
    if fill == "inpaint":
        return cv2.inpaint(image, hole.astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA)
    return smooth_fill(image, hole)


def smooth_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill the hole bool [H, W] of a picture uint8 [H, W, 3] with a push-pull average of the pixels around it."""
    levels = [(image.astype(np.float32), (~hole).astype(np.float32))]
    while min(levels[-1][1].shape) > 1 and levels[-1][1].min() == 0:
        values, weight = levels[-1]
        height, width = weight.shape
        size = ((width + 1) // 2, (height + 1) // 2)
        pooled_weight = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)  # [h, w]
        pooled = cv2.resize(values * weight[..., None], size, interpolation=cv2.INTER_AREA)  # [h, w, 3]
        levels.append((pooled / np.maximum(pooled_weight, 1e-12)[..., None], (pooled_weight > 0).astype(np.float32)))
    filled = levels[-1][0]
    for values, weight in reversed(levels[:-1]):
        up = cv2.resize(filled, (weight.shape[1], weight.shape[0]), interpolation=cv2.INTER_LINEAR)
        filled = np.where(weight[..., None] > 0, values, up)
    out = np.rint(filled).clip(0, 255).astype(np.uint8)
    return np.where(hole[..., None], out, image)
