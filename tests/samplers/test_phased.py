"""Shared-noise phased inference against denoisers whose answer is known in closed form."""

from __future__ import annotations

import pytest
import torch

from motionforge import ConfigError, SamplerInput
from motionforge.core.watch import CountingDenoiser
from motionforge.samplers.phased import PhasedConfig, PhasedSampler, phase_step, sample_phased, shared_noise
from motionforge.samplers.single import sample_single
from tests.samplers.analytic import Gaussian, MovingGaussian, karras_sigmas, noise

WINDOW = 8


def phased(denoiser, frames: int = 32, steps: int = 10, seed: int = 0, **keys) -> torch.Tensor:
    """The phased sampler on windows of 8 frames from seeded noise: x0 [1, F, 2, 3, 3]."""
    problem = SamplerInput(
        denoiser, karras_sigmas(steps), noise((1, frames, 2, 3, 3)) * 80.0, WINDOW, torch.Generator().manual_seed(seed)
    )
    return PhasedSampler().sample(PhasedConfig(**keys), problem)


def windows_of(x: torch.Tensor) -> list[torch.Tensor]:
    return list(x.split(WINDOW, dim=1))


def test_gamma_1_makes_every_window_an_exact_copy_of_window_1() -> None:
    first, *others = windows_of(phased(MovingGaussian(0.0, 0.5, 0.3), gamma=1.0))
    assert all(torch.equal(window, first) for window in others)


@pytest.mark.parametrize(
    "frames, steps, gamma", [(128, 25, 0.8), (32, 10, 0.5), (40, 7, 0.0), (16, 25, 0.8), (8, 5, 0.8), (24, 6, 1.0)]
)
def test_the_denoiser_runs_for_T_steps_then_T_minus_M_per_later_window(frames, steps, gamma) -> None:
    counter = CountingDenoiser(Gaussian(0.0, 1.0))
    phased(counter, frames=frames, steps=steps, gamma=gamma)
    windows, split = -(-frames // WINDOW), phase_step(gamma, steps)
    assert counter.calls == steps + (windows - 1) * (steps - split)
    assert counter.frame_evaluations == counter.calls * min(WINDOW, frames)


def test_at_128_frames_phased_costs_under_a_fifth_of_periodic_overlap_at_stride_8() -> None:
    # 25 + 7 · (25 − 20) = 60 window calls, 2.4 windows' worth, against 15 windows · 25 steps = 375
    counter = CountingDenoiser(Gaussian(0.0, 1.0))
    problem = SamplerInput(counter, karras_sigmas(25), noise((1, 128, 1, 1, 1)), 16, torch.Generator().manual_seed(0))
    PhasedSampler().sample(PhasedConfig(), problem)
    assert counter.calls == 60 and counter.calls / 375 <= 0.2


def test_without_fresh_noise_or_shuffle_the_windows_differ_only_by_their_motion_control() -> None:
    # a frame-independent denoiser: every later window is the same, and window 1 continued
    first, *others = windows_of(phased(Gaussian(0.2, 0.5), omega=0.0, shuffle=False))
    assert all(torch.equal(window, others[0]) for window in others)
    torch.testing.assert_close(others[0], first, rtol=0, atol=1e-12)


def test_a_later_window_continues_window_1_from_step_M_under_its_own_frames() -> None:
    steps, split = 10, phase_step(0.8, 10)
    sigmas = karras_sigmas(steps)
    states = []
    out = phased(MovingGaussian(0.0, 0.5, 0.25), steps=steps, omega=0.0, shuffle=False)
    sample_single(MovingGaussian(0.0, 0.5, 0.25), noise((1, 32, 2, 3, 3))[:, :WINDOW] * 80.0, sigmas, callback=states.append)
    x_m = states[split].x  # window 1's latents at step M
    for k in (1, 2, 3):
        frames = torch.arange(k * WINDOW, (k + 1) * WINDOW)

        class Shifted(MovingGaussian):
            """Window k's denoiser seen from a window that starts at frame 0."""

            def __init__(self, start: int) -> None:
                super().__init__(0.0, 0.5, 0.25)
                self.start = start

            def denoise(self, x, sigma, window_frames):
                return super().denoise(x, sigma, window_frames + self.start)

        expected = sample_single(Shifted(k * WINDOW), x_m, sigmas[split:])
        torch.testing.assert_close(out[:, frames], expected, rtol=0, atol=1e-10)


def test_later_windows_see_their_absolute_frames_from_step_M() -> None:
    denoiser = Gaussian(0.0, 1.0)
    phased(denoiser, frames=20, steps=5, gamma=0.6)
    assert denoiser.seen == [list(range(8))] * 5 + [list(range(8, 16))] * 2 + [list(range(12, 20))] * 2


def test_the_last_window_is_shifted_back_and_keeps_the_frames_it_shares() -> None:
    out = phased(MovingGaussian(0.0, 0.5, 0.3), frames=20)
    alone = phased(MovingGaussian(0.0, 0.5, 0.3), frames=16)
    assert torch.equal(out[:, :16], alone)  # frames 12-15 come from window 2, not from the shifted window 3


def test_the_shared_noise_is_the_first_windows_noise_shuffled_in_time_at_its_own_scale() -> None:
    n = noise((1, 8, 2, 3, 3))
    shuffled = shared_noise(n, 0.0, True, torch.Generator().manual_seed(4))
    matches = [[int(torch.allclose(shuffled[:, i], n[:, j], rtol=1e-12, atol=0)) for j in range(8)] for i in range(8)]
    assert all(sum(row) == 1 for row in matches) and sum(map(sum, zip(*matches))) == 8  # a permutation of frames
    mixed = shared_noise(n, 0.2, True, torch.Generator().manual_seed(4))
    assert not torch.equal(mixed, shuffled)
    assert float(mixed.std()) == pytest.approx(float(n.std()), rel=1e-9)
    assert torch.equal(shared_noise(n, 0.0, False, torch.Generator()), n)


def test_the_seed_fixes_the_shuffles_and_the_fresh_noise() -> None:
    assert torch.equal(phased(Gaussian(0.1, 0.6), seed=3), phased(Gaussian(0.1, 0.6), seed=3))
    assert not torch.equal(phased(Gaussian(0.1, 0.6), seed=3), phased(Gaussian(0.1, 0.6), seed=4))


def test_a_clip_within_one_window_is_the_single_sampler() -> None:
    sigmas, x_t = karras_sigmas(6), noise((1, 8, 2, 3, 3)) * 80.0
    problem = SamplerInput(MovingGaussian(0.0, 0.5, 0.3), sigmas, x_t, WINDOW, torch.Generator().manual_seed(0))
    assert torch.equal(PhasedSampler().sample(PhasedConfig(), problem), sample_single(MovingGaussian(0.0, 0.5, 0.3), x_t, sigmas))


def test_the_callback_counts_window_steps_and_names_the_window() -> None:
    steps = []
    sample_phased(Gaussian(0, 1), noise((1, 24, 1, 2, 2)), karras_sigmas(5), window=8, gamma=0.6, callback=steps.append)
    assert [(s.window, s.i) for s in steps] == [(0, i) for i in range(5)] + [(k, i) for k in (1, 2) for i in (3, 4)]
    assert [s.call for s in steps] == list(range(1, 10)) and {s.total for s in steps} == {9}


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"gamma": 1.5}, "sampler.gamma=1.5 must be between 0 and 1"),
        ({"omega": -0.1}, "sampler.omega=-0.1 must be zero or more"),
        ({"window": 0}, "sampler.window=0 must be at least 1 frame"),
        ({"step": "ddim"}, "sampler.step=ddim is not a step rule"),
    ],
)
def test_bad_parameters_are_refused_in_one_sentence(keys, message) -> None:
    with pytest.raises(ConfigError, match=message):
        PhasedConfig(**keys)


def test_the_phase_step_is_the_floor_of_gamma_times_steps() -> None:
    assert [phase_step(0.8, 25), phase_step(0.29, 100), phase_step(1.0, 7), phase_step(0.0, 7)] == [20, 29, 7, 0]
