"""A scheduler's steps in sigma space; sigma-space Euler on them reproduces deterministic DDIM and SVD's Euler exactly."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from motionforge import ConfigError
from motionforge.backbones.diffusion.schedulers import make_scheduler
from motionforge.backbones.diffusion.schedules import KarrasDenoiser, schedule_of
from motionforge.backbones.diffusion.tiny import scheduler_config, tiny_sd_components, tiny_svd_components
from motionforge.samplers.steps import euler_step

DDIM_CONFIG = scheduler_config(tiny_sd_components()["scheduler"])
SVD_CONFIG = scheduler_config(tiny_svd_components()["scheduler"])


def steps_of(config: dict, steps: int):
    """The sigma-space view of the scheduler a folder's config names, for ``steps`` steps."""
    return schedule_of(make_scheduler(config, None, {}, steps))


class FixedOutput:
    """A model whose prediction (eps or v) is a fixed function of its input, recording the timesteps it was given."""

    def __init__(self) -> None:
        self.timesteps: list[float] = []

    def __call__(self, z: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        self.timesteps.append(float(timestep))
        return torch.sin(3 * z) + 0.1 * float(timestep) / 1000


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_euler_in_sigma_space_is_deterministic_ddim(spacing, prediction) -> None:
    config = {**DDIM_CONFIG, "timestep_spacing": spacing, "prediction_type": prediction}
    scheduler = DDIMScheduler.from_config(config)
    scheduler.set_timesteps(4)
    schedule = steps_of(config, 4)
    assert schedule.timesteps.tolist() == scheduler.timesteps.float().tolist()
    model = FixedOutput()
    denoiser = KarrasDenoiser(model, schedule)
    noise = torch.randn(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))  # [B, F, C, h, w]
    z = noise * scheduler.init_noise_sigma
    x = noise * schedule.init_noise_scale
    for i, t in enumerate(scheduler.timesteps):
        z = scheduler.step(model(z, t, torch.arange(3)), t, z).prev_sample
        x = euler_step(x, denoiser.denoise(x, schedule.sigmas[i], torch.arange(3)), schedule.sigmas[i], schedule.sigmas[i + 1])
    assert model.timesteps[1::2] == scheduler.timesteps.float().tolist()  # the denoiser called it at DDIM's own timesteps
    assert (schedule.to_sample(x, schedule.final_sigma) - z).abs().max() <= 1e-5 * z.abs().max()


def test_ddim_ends_at_the_sigma_of_its_final_alpha() -> None:
    schedule = steps_of(DDIM_CONFIG, 3)
    alpha = DDIMScheduler.from_config(DDIM_CONFIG).alphas_cumprod[0]
    assert schedule.final_sigma == pytest.approx(float(((1 - alpha) / alpha) ** 0.5))
    assert steps_of({**DDIM_CONFIG, "set_alpha_to_one": True}, 3).final_sigma == 0.0
    assert len(schedule.sigmas) == 4 and bool((schedule.sigmas[1:] < schedule.sigmas[:-1]).all())
    latents = torch.ones(2)
    assert torch.equal(schedule.to_sample(latents, 0.0), latents) and schedule.variance_preserving
    assert torch.allclose(schedule.from_sample(schedule.to_sample(latents, 2.0), 2.0), latents)
    assert not steps_of(SVD_CONFIG, 3).variance_preserving  # Euler's sample is x itself


def test_euler_in_sigma_space_is_svds_euler_scheduler() -> None:
    scheduler = EulerDiscreteScheduler.from_config(SVD_CONFIG)
    scheduler.set_timesteps(5)
    schedule = steps_of(SVD_CONFIG, 5)
    assert torch.equal(schedule.sigmas, scheduler.sigmas) and schedule.final_sigma == 0.0
    assert schedule.init_noise_scale == pytest.approx(float(scheduler.init_noise_sigma))
    model = FixedOutput()
    denoiser = KarrasDenoiser(model, schedule)
    noise = torch.randn(1, 2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    sample = x = noise * scheduler.init_noise_sigma
    for i, t in enumerate(scheduler.timesteps):
        sample = scheduler.step(model(scheduler.scale_model_input(sample, t), t, torch.arange(2)), t, sample).prev_sample
        x = euler_step(x, denoiser.denoise(x, schedule.sigmas[i], torch.arange(2)), schedule.sigmas[i], schedule.sigmas[i + 1])
    assert model.timesteps[1::2] == pytest.approx(scheduler.timesteps.tolist())  # 0.25·log σ
    assert (x - sample).abs().max() <= 1e-5 * sample.abs().max()


def test_a_sigma_off_the_schedule_gets_an_interpolated_timestep() -> None:
    ddim = steps_of(DDIM_CONFIG, 2)
    alphas = DDIMScheduler.from_config(DDIM_CONFIG).alphas_cumprod
    sigma_500 = ((1 - alphas[500]) / alphas[500]) ** 0.5
    assert float(ddim.label(sigma_500)[0]) == pytest.approx(500.0, abs=1e-3)
    assert float(ddim.label(ddim.sigmas[0])[0]) == float(ddim.timesteps[0])
    svd = steps_of(SVD_CONFIG, 2)
    assert float(svd.label(torch.tensor(3.0))[0]) == pytest.approx(0.25 * float(torch.tensor(3.0).log()))


def test_an_unsupported_prediction_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="prediction_type=sample is not supported"):
        steps_of({**DDIM_CONFIG, "prediction_type": "sample"}, 2)
    with pytest.raises(ConfigError, match="steps=2000 is more than"):
        steps_of(DDIM_CONFIG, 2000)
