"""The single-window sampler: the whole clip is one window of the denoiser, stepped down the sigma schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from motionforge.core.denoiser import check_step, make_stepper
from motionforge.core.errors import ConfigError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import Denoiser, SamplerInput, StepCallback


@torch.no_grad()
def sample_single(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    window: int | None = None,
    step: str = "euler",
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise latents x [B, F, C, h, w] (scaled to sigmas[0]) along sigmas [T+1] as one window; returns x0.

    ``window`` is the backbone's native window: a clip longer than it is an error. ``callback``
    receives the step's state after every denoiser call (see :data:`~motionforge.core.types.StepCallback`).
    """
    num_frames = x.shape[1]
    if window is not None and num_frames > window:
        raise ConfigError(
            f"the single sampler denoises one window, and this backbone's window holds {window} frames, "
            f"not num_frames={num_frames}; set num_frames={window} or fewer, or use sampler=periodic_overlap "
            "or sampler=phased for a longer clip"
        )
    stepper = make_stepper(step, generator)
    frames = torch.arange(num_frames)
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoiser.denoise(x, sigma, frames)
        if callback is not None:
            callback(
                {"x": x, "i": i, "sigma": sigma, "sigma_next": sigma_next, "denoised": denoised, "frames": frames,
                 "call": i + 1, "total": steps}
            )  # fmt: skip
        x = stepper(x, denoised, sigma, sigma_next)
    return x


@dataclass
class SingleConfig:
    """Parameters of the single-window sampler."""

    step: str = "euler"  # the step rule: euler | euler_ancestral | dpmpp_2m


class SingleSampler:
    """One window over the whole clip (the clip may not be longer than the backbone's window)."""

    name = "single"
    Config = SingleConfig

    def check(self, config: SingleConfig) -> None:
        """Check the step rule; one sentence when it is unknown."""
        check_step(config.step)

    def sample(self, config: SingleConfig, problem: SamplerInput, *, callback: StepCallback | None = None) -> torch.Tensor:
        """Run :func:`sample_single` on the backbone's denoiser, schedule and initial latents."""
        return sample_single(
            problem.denoiser,
            problem.latents,
            problem.sigmas,
            window=problem.window,
            step=config.step,
            generator=problem.generator,
            callback=callback,
        )


@hookimpl
def register_samplers(register: Any) -> None:
    """Register the single-window sampler."""
    register(SingleSampler)
