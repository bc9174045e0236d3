"""The single-window sampler against denoisers whose answer is known in closed form."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from motionforge import ConfigError, SamplerInput
from motionforge.core.types import FrameLimit
from motionforge.samplers.single import SingleConfig, SingleSampler, sample_single
from tests.samplers.analytic import Gaussian, PointMass, karras_sigmas, noise


def test_euler_follows_a_point_mass_exactly() -> None:
    mu = torch.randn(1, 6, 4, 3, 5, dtype=torch.float64)
    sigmas = karras_sigmas(10)
    x_t = noise() * sigmas[0]
    steps = []
    result = sample_single(PointMass(mu), x_t, sigmas, callback=lambda s: steps.append(s.x))
    assert torch.equal(result, mu)
    for i, x in enumerate(steps):  # x_i = mu + (x_T − mu) σ_i / σ_0, exactly
        torch.testing.assert_close(x, mu + (x_t - mu) * sigmas[i] / sigmas[0], rtol=1e-12, atol=1e-12)


def test_euler_converges_to_the_gaussian_ode_solution_at_first_order() -> None:
    mu, s, sigma_min = 0.3, 0.5, 0.02
    x_t = noise() * 80.0
    # the probability-flow ODE carries x_T to x(σ_min) = mu + (x_T − mu)·sqrt(s² + σ_min²)/sqrt(s² + σ_max²);
    # the schedule's last step to σ = 0 then returns the denoiser's answer there
    x_min = mu + (x_t - mu) * math.sqrt(s**2 + sigma_min**2) / math.sqrt(s**2 + 80.0**2)
    exact = Gaussian(mu, s).denoise(x_min, torch.tensor(sigma_min, dtype=torch.float64), None)

    def error(steps: int) -> float:
        return float((sample_single(Gaussian(mu, s), x_t, karras_sigmas(steps, sigma_min)) - exact).abs().max())

    errors = [error(n) for n in (25, 50, 100, 200)]
    assert errors[-1] < 0.025
    for coarse, fine in itertools.pairwise(errors):
        assert 0.45 < fine / coarse < 0.55  # halving the step size halves the error: first order


def test_the_whole_clip_is_one_window_with_absolute_frame_indices() -> None:
    denoiser = PointMass(torch.zeros(1, 6, 4, 3, 5, dtype=torch.float64))
    sample_single(denoiser, noise(), karras_sigmas(4))
    assert len(denoiser.seen) == 4
    assert all(shape == (1, 6, 4, 3, 5) and frames == [0, 1, 2, 3, 4, 5] for shape, _, frames in denoiser.seen)
    assert [sigma for _, sigma, _ in denoiser.seen] == karras_sigmas(4)[:-1].tolist()


def test_a_clip_longer_than_the_trained_window_runs_as_one_window_with_a_warning(caplog) -> None:
    denoiser = PointMass(torch.zeros(1, 6, 4, 3, 5, dtype=torch.float64))
    SingleSampler().sample(SingleConfig(), SamplerInput(denoiser, karras_sigmas(2), noise(), window=4))
    assert all(frames == list(range(6)) for _, _, frames in denoiser.seen)
    assert "num_frames=6 is more frames than the 4 per call this backbone's model was trained on" in caplog.text


def test_a_clip_beyond_the_backbones_limit_is_refused() -> None:
    problem = SamplerInput(Gaussian(0, 1), karras_sigmas(3), noise(), window=4, frame_limit=FrameLimit(5, "its table"))
    with pytest.raises(ConfigError, match="num_frames=6 is more frames than this backbone takes in one call: at most 5, set by its table"):
        SingleSampler().sample(SingleConfig(), problem)


def test_an_unknown_step_rule_is_refused() -> None:
    with pytest.raises(
        ConfigError, match="sampler.step=heun is not a step rule; choose one of: euler, euler_ancestral, dpmpp_2m, or null"
    ):
        SingleConfig(step="heun")


class Halving:
    """A step rule of the backbone's own that halves x at every step, counting the trajectories it is made for."""

    made = 0

    def __init__(self) -> None:
        Halving.made += 1

    def __call__(self, x, denoised, sigma, sigma_next):
        return x / 2

    def fork(self):
        return Halving()


def test_the_backbones_own_rule_runs_unless_a_sigma_space_rule_is_asked() -> None:
    x = noise()
    problem = SamplerInput(PointMass(torch.zeros_like(x)), karras_sigmas(3), x, window=8, stepper=Halving)
    assert torch.equal(SingleSampler().sample(SingleConfig(), problem), x / 8) and Halving.made == 1
    assert torch.equal(SingleSampler().sample(SingleConfig(step="euler"), problem), torch.zeros_like(x))


def test_same_input_same_bytes() -> None:
    problem = SamplerInput(Gaussian(0.1, 0.7), karras_sigmas(8), noise(), window=8)
    first = SingleSampler().sample(SingleConfig(), problem)
    assert torch.equal(first, SingleSampler().sample(SingleConfig(), problem))
