"""MOFA-Video's periodic sampling against denoisers whose answer is known in closed form."""

from __future__ import annotations

import pytest
import torch

from motionforge import ConfigError, SamplerInput
from motionforge.core.watch import CountingDenoiser
from motionforge.samplers.periodic_overlap import PeriodicOverlapConfig, PeriodicOverlapSampler, sample_periodic_overlap
from motionforge.samplers.single import sample_single
from motionforge.samplers.steps import make_stepper
from tests.samplers.analytic import Gaussian, MovingGaussian, PointMass, karras_sigmas, noise


@pytest.mark.parametrize("weighting", ["flat", "pyramid", "gaussian"])
@pytest.mark.parametrize("step", ["euler", "euler_ancestral", "dpmpp_2m"])
@pytest.mark.parametrize("anchor", [False, True])
def test_one_window_covering_the_clip_is_the_single_sampler(weighting, step, anchor) -> None:
    x_t, sigmas = noise() * 80.0, karras_sigmas(6)
    single = sample_single(MovingGaussian(0.1, 0.6, 0.2), x_t, sigmas, stepper=make_stepper(step, torch.Generator().manual_seed(2)))
    periodic = sample_periodic_overlap(
        MovingGaussian(0.1, 0.6, 0.2), x_t, sigmas, window=6, weighting=weighting, anchor_first_frame=anchor,
        stepper=make_stepper(step, torch.Generator().manual_seed(2)),
    )  # fmt: skip
    assert torch.equal(periodic, single)


def test_every_window_sees_its_absolute_frame_indices_at_every_sigma() -> None:
    denoiser = PointMass(torch.zeros(1, 1, 4, 3, 5, dtype=torch.float64))
    sample_periodic_overlap(denoiser, noise((1, 20, 4, 3, 5)), karras_sigmas(3), window=8, stride=5)
    frames = [f for _, _, f in denoiser.seen]
    assert frames == [list(range(s, s + 8)) for s in (0, 5, 10, 12)] * 3
    assert [sigma for _, sigma, _ in denoiser.seen] == [s for s in karras_sigmas(3)[:-1].tolist() for _ in range(4)]


def test_a_framewise_denoiser_gives_the_single_answer_whatever_the_windows() -> None:
    # each frame's x0 depends on that frame alone, so every window agrees and the fused estimate is the single one
    x_t, sigmas = noise((1, 40, 4, 3, 5)) * 80.0, karras_sigmas(8)
    single = sample_single(MovingGaussian(0.0, 0.5, 0.1), x_t, sigmas)
    for stride, weighting in ((8, "flat"), (3, "pyramid"), (16, "gaussian")):
        periodic = sample_periodic_overlap(
            MovingGaussian(0.0, 0.5, 0.1), x_t, sigmas, window=16, stride=stride, weighting=weighting
        )
        torch.testing.assert_close(periodic, single, rtol=0, atol=1e-12)


def test_overlapping_estimates_are_averaged_with_the_weights() -> None:
    class WindowStart:
        """Answers, for every frame, the index of the window's first frame: the fused x0 shows the weights."""

        def denoise(self, x, sigma, frames):
            return torch.full_like(x, float(frames[0]))

    sigmas = torch.tensor([1.0, 0.0], dtype=torch.float64)
    flat = sample_periodic_overlap(WindowStart(), torch.zeros(1, 12, 1, 1, 1, dtype=torch.float64), sigmas, window=8, stride=4)
    assert flat[0, :, 0, 0, 0].tolist() == [0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4]  # frames 4-7 in windows 0 and 4


def test_with_an_anchor_frame_0_comes_from_the_first_window() -> None:
    class LastFrame:
        """Answers the window's last frame index everywhere."""

        def denoise(self, x, sigma, frames):
            return torch.full_like(x, float(frames[-1]))

    sigmas = torch.tensor([1.0, 0.0], dtype=torch.float64)
    out = sample_periodic_overlap(
        LastFrame(), torch.zeros(1, 20, 1, 1, 1, dtype=torch.float64), sigmas, window=8, stride=7, anchor_first_frame=True
    )
    assert float(out[0, 0]) == 7.0  # the first window is frames 0-7; the others hold frame 0 only as context


def test_the_denoiser_runs_once_per_window_per_step() -> None:
    counter = CountingDenoiser(Gaussian(0.0, 1.0))
    problem = SamplerInput(counter, karras_sigmas(25), noise((1, 128, 1, 2, 2)) * 80.0, window=16)
    PeriodicOverlapSampler().sample(PeriodicOverlapConfig(stride=8), problem)
    assert (counter.calls, counter.frame_evaluations) == (15 * 25, 15 * 25 * 16)


def test_the_default_window_is_the_backbones_and_the_default_stride_half_of_it() -> None:
    denoiser = PointMass(torch.zeros(1, 1, 1, 1, 1, dtype=torch.float64))
    problem = SamplerInput(denoiser, karras_sigmas(1), noise((1, 30, 1, 1, 1)), window=10)
    PeriodicOverlapSampler().sample(PeriodicOverlapConfig(), problem)
    assert [f[0] for _, _, f in denoiser.seen] == [0, 5, 10, 15, 20]


def test_the_callback_gets_the_whole_clip_once_per_step() -> None:
    steps = []
    sample_periodic_overlap(Gaussian(0, 1), noise((1, 20, 1, 2, 2)), karras_sigmas(4), window=8, callback=steps.append)
    assert [(s.i, s.call, s.total, s.denoised.shape[1], len(s.frames)) for s in steps] == [
        (i, i + 1, 4, 20, 20) for i in range(4)
    ]


def test_same_seed_same_bytes() -> None:
    def run() -> torch.Tensor:
        problem = SamplerInput(
            MovingGaussian(0.1, 0.7, 0.05), karras_sigmas(8), noise((1, 40, 2, 3, 3)), 16, torch.Generator().manual_seed(9)
        )
        return PeriodicOverlapSampler().sample(PeriodicOverlapConfig(step="euler_ancestral", weighting="pyramid"), problem)

    assert torch.equal(run(), run())


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"stride": 20}, "sampler.stride=20 must be between 1 and the window of 16"),
        ({"stride": 16, "anchor_first_frame": True}, "between 1 and window − 1 = 15 with anchor_first_frame"),
        ({"window": 1, "anchor_first_frame": True}, "sampler.window=1 must be at least 2 frames"),
        ({"weighting": "triangle"}, "sampler.weighting=triangle is not a weighting; choose one of: flat, pyramid, gaussian"),
        ({"step": "heun"}, "sampler.step=heun is not a step rule"),
    ],
)
def test_bad_parameters_are_refused_in_one_sentence(keys, message) -> None:
    problem = SamplerInput(Gaussian(0, 1), karras_sigmas(2), noise((1, 40, 1, 1, 1)), window=16)
    with pytest.raises(ConfigError, match=message):
        PeriodicOverlapSampler().sample(PeriodicOverlapConfig(**keys), problem)
