"""A rectified-flow scheduler in sigma space: σ = t/(1 − t), z = x/(1 + σ), and the samplers' steps are the flow's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from motionforge.backbones.diffusion import latent_time
from motionforge.backbones.diffusion.schedulers import scheduler_steps
from motionforge.backbones.diffusion.schedules import KarrasDenoiser, schedule_of
from motionforge.samplers.single import sample_single
from motionforge.samplers.steps import Euler

SHAPE = (1, 3, 2, 4, 4)  # [B, F, C, h, w]


def velocity(z: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
    """A smooth stand-in for a flow model: v(z, t), the same in every loop below."""
    return torch.tanh(z) * (0.5 + float(timestep) / 1000) - 0.3


def unipc(steps: int) -> UniPCMultistepScheduler:
    """Wan's scheduler: UniPC on flow sigmas, flow prediction, shift 3."""
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    scheduler.set_timesteps(steps)
    return scheduler


def test_flow_times_become_sigmas_and_the_flow_sample_is_x_over_one_plus_sigma() -> None:
    scheduler = unipc(6)
    schedule = schedule_of(scheduler)
    t = scheduler.sigmas.double()
    assert schedule.flow and schedule.prediction_type == "flow_prediction"
    assert torch.allclose(schedule.sigmas.double(), t / (1 - t), rtol=1e-6) and float(schedule.sigmas[-1]) == 0.0
    assert torch.equal(schedule.timesteps, scheduler.timesteps.float())  # the model is told the scheduler's own labels
    assert schedule.init_noise_scale == float(1 + schedule.sigmas[0])  # the unit noise is the flow sample at t_0
    x = torch.randn(SHAPE)
    sigma = float(schedule.sigmas[2])
    assert torch.allclose(schedule.to_sample(x, sigma), x * (1 - float(t[2])), rtol=1e-5)
    assert torch.allclose(schedule.from_sample(schedule.to_sample(x, sigma), sigma), x, rtol=1e-6)
    timestep, read_at = schedule.label(torch.tensor(0.5))  # off the schedule: t = σ/(1 + σ)
    assert float(timestep) == pytest.approx(1000 / 3) and read_at == 0.5


def test_euler_in_sigma_space_is_the_flow_matching_euler_step() -> None:
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(5)
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    z = noise.clone()
    for timestep in scheduler.timesteps:  # diffusers' own loop, in the pipeline's sample space
        z = scheduler.step(velocity(z, timestep), timestep, z, return_dict=False)[0]
    schedule = schedule_of(scheduler)
    x = sample_single(KarrasDenoiser(velocity, schedule), noise * schedule.init_noise_scale, schedule.sigmas, stepper=Euler())
    assert torch.allclose(x, z, atol=1e-5)


def test_the_scheduler_step_rule_drives_unipc_as_its_own_loop_does() -> None:
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    scheduler, z = unipc(6), noise.clone()
    for timestep in scheduler.timesteps:
        z = scheduler.step(velocity(z, timestep), timestep, z, return_dict=False)[0]
    schedule = schedule_of(unipc(6))
    stepper = scheduler_steps(unipc(6), schedule, None)()
    x = sample_single(KarrasDenoiser(velocity, schedule), noise * schedule.init_noise_scale, schedule.sigmas, stepper=stepper)
    assert torch.allclose(x, z, atol=1e-5)


def test_pixel_frames_map_to_latent_frames_with_frame_0_on_its_own() -> None:
    assert [latent_time.latent_frames(f, 4) for f in (1, 5, 9, 81)] == [1, 2, 3, 21]
    assert [latent_time.pixel_frames(w, 4) for w in (1, 2, 21)] == [1, 5, 81]
    assert [g.tolist() for g in latent_time.groups(9, 4)] == [[0], [1, 2, 3, 4], [5, 6, 7, 8]]
    flow = torch.arange(9, dtype=torch.float32).view(9, 1, 1, 1).expand(9, 2, 3, 3)  # [F, 2, H, W]: f_{0→i} = i
    assert np.allclose(latent_time.to_latent_frames(flow, 4)[:, 0, 0, 0].numpy(), [0.0, 2.5, 6.5])
