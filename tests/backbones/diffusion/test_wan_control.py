"""Zero-shot control on Wan through the steering switches: the plan at latent size and in latent frames."""

from __future__ import annotations

import torch

from motionforge.backbones.diffusion import latent_time
from motionforge.backbones.diffusion.steering import latent_init
from motionforge.backbones.diffusion.wan import WanTinyBackbone, WanTinyConfig
from motionforge.backbones.diffusion.wan_conditioning import reference_latent
from motionforge.samplers.single import sample_single
from tests.backbones.diffusion.steering.test_steering import box, request


def prepared(region: torch.Tensor | None = None, **keys):
    """wan_tiny prepared without guidance for a panning plan over 9 frames: (the backbone, its sampler input, what steered it)."""
    backbone = WanTinyBackbone()
    result = backbone.prepare(WanTinyConfig(guidance_scale=1.0, **keys), request(frames=9, region=region))
    return backbone, result.sampler_input, result.steering


def reference(backbone: WanTinyBackbone, config: WanTinyConfig) -> torch.Tensor:
    """The picture's clean single-frame latent as the steering holds it, [1, C, h, w]."""
    with torch.no_grad():
        return reference_latent(backbone.load(config, torch.device("cpu")), request(frames=9).context.image, torch.device("cpu"))


def test_latent_init_starts_the_latent_frames_from_the_picture_moved_along_the_plan() -> None:
    backbone, problem, used = prepared(latent_init=True, init_strength=0.5)
    assert used == ["latent_init"] and len(problem.sigmas) == 4 - 2 + 1  # half the steps are left
    plan = request(frames=9).plan
    flow = latent_time.to_latent_frames(plan.flow, 4)  # [3, 2, 64, 64]: frame 0, then each group of 4 frames' mean
    noise = torch.randn(1, 16, 3, 8, 8, generator=torch.Generator().manual_seed(2)).permute(0, 2, 1, 3, 4)
    expected = latent_init.latent_init(reference(backbone, WanTinyConfig()), flow, noise, problem.sigmas[0])
    assert torch.allclose(problem.latents, expected, rtol=1e-5, atol=1e-5)
    warped = problem.latents - problem.sigmas[0] * noise  # [1, 3, C, h, w]: the picture moved along the plan
    assert torch.allclose(warped[:, 0], reference(backbone, WanTinyConfig()), atol=1e-4)  # frame 0 does not move
    assert not torch.allclose(warped[:, 2], warped[:, 0], atol=1e-2)  # the last group has panned


def test_the_region_hold_keeps_the_outside_of_the_brush_at_the_picture() -> None:
    backbone, problem, used = prepared(region=box())
    assert used == ["region"]
    final = sample_single(problem.denoiser, problem.latents, problem.sigmas)  # sigma-space Euler lands on x0
    picture = reference(backbone, WanTinyConfig())[:, None]  # [1, 1, C, h, w]
    outside, inside = final[..., 0, 0], final[..., 4, 4]  # a corner cell, and the brush's centre
    assert torch.allclose(outside, picture[..., 0, 0].expand_as(outside), atol=1e-5)
    assert not torch.allclose(inside, picture[..., 4, 4].expand_as(inside), atol=1e-2)


def test_ti2v_holds_latent_frame_0_at_the_picture_in_every_window() -> None:
    backbone, problem, used = prepared(layout="ti2v")
    picture = reference(backbone, WanTinyConfig(layout="ti2v"))
    x0 = problem.denoiser.denoise(problem.latents, problem.sigmas[0], torch.arange(3))
    assert used == [] and torch.allclose(x0[:, 0], picture, atol=1e-6)
    later = problem.denoiser.denoise(problem.latents[:, 1:], problem.sigmas[0], torch.arange(1, 3))  # a window without frame 0
    assert later.shape == (1, 2, 16, 4, 4) and not torch.allclose(later[:, 0], picture, atol=1e-2)
