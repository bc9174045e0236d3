"""Reading released weight files safely, and checking their keys and shapes against a module's, one sentence per mismatch.

Safetensors files are read with safetensors; pickle-based ones (``.pth.tar``, ``.bin``, ``.pt``,
``.pth``, ``.ckpt``) with ``torch.load(weights_only=True)``, which builds tensors and plain
containers only and runs no code from the file. Shapes alone are read without the tensors' data
(the safetensors header; the pickle's tensors on the meta device), so a many-gigabyte file is
checked in a moment.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from motionforge.core.errors import InputError

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth.tar", ".pth", ".pt", ".bin", ".ckpt", ".tar")
Shapes = dict[str, tuple[int, ...]]


def weights_path(value: str | Path, key: str, what: str) -> Path:
    """The existing weights file a key names (a safetensors or pickle-based file); one sentence when it is missing or not one."""
    path = Path(str(value)).expanduser()
    if path.is_dir():
        raise InputError(f"{key}={value} is a folder; pass the file of {what} itself")
    if not path.is_file():
        raise InputError(f"{key}={value} does not exist; pass the local file of {what}")
    if not path.name.endswith(SAFE_SUFFIXES + PICKLE_SUFFIXES):
        raise InputError(f"{key}={value} is not a weights file (.safetensors, .pth.tar, .pth, .pt, .bin or .ckpt) of {what}")
    return path.resolve()


def _load_pickle(path: Path, key: str, map_location: str) -> object:
    """A pickle-based file's content through torch's weights-only unpickler; one sentence for a file it refuses."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=map_location != "meta" and _is_zip(path))
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():  # not a class or function the file asks for: bytes that are not a pickle
            raise InputError(f"{key}={path} is not a readable torch file (its pickle is malformed)") from exc
        raise InputError(
            f"{key}={path} holds more than tensors and plain containers (loading it would run code from the file, which "
            "motionforge never does); save its state dict alone with torch.save, or as safetensors"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(f"{key}={path} is not a readable torch file ({reason})") from exc


def _is_zip(path: Path) -> bool:
    """Whether a torch file is in the zip format (the only one that can be memory-mapped)."""
    return zipfile.is_zipfile(path)


def _state_of(content: object, path: Path, key: str) -> dict[str, torch.Tensor]:
    """The state dict inside a loaded file: the dict itself, or its ``state_dict``/``module``/``model`` entry (training checkpoints)."""
    if isinstance(content, Mapping):
        for inner in ("state_dict", "module", "model"):
            if isinstance(content.get(inner), Mapping) and any(isinstance(v, torch.Tensor) for v in content[inner].values()):
                content = content[inner]
                break
        tensors = {str(k): v for k, v in content.items() if isinstance(v, torch.Tensor)}  # type: ignore[union-attr]
        if tensors:
            return tensors
    raise InputError(f"{key}={path} holds no tensors by name (no state dict); is it a weights file?")


def read_state_dict(path: Path, key: str) -> dict[str, torch.Tensor]:
    """The tensors of a weights file by name, on the CPU, without running any code from it."""
    if path.name.endswith(SAFE_SUFFIXES):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise InputError(f"{key}={path} is not a readable safetensors file ({exc})") from exc
    return _state_of(_load_pickle(path, key, "cpu"), path, key)


def read_shapes(path: Path, key: str) -> Shapes:
    """Every tensor's shape in a weights file by name, read without the tensors' data (safetensors header or meta tensors)."""
    if path.name.endswith(SAFE_SUFFIXES):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        except (SafetensorError, OSError) as exc:
            raise InputError(f"{key}={path} is not a readable safetensors file ({exc})") from exc
    return {name: tuple(tensor.shape) for name, tensor in _state_of(_load_pickle(path, key, "meta"), path, key).items()}


def strip_prefix(names: Mapping[str, object], prefix: str) -> dict[str, object]:
    """The entries with ``prefix`` taken off the names that carry it (e.g. DataParallel's ``module.``)."""
    return {name.removeprefix(prefix): value for name, value in names.items()}


def shapes_of(state: Mapping[str, torch.Tensor]) -> Shapes:
    """The shape of each tensor of a state dict by name."""
    return {name: tuple(tensor.shape) for name, tensor in state.items()}


def module_shapes(build: Callable[[], torch.nn.Module]) -> Shapes:
    """The state-dict shapes of a module built on the meta device (no memory, even at full size)."""
    with torch.device("meta"):
        module = build()
    return shapes_of(module.state_dict())


def mismatch(found: Shapes, expected: Shapes, optional: Callable[[str], bool] = lambda name: False) -> str | None:
    """The first way found keys and shapes differ from the expected, as a phrase (None when they match).

    ``optional`` names keys the file may lack (e.g. BatchNorm's ``num_batches_tracked``).
    """
    for name, shape in expected.items():
        if name not in found:
            if not optional(name):
                return f"it lacks {name} (expected shape {list(shape)})"
        elif tuple(found[name]) != tuple(shape):
            return f"{name} has shape {list(found[name])}, expected {list(shape)}"
    extra = [name for name in found if name not in expected]
    if extra:
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        return f"it has {extra[0]}{more}, which the module does not have"
    return None


def check_shapes(
    found: Shapes, expected: Shapes, path: Path, key: str, what: str, optional: Callable[[str], bool] = lambda name: False
) -> None:
    """Refuse, in one sentence naming the first key that does not fit, a file whose keys and shapes are not the module's."""
    problem = mismatch(found, expected, optional)
    if problem:
        raise InputError(f"{key}={path} does not hold {what}: {problem}")


def _required(name: str) -> bool:
    """No key is optional (the default of :class:`WeightKind`)."""
    return False


@dataclass(frozen=True)
class WeightKind:
    """A released module that ``motionforge weights check`` recognises: how to read a path's shapes, and the module's own.

    ``read`` gives a file's or folder's tensor shapes in the module's own key names (a prefix
    stripped, old names mapped), or None when the path is not in this kind's layout at all (a file
    where a folder is expected, another suffix); ``expected`` builds the full-size module on the
    meta device (:func:`module_shapes`); ``optional`` names keys a released file may lack.
    """

    name: str  # short name, e.g. "cmp", "mofa_traj", "mofa_ldmk", "motion_i2v"
    what: str  # one phrase, e.g. "CMP, MOFA-Video's sparse-to-dense flow network"
    read: Callable[[Path], Shapes | None]
    expected: Callable[[], Shapes]
    optional: Callable[[str], bool] = _required
