"""ATI's track files (``.pth``): a pickled byte string of an ``.npz`` whose ``array`` is (N, 121, 1, 3) × 8.

ATI's trajectory editor saves each track as 121 frames of (x, y, visible) in image pixels,
multiplied by 8 (its quantisation), padded with hidden zeros after the drawn points. motionforge
writes the same, adding two keys ATI ignores: ``frames`` (how many frames are the set's own, so a
round trip gives them back) and ``size`` (the canvas).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionforge.core.errors import InputError
from motionforge.io.tracks.trackset import TrackSet, check_array

FRAMES = 121  # ATI's fixed track length (24 fps frames)
QUANT = 8.0  # ATI stores coordinates multiplied by this
LAYOUT = "a byte string of an .npz with 'array' (N, 121, 1, 3): x, y and visible (0 or 1), all times 8"


def _npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an ATI track file, unpickled safely (weights_only) and read without pickle."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"ATI track file {path} cannot be read safely ({reason[:120]}); it must be {LAYOUT}") from exc
    if not isinstance(raw, (bytes, bytearray)):
        raise InputError(f"ATI track file {path} holds a {type(raw).__name__}, not a byte string; it must be {LAYOUT}")
    try:
        with np.load(io.BytesIO(bytes(raw)), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, AttributeError) as exc:
        raise InputError(f"ATI track file {path} does not hold an .npz archive; it must be {LAYOUT}") from exc


def read_ati(path: str | Path, **_: Any) -> TrackSet:
    """Read an ATI track file: N tracks of 121 frames (or the frames motionforge wrote), hidden padding held at the last seen point."""
    arrays = _npz(path)
    array = arrays.get("array")
    if array is None or array.ndim != 4 or array.shape[2] != 1 or array.shape[3] not in (3, 4):
        shape = None if array is None else tuple(array.shape)
        raise InputError(f"ATI track file {path} has an array of shape {shape}; it must be {LAYOUT}")
    if array.shape[1] != FRAMES and array.shape[0] == FRAMES:
        array = array.transpose(1, 0, 2, 3)  # (121, N, 1, C) → (N, 121, 1, C), as ATI accepts both
    if array.shape[1] != FRAMES:
        raise InputError(f"ATI track file {path} has tracks of {array.shape[1]} frames; ATI's tracks have {FRAMES}")
    values = check_array(array[:, :, 0, :3], str(path), "ATI track file") / QUANT  # [N, 121, 3]
    frames = arrays.get("frames", np.asarray(FRAMES))
    if frames.size != 1 or not np.issubdtype(frames.dtype, np.integer):
        raise InputError(
            f"ATI track file {path} has a 'frames' entry of {frames.tolist()}; it must be one whole number, 1 to {FRAMES}"
        )
    frames = int(frames.reshape(()))
    if not 1 <= frames <= FRAMES:
        raise InputError(f"ATI track file {path} says it holds {frames} frames; it must be 1 to {FRAMES}")
    tracks, visible = values[:, :frames, :2].copy(), values[:, :frames, 2] > 0.5
    for n in range(len(tracks)):  # the editor pads with hidden zeros: hold the last seen point there instead
        seen = np.flatnonzero(visible[n])
        if len(seen):
            tracks[n, seen[-1] + 1 :] = np.where(
                (tracks[n, seen[-1] + 1 :] == 0).all(axis=1, keepdims=True), tracks[n, seen[-1]], tracks[n, seen[-1] + 1 :]
            )
    size = arrays.get("size")
    canvas = None
    if size is not None:
        size = check_array(size, str(path), "ATI track file")
        if size.shape != (2,) or not (size > 0).all():
            raise InputError(f"ATI track file {path} has a 'size' of {size.tolist()}; it must be [W, H], two positive numbers")
        canvas = (float(size[0]), float(size[1]))
    return TrackSet(tracks, visible, canvas)


def write_ati(tracks: TrackSet, target: Callable[[str], Path], name: str) -> None:
    """Write an ATI track file: each track's frames padded to 121 with its last point hidden (strength applied)."""
    flat = tracks.baked().per_frame()
    count = flat.num_points
    if count > FRAMES:
        raise InputError(f"ATI's track files hold at most {FRAMES} frames and these tracks have {count}; shorten them first")
    array = np.zeros((flat.num_tracks, FRAMES, 1, 3), dtype=np.float32)
    array[:, :count, 0, :2] = flat.tracks * QUANT
    array[:, count:, 0, :2] = flat.tracks[:, -1:] * QUANT
    array[:, :count, 0, 2] = flat.visible * QUANT  # ATI divides all three channels by its quantisation
    arrays = {"array": array, "frames": np.asarray(count, dtype=np.int64)}
    if flat.canvas is not None:
        arrays["size"] = np.asarray(flat.canvas, dtype=np.float64)
    torch.save(_npz_bytes(arrays), target(name))


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed .npz archive of the arrays with fixed timestamps (numpy's own stamps the time: the same tracks, other bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.require(value, requirements="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()
