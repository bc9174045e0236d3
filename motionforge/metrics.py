"""Control-adherence metrics on any backbone's output: how well a video follows its tracks, brush and itself.

Every function takes uint8 RGB frames [F, H, W, 3] as numpy and returns numpy or plain floats, so
it can score any video, whatever made it:

- :func:`trajectory_epe`: where each track's start point really went (pyramidal Lucas–Kanade)
  against where the control asked it to be, in pixels per frame.
- :func:`brush_leakage`: mean motion outside the brushed region over mean motion inside (DIS flow).
- :func:`object_fidelity`: whether a dragged object stays whole (``tear``: the change of its area)
  and leaves nothing behind (``ghost``: its colour where it no longer is, as a share of its area).
- :func:`temporal_error`: mean intensity error of warping each frame onto the next by their
  measured flow (DIS), in [0, 255] levels.

Pixel coordinates are (x, y) with the origin at the centre of the top-left pixel, as in
:mod:`motionforge.core.types`. OpenCV runs single-threaded so the numbers are reproducible.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from motionforge.core.errors import InputError
from motionforge.io.opticalflow import DIS_PRESETS, dis_flow, single_threaded_opencv

# Lucas–Kanade: frame to frame a 21×21 window on 4 pyramid levels (maxLevel 3) follows large motion; the anchored
# pass from frame 0 uses an 11×11 window on the full-resolution frame only, so the point's own neighbourhood decides.
LK_WINDOW = (21, 21)
LK_LEVELS = 3
ANCHOR_WINDOW = (11, 11)
# Gaussian blur (px) on the frames Lucas–Kanade reads: resampled frames are softer than the first, and matching a
# sharp edge against a softened one where the window cuts through it biases LK by up to 0.6 px; blurring both, < 0.3.
LK_BLUR = 1.0
LK_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-3)
# How far (px) re-tracking from frame 0 may move a chained position before it counts as a different match.
MAX_REFINEMENT = 2.0
# A pixel whose colour changed by at most this many levels (any channel) since frame 0 did not move.
STILL_LEVELS = 2


def _check_frames(frames: np.ndarray) -> None:
    """Raise unless frames are uint8 RGB [F ≥ 2, H, W, 3]."""
    if not isinstance(frames, np.ndarray):
        raise InputError(f"frames must be a numpy array of uint8 [F, H, W, 3]; found {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8 [F, H, W, 3] in 0…255; found dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must have shape [F, H, W, 3] (RGB); found shape {list(frames.shape)}")
    if frames.shape[0] < 2:
        raise InputError(f"a video needs at least 2 frames to measure motion; found {frames.shape[0]}")
    if frames.shape[1] < 2 or frames.shape[2] < 2:
        raise InputError(f"frames must be at least 2×2 pixels; found {frames.shape[2]}×{frames.shape[1]}")


def _check_points(points: np.ndarray, what: str, layout: str) -> np.ndarray:
    """Raise unless points are finite numbers whose last axis is (x, y); return them as float64."""
    array = np.asarray(points)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InputError(f"{what} must be numbers {layout}; found dtype {array.dtype}")
    array = array.astype(np.float64)
    if array.ndim < 1 or array.shape[-1] != 2:
        raise InputError(f"{what} must have shape {layout} with (x, y) last; found shape {list(array.shape)}")
    if not np.isfinite(array).all():
        raise InputError(f"{what} hold NaN or infinite values; every point must be finite")
    return array


def _check_preset(preset: str) -> None:
    """Raise unless preset names a DIS optical-flow preset."""
    if preset not in DIS_PRESETS:
        raise InputError(f"DIS preset {preset!r} is not one of: {', '.join(DIS_PRESETS)}")


def _gray(frames: np.ndarray) -> list[np.ndarray]:
    """The frames as grayscale: a list of F uint8 [H, W]."""
    return [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in frames]


def _lk_gray(frames: np.ndarray) -> list[np.ndarray]:
    """The frames as Lucas–Kanade reads them, grayscale and blurred by ``LK_BLUR``: a list of F uint8 [H, W]."""
    return [cv2.GaussianBlur(gray, (0, 0), LK_BLUR) for gray in _gray(frames)]


def _lk(
    source: np.ndarray, target: np.ndarray, points: np.ndarray, guess: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One Lucas–Kanade pass from source to target gray frames: positions [N, 2] and found [N] bool.

    Without a guess it is the pyramidal frame-to-frame pass; with one (positions [N, 2]) it is the
    anchored pass, seeded there, with the small window at full resolution.
    """
    start = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 1, 2)  # [N, 1, 2]
    if guess is None:
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            source, target, start, None, winSize=LK_WINDOW, maxLevel=LK_LEVELS, criteria=LK_CRITERIA
        )
    else:
        seed = np.ascontiguousarray(guess, dtype=np.float32).reshape(-1, 1, 2)  # [N, 1, 2]
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            source,
            target,
            start,
            seed,
            winSize=ANCHOR_WINDOW,
            maxLevel=0,
            criteria=LK_CRITERIA,
            flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
        )
    return moved.reshape(-1, 2).astype(np.float64), status.reshape(-1).astype(bool)


def _inside(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Which points [N, 2] lie on the frame (pixel edges included): bool [N]."""
    x, y = points[:, 0], points[:, 1]
    return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


def track_points(frames: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Follow points from frame 0 through the video with pyramidal Lucas–Kanade: positions [F, N, 2], NaN once lost.

    Each step tracks the points from frame k to frame k+1 (21×21 window, 4 pyramid levels): small
    displacements, so the pyramid follows the point even when the total motion is far larger than
    the window, which tracking frame 0 to frame i directly cannot. It then re-tracks them from frame
    0 to frame k+1, seeded with that position, in an 11×11 window at full resolution. Anchoring
    every frame on the first one stops the drift of plain chaining (each step's error adds to the
    next), the seed keeps the direct match from jumping to a look-alike, and the small window weighs
    the point's own neighbourhood: where the motion bends (the warp backbone's smooth flow around a
    point dragged 64 px) a 21×21 window reads the point ~0.5 px short, 11×11 ~0.15 px. The anchored
    position is kept when LK finds it within ``MAX_REFINEMENT`` px of the chained one, else the
    chained one (e.g. where the content changed too much to match frame 0). A point is lost (NaN
    from then on) when LK reports it not found or it leaves the frame; count them with
    ``np.isnan(positions[-1, :, 0]).sum()``.
    """
    _check_frames(frames)
    starts = _check_points(starts, "starts", "[N, 2]")
    if starts.ndim != 2:
        raise InputError(f"starts must have shape [N, 2]; found shape {list(starts.shape)}")
    num_frames, height, width = frames.shape[:3]
    outside = np.flatnonzero(~_inside(starts, height, width))
    if len(outside):
        x, y = starts[outside[0]]
        raise InputError(f"start point {outside[0]} ({x:g}, {y:g}) lies outside the {width}x{height} frame")
    positions = np.full((num_frames, len(starts), 2), np.nan)  # [F, N, 2]
    positions[0] = starts
    if len(starts) == 0:
        return positions
    with single_threaded_opencv():
        gray = _lk_gray(frames)
        for k in range(num_frames - 1):
            alive = np.flatnonzero(~np.isnan(positions[k, :, 0]))  # [M] tracks still followed
            if len(alive) == 0:
                break
            chained, found = _lk(gray[k], gray[k + 1], positions[k, alive])  # [M, 2], [M]
            anchored, anchored_found = _lk(gray[0], gray[k + 1], starts[alive], guess=chained)
            close = anchored_found & (np.linalg.norm(anchored - chained, axis=1) <= MAX_REFINEMENT)
            best = np.where(close[:, None], anchored, chained)  # [M, 2]
            keep = found & _inside(best, height, width)
            positions[k + 1, alive[keep]] = best[keep]
    return positions


def trajectory_epe(frames: np.ndarray, targets: np.ndarray, visible: np.ndarray | None = None) -> dict:
    """End-point error of tracks: track targets[:, 0] through the frames and compare with targets [N, F, 2], in pixels.

    Returns ``mean`` (over frames 1…F-1 and every track while it is followed), ``per_frame`` [F]
    (mean over the tracks followed in that frame; frame 0 is 0 by construction), ``max`` and
    ``lost`` (tracks Lucas–Kanade lost before the last frame; they count only while followed).
    ``visible`` [N, F] bool, if given, says where a track's point can be seen (not behind a nearer
    object): a track counts only until it is first hidden, since no tracker finds a covered point,
    and ``hidden`` counts the tracks that were. A frame where every track is lost has NaN in
    ``per_frame``; ``mean`` and ``max`` are NaN when no track is followed past frame 0.
    """
    _check_frames(frames)
    targets = _check_points(targets, "targets", "[N, F, 2]")
    if targets.ndim != 3 or targets.shape[1] != frames.shape[0]:
        raise InputError(
            f"targets must have shape [N, F, 2] with F={frames.shape[0]} frames like the video; found shape {list(targets.shape)}"
        )
    shown = np.ones(targets.shape[:2], dtype=bool) if visible is None else np.asarray(visible, dtype=bool)  # [N, F]
    if shown.shape != targets.shape[:2]:
        raise InputError(f"visible must have shape [N, F] = {list(targets.shape[:2])}; found shape {list(shown.shape)}")
    seen = np.logical_and.accumulate(shown, axis=1).T  # [F, N] true until a track is first hidden
    positions = track_points(frames, targets[:, 0])  # [F, N, 2]
    errors = np.linalg.norm(positions - targets.transpose(1, 0, 2), axis=-1)  # [F, N], NaN where lost
    errors[~seen] = np.nan
    followed = ~np.isnan(errors)  # [F, N]
    per_frame = [float(row[ok].mean()) if ok.any() else math.nan for row, ok in zip(errors, followed)]
    later = errors[1:][followed[1:]]  # every (frame ≥ 1, track) error while followed
    return {
        "mean": float(later.mean()) if later.size else math.nan,
        "per_frame": per_frame,
        "max": float(later.max()) if later.size else math.nan,
        "lost": int((~followed[-1] & seen[-1]).sum()),
        "hidden": int((~seen[-1]).sum()),
    }


def _check_region(region: np.ndarray, height: int, width: int) -> np.ndarray:
    """Raise unless region is a bool or [0, 1] mask [H, W] with pixels both inside and outside; return it as bool."""
    region = np.asarray(region)
    if region.shape != (height, width):
        raise InputError(f"region must be [H, W] = [{height}, {width}] like the frames; found shape {list(region.shape)}")
    if region.dtype != bool and not (np.issubdtype(region.dtype, np.floating) or np.issubdtype(region.dtype, np.integer)):
        raise InputError(f"region must be bool or numbers in [0, 1]; found dtype {region.dtype}")
    if region.dtype != bool and not (np.isfinite(region).all() and region.min() >= 0 and region.max() <= 1):
        raise InputError(f"region values must lie in [0, 1] (inside where >= 0.5); found {region.min()} to {region.max()}")
    inside = region >= 0.5 if region.dtype != bool else region  # [H, W]
    if not inside.any():
        raise ValueError("the region is empty (no pixel is >= 0.5), so there is no motion inside to compare with")
    if inside.all():
        raise ValueError("the region covers the whole frame, so there is no outside where motion could leak")
    return inside


def motion_magnitude(frames: np.ndarray, preset: str = "medium", still: int = STILL_LEVELS) -> np.ndarray:
    """How far each pixel moved from frame 0, averaged over the later frames: float [H, W] in pixels.

    The motion at frame i is the magnitude of the DIS flow from frame 0 to frame i where the pixel's
    colour changed by more than ``still`` levels (any channel) and zero where it did not: DIS
    smooths flow across object edges onto up to ~16 px of background that did not change, and where
    nothing changed nothing visibly moved.
    """
    _check_frames(frames)
    _check_preset(preset)
    gray = _gray(frames)
    first = frames[0].astype(np.int16)  # [H, W, 3]
    total = np.zeros(frames.shape[1:3], dtype=np.float64)  # [H, W]
    for i in range(1, len(frames)):
        flow = dis_flow(gray[0], gray[i], preset).numpy()  # [2, H, W]
        changed = np.abs(frames[i].astype(np.int16) - first).max(axis=-1) > still  # [H, W]
        total += np.hypot(flow[0], flow[1]) * changed
    return total / (len(frames) - 1)


def brush_leakage(
    frames: np.ndarray,
    region: np.ndarray,
    preset: str = "medium",
    still: int = STILL_LEVELS,
    reached: np.ndarray | None = None,
) -> float:
    """Brush leakage: mean motion outside the region over mean motion inside (0 when the outside holds still).

    ``region`` [H, W] is bool or a soft mask (inside where >= 0.5); motion is :func:`motion_magnitude`.
    ``reached`` [H, W] bool, if given, marks the pixels outside the region that the region's own
    content is asked to move onto (a brushed object dragged out of its brush): they are left out of
    the outside, which is then where nothing should change. With no motion inside, the answer is
    inf when the outside moves and 0.0 when nothing moves. An empty or full region has nothing to
    compare and raises ValueError.
    """
    _check_frames(frames)
    inside = _check_region(region, *frames.shape[1:3])  # [H, W] bool
    outside = ~inside if reached is None else ~inside & ~np.asarray(reached, dtype=bool)  # [H, W]
    if not outside.any():
        raise ValueError("the region and where its content goes cover the whole frame, so there is no outside left")
    motion = motion_magnitude(frames, preset, still)  # [H, W]
    moving_in, moving_out = float(motion[inside].mean()), float(motion[outside].mean())
    if moving_in == 0.0:
        return math.inf if moving_out > 0.0 else 0.0
    return moving_out / moving_in


def warp_back(frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp a frame [H, W, C] by a flow [2, H, W] giving, for each output pixel, the offset to where it is read."""
    height, width = flow.shape[1:]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)  # [H, W] each
    map_x, map_y = xs + flow[0].astype(np.float32), ys + flow[1].astype(np.float32)
    with single_threaded_opencv():
        return cv2.remap(frame, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def temporal_error(frames: np.ndarray, preset: str = "medium") -> float:
    """Temporal consistency: mean absolute error, in [0, 255] levels, of warping each frame onto the next by their flow.

    For each pair (t, t+1) the DIS flow from frame t+1 to frame t says where each pixel of t+1 came
    from in t; frame t, sampled there (bilinear, border repeated), should equal frame t+1. The error
    is averaged over every pixel, channel and pair: 0.0 for a still video, small for content that
    moves coherently, large for flicker or jumps the flow cannot explain.
    """
    _check_frames(frames)
    _check_preset(preset)
    gray = _gray(frames)
    errors = []
    for t in range(len(frames) - 1):
        back = dis_flow(gray[t + 1], gray[t], preset).numpy()  # [2, H, W] offset from each pixel of t+1 to its source in t
        warped = warp_back(frames[t].astype(np.float32), back)  # [H, W, 3]
        errors.append(float(np.abs(warped - frames[t + 1].astype(np.float32)).mean()))
    return float(np.mean(errors))


# Colour bins per channel of the object-colour model of :func:`object_fidelity`.
COLOUR_BINS = 16


def object_colours(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Which colours belong to the object that ``mask`` [H, W] marks in a frame [H, W, 3]: a bool table [16, 16, 16].

    A colour bin is the object's when the object's pixels fall in it at least twice as often, as a
    share of the object, as the other pixels do as a share of theirs (a two-class histogram classifier).
    """
    bins = (frame // (256 // COLOUR_BINS)).reshape(-1, 3).astype(np.int64)  # [H*W, 3]
    index = (bins[:, 0] * COLOUR_BINS + bins[:, 1]) * COLOUR_BINS + bins[:, 2]  # [H*W]
    flat = mask.reshape(-1)
    size = COLOUR_BINS**3
    inside = np.bincount(index[flat], minlength=size) / max(int(flat.sum()), 1)
    outside = np.bincount(index[~flat], minlength=size) / max(int((~flat).sum()), 1)
    return (inside > 2 * outside).reshape(COLOUR_BINS, COLOUR_BINS, COLOUR_BINS)


def _coloured(frame: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The pixels of a frame [H, W, 3] whose colour the table [16, 16, 16] gives to the object: bool [H, W]."""
    bins = frame // (256 // COLOUR_BINS)
    return table[bins[..., 0], bins[..., 1], bins[..., 2]]


def object_fidelity(frames: np.ndarray, mask: np.ndarray, path: np.ndarray, margin: int = 3) -> dict:
    """How whole a dragged object stays and what it leaves behind, frame by frame, for an object moved rigidly along a path.

    ``mask`` [H, W] bool is the object at frame 0 and ``path`` [F, 2] where its track is at each
    frame (the object's expected place is the mask moved by path[i] − path[0], ``margin`` pixels
    wider). The object's colours are learned from frame 0 (:func:`object_colours`). At each frame,
    ``area`` is the object-coloured pixels in the expected place over those of frame 0 (1 when
    whole; less when torn or covered, more when stretched), and ``ghost`` the object-coloured
    pixels along the object's way (the places it has been or will be) but outside its expected
    place, over the object's area, less those that already looked so at frame 0 (0 when nothing is
    left behind; a full copy left at the start gives 1). Returns ``ghost`` and ``tear``
    (|area − 1|) at the last frame, and both per frame.
    """
    _check_frames(frames)
    path = _check_points(path, "path", "[F, 2]")
    if path.shape != (frames.shape[0], 2):
        raise InputError(f"path must have shape [F, 2] with F={frames.shape[0]}; found shape {list(path.shape)}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != frames.shape[1:3] or not mask.any():
        raise InputError(f"mask must be a non-empty bool [H, W] = {list(frames.shape[1:3])}; found shape {list(mask.shape)}")
    table = object_colours(frames[0], mask)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    height, width = mask.shape
    places = []  # [F] bool [H, W]: where the object should be, margin included
    for position in path:
        dx, dy = position - path[0]
        shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
        moved = cv2.warpAffine(mask.astype(np.uint8), shift, (width, height), flags=cv2.INTER_NEAREST)
        places.append(cv2.dilate(moved, kernel) > 0)
    way = np.logical_or.reduce(places)  # [H, W]
    first = _coloured(frames[0], table)  # [H, W]
    baseline = max(int((first & places[0]).sum()), 1)
    area = int(mask.sum())
    ghosts, areas = [], []
    for frame, place in zip(frames, places):
        coloured = _coloured(frame, table)  # [H, W]
        areas.append(int((coloured & place).sum()) / baseline)
        stray = way & ~place  # [H, W] where the object should not be now
        already = int((first & stray & ~places[0]).sum())  # background there that looked like the object at frame 0
        ghosts.append(max(0, int((coloured & stray).sum()) - already) / area)
    return {"ghost": ghosts[-1], "tear": abs(areas[-1] - 1.0), "per_frame_ghost": ghosts, "per_frame_area": areas}
