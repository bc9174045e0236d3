"""SD1.5 + AnimateDiff: diffusers' text-to-video without selective noising, the picture held as frame 0 with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motionforge import ConfigError, InputError, animate, compose_config
from motionforge.backbones.diffusion.animatediff import AnimateDiffModel, AnimateDiffTinyBackbone, AnimateDiffTinyConfig
from motionforge.backbones.diffusion.steering import reference_latent
from motionforge.cli import main
from motionforge.samplers.single import sample_single
from tests.backbones.diffusion.conftest import STEERING_DEFAULTS, read_png_frames
from tests.backbones.diffusion.test_svd import request
from tests.test_cli import read_frames

QUIET = ["adapters=[]", "height=64", "width=64", "progress=false"]


def diffusers_frames(sd_folder, adapter_folder, prompt: str, frames: int, steps: int, seed: int, **kwargs) -> np.ndarray:
    """AnimateDiffPipeline's frames (SD1.5 folder with its scheduler, adapter folder), via from_pretrained: uint8 [F, H, W, 3]."""
    from diffusers import AnimateDiffPipeline, MotionAdapter

    pipe = AnimateDiffPipeline.from_pretrained(sd_folder, motion_adapter=MotionAdapter.from_pretrained(adapter_folder))
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(seed)
    out = pipe(
        prompt, num_frames=frames, height=64, width=64, num_inference_steps=steps, generator=generator, output_type="np", **kwargs
    )
    return (out.frames[0] * 255).round().astype(np.uint8)


PARITY = {
    "defaults": ({}, 16),
    "negative prompt, guidance, chunked decoding": (
        {"negative_prompt": "blurry", "guidance_scale": 5.0, "decode_chunk_size": 6},
        16,
    ),
    "no guidance, fewer frames": ({"guidance_scale": 1.0}, 12),
}


@pytest.mark.parametrize("params, frames", PARITY.values(), ids=PARITY.keys())
def test_without_selective_noising_the_frames_are_diffusers_frames(sd_folder, adapter_folder, tmp_path, params, frames) -> None:
    expected = diffusers_frames(sd_folder, adapter_folder, "a cat walking", frames, steps=3, seed=5, **params)
    folders = [
        f"backbone.pretrained={sd_folder}",
        f"backbone.motion_adapter={adapter_folder}",
        "backbone.selective_noising=false",
    ]
    overrides = [f"backbone.{key}={value}" for key, value in params.items()]
    run = ["backbone=animatediff", *folders, *overrides, "prompt=a cat walking", f"num_frames={frames}", "steps=3", "seed=5"]
    animate(compose_config([*run, *QUIET, "output.dir=run", "output.frames=true", "output.mp4=false", "output.gif=false"]))
    got = read_png_frames(tmp_path / "run" / "frames")
    assert got.shape == expected.shape == (frames, 64, 64, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # 1/255: float rounding only


def test_selective_noising_holds_the_clean_picture_latent_as_frame_0_at_every_step() -> None:
    backbone, config, run = AnimateDiffTinyBackbone(), AnimateDiffTinyConfig(guidance_scale=1.0), request(frames=8)
    prepared = backbone.prepare(config, run)
    problem = prepared.sampler_input
    models = backbone.load(config, torch.device("cpu"))
    with torch.no_grad():
        reference = reference_latent(models, run.context.image)  # [1, 4, 8, 8]
    seen = []
    forward = models.unet.forward
    models.unet.forward = lambda sample, *args, **kwargs: seen.append(sample.clone()) or forward(sample, *args, **kwargs)
    steps = []
    try:
        final = sample_single(problem.denoiser, problem.latents, problem.sigmas, stepper=problem.stepper(), callback=steps.append)
    finally:
        models.unet.forward = forward
    assert len(seen) == len(steps) == 4
    for sample, step in zip(seen, steps):
        assert torch.allclose(sample[:, :, 0], reference, atol=1e-5)  # the model sees the clean latent (b, c, f, h, w)
        assert torch.equal(step.denoised[:, 0], reference)
        assert not torch.allclose(sample[:, :, 1], reference, atol=0.1)  # the other frames are noisy
    final = final / (float(problem.sigmas[-1]) ** 2 + 1) ** 0.5  # the scheduler's sample at DDIM's final sigma
    # the clip ends on the picture's latent in frame 0, up to DDIM's final noise level σ_f ≈ 0.03; the others are the model's
    assert float((final[:, 0] - reference).abs().max()) < 0.03 * float(problem.latents[:, 0].abs().max())
    assert float((final[:, 1:] - reference[:, None]).abs().mean()) > 1.0


def test_the_prompt_embeddings_are_repeated_per_frame_negative_first() -> None:
    model = AnimateDiffModel(None, torch.ones(1, 5, 8), torch.zeros(1, 5, 8), 7.5)
    states = model.hidden_states(batch=1, window=3)
    assert states.shape == (6, 5, 8) and float(states[:3].abs().sum()) == 0.0 and bool((states[3:] == 1).all())


def test_the_prompt_changes_the_clip() -> None:
    clips = [
        animate(
            compose_config(["backbone=animatediff_tiny", f"prompt={p}", "num_frames=4", "steps=2", "output.save=false", *QUIET])
        )
        for p in ("a cat", "a cat", "a dog")
    ]
    assert np.array_equal(clips[0].frames, clips[1].frames) and not np.array_equal(clips[0].frames, clips[2].frames)


def test_a_motion_adapter_that_does_not_fit_the_unet_is_refused(sd_folder, tmp_path) -> None:
    from diffusers import MotionAdapter

    wrong = tmp_path / "wide_adapter"
    MotionAdapter(block_out_channels=(64, 128), motion_layers_per_block=2, motion_norm_num_groups=2).save_pretrained(wrong)
    folders = [f"backbone.pretrained={sd_folder}", f"backbone.motion_adapter={wrong}"]
    with pytest.raises(
        InputError, match=r"does not fit the UNet at .*: its block channels are \[64, 128\] and the UNet's are \[32, 64\]"
    ):
        animate(compose_config(["backbone=animatediff", *folders, "num_frames=4", "steps=1", "output.save=false", *QUIET]))


def test_an_unset_motion_adapter_says_what_to_pass(sd_folder) -> None:
    with pytest.raises(
        ConfigError, match=r"backbone.motion_adapter is not set; pass the local folder of an AnimateDiff motion adapter"
    ):
        animate(
            compose_config(
                ["backbone=animatediff", f"backbone.pretrained={sd_folder}", "num_frames=4", "output.save=false", *QUIET]
            )
        )


def test_animatediff_tiny_from_the_command_line_writes_a_video_and_says_its_weights_are_random(tmp_path) -> None:
    run = tmp_path / "run"
    overrides = [
        "backbone=animatediff_tiny",
        "prompt=a rocket",
        "num_frames=16",
        "steps=2",
        "height=64",
        "width=64",
        "progress=false",
    ]
    assert main(["animate", *overrides, f"hydra.run.dir={run}"]) == 0
    assert read_frames(run / "animation.mp4").shape == (16, 64, 64, 3)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backbone"]["name"] == "animatediff_tiny" and manifest["backbone"]["selective_noising"] is True
    assert manifest["denoiser_calls"] == 2 and manifest["frame_evaluations"] == 32
    assert any("random weights" in note for note in manifest["notes"])
    assert "animatediff_tiny has random weights" in (run / "animate.log").read_text()


def test_animatediff_is_registered_with_diffusers_names_and_defaults() -> None:
    backbone = dict(compose_config(["backbone=animatediff"]).backbone)
    assert backbone == {
        "guidance_scale": 7.5,
        "negative_prompt": None,
        "selective_noising": True,
        "decode_chunk_size": 16,
        "dtype": "auto",
        "attention": "auto",
        "cpu_offload": False,
        "scheduler": None,
        "scheduler_config": {},
        "pretrained": None,
        "motion_adapter": None,
        "motion_i2v": None,
        "allow_pickle": False,
        "ip_adapter": None,
        "ip_adapter_image_encoder": None,
        "ip_adapter_scale": 1.0,
        "name": "animatediff",
        "init_flow_from_strength": True,
        **STEERING_DEFAULTS,
    }



def test_more_frames_than_the_motion_modules_were_trained_on_run_up_to_their_positional_table(caplog) -> None:
    video = animate(compose_config(["backbone=animatediff_tiny", "num_frames=24", "steps=1", "output.save=false", *QUIET]))
    assert video.frames.shape[0] == 24 and "num_frames=24 is more frames than the 16 per call" in caplog.text
    with pytest.raises(ConfigError, match=r"num_frames=33 is more frames than this backbone takes in one call: at most 32, set by "
                       r"the motion modules' positional table \(motion_max_seq_length\)"):  # fmt: skip
        animate(compose_config(["backbone=animatediff_tiny", "num_frames=33", "steps=1", "output.save=false", *QUIET]))
