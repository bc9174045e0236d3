"""Stable Video Diffusion: the same video as diffusers' pipeline for the same weights and seed; svd_tiny end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from motionforge import ConfigError, animate, compose_config
from motionforge.backbones.diffusion.svd import SvdBackbone, SvdModel, SvdTinyBackbone, SvdTinyConfig
from motionforge.cli import main
from motionforge.core.types import MotionContext, MotionPlan, RenderRequest
from tests.backbones.diffusion.conftest import STEERING_DEFAULTS, read_png_frames
from tests.test_cli import read_frames

QUIET = ["adapters=[]", "height=64", "width=64", "progress=false"]


def diffusers_frames(folder, picture, frames: int, steps: int, seed: int, **kwargs) -> np.ndarray:
    """StableVideoDiffusionPipeline's frames for a picture, loaded through its own from_pretrained: uint8 [F, H, W, 3]."""
    from diffusers import StableVideoDiffusionPipeline

    pipe = StableVideoDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(seed)
    out = pipe(
        Image.open(picture),
        height=64,
        width=64,
        num_frames=frames,
        num_inference_steps=steps,
        generator=generator,
        output_type="np",
        **kwargs,
    )
    return (out.frames[0] * 255).round().astype(np.uint8)


PARITY = {
    "defaults": ({}, 14),
    "conditioning": (
        {"fps": 12, "motion_bucket_id": 40, "noise_aug_strength": 0.1, "min_guidance_scale": 1.5, "max_guidance_scale": 2.5},
        14,
    ),
    "no guidance, fewer frames, chunked decoding": ({"max_guidance_scale": 1.0, "decode_chunk_size": 4}, 9),
}


@pytest.mark.parametrize("params, frames", PARITY.values(), ids=PARITY.keys())
def test_the_frames_are_diffusers_frames(svd_folder, picture, tmp_path, params, frames) -> None:
    expected = diffusers_frames(svd_folder, picture, frames, steps=3, seed=11, **params)
    overrides = [f"backbone.{key}={value}" for key, value in params.items()]
    run = ["backbone=svd", f"backbone.pretrained={svd_folder}", f"image={picture}", f"num_frames={frames}", "steps=3", "seed=11"]
    animate(
        compose_config([*run, *overrides, *QUIET, "output.dir=run", "output.frames=true", "output.mp4=false", "output.gif=false"])
    )
    got = read_png_frames(tmp_path / "run" / "frames")
    assert got.shape == expected.shape == (frames, 64, 64, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # 1/255: float rounding only


def request(frames: int = 14, seed: int = 0) -> RenderRequest:
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(3))
    context = MotionContext(height=64, width=64, num_frames=frames, image=image, source_size=(64, 64))
    return RenderRequest(context, MotionPlan(flow=torch.zeros(frames, 2, 64, 64)), steps=4, seed=seed)


def test_prepare_hands_the_sampler_a_window_of_the_unets_frames_and_diffusers_noise() -> None:
    problem = SvdTinyBackbone().prepare(SvdTinyConfig(), request(frames=10, seed=4)).sampler_input
    assert problem.window == 14 and problem.latents.shape == (1, 10, 4, 8, 8)
    assert len(problem.sigmas) == 5 and float(problem.sigmas[-1]) == 0.0 and float(problem.sigmas[0]) == pytest.approx(700.0)
    generator = torch.Generator().manual_seed(4)
    torch.randn(1, 3, 64, 64, generator=generator)  # diffusers draws the augmentation noise first
    noise = torch.randn(1, 10, 4, 8, 8, generator=generator)
    assert torch.allclose(problem.latents, noise * (700.0**2 + 1) ** 0.5)  # EulerDiscrete's init_noise_sigma for "leading"


def test_guidance_rises_over_the_window_frame_by_frame() -> None:
    calls = []

    class Unet:
        dtype = torch.float32

        def __call__(self, sample, timestep, encoder_hidden_states, added_time_ids, return_dict):
            calls.append((sample, encoder_hidden_states, added_time_ids))
            uncond = torch.zeros_like(sample[:1, :, :4])
            return (torch.cat([uncond, torch.ones_like(uncond)]),)

    model = SvdModel(Unet(), torch.ones(1, 1, 8), torch.ones(1, 4, 2, 2), torch.tensor([[6.0, 127.0, 0.02]]), (1.0, 3.0))
    out = model(torch.zeros(1, 3, 4, 2, 2), torch.tensor(0.5), torch.tensor([7, 8, 9]))
    assert out[0, :, 0, 0, 0].tolist() == [1.0, 2.0, 3.0]  # from min to max over the window, wherever it is in the clip
    sample, embeddings, time_ids = calls[0]
    assert sample.shape == (2, 3, 8, 2, 2) and float(sample[0, :, 4:].abs().sum()) == 0.0 and bool((sample[1, :, 4:] == 1).all())
    assert embeddings[0].abs().sum() == 0 and bool((embeddings[1] == 1).all()) and time_ids.shape == (2, 3)


def test_the_same_seed_gives_the_same_clip_and_another_seed_another() -> None:
    clips = [
        animate(compose_config(["backbone=svd_tiny", f"seed={s}", "num_frames=6", "steps=2", "output.save=false", *QUIET]))
        for s in (1, 1, 2)
    ]
    assert np.array_equal(clips[0].frames, clips[1].frames) and not np.array_equal(clips[0].frames, clips[2].frames)


def test_more_frames_than_the_unet_was_trained_on_run_with_a_warning_as_diffusers_runs_them(
    svd_folder, picture, tmp_path, caplog
) -> None:
    expected = diffusers_frames(svd_folder, picture, 18, steps=2, seed=3)
    run = ["backbone=svd", f"backbone.pretrained={svd_folder}", f"image={picture}", "num_frames=18", "steps=2", "seed=3"]
    animate(compose_config([*run, *QUIET, "output.dir=run", "output.frames=true", "output.mp4=false", "output.gif=false"]))
    got = read_png_frames(tmp_path / "run" / "frames")
    assert got.shape == expected.shape == (18, 64, 64, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert "num_frames=18 is more frames than the 14 per call this backbone's model was trained on" in caplog.text


@pytest.mark.parametrize(
    "override, message",
    [
        ("backbone.fps=0", r"backbone.fps=0 must be at least 1"),
        ("backbone.noise_aug_strength=-1", r"noise_aug_strength=-1.0 must be zero or more"),
        ("backbone.decode_chunk_size=0", r"decode_chunk_size=0 must be at least 1"),
        ("backbone.dtype=float8", r"backbone.dtype=float8 is not a dtype"),
    ],
)
def test_bad_parameters_are_config_errors(override, message) -> None:
    with pytest.raises(ConfigError, match=message):
        animate(compose_config(["backbone=svd_tiny", override, "num_frames=4", "steps=1", "output.save=false", *QUIET]))


def test_svd_tiny_from_the_command_line_writes_a_video_and_says_its_weights_are_random(tmp_path) -> None:
    run = tmp_path / "run"
    overrides = [
        "backbone=svd_tiny",
        "num_frames=14",
        "steps=2",
        "height=64",
        "width=64",
        "progress=false",
        f"hydra.run.dir={run}",
    ]
    assert main(["animate", *overrides]) == 0
    assert read_frames(run / "animation.mp4").shape == (14, 64, 64, 3)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backbone"]["name"] == "svd_tiny" and manifest["sampler"]["name"] == "single"
    assert manifest["denoiser_calls"] == 2 and manifest["frame_evaluations"] == 28
    assert any("random weights" in note for note in manifest["notes"])
    assert any("does not follow the motion plan yet" in note for note in manifest["notes"])  # the sample's tracks
    assert "svd_tiny has random weights" in (run / "animate.log").read_text()  # Hydra's job log


def test_svd_is_registered_with_diffusers_names_and_defaults() -> None:
    cfg = compose_config(["backbone=svd"])
    assert dict(cfg.backbone) == {
        "fps": 7,
        "motion_bucket_id": 127,
        "noise_aug_strength": 0.02,
        "min_guidance_scale": 1.0,
        "max_guidance_scale": 3.0,
        "decode_chunk_size": None,
        "dtype": "auto",
        "attention": "auto",
        "cpu_offload": False,
        "scheduler": None,
        "scheduler_config": {},
        "pretrained": None,
        "allow_pickle": False,
        "name": "svd",
        "motion_bucket_from_strength": True,
        "mofa": None,
        "mofa_scale": 0.6,
        "mofa_landmark": None,
        "mofa_landmark_scale": 1.0,
        **STEERING_DEFAULTS,
    }
    assert "pretrained" not in compose_config(["backbone=svd_tiny"]).backbone
    assert issubclass(SvdTinyBackbone, SvdBackbone)
