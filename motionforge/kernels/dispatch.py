"""Backend selection for the kernels: the ``backend=`` argument, then ``MOTIONFORGE_KERNELS``, then automatic.

Automatic selection runs Triton on CUDA (when Triton imports) and the PyTorch reference everywhere
else. A backend that is asked for but cannot run here — Triton on a CPU tensor without
``TRITON_INTERPRET=1``, xformers where it does not import or off CUDA, a backend an operation
does not have — raises ``KernelError``; there is never a silent fallback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from functools import cache

import torch

from motionforge.core.errors import KernelError

BACKENDS: tuple[str, ...] = ("reference", "triton", "xformers")
ENV_VAR = "MOTIONFORGE_KERNELS"

# op → backend → "module:function", imported on first use (Triton and xformers load only when chosen).
IMPLEMENTATIONS: dict[str, dict[str, str]] = {
    "splat": {
        "reference": "motionforge.kernels.reference:splat",
        "triton": "motionforge.kernels.triton_splat:splat",
    },
    "warp": {
        "reference": "motionforge.kernels.reference:warp",
        "triton": "motionforge.kernels.triton_warp:warp",
    },
    "temporal_attention": {
        "reference": "motionforge.kernels.reference:temporal_attention",
        "triton": "motionforge.kernels.triton_attention:temporal_attention",
        "xformers": "motionforge.kernels.xformers_attention:temporal_attention",
    },
}

AUTOMATIC_BY_DEVICE_TYPE: dict[str, str] = {"cuda": "triton"}


def _quoted(names: tuple[str, ...]) -> str:
    """Format backend names as a readable list for error messages."""
    return ", ".join(repr(name) for name in names)


def _requested(backend: str | None) -> tuple[str | None, str]:
    """Return the explicitly requested backend (argument first, then env var) and where it came from."""
    if backend is not None:
        return backend, f"backend={backend!r}"
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env, f"{ENV_VAR}={from_env}"
    return None, "automatic selection"


@cache
def _importable(module: str) -> bool:
    """True when a top-level package can be imported here."""
    return importlib.util.find_spec(module) is not None


def triton_interpreting() -> bool:
    """True when Triton's interpreter is on (``TRITON_INTERPRET=1``): kernels then run on CPU tensors, for tests."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


def why_not_runnable(backend: str, device: torch.device) -> str | None:
    """Why a backend cannot run on this device (a clause for an error message), or None when it can."""
    device = torch.device(device)
    if backend == "triton":
        if not _importable("triton"):
            return "Triton is not installed (it ships with PyTorch's CUDA builds on Linux)"
        if device.type != "cuda" and not triton_interpreting():
            return f"the Triton kernels run on CUDA devices, not {device.type} (set TRITON_INTERPRET=1 to run them slowly on the CPU for testing)"
    if backend == "xformers":
        if not _importable("xformers"):
            return 'xformers is not installed (pip install "motionforge[xformers]")'
        if device.type != "cuda":
            return f"xformers runs on CUDA devices only, not {device.type}"
    return None


def automatic_backend(op: str, device: torch.device) -> str:
    """The backend used when nothing was requested: Triton on CUDA where it can run, otherwise the reference."""
    choice = AUTOMATIC_BY_DEVICE_TYPE.get(torch.device(device).type, "reference")
    if choice not in IMPLEMENTATIONS[op] or why_not_runnable(choice, device) is not None:
        return "reference"
    return choice


def resolve_backend(op: str, backend: str | None, device: torch.device) -> str:
    """Return the backend that runs ``op`` on ``device``: the argument, else ``MOTIONFORGE_KERNELS``, else automatic.

    A requested backend that is unknown, not implemented for ``op``, or unable to run on
    ``device`` raises ``KernelError``.
    """
    if op not in IMPLEMENTATIONS:
        raise ValueError(f"Unknown kernel operation {op!r}; expected one of {_quoted(tuple(IMPLEMENTATIONS))}.")
    name, source = _requested(backend)
    if name is None:
        return automatic_backend(op, device)
    if name not in BACKENDS:
        raise KernelError(f"Unknown kernel backend {name!r} (from {source}); choose one of {_quoted(BACKENDS)}.")
    if name not in IMPLEMENTATIONS[op]:
        raise KernelError(
            f"Kernel backend {name!r} (from {source}) has no {op}; it has {_quoted(tuple(IMPLEMENTATIONS[op]))}; "
            f"use backend='reference' (or unset {ENV_VAR})."
        )
    reason = why_not_runnable(name, device)
    if reason is not None:
        raise KernelError(
            f"Kernel backend {name!r} (from {source}) cannot run {op} here: {reason}; use backend='reference' (or unset {ENV_VAR})."
        )
    return name


@cache
def _load(target: str) -> Callable[..., torch.Tensor]:
    """Import the function a "module:function" string names."""
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def kernel_for(op: str, backend: str | None, device: torch.device, args: tuple = ()) -> Callable[..., torch.Tensor]:
    """Return the implementation of ``op`` chosen by ``resolve_backend`` for these arguments.

    When nothing was requested and the automatic choice's module has a ``supports(*args)`` that
    says no (a shape its kernel does not cover), the reference runs instead: automatic selection
    picks what can run. A backend that was asked for is never replaced.
    """
    name = resolve_backend(op, backend, device)
    function = _load(IMPLEMENTATIONS[op][name])
    if name != "reference" and _requested(backend)[0] is None:
        supports = getattr(importlib.import_module(function.__module__), "supports", None)
        if supports is not None and not supports(*args):
            return _load(IMPLEMENTATIONS[op]["reference"])
    return function
