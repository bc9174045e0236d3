"""Warped latent initialisation on the tiny backbones: the start, the warp, the steps it saves."""

from __future__ import annotations

import json

import pytest
import torch

from motionforge import animate, compose_config
from motionforge.backbones.diffusion.steering import latent_init
from motionforge.motion.fuse import resize_flow
from tests.backbones.diffusion.steering.test_steering import BACKBONES, QUIET, pan, reference, request, run


@pytest.mark.parametrize("name", BACKBONES)
def test_latent_init_changes_the_clip_and_init_strength_1_leaves_it_bit_identical(name) -> None:
    off, off_problem = run(name, request())
    at_one, one_problem = run(name, request(), latent_init=True, init_strength=1.0)
    on, _ = run(name, request(), latent_init=True, init_strength=0.5)
    assert torch.equal(off, at_one) and torch.equal(off_problem.latents, one_problem.latents)
    assert not torch.equal(off, on)


@pytest.mark.parametrize("name", BACKBONES)
def test_latent_init_starts_from_the_warped_reference_noised_to_the_start_sigma(name) -> None:
    run_request = request(steps=4)
    _, plain = run(name, run_request)
    backbone, config_class, _ = BACKBONES[name]
    problem = backbone().prepare(config_class(latent_init=True, init_strength=0.5), run_request).sampler_input
    start = round((1 - 0.5) * 4)
    assert start == 2 and torch.equal(problem.sigmas, plain.sigmas[start:])
    if name == "svd_tiny":  # diffusers draws the augmentation noise, then the latents' noise
        generator = torch.Generator().manual_seed(2)
        torch.randn(1, 3, 64, 64, generator=generator)
        noise = torch.randn(1, 6, 4, 8, 8, generator=generator)
    else:
        generator = torch.Generator().manual_seed(2)
        noise = torch.randn(1, 4, 6, 8, 8, generator=generator).permute(0, 2, 1, 3, 4)
    ref = reference(name, run_request)  # [1, 4, 8, 8]
    warped = latent_init.warp_reference(ref, resize_flow(pan(6), 8, 8))  # [6, 4, 8, 8]
    before_noise = problem.latents - problem.sigmas[0] * noise  # [1, 6, 4, 8, 8]
    assert torch.allclose(before_noise[0], warped, atol=1e-4 * float(problem.sigmas[0]))
    assert torch.equal(warped[0], ref[0])  # frame 0 does not move
    # the pan moves 3/8 latent pixel per frame: frame 4 is the reference shifted right by 1.5 cells
    assert torch.allclose(warped[4, :, :, 3:7], 0.5 * (ref[0, :, :, 1:5] + ref[0, :, :, 2:6]), atol=1e-5)


def test_latent_init_runs_fewer_steps_and_the_manifest_counts_them(tmp_path) -> None:
    base = ["backbone=svd_tiny", "adapters=[camera]", "adapters.camera.pan=[3,0]", "num_frames=6", "steps=4", *QUIET]
    outputs = ["output.mp4=false", "output.gif=false", "output.flow=false", "output.hint=false"]
    calls = {}
    for strength in (1.0, 0.7, 0.5, 0.2):
        folder = tmp_path / f"run{strength}"
        keys = ["backbone.latent_init=true", f"backbone.init_strength={strength}", f"output.dir={folder}"]
        animate(compose_config([*base, *keys, *outputs]))
        manifest = json.loads((folder / "manifest.json").read_text())
        calls[strength] = manifest["denoiser_calls"]
        followed = not any("does not follow the motion plan" in note for note in manifest["notes"])
        assert followed == (strength < 1.0)
    assert calls == {1.0: 4, 0.7: 3, 0.5: 2, 0.2: 1}  # 4 − round((1 − s)·4), at least one step


def test_the_warp_fills_holes_from_the_unwarped_reference() -> None:
    ref = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    flow = torch.zeros(2, 2, 4, 4)
    flow[1, 0] = 1.0  # everything moves one cell right
    warped = latent_init.warp_reference(ref, flow)
    assert torch.equal(warped[0], ref[0])
    assert torch.allclose(warped[1, 0, :, 1:], ref[0, 0, :, :3], atol=1e-5)  # moved
    assert torch.equal(warped[1, 0, :, 0], ref[0, 0, :, 0])  # nothing lands on column 0: the reference shows
