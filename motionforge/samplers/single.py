"""The single-window sampler: the whole clip is one window of the denoiser, stepped down the sigma schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import trange

from motionforge.core.denoiser import step_rule
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
    callback: StepCallback | None = None,
    disable: bool = True,
) -> torch.Tensor:
    """Denoise latents x [B, F, C, h, w] (scaled to sigmas[0]) along sigmas [T+1] as one window; returns x0.

    ``window`` is the backbone's native window: a clip longer than it is an error. ``callback``
    receives ``{"x", "i", "sigma", "sigma_next", "denoised"}`` after every denoiser call.
    """
    num_frames = x.shape[1]
    if window is not None and num_frames > window:
        raise ConfigError(
            f"the single sampler denoises one window, and this backbone's window holds {window} frames, "
            f"not num_frames={num_frames}; set num_frames={window} or fewer"
        )
    rule = step_rule(step)
    frames = torch.arange(num_frames)
    for i in trange(len(sigmas) - 1, disable=disable, desc="sampling"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoiser.denoise(x, sigma, frames)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigma, "sigma_next": sigma_next, "denoised": denoised})
        x = rule(x, denoised, sigma, sigma_next)
    return x


@dataclass
class SingleConfig:
    """Parameters of the single-window sampler."""

    step: str = "euler"  # the step rule


class SingleSampler:
    """One window over the whole clip (the clip may not be longer than the backbone's window)."""

    name = "single"
    Config = SingleConfig

    def sample(
        self, config: SingleConfig, problem: SamplerInput, *, callback: StepCallback | None = None, disable: bool = True
    ) -> torch.Tensor:
        """Run :func:`sample_single` on the backbone's denoiser, schedule and initial latents."""
        return sample_single(
            problem.denoiser,
            problem.latents,
            problem.sigmas,
            window=problem.window,
            step=config.step,
            callback=callback,
            disable=disable,
        )


@hookimpl
def register_samplers(register: Any) -> None:
    """Register the single-window sampler."""
    register(SingleSampler)
