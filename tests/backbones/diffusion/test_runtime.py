"""The backbones' device keys: attention (the backend of warped_attention and the UNet's own layers) and cpu_offload."""

from __future__ import annotations

import time

import pytest
import torch

from motionforge import ConfigError
from motionforge.backbones.diffusion import runtime
from motionforge.kernels import dispatch
from tests.backbones.diffusion.steering.test_steering import BACKBONES, request, run


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with the config's backend only, whatever the caller's environment says."""
    monkeypatch.delenv("MOTIONFORGE_KERNELS", raising=False)


def test_attention_maps_to_the_kernels_backends() -> None:
    assert runtime.warped_backends(runtime.RuntimeParams()) == (None, None)
    assert runtime.warped_backends(runtime.RuntimeParams(attention="sdpa")) == ("reference", "reference")
    assert runtime.warped_backends(runtime.RuntimeParams(attention="triton")) == ("triton", "triton")
    assert runtime.warped_backends(runtime.RuntimeParams(attention="xformers")) == ("xformers", None)  # no xformers splat


MISTAKES = {
    "attention=flash": ({"attention": "flash"}, r"^backbone.attention='flash' is not one of auto, sdpa, xformers, triton$"),
    "cpu_offload on a cpu": ({"cpu_offload": True}, r"^backbone.cpu_offload=true needs a CUDA device, not cpu; set it to false$"),
}


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("keys, message", MISTAKES.values(), ids=MISTAKES.keys())
def test_device_key_mistakes_are_one_sentence(name: str, keys: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run(name, request(frames=4, steps=1), **keys)


def test_cpu_offload_on_cuda_says_it_needs_accelerate_where_it_is_missing() -> None:
    if runtime.importlib.util.find_spec("accelerate") is not None:
        pytest.skip("accelerate is installed")
    with pytest.raises(ConfigError, match=r"^backbone.cpu_offload=true needs accelerate, which is not installed"):
        runtime.check(runtime.RuntimeParams(cpu_offload=True), torch.device("cuda"))


@pytest.mark.parametrize("name", BACKBONES)
def test_xformers_and_triton_say_what_they_miss_on_a_cpu(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = "xformers is not installed" if runtime.importlib.util.find_spec("xformers") is None else "CUDA devices only, not cpu"
    with pytest.raises(ConfigError, match=f"^backbone.attention=xformers cannot run here: {reason}"):
        run(name, request(frames=4, steps=1), attention="xformers")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ConfigError, match="^backbone.attention=triton cannot run here: "):
        run(name, request(frames=4, steps=1), attention="triton")


@pytest.mark.parametrize("name", BACKBONES)
def test_sdpa_is_the_reference_so_it_gives_autos_frames_on_a_cpu(name: str) -> None:
    moving = request(frames=4, steps=2)
    automatic, _ = run(name, moving, warped_attention=True)
    sdpa, _ = run(name, moving, warped_attention=True, attention="sdpa")
    assert torch.equal(automatic, sdpa)


@pytest.mark.parametrize("name", BACKBONES)
def test_triton_runs_warped_attention_under_the_interpreter_and_matches_sdpa(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    chosen: set[tuple[str, str]] = set()
    resolve = dispatch.resolve_backend

    def recorded(op: str, backend: str | None, device: torch.device) -> str:
        chosen.add((op, resolve(op, backend, device)))
        return resolve(op, backend, device)

    monkeypatch.setattr(dispatch, "resolve_backend", recorded)
    moving = request(frames=4, steps=1)
    sdpa, _ = run(name, moving, warped_attention=True, attention="sdpa")
    assert chosen == {("temporal_attention", "reference"), ("splat", "reference")}
    chosen.clear()
    started = time.perf_counter()
    triton, _ = run(name, moving, warped_attention=True, attention="triton")
    assert chosen == {("temporal_attention", "triton"), ("splat", "triton")}
    assert time.perf_counter() - started < 60
    torch.testing.assert_close(triton, sdpa, atol=1e-4, rtol=1e-4)
