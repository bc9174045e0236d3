"""Long clips on the tiny diffusion backbones: both long-video samplers end to end, their cost in the manifest, previews."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from motionforge import animate, compose_config
from motionforge.cli import main
from motionforge.samplers.phased import phase_step

TINY = ["height=64", "width=64", "adapters=[]", "progress=false"]
WINDOWS = {"svd_tiny": 14, "animatediff_tiny": 16}


def run(backbone: str, sampler: str, frames: int, steps: int, *keys: str):
    return animate(
        compose_config(
            [
                f"backbone={backbone}",
                f"sampler={sampler}",
                f"num_frames={frames}",
                f"steps={steps}",
                "output.save=false",
                *TINY,
                *keys,
            ]
        )
    )


@pytest.mark.parametrize("backbone", list(WINDOWS))
def test_128_frames_with_periodic_overlap(backbone) -> None:
    video = run(backbone, "periodic_overlap", 128, 1)
    window = WINDOWS[backbone]
    starts = len(range(0, 128 - window + 1, window // 2)) + (1 if (128 - window) % (window // 2) else 0)
    assert video.frames.shape == (128, 64, 64, 3)
    assert video.metadata["denoiser_calls"] == starts
    assert video.metadata["frame_evaluations"] == starts * window


@pytest.mark.parametrize("backbone", list(WINDOWS))
def test_128_frames_with_phased_inference(backbone) -> None:
    video = run(backbone, "phased", 128, 4)
    window, split = WINDOWS[backbone], phase_step(0.8, 4)
    windows = -(-128 // window)
    meta = video.metadata
    assert video.frames.shape == (128, 64, 64, 3)
    assert meta["denoiser_calls"] == 4 + (windows - 1) * (4 - split)
    assert meta["frame_evaluations"] == meta["denoiser_calls"] * window
    assert meta["sampler"] == {"name": "phased", "window": None, "gamma": 0.8, "omega": 0.2, "shuffle": True, "step": None}
    assert meta["timings"]["render"] > 0 and meta["peak_memory"]["rss_mb"] > 0


def test_one_window_over_the_clip_is_the_single_sampler_on_a_real_denoiser() -> None:
    single = run("animatediff_tiny", "single", 12, 2)
    assert np.array_equal(run("animatediff_tiny", "periodic_overlap", 12, 2, "sampler.weighting=pyramid").frames, single.frames)
    assert np.array_equal(run("animatediff_tiny", "phased", 12, 2).frames, single.frames)


@pytest.mark.parametrize("sampler", ["single", "periodic_overlap", "phased"])
def test_same_seed_same_bytes(sampler) -> None:
    frames = 16 if sampler == "single" else 30
    first = run("animatediff_tiny", sampler, frames, 3, "sampler.step=euler_ancestral", "seed=7")
    again = run("animatediff_tiny", sampler, frames, 3, "sampler.step=euler_ancestral", "seed=7")
    assert np.array_equal(first.frames, again.frames)


def test_the_callback_sees_every_denoiser_call() -> None:
    seen = []
    video = animate(
        compose_config(["backbone=animatediff_tiny", "sampler=phased", "num_frames=40", "steps=5", "output.save=false", *TINY]),
        callback=seen.append,
    )
    assert len(seen) == video.metadata["denoiser_calls"] == seen[-1].total == 5 + 2 * (5 - 4)
    assert [s.window for s in seen] == [0] * 5 + [1, 2]


def test_the_cli_writes_a_long_clip_its_cost_and_step_previews(tmp_path) -> None:
    out = tmp_path / "run"
    status = main(
        ["animate", "backbone=animatediff_tiny", "sampler=periodic_overlap", "sampler.stride=4", "num_frames=24", "steps=2",
         "output.previews=1", *TINY, f"hydra.run.dir={out}"]
    )  # fmt: skip
    assert status == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["denoiser_calls"] == 2 * 3 and manifest["frame_evaluations"] == 2 * 3 * 16
    assert sorted(p.name for p in (out / "previews").iterdir()) == ["step001.png", "step002.png"]
    assert Image.open(out / "previews" / "step001.png").size == (8 * 64, 64)  # 8 of the 24 frames side by side
    assert "previews" in manifest["outputs"] and not list(out.glob(".*partial*"))


def test_phased_with_gamma_1_repeats_window_1_on_a_real_denoiser() -> None:
    frames = run("animatediff_tiny", "phased", 32, 3, "sampler.gamma=1.0").frames
    assert np.array_equal(frames[16:], frames[:16])


def test_phased_later_windows_without_fresh_noise_or_shuffle_differ_only_by_their_control() -> None:
    # no motion plan, and frame 0 (held by selective noising) only in window 1: windows 2 and 3 see the same denoiser
    frames = run("animatediff_tiny", "phased", 48, 3, "sampler.omega=0", "sampler.shuffle=false").frames
    assert np.array_equal(frames[16:32], frames[32:48])
    assert not np.array_equal(frames[:16], frames[16:32])
