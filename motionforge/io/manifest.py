"""Writing the run's manifest (and any record) as UTF-8 JSON with sorted keys, the same bytes for the same data."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write data as UTF-8 JSON with 2-space indent, sorted keys and a trailing newline."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text + "\n")


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
