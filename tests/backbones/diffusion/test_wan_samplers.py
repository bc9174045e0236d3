"""Every sampler on Wan's flow matching: long clips end to end on wan_tiny, windows counted in latent frames."""

from __future__ import annotations

import numpy as np
import pytest

from motionforge import animate, compose_config
from motionforge.backbones.diffusion.latent_time import latent_frames
from motionforge.samplers.phased import phase_step
from motionforge.samplers.windows import consecutive_windows, overlapping_windows

QUIET = ["height=32", "width=32", "adapters=[]", "progress=false", "output.save=false", "prompt=a kite"]
WINDOW = 5  # wan_tiny's trained window, in latent frames (17 frames)
FRAMES = 25  # 7 latent frames: two windows


def run(sampler: str, frames: int, steps: int, *keys: str):
    """A wan_tiny run with a sampler, its video."""
    overrides = ["backbone=wan_tiny", f"sampler={sampler}", f"num_frames={frames}", f"steps={steps}", *QUIET, *keys]
    return animate(compose_config(overrides))


def test_a_long_clip_with_periodic_overlap_denoises_overlapping_windows_of_latent_frames() -> None:
    video = run("periodic_overlap", FRAMES, 2)
    windows = overlapping_windows(latent_frames(FRAMES, 4), WINDOW, WINDOW // 2)
    assert video.frames.shape == (FRAMES, 32, 32, 3) and [w.tolist() for w in windows] == [[0, 1, 2, 3, 4], [2, 3, 4, 5, 6]]
    assert video.metadata["denoiser_calls"] == 2 * 2 and video.metadata["frame_evaluations"] == 2 * 2 * WINDOW


def test_a_long_clip_with_phased_inference_shares_the_first_windows_steps() -> None:
    video = run("phased", FRAMES, 3)
    windows = consecutive_windows(latent_frames(FRAMES, 4), WINDOW)
    assert video.frames.shape == (FRAMES, 32, 32, 3) and len(windows) == 2
    assert video.metadata["denoiser_calls"] == 3 + (3 - phase_step(0.8, 3))


def test_a_long_clip_in_one_window_runs_with_a_warning(caplog) -> None:
    video = run("single", FRAMES, 2)
    assert video.frames.shape == (FRAMES, 32, 32, 3) and video.metadata["frame_evaluations"] == 2 * latent_frames(FRAMES, 4)
    assert "num_frames=7 is more frames than the 5 per call" in caplog.text  # latent frames


@pytest.mark.parametrize("step", ["euler", "euler_ancestral", "dpmpp_2m"])
def test_each_sigma_space_step_rule_runs_on_the_flow_model(step) -> None:
    frames = run("periodic_overlap", 13, 3, f"sampler.step={step}", "sampler.window=3").frames  # 4 latent frames, 2 windows
    assert frames.shape == (13, 32, 32, 3) and frames.std() > 0


def test_one_window_over_the_clip_is_the_single_sampler() -> None:
    single = run("single", 9, 2).frames
    assert np.array_equal(run("periodic_overlap", 9, 2).frames, single)
    assert np.array_equal(run("phased", 9, 2).frames, single)


def test_anchoring_latent_frame_0_lets_every_window_see_the_picture() -> None:
    video = run("periodic_overlap", FRAMES, 2, "sampler.anchor_first_frame=true")
    windows = overlapping_windows(latent_frames(FRAMES, 4), WINDOW, WINDOW // 2, anchor_first_frame=True)
    assert all(int(w[0]) == 0 for w in windows) and video.metadata["denoiser_calls"] == 2 * len(windows)
    assert video.frames.shape == (FRAMES, 32, 32, 3)
