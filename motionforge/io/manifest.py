"""Writing the run's manifest (and any record) as UTF-8 JSON with sorted keys, the same bytes for the same data."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import torch


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write data as strict UTF-8 JSON (NaN and infinities become null), 2-space indent, sorted keys, a trailing newline."""
    text = json.dumps(_strict(data), indent=2, sort_keys=True, ensure_ascii=False, default=_json_default, allow_nan=False)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text + "\n")


def _strict(value: Any) -> Any:
    """The value with every NaN or infinite float (numpy's and torch's too) replaced by None, for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)):
        return _strict(_json_default(value))
    return value


def _json_default(value: Any) -> Any:
    """Serialise the non-JSON values a manifest meets: paths, numpy scalars and arrays, tensors."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON: {value!r}")
