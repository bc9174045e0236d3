"""The single-window sampler: the whole clip is one window of the denoiser, stepped down the sigma schedule."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from motionforge.core.hookspecs import Register, hookimpl
from motionforge.core.types import Denoiser, SamplerInput, Step, StepCallback, Stepper
from motionforge.samplers.steps import Euler, check_step, stepping
from motionforge.samplers.windows import fit_window


@torch.no_grad()
def sample_single(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    stepper: Stepper | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise latents x [B, F, C, h, w] (scaled to sigmas[0]) along sigmas [T+1] as one window; returns x0.

    ``stepper`` is the step rule (Euler when None); ``callback`` receives a
    :class:`~motionforge.core.types.Step` after every denoiser call.
    """
    stepper = stepper if stepper is not None else Euler()
    frames = torch.arange(x.shape[1])
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoiser.denoise(x, sigma, frames)
        if callback is not None:
            callback(Step(i, sigma, sigma_next, x, denoised, frames, call=i + 1, total=steps))
        x = stepper(x, denoised, sigma, sigma_next)
    return x


@dataclass
class SingleConfig:
    """Parameters of the single-window sampler."""

    step: str | None = None  # null: the backbone's own scheduler; or a sigma-space rule: euler | euler_ancestral | dpmpp_2m

    def __post_init__(self) -> None:
        check_step(self.step)


class SingleSampler:
    """One window over the whole clip (longer than the model's trained window with a warning, up to its limit)."""

    name = "single"
    Config = SingleConfig

    def sample(self, config: SingleConfig, problem: SamplerInput, *, callback: StepCallback | None = None) -> torch.Tensor:
        """Run :func:`sample_single` on the backbone's denoiser, schedule and initial latents."""
        fit_window(problem.latents.shape[1], problem, key="num_frames")
        sigmas, stepper = stepping(config.step, problem)
        return sample_single(problem.denoiser, problem.latents, sigmas, stepper=stepper, callback=callback)


@hookimpl
def register_samplers(register: Register) -> None:
    """Register the single-window sampler."""
    register(SingleSampler)
