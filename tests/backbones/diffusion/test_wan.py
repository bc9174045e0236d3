"""Wan 2.x: the same video as WanImageToVideoPipeline for the same folder, seed and steps, in each of the three layouts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from motionforge import ConfigError, InputError, animate, compose_config
from motionforge.backbones.diffusion.loading import resolve_dtype
from motionforge.backbones.diffusion.wan import WanBackbone, WanTinyBackbone, WanTinyConfig
from motionforge.backbones.diffusion.wan_folder import keeps_float32
from motionforge.cli import main
from motionforge.core.memory import RunShape
from motionforge.core.types import MotionContext, MotionPlan, RenderRequest
from tests.backbones.diffusion.conftest import read_png_frames
from tests.backbones.diffusion.wan_helpers import QUIET, pipeline_frames
from tests.test_cli import read_frames

PARITY = {
    "Wan 2.1 (CLIP image features), guided": ("2.1", {"prompt": "a red kite", "negative_prompt": "blur", "guidance_scale": 4.0}),
    "Wan 2.2 two experts, two guidance scales": ("2.2", {"prompt": "a kite", "guidance_scale": 3.0, "guidance_scale_2": 2.0}),
    "Wan 2.2 TI2V (first-frame latent)": ("ti2v", {"prompt": "a kite", "guidance_scale": 3.0}),
}


@pytest.mark.parametrize("layout, params", PARITY.values(), ids=PARITY.keys())
def test_the_frames_are_the_pipelines_frames(wan_folders, picture, tmp_path, layout, params) -> None:
    expected = pipeline_frames(wan_folders[layout], picture, 9, steps=4, seed=5, **params)
    prompt = params.pop("prompt")
    overrides = [f"backbone.{key}={value}" for key, value in params.items()]
    run = ["backbone=wan", f"backbone.pretrained={wan_folders[layout]}", f"image={picture}", "num_frames=9", "steps=4", "seed=5"]
    run += [f"prompt={prompt}", "output.dir=run", "output.frames=true", "output.mp4=false", "output.gif=false"]
    animate(compose_config([*run, *overrides, *QUIET]))
    got = read_png_frames(tmp_path / "run" / "frames")
    assert got.shape == expected.shape == (9, 64, 64, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # 1/255: float rounding only


SMALL = ["adapters=[]", "height=32", "width=32", "progress=false"]  # the tiny VAE's cost is per pixel


def wan(*keys: str, frames: int = 9, steps: int = 2):
    """A wan_tiny run of a 32×32 picture (no controls), its video."""
    return animate(
        compose_config(["backbone=wan_tiny", f"num_frames={frames}", f"steps={steps}", "output.save=false", *SMALL, *keys])
    )


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another() -> None:
    clips = [wan(f"seed={seed}", "prompt=a kite").frames for seed in (1, 1, 2)]
    assert np.array_equal(clips[0], clips[1]) and not np.array_equal(clips[0], clips[2])


@pytest.mark.parametrize(
    "keys, message",
    [
        (
            ["num_frames=10"],
            "num_frames=10 is not 4n+1: wan_tiny's VAE encodes the first frame alone and then 4 frames per latent frame; set num_frames=9 or 13",
        ),
        (["height=72"], "height=72 and width=32 must be multiples of 16 for wan_tiny"),
        (["backbone.scheduler=ddim"], "backbone.scheduler=ddim does not step a flow-matching model, which Wan is"),
        (["backbone.warped_attention=true"], "backbone.warped_attention=true is not available on Wan"),
        (["backbone.flow_shift=0"], "backbone.flow_shift=0.0 must be more than 0"),
        (["backbone.layout=3.0"], "backbone.layout=3.0 is not one of 2.1, 2.2, ti2v"),
    ],
)
def test_bad_runs_are_one_sentence(keys, message) -> None:
    with pytest.raises(ConfigError) as error:
        wan(*keys)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_folder_of_another_kind_is_refused_in_one_sentence(svd_folder, wan_folders, tmp_path) -> None:
    with pytest.raises(
        InputError, match=r"holds a StableVideoDiffusionPipeline \(its transformer is missing\), not a Wan image-to-video"
    ):
        wan(f"backbone.pretrained={svd_folder}", "backbone=wan")
    text_to_video = tmp_path / "t2v"
    shutil.copytree(wan_folders["2.1"], text_to_video)
    config = json.loads((text_to_video / "transformer" / "config.json").read_text())
    (text_to_video / "transformer" / "config.json").write_text(json.dumps({**config, "in_channels": 16, "image_dim": None}))
    with pytest.raises(InputError, match=r"is a Wan text-to-video checkpoint \(its transformer takes 16 channels, no picture\)"):
        wan(f"backbone.pretrained={text_to_video}", "backbone=wan")
    shutil.rmtree(text_to_video / "image_encoder")
    config["image_dim"] = 32
    (text_to_video / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        InputError, match=r"has no image_encoder/ folder; a diffusers folder of a Wan image-to-video checkpoint holds"
    ):
        wan(f"backbone.pretrained={text_to_video}", "backbone=wan")


def request(frames: int = 9, seed: int = 0) -> RenderRequest:
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(3))
    context = MotionContext(height=64, width=64, num_frames=frames, image=image, source_size=(64, 64))
    return RenderRequest(context, MotionPlan(flow=torch.zeros(frames, 2, 64, 64)), steps=4, seed=seed)


def test_prepare_hands_the_sampler_latent_frames_on_the_shifted_flow_schedule_and_the_pipelines_noise() -> None:
    problem = WanTinyBackbone().prepare(WanTinyConfig(flow_shift=5.0), request(frames=13, seed=4)).sampler_input
    assert problem.latents.shape == (1, 4, 16, 8, 8) and problem.window == 5  # 13 frames = 4 latent frames
    assert problem.frame_limit.frames == 32  # the tiny transformer's rotary table
    t = 5 * np.linspace(1, 1 / 1000, 5)[:-1] / (1 + 4 * np.linspace(1, 1 / 1000, 5)[:-1])  # UniPC's shifted flow times
    assert np.allclose(problem.sigmas[1:-1].numpy(), t[1:] / (1 - t[1:]), rtol=1e-4) and float(problem.sigmas[-1]) == 0.0
    assert float(problem.sigmas[0]) == pytest.approx(1e6, rel=0.02)  # t = 1 − 10⁻⁶, as UniPC starts
    noise = torch.randn(1, 16, 4, 8, 8, generator=torch.Generator().manual_seed(4)).permute(0, 2, 1, 3, 4)
    assert torch.allclose(problem.latents, noise * (1 + problem.sigmas[0]), rtol=1e-5)  # z = x/(1 + σ) is the unit noise


def test_dtype_auto_is_bfloat16_on_cuda_and_float32_on_the_cpu() -> None:
    assert resolve_dtype("auto", torch.device("cuda"), WanBackbone.cuda_dtype) == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cpu"), WanBackbone.cuda_dtype) == torch.float32


def test_vae_tiling_is_diffusers_tiling_and_the_memory_estimate_counts_it() -> None:
    backbone, config = WanTinyBackbone(), WanTinyConfig(vae_tiling=True)
    backbone.prepare(config, request(frames=1))
    assert backbone.load(config, torch.device("cpu")).vae.use_tiling
    shape = RunShape(num_frames=81, height=720, width=1280)
    tiled, whole = backbone.memory_estimate(config, shape), backbone.memory_estimate(WanTinyConfig(), shape)
    assert (
        tiled["VAE activations"] < whole["VAE activations"]
        and tiled["decoded frames"] == whole["decoded frames"] == 2 * 3 * 4 * shape.pixels
    )


def test_wan_tiny_from_the_command_line_writes_a_video_and_says_its_weights_are_random(tmp_path) -> None:
    run = tmp_path / "run"
    assert main(["animate", "backbone=wan_tiny", "num_frames=9", "steps=2", *SMALL, "prompt=a kite", f"hydra.run.dir={run}"]) == 0
    assert read_frames(run / "animation.mp4").shape == (9, 32, 32, 3)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backbone"]["name"] == "wan_tiny" and manifest["denoiser_calls"] == 2 and manifest["frame_evaluations"] == 6
    assert any("wan_tiny has random weights" in note for note in manifest["notes"])


def test_in_bfloat16_the_transformer_keeps_diffusers_float32_modules_and_runs() -> None:
    models = WanTinyBackbone().load(WanTinyConfig(dtype="bfloat16"), torch.device("cpu"))
    transformer = models.transformer
    assert transformer.patch_embedding.weight.dtype == torch.bfloat16 and models.vae.dtype == torch.bfloat16
    assert transformer.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32  # as diffusers loads it
    norms = [name for name in keeps_float32(transformer) if name.startswith("blocks.") and name.endswith("norm2")]
    assert len(norms) == 2 and all(transformer.get_submodule(name).weight.dtype == torch.float32 for name in norms)
    assert wan("backbone.dtype=bfloat16").frames.std() > 0
