"""The step rules every sampler shares, checked against Gaussian data whose probability-flow ODE is solved in closed form."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from motionforge import ConfigError
from motionforge.core.denoiser import CountingDenoiser, make_stepper
from motionforge.samplers.single import sample_single
from tests.samplers.analytic import Gaussian, PointMass, karras_sigmas, noise

MU, S, SIGMA_MIN = 0.3, 0.5, 0.02


def ode_answer(x_t: torch.Tensor) -> torch.Tensor:
    """Where the exact probability-flow ODE carries x_T (at σ = 80) for N(MU, S²) data, then the last step to σ = 0."""
    x_min = MU + (x_t - MU) * math.sqrt(S**2 + SIGMA_MIN**2) / math.sqrt(S**2 + 80.0**2)
    return Gaussian(MU, S).denoise(x_min, torch.tensor(SIGMA_MIN, dtype=torch.float64), None)


def error(step: str, steps: int) -> float:
    x_t = noise() * 80.0
    return float((sample_single(Gaussian(MU, S), x_t, karras_sigmas(steps, SIGMA_MIN), step=step) - ode_answer(x_t)).abs().max())


def test_dpm_solver_plus_plus_2m_converges_at_second_order() -> None:
    errors = [error("dpmpp_2m", n) for n in (20, 40, 80)]
    assert errors[-1] < 0.005
    for coarse, fine in itertools.pairwise(errors):
        assert 0.2 < fine / coarse < 0.3  # halving the step size quarters the error


def test_dpm_solver_plus_plus_2m_beats_euler_at_the_same_cost() -> None:
    assert error("dpmpp_2m", 25) < error("euler", 25) / 4


def test_euler_ancestral_samples_the_data_distribution() -> None:
    x_t = noise((1, 8, 4, 32, 32)) * 80.0
    out = sample_single(
        Gaussian(MU, S), x_t, karras_sigmas(400), step="euler_ancestral", generator=torch.Generator().manual_seed(1)
    )
    assert abs(float(out.mean()) - MU) < 0.01
    assert abs(float(out.std()) - S) < 0.015  # first order: 0.41 at 25 steps, 0.47 at 100, 0.49 at 400


def test_euler_ancestral_draws_its_noise_from_the_run_generator() -> None:
    sigmas, x_t = karras_sigmas(6), noise() * 80.0

    def run(seed: int) -> torch.Tensor:
        return sample_single(Gaussian(MU, S), x_t, sigmas, step="euler_ancestral", generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(3), run(3))
    assert not torch.allclose(run(3), run(4))


@pytest.mark.parametrize("step", ["euler", "euler_ancestral", "dpmpp_2m"])
def test_every_rule_lands_on_the_estimate_at_sigma_zero(step) -> None:
    mu = noise(seed=5)
    assert torch.equal(sample_single(PointMass(mu), noise() * 80.0, karras_sigmas(5), step=step), mu)


def test_a_fresh_stepper_has_no_memory_of_another_trajectory() -> None:
    x, denoised = noise(), noise(seed=1)
    sigma, sigma_next = torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    used = make_stepper("dpmpp_2m")
    used(x, denoised * 3, torch.tensor(4.0, dtype=torch.float64), sigma)
    assert not torch.equal(used(x, denoised, sigma, sigma_next), make_stepper("dpmpp_2m")(x, denoised, sigma, sigma_next))


def test_an_unknown_rule_names_the_choices() -> None:
    with pytest.raises(
        ConfigError, match="sampler.step=heun is not a step rule; choose one of: euler, euler_ancestral, dpmpp_2m"
    ):
        make_stepper("heun")


def test_the_counter_counts_windows_and_frames() -> None:
    counter = CountingDenoiser(Gaussian(MU, S))
    counter.denoise(noise((2, 6, 4, 3, 5)), torch.tensor(1.0), torch.arange(6))
    counter.denoise(noise((2, 4, 4, 3, 5)), torch.tensor(1.0), torch.arange(4))
    assert (counter.calls, counter.frame_evaluations) == (2, 20)
