"""The landmark adapter: a facial landmark sequence drives the face as sparse hints (MOFA-Video eq. 2)."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from einops import rearrange

from motionforge.core.errors import ConfigError, InputError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import MotionContext, MotionHint, SparsePoints
from motionforge.motion.values import canvas_size, plain, read_numeric_npy
from motionforge.core.places import user_path

log = logging.getLogger(__name__)

ALIGNS = ("none", "similarity")
SEQUENCE_SHAPE = "[T, K, 2] (T frames of K (x, y) landmarks)"
REFERENCE_SHAPE = "[K, 2] or [1, K, 2] (K (x, y) landmarks)"


@dataclass
class LandmarkConfig:
    """Parameters of the landmark adapter."""

    # the sequence: .npy [T, K, 2] in pixels, or .json of the same nesting
    file: str | None = None
    # the input image's face, [K, 2]; None = the sequence's frame 0
    reference: str | None = None
    # none | similarity (map the sequence's frame 0 onto the reference face)
    align: str = "none"
    # [W, H] of the canvas the landmarks were given on; None = the input image
    size: Any = None
    strength: float = 1.0  # multiplies the landmark motion
    face_region: bool = False  # allow motion only near the reference face
    face_margin: float = 0.15  # its dilation, a fraction of the face box's larger side
    face_blend: float = 0.25  # how far around the face its motion blends into the rest (hair, neck), a fraction of that side


def _key(name: str) -> str:
    """The config key of one of this adapter's parameters, for messages."""
    return f"adapters.landmark.{name}"


def read_landmark_array(path: str, key: str) -> np.ndarray:
    """Read a .npy or .json landmark file into a float64 array, checking it exists, parses and is finite."""
    file = user_path(path)
    if not file.is_file():
        raise InputError(
            f"landmark file not found: {path}; pass {key}=/path/to/landmarks.npy"
        )
    suffix = file.suffix.lower()
    if suffix == ".npy":
        array = _read_npy(file)
    elif suffix == ".json":
        array = _read_json(file)
    else:
        raise InputError(
            f"landmark file {path} has the unknown extension {suffix or '(none)'!r}; "
            "give a .npy array or a .json list of frames of [x, y] points"
        )
    if array.size == 0:
        raise InputError(
            f"landmark file {path} is empty (shape {list(array.shape)}); "
            "it must hold at least one [x, y] point"
        )
    bad = np.argwhere(~np.isfinite(array))  # [M, ndim] indices of NaN / inf entries
    if len(bad):
        raise InputError(
            f"landmark file {path} contains NaN or infinity (first at index {bad[0].tolist()}); "
            "fill in or drop the missing landmarks"
        )
    return array


def _read_npy(file: Path) -> np.ndarray:
    """Load a numeric .npy array without unpickling anything; any [..] shape → float64."""
    array = read_numeric_npy(file, f"landmark file {file}", "the landmarks as a float array of pixel coordinates")
    return array.astype(np.float64)


def _read_json(file: Path) -> np.ndarray:
    """Load a JSON nesting of lists of numbers as a float64 array, rejecting ragged or non-numeric data."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(
            f"landmark file {file} is not a UTF-8 text file; a .json landmark file must be JSON text"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"landmark file {file} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(data, list):
        raise InputError(
            f"landmark file {file} holds a JSON {type(data).__name__}; "
            "it must be a list of frames, each a list of [x, y] points"
        )
    leaf = _first_non_number(data)
    if leaf is not None:
        raise InputError(
            f"landmark file {file} contains {leaf} where a number or a list is expected; "
            "every point must be [x, y] with two numbers"
        )
    try:
        return np.array(data, dtype=np.float64)
    except ValueError as exc:
        raise InputError(
            f"landmark file {file} has lists of different lengths; "
            "every frame must list the same K points and every point must be [x, y]"
        ) from exc


def _first_non_number(data: Any) -> str | None:
    """The first leaf of a JSON nesting that is not a list or a number, as JSON text."""
    if isinstance(data, list):
        return next(
            (found for item in data if (found := _first_non_number(item)) is not None),
            None,
        )
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return None
    return json.dumps(data)[:40]


def read_sequence(path: str) -> np.ndarray:
    """Read and check a landmark sequence file; → [T, K, 2] float64 pixels with T ≥ 2."""
    sequence = read_landmark_array(path, _key("file"))
    if sequence.ndim != 3 or sequence.shape[2] != 2:
        raise InputError(
            f"landmark file {path} has shape {list(sequence.shape)} but must be {SEQUENCE_SHAPE}"
        )
    if sequence.shape[0] < 2:
        raise InputError(
            f"landmark file {path} has only {sequence.shape[0]} frame; "
            "a landmark sequence needs at least 2 frames (pass the reference with adapters.landmark.reference)"
        )
    return sequence  # [T, K, 2]


def read_reference(path: str, num_landmarks: int, sequence_path: str) -> np.ndarray:
    """Read and check the reference landmarks of the input face; → [K, 2] float64 pixels."""
    reference = read_landmark_array(path, _key("reference"))
    if reference.ndim == 3 and reference.shape[0] == 1:
        reference = reference[0]
    if reference.ndim != 2 or reference.shape[1] != 2:
        raise InputError(
            f"landmark file {path} has shape {list(reference.shape)} but must be {REFERENCE_SHAPE}"
        )
    if reference.shape[0] != num_landmarks:
        raise InputError(
            f"reference landmark file {path} has {reference.shape[0]} landmarks but the sequence "
            f"{sequence_path} has {num_landmarks} per frame; both must list the same K landmarks in the same order"
        )
    return reference  # [K, 2]


def fit_similarity(
    source: np.ndarray, target: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama, no reflection) taking source [K, 2] onto target [K, 2].

    Returns (scale, rotation [2, 2], translation [2]) with target ≈ scale · source @ rotationᵀ + translation.
    """
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)  # [2], [2]
    source_c, target_c = source - source_mean, target - target_mean  # [K, 2], [K, 2]
    variance = float((source_c**2).sum(axis=1).mean())
    if variance <= 1e-12:
        raise InputError(
            "the first frame of the landmark sequence has all its landmarks on one point; "
            "adapters.landmark.align=similarity needs at least two distinct landmarks"
        )
    covariance = target_c.T @ source_c / len(source)  # [2, 2]
    u, singular, vt = np.linalg.svd(covariance)  # [2, 2], [2], [2, 2]
    reflection = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    flip = np.diag([1.0, reflection])  # [2, 2] keeps the rotation proper
    rotation = u @ flip @ vt  # [2, 2]
    scale = float(np.trace(np.diag(singular) @ flip)) / variance
    translation = target_mean - scale * rotation @ source_mean  # [2]
    return scale, rotation, translation


def align_similarity(sequence: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Map a whole sequence [T, K, 2] by the similarity that takes its first frame onto reference [K, 2]."""
    scale, rotation, translation = fit_similarity(sequence[0], reference)
    return scale * sequence @ rotation.T + translation  # [T, K, 2]


def resample_sequence(sequence: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Interpolate a sequence [T, K, 2] linearly at normalised times [F]; → [F, K, 2].

    Time 0 is the first given frame and 1 the last; both ends are reproduced exactly.
    """
    last = len(sequence) - 1
    position = np.clip(times, 0.0, 1.0) * last  # [F] fractional source frame
    lower = np.clip(np.floor(position).astype(np.int64), 0, last - 1)  # [F]
    weight = (position - lower)[:, None, None]  # [F, 1, 1]
    resampled = (1 - weight) * sequence[lower] + weight * sequence[lower + 1]
    resampled[0] = sequence[0]
    if len(times) > 1:
        resampled[-1] = sequence[-1]
    return resampled  # [F, K, 2]


def face_region(
    points: np.ndarray, height: int, width: int, margin: float
) -> torch.Tensor:
    """A face's allowed-motion mask: the hull of its landmarks, dilated; → [1, 1, H, W].

    ``points`` [K, 2] are working pixels; the dilation radius is ``margin`` times the larger
    side of their bounding box. The mask is 0 or 1.
    """
    region = np.zeros((height, width), dtype=np.uint8)  # [H, W]
    corners = np.rint(points).astype(np.int32).reshape(-1, 1, 2)  # [K, 1, 2]
    cv2.fillConvexPoly(region, cv2.convexHull(corners), 1)
    side = float((points.max(axis=0) - points.min(axis=0)).max())
    radius = round(margin * side)
    if radius > 0:
        kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)
        )
        region = cv2.dilate(region, kernel)
    return torch.from_numpy(region).float()[None, None]  # [1, 1, H, W]


def landmark_points(pixels: np.ndarray, displacement: np.ndarray) -> SparsePoints:
    """The landmarks as sparse samples: at their pixels [N, 2] (x, y), moving by displacements [N, F, 2], each counting 1."""
    flow = torch.from_numpy(displacement).float()  # [N, F, 2]
    return SparsePoints(torch.from_numpy(pixels).float(), flow, torch.ones(flow.shape[:2]))


def _check_config(config: LandmarkConfig) -> None:
    """Reject config values that cannot mean anything, naming the key."""
    if not config.file:
        raise ConfigError(
            f"the landmark adapter has no landmarks: set {_key('file')}=landmarks.npy "
            "(a [T, K, 2] array or JSON), or drop the control from adapters=[...]"
        )
    if config.align not in ALIGNS:
        raise ConfigError(
            f"{_key('align')}={config.align!r} is not one of {', '.join(ALIGNS)}"
        )
    if not math.isfinite(config.strength):
        raise ConfigError(
            f"{_key('strength')}={config.strength!r} must be a finite number"
        )
    for name in ("face_margin", "face_blend"):
        value = getattr(config, name)
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{_key(name)}={value!r} must be a number ≥ 0 (a fraction of the face's size)")


class LandmarkAdapter:
    """Facial landmarks: each reference landmark pixel gets its landmark's motion at every frame, densified later."""

    name = "landmark"
    Config = LandmarkConfig
    memory_per_pixel = 0  # its hint is a few sparse samples, not a flow per frame

    def landmarks(
        self, config: LandmarkConfig, context: MotionContext
    ) -> tuple[np.ndarray, np.ndarray]:
        """The aligned sequence over the clip and the reference face, in working pixels.

        Returns the sequence [F, K, 2] resampled to the clip's frames and the reference [K, 2].
        """
        _check_config(config)
        sequence = read_sequence(config.file)  # [T, K, 2]
        if config.reference is None:
            reference = sequence[0]  # [K, 2]
        else:
            num_landmarks = sequence.shape[1]
            reference = read_reference(config.reference, num_landmarks, config.file)
        canvas = canvas_size(plain(config.size), _key("size"))
        if canvas is not None:
            # canvas pixels → input-image pixels (pixel-centre convention)
            scale = np.divide(context.source_size, canvas)  # [2]
            sequence = (sequence + 0.5) * scale - 0.5  # [T, K, 2]
            reference = (reference + 0.5) * scale - 0.5  # [K, 2]
        if config.align == "similarity":
            sequence = align_similarity(sequence, reference)
        working = context.to_working(sequence)  # [T, K, 2]
        resampled = resample_sequence(working, context.frame_times())  # [F, K, 2]
        return resampled, context.to_working(reference)

    def build(self, config: LandmarkConfig, context: MotionContext) -> MotionHint:
        """Sparse hints: the motion of each landmark from the sequence's first frame, at its reference pixel."""
        height, width = context.height, context.width
        sequence, reference = self.landmarks(config, context)  # [F, K, 2], [K, 2]
        motion = rearrange(sequence - sequence[:1], "f k c -> k f c")  # [K, F, 2]
        displacement = config.strength * motion  # [K, F, 2]
        pixels = np.rint(reference).astype(np.int64)  # [K, 2] (x, y)
        inside = (
            (pixels[:, 0] >= 0)
            & (pixels[:, 0] < width)
            & (pixels[:, 1] >= 0)
            & (pixels[:, 1] < height)
        )
        if not inside.any():
            raise InputError(
                f"every reference landmark lies outside the {width}x{height} working frame; give landmarks in the "
                f"input image's pixels, or set {_key('size')}=[W,H] to the canvas they were given on"
            )
        if not inside.all():
            log.warning(
                "landmark: dropped %d of %d landmarks, which lie outside the working frame",
                int((~inside).sum()),
                len(inside),
            )
        points = landmark_points(pixels[inside], displacement[inside])  # landmarks on one pixel are averaged in fusion
        tracks = reference[inside, None] + displacement[inside]  # [K', F, 2]
        region, blend = None, 0.0
        if config.face_region:
            region = face_region(reference, height, width, config.face_margin)
            region = region.to(context.device)
            blend = config.face_blend * float((reference.max(axis=0) - reference.min(axis=0)).max())
        return MotionHint(
            points=points,
            region=region,
            blend=blend,
            # on the CPU like the trajectory adapter's, so plan.tracks can concatenate them
            tracks=torch.from_numpy(tracks).float(),
        )


@hookimpl
def register_adapters(register) -> None:
    """Register the landmark adapter."""
    register(LandmarkAdapter)
