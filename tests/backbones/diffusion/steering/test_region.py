"""The region hold on the tiny backbones: the outside held at the picture's latent, in its steps only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motionforge import animate, compose_config
from motionforge.backbones.diffusion.steering import StepWindow, region
from motionforge.samplers.steps import euler_step
from tests.backbones.diffusion.steering.test_steering import BACKBONES, QUIET, box, reference, request, run


@pytest.mark.parametrize("name", BACKBONES)
def test_region_holds_the_outside_at_the_reference_and_strength_0_is_bit_identical(name) -> None:
    brushed = request(region=box())
    free, _ = run(name, brushed, region=False)
    zero, _ = run(name, brushed, region_strength=0.0)
    steps: list = []
    held, problem = run(name, brushed, steps)
    assert torch.equal(free, zero) and not torch.equal(free, held)
    ref = reference(name, brushed)[:, None]  # [1, 1, 4, 8, 8]
    outside = (region.feathered(box(), 8, 8, 1.0) == 0).expand_as(held)  # [1, F, 4, 8, 8]
    for step in steps:  # every step's x0 is the reference outside
        assert torch.equal(step.denoised[outside], ref.expand_as(held)[outside])
    if name == "svd_tiny":  # Euler's last step lands on σ = 0: the latents end exactly on the reference
        assert float(problem.sigmas[-1]) == 0.0 and torch.equal(held[outside], ref.expand_as(held)[outside])
    else:  # DDIM ends at its final σ_f ≈ 0.03: the reference plus that much of the initial noise
        sigma_f = float(problem.sigmas[-1])
        gap = (held - ref)[outside].abs().max()
        assert 0 < sigma_f < 0.05 and float(gap) <= sigma_f * float(problem.latents.abs().max()) / float(problem.sigmas[0])
    assert float((held - ref)[..., 3:5, 3:5].abs().mean()) > 0.1  # the centre cells, inside the brush, are the model's


def test_an_euler_step_with_x0_at_the_reference_keeps_the_noise_ratio() -> None:
    x = torch.randn(1, 2, 4, 8, 8)
    ref = torch.randn(1, 4, 8, 8)

    class Zero:
        def denoise(self, x, sigma, frames):
            return x * 0

    window = StepWindow.of(torch.tensor([10.0, 4.0, 0.0]), 0.0, 1.0)
    hold = region.RegionHold(Zero(), ref, torch.ones(1, 1, 8, 8), window)
    denoised = hold.denoise(x, torch.tensor(10.0), torch.arange(2))
    stepped = euler_step(x, denoised, torch.tensor(10.0), torch.tensor(4.0))
    assert torch.allclose(stepped - ref[:, None], 0.4 * (x - ref[:, None]), atol=1e-6)


def test_the_region_hold_acts_only_in_its_step_range() -> None:
    brushed = request(region=box())
    free_steps: list = []
    late_steps: list = []
    run("svd_tiny", brushed, free_steps, region=False)
    run("svd_tiny", brushed, late_steps, region_start=0.5)
    assert torch.equal(free_steps[0].denoised, late_steps[0].denoised)
    assert torch.equal(free_steps[1].denoised, late_steps[1].denoised)
    assert not torch.equal(free_steps[2].denoised, late_steps[2].denoised)
    early: list = []
    run("svd_tiny", brushed, early, region_end=0.5)
    ref = reference("svd_tiny", brushed)[:, None]
    outside = (region.feathered(box(), 8, 8, 1.0) == 0).expand_as(early[0].denoised)
    assert torch.equal(early[1].denoised[outside], ref.expand_as(early[1].denoised)[outside])
    assert not torch.equal(early[2].denoised[outside], ref.expand_as(early[2].denoised)[outside])


def test_the_feathered_region_fades_outwards_and_is_exactly_zero_further_out() -> None:
    hard = region.feathered(box(), 8, 8, 0.0)[0, 0]
    soft = region.feathered(box(), 8, 8, 1.0)[0, 0]
    wide = region.feathered(box(), 8, 8, 2.0)[0, 0]
    assert torch.equal(hard[2:6, 2:6], torch.ones(4, 4)) and float(hard.sum()) == 16
    assert torch.equal(soft[2:6, 2:6], torch.ones(4, 4)) and 0 < float(soft[1, 4]) < 1
    assert float(soft[0, 4]) == 0 and float(soft[0, 0]) == 0  # cut at one cell
    assert 0 < float(wide[0, 4]) < float(wide[1, 4]) < 1


def test_a_brush_through_the_config_holds_the_outside_of_the_clip(picture, tmp_path) -> None:
    base = ["backbone=svd_tiny", f"image={picture}", "adapters=[brush]", "adapters.brush.boxes=[[16,16,48,48]]"]
    run_keys = [*base, "num_frames=4", "steps=2", "output.save=false", *QUIET]
    held, zero, free = (
        animate(compose_config([*run_keys, *keys])).frames
        for keys in ([], ["backbone.region_strength=0"], ["backbone.region=false"])
    )
    assert np.array_equal(zero, free) and not np.array_equal(held, free)
