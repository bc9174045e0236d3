"""How ``resolve_backend`` and the public kernels pick a backend."""

from __future__ import annotations

import pytest
import torch

from motionforge.core.errors import KernelError, MotionforgeError
from motionforge.kernels import BACKENDS, resolve_backend, splat, warp

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test with the environment variable unset."""
    monkeypatch.delenv("MOTIONFORGE_KERNELS", raising=False)


def test_backends_are_listed_in_order() -> None:
    assert BACKENDS == ("reference", "triton", "xformers")


@pytest.mark.parametrize("op", ["splat", "warp"])
def test_automatic_choice_on_cpu_is_reference(op: str) -> None:
    assert resolve_backend(op, None, CPU) == "reference"


def test_automatic_choice_is_reference_on_cuda_in_this_version() -> None:
    assert resolve_backend("splat", None, torch.device("cuda")) == "reference"


def test_env_var_reference_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "reference")
    assert resolve_backend("warp", None, CPU) == "reference"


def test_empty_env_var_means_automatic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "")
    assert resolve_backend("splat", None, CPU) == "reference"


@pytest.mark.parametrize("name", ["triton", "xformers"])
def test_argument_naming_an_unimplemented_backend_raises(name: str) -> None:
    with pytest.raises(KernelError, match="reference") as info:
        resolve_backend("splat", name, CPU)
    assert name in str(info.value) and "splat" in str(info.value)
    assert isinstance(info.value, MotionforgeError)


def test_env_var_naming_an_unimplemented_backend_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "triton")
    with pytest.raises(KernelError, match="backend='reference'.*MOTIONFORGE_KERNELS"):
        resolve_backend("warp", None, CPU)


def test_public_kernels_never_fall_back_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    x, flow = torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2)
    with pytest.raises(KernelError, match="reference"):
        splat(x, flow, backend="triton")
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "triton")
    with pytest.raises(KernelError, match="reference"):
        warp(x, flow)


def test_unknown_name_lists_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KernelError, match="'reference', 'triton', 'xformers'"):
        resolve_backend("splat", "cuda", CPU)
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "fast")
    with pytest.raises(KernelError, match="'fast'.*'reference', 'triton', 'xformers'"):
        resolve_backend("splat", None, CPU)


def test_argument_overrides_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "triton")
    assert resolve_backend("splat", "reference", CPU) == "reference"
    x, flow = torch.ones(1, 1, 2, 2), torch.zeros(1, 2, 2, 2)
    assert torch.equal(warp(x, flow, backend="reference"), x)


def test_env_var_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("splat", None, CPU) == "reference"
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "xformers")
    with pytest.raises(KernelError):
        resolve_backend("splat", None, CPU)
