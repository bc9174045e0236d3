"""Wan-Move's tracks: ``X_tracks.npy`` (T, N, 2) in image pixels and ``X_visibility.npy`` (T, N) bool beside it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from einops import rearrange

from motionforge.core.errors import InputError
from motionforge.io.tracks.trackset import TrackSet, check_array
from motionforge.motion.values import read_numeric_npy

LAYOUT = "tracks (T, N, 2) as (x, y) pixels"
VIS_LAYOUT = "visibility (T, N) of true/false or 0/1"


def visibility_path(path: str | Path) -> Path:
    """Where Wan-Move keeps a track file's visibility: ``name_tracks.npy`` → ``name_visibility.npy`` (else ``name_visibility.npy``)."""
    path = Path(path)
    stem = path.stem.removesuffix("_tracks")
    return path.with_name(f"{stem}_visibility.npy")


def read_wan_move(path: str | Path, *, visibility: str | Path | None = None, **_: Any) -> TrackSet:
    """Read Wan-Move tracks and their visibility (the sibling file, or the one given; all visible when there is none)."""
    array = read_numeric_npy(path, f"Wan-Move track file {path}", LAYOUT)
    if array.ndim != 3 or array.shape[-1] != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise InputError(f"Wan-Move track file {path} has shape {tuple(array.shape)}; it must hold {LAYOUT}")
    tracks = check_array(array, str(path), "Wan-Move track file")
    seen_path = Path(visibility) if visibility is not None else visibility_path(path)
    if visibility is not None and not seen_path.is_file():
        raise InputError(f"visibility file not found: {seen_path}; give the .npy saved with the tracks, or leave it unset")
    if seen_path.is_file():
        seen = _read_visibility(seen_path)
        if seen is None or seen.shape != array.shape[:2]:
            shape = None if seen is None else tuple(seen.shape)
            raise InputError(
                f"Wan-Move visibility file {seen_path} has shape {shape} but its tracks {path} have {tuple(array.shape[:2])}; "
                f"it must hold {VIS_LAYOUT}, one value per track point"
            )
        if not np.isin(seen, (0, 1)).all():
            raise InputError(f"Wan-Move visibility file {seen_path} holds values other than 0 and 1; it must hold {VIS_LAYOUT}")
        visible = rearrange(seen.astype(bool), "t n -> n t")
    else:
        visible = np.ones(array.shape[1::-1], dtype=bool)  # [N, T]
    return TrackSet(rearrange(tracks, "t n c -> n t c"), visible, None)


def _read_visibility(path: Path) -> np.ndarray:
    """A visibility array of bools or numbers from a .npy file, without unpickling."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(
            f"Wan-Move visibility file {path} is not a readable .npy array; save {VIS_LAYOUT} with numpy.save"
        ) from exc
    if not isinstance(array, np.ndarray) or not (
        array.dtype == bool or np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise InputError(
            f"Wan-Move visibility file {path} does not hold one array of booleans or numbers; save {VIS_LAYOUT} with numpy.save"
        )
    return array


def write_wan_move(tracks: TrackSet, target: Callable[[str], Path], name: str) -> None:
    """Write ``name`` (T, N, 2) float32 and its ``*_visibility.npy`` (T, N) bool beside it (strength applied)."""
    flat = tracks.baked().per_frame()
    np.save(target(name), rearrange(flat.tracks, "n t c -> t n c").astype(np.float32))
    np.save(target(visibility_path(name).name), rearrange(flat.visible, "n t -> t n"))
