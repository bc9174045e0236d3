"""The step rules every sampler shares, checked against Gaussian data whose probability-flow ODE is solved in closed form."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from motionforge import ConfigError
from motionforge import SamplerInput
from motionforge.samplers.single import sample_single
from motionforge.samplers.steps import Euler, make_stepper, stepping
from tests.samplers.analytic import Gaussian, PointMass, karras_sigmas, noise

MU, S, SIGMA_MIN = 0.3, 0.5, 0.02


def ode_answer(x_t: torch.Tensor) -> torch.Tensor:
    """Where the exact probability-flow ODE carries x_T (at σ = 80) for N(MU, S²) data, then the last step to σ = 0."""
    x_min = MU + (x_t - MU) * math.sqrt(S**2 + SIGMA_MIN**2) / math.sqrt(S**2 + 80.0**2)
    return Gaussian(MU, S).denoise(x_min, torch.tensor(SIGMA_MIN, dtype=torch.float64), None)


def error(step: str, steps: int) -> float:
    x_t = noise() * 80.0
    out = sample_single(Gaussian(MU, S), x_t, karras_sigmas(steps, SIGMA_MIN), stepper=make_stepper(step))
    return float((out - ode_answer(x_t)).abs().max())


def test_dpm_solver_plus_plus_2m_converges_at_second_order() -> None:
    errors = [error("dpmpp_2m", n) for n in (20, 40, 80)]
    assert errors[-1] < 0.005
    for coarse, fine in itertools.pairwise(errors):
        assert 0.2 < fine / coarse < 0.3  # halving the step size quarters the error


def test_dpm_solver_plus_plus_2m_beats_euler_at_the_same_cost() -> None:
    assert error("dpmpp_2m", 25) < error("euler", 25) / 4


def test_euler_ancestral_samples_the_data_distribution() -> None:
    x_t = noise((1, 8, 4, 32, 32)) * 80.0
    out = sample_single(Gaussian(MU, S), x_t, karras_sigmas(400), stepper=make_stepper("euler_ancestral", torch.Generator().manual_seed(1)))
    assert abs(float(out.mean()) - MU) < 0.01
    assert abs(float(out.std()) - S) < 0.015  # first order: 0.41 at 25 steps, 0.47 at 100, 0.49 at 400


def test_euler_ancestral_draws_its_noise_from_the_run_generator() -> None:
    sigmas, x_t = karras_sigmas(6), noise() * 80.0

    def run(seed: int) -> torch.Tensor:
        return sample_single(Gaussian(MU, S), x_t, sigmas, stepper=make_stepper("euler_ancestral", torch.Generator().manual_seed(seed)))

    assert torch.equal(run(3), run(3))
    assert not torch.allclose(run(3), run(4))


@pytest.mark.parametrize("step", ["euler", "euler_ancestral", "dpmpp_2m"])
def test_every_rule_lands_on_the_estimate_at_sigma_zero(step) -> None:
    mu = noise(seed=5)
    assert torch.equal(sample_single(PointMass(mu), noise() * 80.0, karras_sigmas(5), stepper=make_stepper(step)), mu)


def test_a_fresh_stepper_has_no_memory_of_another_trajectory() -> None:
    x, denoised = noise(), noise(seed=1)
    sigma, sigma_next = torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    used = make_stepper("dpmpp_2m")
    used(x, denoised * 3, torch.tensor(4.0, dtype=torch.float64), sigma)
    assert not torch.equal(used(x, denoised, sigma, sigma_next), make_stepper("dpmpp_2m")(x, denoised, sigma, sigma_next))


def test_a_fork_of_a_sigma_space_rule_starts_afresh() -> None:
    x, denoised = noise(), noise(seed=1)
    sigma, sigma_next = torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    used = make_stepper("dpmpp_2m")
    used(x, denoised * 3, torch.tensor(4.0, dtype=torch.float64), sigma)
    assert torch.equal(used.fork()(x, denoised, sigma, sigma_next), make_stepper("dpmpp_2m")(x, denoised, sigma, sigma_next))
    ancestral = make_stepper("euler_ancestral", torch.Generator().manual_seed(3))
    assert ancestral.fork().generator is ancestral.generator


def test_an_unknown_rule_names_the_choices() -> None:
    with pytest.raises(
        ConfigError, match="sampler.step=heun is not a step rule; choose one of: euler, euler_ancestral, dpmpp_2m"
    ):
        make_stepper("heun")


def test_the_sigma_space_rules_skip_the_steps_that_keep_their_sigma() -> None:
    problem = SamplerInput(Gaussian(MU, S), torch.tensor([4.0, 2.0, 2.0, 1.0, 0.0]), noise(), window=8, stepper=Euler)
    sigmas, stepper = stepping("euler", problem)
    assert sigmas.tolist() == [4.0, 2.0, 1.0, 0.0] and isinstance(stepper, Euler)
    assert stepping(None, problem)[0].tolist() == [4.0, 2.0, 2.0, 1.0, 0.0]
