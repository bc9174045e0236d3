"""The plan's motion strength on the tiny backbones: SVD's motion bucket, AnimateDiff's latent_init flow."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from motionforge.backbones.diffusion.steering import strength
from motionforge.backbones.diffusion.svd import SvdTinyBackbone, SvdTinyConfig
from motionforge.motion.fuse import motion_strength
from tests.backbones.diffusion.steering.test_steering import pan, request, run


def test_the_motion_bucket_map_is_monotone_gives_127_without_a_strength_and_for_the_samples_motion() -> None:
    assert strength.motion_bucket(None, 576, 1024) == 127
    assert strength.motion_bucket(None, 64, 64, default=40) == 40
    assert strength.motion_bucket(2.048, 512, 512) == 127  # the bundled sample's M_s at 512 px
    assert strength.motion_bucket(4.096, 576, 1024) == 127  # the same share of a larger frame
    buckets = [strength.motion_bucket(m, 512, 512) for m in np.linspace(0, 10, 200)]
    assert all(a <= b for a, b in itertools.pairwise(buckets)) and buckets[0] == 1 and buckets[-1] == 255
    assert strength.motion_bucket(1.0, 512, 512) < strength.motion_bucket(3.0, 512, 512)


def added_time_ids(keys: dict, strength: float | None) -> torch.Tensor:
    """The added_time_ids the tiny SVD UNet receives on its first call, [B, 3]."""
    backbone, config = SvdTinyBackbone(), SvdTinyConfig(max_guidance_scale=1.0, **keys)
    problem = backbone.prepare(config, request(strength=strength)).sampler_input
    unet = backbone.load(config, torch.device("cpu")).unet
    seen, forward = [], unet.forward
    unet.forward = lambda *args, **kwargs: seen.append(kwargs["added_time_ids"].clone()) or forward(*args, **kwargs)
    try:
        with torch.no_grad():
            problem.denoiser.denoise(problem.latents, problem.sigmas[0], torch.arange(6))
    finally:
        unet.forward = forward
    return seen[0]


def test_the_chosen_bucket_is_what_the_unet_receives() -> None:
    assert added_time_ids({}, strength=None)[0].tolist() == [6.0, 127.0, pytest.approx(0.02)]
    expected = strength.motion_bucket(0.5, 64, 64)
    assert expected == 248 and added_time_ids({}, strength=0.5)[0, 1].item() == expected
    assert added_time_ids({"motion_bucket_from_strength": False}, strength=0.5)[0, 1].item() == 127
    assert added_time_ids({"motion_bucket_id": 30}, strength=None)[0, 1].item() == 30


def test_the_strength_map_changes_svd_only_when_a_strength_is_asked() -> None:
    on, _ = run("svd_tiny", request(strength=0.5))
    off, _ = run("svd_tiny", request(strength=0.5), motion_bucket_from_strength=False)
    assert not torch.equal(on, off)
    unasked_on, _ = run("svd_tiny", request())
    unasked_off, _ = run("svd_tiny", request(), motion_bucket_from_strength=False)
    assert torch.equal(unasked_on, unasked_off)


def test_animatediff_rescales_the_flow_latent_init_warps_by_to_the_asked_strength() -> None:
    asked = request(strength=motion_strength(pan(6)) * 2)  # the plan's flow moves half as fast as asked
    on, _ = run("animatediff_tiny", asked, latent_init=True, init_strength=0.5)
    off, _ = run("animatediff_tiny", asked, latent_init=True, init_strength=0.5, init_flow_from_strength=False)
    assert not torch.equal(on, off)
    unasked_on, _ = run("animatediff_tiny", request(), latent_init=True, init_strength=0.5)
    unasked_off, _ = run("animatediff_tiny", request(), latent_init=True, init_strength=0.5, init_flow_from_strength=False)
    assert torch.equal(unasked_on, unasked_off)
    assert torch.allclose(strength.flow_at_strength(pan(6), 6.0), pan(6, 6.0))
