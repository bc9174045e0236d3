"""Backend selection for the flow kernels: argument, then ``MOTIONFORGE_KERNELS``, then automatic."""

from __future__ import annotations

import os
from typing import Callable

import torch

from motionforge.core.errors import KernelError
from motionforge.kernels import reference

BACKENDS: tuple[str, ...] = ("reference", "triton", "xformers")
ENV_VAR = "MOTIONFORGE_KERNELS"

IMPLEMENTATIONS: dict[str, dict[str, Callable[..., torch.Tensor]]] = {
    "splat": {"reference": reference.splat},
    "warp": {"reference": reference.warp},
}

AUTOMATIC_BY_DEVICE_TYPE: dict[str, str] = {}


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


def automatic_backend(op: str, device: torch.device) -> str:
    """Pick the backend used when nothing was requested.

    The choice is looked up by device type in ``AUTOMATIC_BY_DEVICE_TYPE`` and defaults to
    ``"reference"``; enabling the Triton kernels on CUDA is the single entry ``"cuda": "triton"``
    in that table, provided ``IMPLEMENTATIONS`` lists a Triton kernel for the operation.
    """
    choice = AUTOMATIC_BY_DEVICE_TYPE.get(torch.device(device).type, "reference")
    return choice if choice in IMPLEMENTATIONS[op] else "reference"


def resolve_backend(op: str, backend: str | None, device: torch.device) -> str:
    """Return the backend that runs ``op`` on ``device``.

    The ``backend`` argument wins; otherwise the ``MOTIONFORGE_KERNELS`` environment variable,
    read at call time, is used; otherwise ``automatic_backend`` chooses (``"reference"`` on every
    device in this version). A requested backend that is unknown, or known but not implemented
    for ``op``, raises ``KernelError``; there is never a silent fallback.
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
            f"Kernel backend {name!r} (from {source}) is not available for {op} in this version; "
            f"use backend='reference' (or unset {ENV_VAR})."
        )
    return name


def kernel_for(op: str, backend: str | None, device: torch.device) -> Callable[..., torch.Tensor]:
    """Return the implementation of ``op`` chosen by ``resolve_backend``."""
    return IMPLEMENTATIONS[op][resolve_backend(op, backend, device)]
