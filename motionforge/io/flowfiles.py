"""Reading and writing flow files: NumPy ``.npy`` stacks and Middlebury ``.flo`` fields.

Every reader checks what it reads and raises :class:`InputError` with one sentence naming the file,
the problem and the fix. Flows come back as float32 arrays [T, 2, h, w] (x then y, in the raster's
pixels); what the T fields mean (f_{0→i} or f_{k→k+1}) is for the caller to say.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from einops import rearrange

from motionforge.core.errors import InputError
from motionforge.motion.values import read_numeric_npy

# The first four bytes of a Middlebury .flo file, read as a little-endian float32.
FLO_MAGIC = 202021.25
# Middlebury marks pixels whose flow is unknown with values above this.
FLO_UNKNOWN = 1e9
_HEADER_BYTES = 12
_EXPECTED = "[T, 2, h, w] (T fields of x then y displacement, h×w pixels)"


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write one flow field [h, w, 2] (x then y) as a Middlebury .flo file."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"a .flo field must have shape [h, w, 2], got {list(flow.shape)}")
    height, width = flow.shape[:2]
    with open(path, "wb") as handle:
        handle.write(np.array([FLO_MAGIC], dtype="<f4").tobytes())
        handle.write(np.array([width, height], dtype="<i4").tobytes())
        handle.write(np.ascontiguousarray(flow, dtype="<f4").tobytes())


def read_flo(path: str | Path) -> np.ndarray:
    """Read one Middlebury .flo file, checked: float32 [h, w, 2] (x then y)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read flow file {path} ({exc.strerror or exc}); check that it exists and is readable") from exc
    if len(data) < _HEADER_BYTES:
        raise InputError(f"flow file {path} is truncated: it has {len(data)} bytes, fewer than a .flo header's {_HEADER_BYTES}")
    magic = float(np.frombuffer(data, dtype="<f4", count=1)[0])
    if magic != FLO_MAGIC:
        raise InputError(
            f"flow file {path} is not a Middlebury .flo file (its magic number is {magic:g}, not {FLO_MAGIC}); "
            "write it with motionforge.io.flowfiles.write_flo"
        )
    width, height = (int(v) for v in np.frombuffer(data, dtype="<i4", count=2, offset=4))
    if width <= 0 or height <= 0:
        raise InputError(f"flow file {path} has a corrupt header: it gives a size of {width}x{height} pixels")
    expected = width * height * 2 * 4
    if len(data) - _HEADER_BYTES != expected:
        raise InputError(
            f"flow file {path} is truncated or corrupt: its header says {width}x{height}, which takes "
            f"{expected} bytes of flow, but it holds {len(data) - _HEADER_BYTES}"
        )
    flow = np.frombuffer(data, dtype="<f4", offset=_HEADER_BYTES).reshape(height, width, 2)  # [h, w, 2]
    _check_finite(flow, f"flow file {path}")
    unknown = int((np.abs(flow) > FLO_UNKNOWN).any(axis=-1).sum())
    if unknown:
        raise InputError(
            f"flow file {path} holds unknown-flow values (above {FLO_UNKNOWN:g}, Middlebury's 'unknown' flag) at "
            f"{unknown} pixels; fill them in (e.g. by interpolating their neighbours) before using it as a control"
        )
    return flow.astype(np.float32)


def read_flo_folder(folder: str | Path) -> np.ndarray:
    """Read every .flo file of a folder, sorted by name, as one stack: float32 [T, 2, h, w]."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".flo" and p.is_file())
    if not files:
        raise InputError(
            f"flow folder {folder} holds no .flo files; put one Middlebury .flo file per frame in it, or pass a .npy file"
        )
    fields = []
    for file in files:
        flow = read_flo(file)  # [h, w, 2]
        if fields and flow.shape != fields[0].shape:
            raise InputError(
                f"flow file {file} is {flow.shape[1]}x{flow.shape[0]} but {files[0].name} is "
                f"{fields[0].shape[1]}x{fields[0].shape[0]}; every .flo file in {folder} must have the same size"
            )
        fields.append(flow)
    return rearrange(np.stack(fields), "t h w c -> t c h w")  # [T, 2, h, w]


def read_npy_flow(path: str | Path) -> np.ndarray:
    """Read a .npy stack of flow fields, checked: float32 [T, 2, h, w]."""
    path = Path(path)
    flow = read_numeric_npy(path, f"flow file {path}", f"a float array {_EXPECTED}")
    _check_shape(flow.shape, f"flow file {path}")
    _check_finite(flow, f"flow file {path}")
    return flow.astype(np.float32)


def read_flow(path: str | Path) -> np.ndarray:
    """Read flow fields from a .npy file, a folder of .flo files, or a single .flo file: float32 [T, 2, h, w]."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"flow file not found: {path}; pass adapters.dense_flow.file=/path/to/flow.npy or a folder of .flo files"
        )
    if path.is_dir():
        return read_flo_folder(path)
    if path.suffix.lower() == ".flo":
        return rearrange(read_flo(path), "h w c -> 1 c h w")  # [1, 2, h, w]
    if path.suffix.lower() == ".npy":
        return read_npy_flow(path)
    raise InputError(
        f"flow file {path} is neither a .npy file nor a folder of .flo files; save the flow with numpy.save as {_EXPECTED}"
    )


def _check_shape(shape: tuple[int, ...], what: str) -> None:
    """Raise unless a flow stack's shape is [T, 2, h, w] with T ≥ 1 and h, w ≥ 1, saying how to fix common mix-ups."""
    found = "[" + ", ".join(str(n) for n in shape) + "]"
    if len(shape) == 4 and shape[1] == 2 and min(shape) > 0:
        return
    if len(shape) == 4 and shape[-1] == 2 and shape[1] != 2:
        fix = "it looks like [T, h, w, 2]: transpose it to [T, 2, h, w] with flow.transpose(0, 3, 1, 2)"
    elif len(shape) == 3 and shape[0] == 2:
        fix = "it looks like one field [2, h, w]: add a frame axis with flow[None]"
    elif len(shape) == 4 and shape[0] == 0:
        fix = "it holds no fields"
    else:
        fix = "save the fields stacked in that layout"
    raise InputError(f"{what} has shape {found}, not {_EXPECTED}; {fix}")


def _check_finite(flow: np.ndarray, what: str) -> None:
    """Raise if a flow holds NaN or infinite values, saying how many."""
    bad = ~np.isfinite(flow)
    if bad.any():
        raise InputError(f"{what} holds {int(bad.sum())} NaN or infinite values; replace them with finite displacements")
