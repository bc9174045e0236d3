"""Checking values users write in configs and control files: numbers, point lists, canvas sizes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from motionforge.core.errors import InputError


def plain(value: Any) -> Any:
    """OmegaConf containers → plain Python lists and dicts; anything else as it is."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def is_number(value: Any) -> bool:
    """True for a finite real number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_point(value: Any) -> bool:
    """True for one [x, y] pair of finite numbers."""
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value)


def is_point_list(value: Any) -> bool:
    """True for a non-empty list of [x, y] number pairs."""
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(is_point(p) for p in value)


def canvas_size(value: Any, where: str) -> tuple[float, float] | None:
    """A canvas size [W, H] as given by the user, checked; ``where`` names its source in the error."""
    if value is None:
        return None
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) and v > 0 for v in value)):
        raise InputError(f"the canvas size in {where} must be [W, H] with two positive numbers; found {value!r}")
    return float(value[0]), float(value[1])


def read_numeric_npy(path: str | Path, what: str, layout: str) -> np.ndarray:
    """Load one numeric array from a .npy file without unpickling; ``what`` names the file, ``layout`` what it must hold."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{what} is not a readable .npy array ({reason}); save {layout} with numpy.save") from exc
    if not isinstance(array, np.ndarray):
        raise InputError(f"{what} is an .npz archive, not one array; save {layout} with numpy.save")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InputError(f"{what} holds {array.dtype} values; it must be a numeric array: {layout}")
    return array
