"""How ``resolve_backend`` and the public kernels pick a backend: never a silent fallback."""

from __future__ import annotations

import pytest
import torch

from motionforge.core.errors import KernelError, MotionforgeError
from motionforge.kernels import BACKENDS, resolve_backend, splat, temporal_attention, warp
from motionforge.kernels.dispatch import why_not_runnable

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
OPS = ["splat", "warp", "temporal_attention"]


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test with the environment variable unset and Triton's interpreter off."""
    monkeypatch.delenv("MOTIONFORGE_KERNELS", raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


def test_backends_are_listed_in_order() -> None:
    assert BACKENDS == ("reference", "triton", "xformers")


@pytest.mark.parametrize("op", OPS)
def test_automatic_choice_is_the_reference_on_cpu_and_triton_on_cuda(op: str) -> None:
    assert resolve_backend(op, None, CPU) == "reference"
    assert resolve_backend(op, None, CUDA) == "triton"


def test_automatic_choice_on_cpu_stays_the_reference_even_under_the_interpreter(monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert resolve_backend("splat", None, CPU) == "reference"


def test_env_var_reference_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "reference")
    assert resolve_backend("warp", None, CUDA) == "reference"


def test_empty_env_var_means_automatic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "")
    assert resolve_backend("splat", None, CPU) == "reference"


@pytest.mark.parametrize("op", OPS)
def test_forcing_triton_on_a_cpu_without_the_interpreter_says_how_to_fix_it(op: str) -> None:
    with pytest.raises(KernelError, match="run on CUDA devices, not cpu.*TRITON_INTERPRET=1.*backend='reference'") as info:
        resolve_backend(op, "triton", CPU)
    assert isinstance(info.value, MotionforgeError)


def test_forcing_triton_on_a_cpu_with_the_interpreter_is_allowed(monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert resolve_backend("warp", "triton", CPU) == "triton"


def test_xformers_is_for_attention_only_and_never_on_a_cpu() -> None:
    with pytest.raises(KernelError, match="'xformers'.*has no splat; it has 'reference', 'triton'"):
        resolve_backend("splat", "xformers", CUDA)
    with pytest.raises(KernelError, match="xformers"):
        resolve_backend("temporal_attention", "xformers", CPU)
    assert why_not_runnable("xformers", CPU) is not None


def test_env_var_asking_for_triton_on_a_cpu_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "triton")
    with pytest.raises(KernelError, match="from MOTIONFORGE_KERNELS=triton.*unset MOTIONFORGE_KERNELS"):
        resolve_backend("warp", None, CPU)


def test_public_kernels_never_fall_back_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    x, flow = torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2)
    with pytest.raises(KernelError, match="reference"):
        splat(x, flow, backend="triton")
    monkeypatch.setenv("MOTIONFORGE_KERNELS", "triton")
    with pytest.raises(KernelError, match="reference"):
        warp(x, flow)
    q = torch.zeros(1, 1, 2, 4)
    with pytest.raises(KernelError, match="reference"):
        temporal_attention(q, q, q, q, q)


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


def test_automatic_choice_runs_the_reference_for_shapes_a_kernel_does_not_cover(monkeypatch) -> None:
    """Rows longer than the Triton attention kernel holds: automatic picks the reference; asking for Triton is an error."""
    from motionforge.kernels import dispatch, reference

    monkeypatch.setattr(dispatch, "AUTOMATIC_BY_DEVICE_TYPE", {"cpu": "triton"})
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    q, extra = torch.randn(2, 1, 80, 16), torch.randn(2, 1, 3, 16)
    args = (q, q, q, extra, extra, 0.25)
    assert dispatch.kernel_for("temporal_attention", None, CPU, args) is reference.temporal_attention
    with pytest.raises(KernelError, match="L and N up to 64"):
        temporal_attention(*args[:5], backend="triton")
