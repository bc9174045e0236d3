"""The memory estimate: what a run needs before it starts, the one-sentence refusal, the key to insist, and its accuracy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from motionforge import PluginError, ResourceError, animate, compose_config, hookimpl
from motionforge.core import memory
from motionforge.core.memory import RunShape, backbone_memory, check_memory, estimate_run, format_bytes
from motionforge.core.registry import pm

SMALL = ["num_frames=4", "height=64", "width=64", "progress=false"]


def test_the_estimate_grows_with_frames_times_size() -> None:
    small = estimate_run(RunShape(16, 64, 64), {"dense": 16}, {"b: frames": 24 * 16 * 64 * 64}, flow_video=True)
    large = estimate_run(RunShape(64, 128, 128), {"dense": 16}, {"b: frames": 24 * 64 * 128 * 128}, flow_video=True)
    assert large.device_bytes() == 16 * small.device_bytes()
    assert small.held == {"hint of dense": 16 * 16 * 64 * 64, "the plan's flow": 8 * 16 * 64 * 64}
    assert small.peak_stage() == "convert" and small.host_bytes() == 0


def test_a_preview_that_streams_holds_neither_the_plan_nor_float_frames() -> None:
    shape = RunShape(256, 512, 512)
    streaming = estimate_run(shape, {"trajectory": 0}, {"warp: frames": 3 * shape.pixels}, flow_video=True, whole_plan=False, convert=False)
    assert streaming.held == {} and "convert" not in streaming.stages
    assert streaming.host_stages["write"]["flow video"] == 15 * 8 * 512 * 512  # written 8 frames at a time


def test_a_gpu_run_splits_device_and_host_memory() -> None:
    shape = RunShape(16, 64, 64, torch.device("cuda"))
    estimate = estimate_run(shape, {}, {"b: frames": 10 * shape.pixels}, flow_video=True)
    assert estimate.device_bytes() == 8 * shape.pixels + 24 * shape.pixels  # the plan, and the conversion's two float copies
    assert estimate.host_bytes() == 3 * shape.pixels + 15 * 8 * shape.frame_pixels  # uint8 frames and 8 frames of flow video


class Declares:
    """A backbone that declares its own figure."""

    def memory_estimate(self, config, shape):
        return {"weights": 1000, "activations": 7 * shape.pixels}


class HasField:
    """A backbone that declares bytes per frame-pixel."""

    memory_per_pixel = 50

    def render(self, config, request):
        raise AssertionError("not called")


class SaysNothing:
    """A diffusion backbone with no figure of its own."""

    def prepare(self, config, request): ...

    def decode(self, config, latents): ...


def test_each_backbone_contributes_its_own_estimate() -> None:
    shape = RunShape(4, 8, 8)
    assert backbone_memory(Declares(), None, shape, "mine") == {"mine: weights": 1000, "mine: activations": 7 * 256}
    assert backbone_memory(HasField(), None, shape, "field") == {"field: what it holds": 50 * 256}
    assert backbone_memory(SaysNothing(), None, shape, "quiet") == {"quiet: decoded frames": 24 * 256, "quiet: latents": 2 * 256}


def test_a_malformed_estimate_is_the_plugins_fault() -> None:
    class Broken:
        def memory_estimate(self, config, shape):
            return {"weights": float("nan")}

    with pytest.raises(PluginError, match="backbone 'broken' returned .* from memory_estimate"):
        backbone_memory(Broken(), None, RunShape(4, 8, 8), "broken")


def test_a_run_that_cannot_fit_is_refused_in_one_sentence_naming_the_figures() -> None:
    estimate = estimate_run(RunShape(16, 512, 512), {"dense": 16}, {"b: frames": 24 * 16 * 512 * 512}, flow_video=True)
    with pytest.raises(ResourceError) as caught:
        check_memory(estimate, insist=False, free={"device": 100 * 2**20})
    message = str(caught.value)
    assert message.startswith(f"this run needs about {format_bytes(estimate.device_bytes())} of memory (16 frames of 512×512;")
    assert "but this machine has 100 MiB free" in message and "memory.insist=true" in message and "\n" not in message
    check_memory(estimate, insist=True, free={"device": 100 * 2**20})  # insisting runs anyway
    check_memory(estimate, insist=False, free={"device": None})  # unknown free memory: nothing to compare with


def test_bytes_read_for_people() -> None:
    assert [format_bytes(n) for n in (512, 3 * 2**20 + 2**19, 123 * 2**30, 7.4 * 2**40)] == [
        "512 B",
        "3.5 MiB",
        "123 GiB",
        "7.4 TiB",
    ]


def test_the_engine_refuses_before_it_allocates_and_insisting_runs(tmp_path, monkeypatch) -> None:
    with pytest.raises(ResourceError, match=r"needs about [\d.]+ TiB of memory \(16 frames of 100000×100000;"):
        animate(compose_config(["height=100000", "width=100000", "output.dir=run"]))
    assert not any(tmp_path.iterdir())
    monkeypatch.setattr(memory, "host_free_bytes", lambda: 1024)
    with pytest.raises(ResourceError, match="but this machine has 1 KiB free"):
        animate(compose_config([*SMALL, "output.save=false"]))
    video = animate(compose_config([*SMALL, "output.save=false", "memory.insist=true"]))
    assert video.metadata["peak_memory"]["estimated_mb"] > 0


@dataclass
class Nothing:
    """No parameters."""


class Greedy:
    """A rendering backbone that says it needs a terabyte."""

    name = "greedy"
    Config = Nothing

    def memory_estimate(self, config, shape):
        return {"its cache": 2**40}

    def render(self, config, request):
        raise AssertionError("refused before rendering")


class GreedyPlugin:
    __name__ = "GreedyPlugin"

    @hookimpl
    def register_backbones(self, register):
        register(Greedy)


def test_a_plugins_backbone_estimate_is_used_by_the_engine() -> None:
    pm.register(GreedyPlugin(), name="greedy-plugin")
    try:
        with pytest.raises(
            ResourceError, match=r"needs about 1.0 TiB of memory \(4 frames of 64×64; most of it: greedy: its cache 1.0 TiB"
        ):
            animate(compose_config(["backbone=greedy", *SMALL, "output.save=false"]))
    finally:
        pm.unregister(name="greedy-plugin")


MEASURE = textwrap.dedent(
    """
    import json, sys
    from motionforge import animate, compose_config

    def kib(key):
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))

    out = []
    for overrides in json.loads(sys.argv[1]):
        cfg = compose_config(["progress=false", "output.save=false", *overrides])
        animate(cfg)  # warm-up: lazy imports, tiny models built and cached
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset the peak (VmHWM) to the current resident size
        before = kib("VmRSS")
        video = animate(cfg)
        out.append({"measured_mb": (kib("VmHWM") - before) / 1024, "estimated_mb": video.metadata["peak_memory"]["estimated_mb"]})
    print(json.dumps(out))
    """
)
RUNS = [
    ["num_frames=32", "height=256", "width=256"],
    ["num_frames=64", "height=256", "width=256", "adapters=[]"],
    ["num_frames=16", "height=128", "width=128", "adapters=[]", "backbone=animatediff_tiny", "steps=1"],
]


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc to reset the peak resident size")
def test_the_estimate_is_within_a_factor_of_the_measured_peak(tmp_path) -> None:
    """The estimate is at least 0.85× and at most 1.6× the measured peak (each run needs under 200 MB)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}  # freed buffers go back to the system
    done = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(RUNS)], capture_output=True, text=True, env=env, check=True)
    for overrides, run in zip(RUNS, json.loads(done.stdout.strip().splitlines()[-1])):
        ratio = run["estimated_mb"] / run["measured_mb"]
        assert 0.85 <= ratio <= 1.6, (overrides, run)
