"""Step rules in sigma space shared by every sampler, and a denoiser wrapper that counts its calls."""

from __future__ import annotations

from typing import Callable

import torch

from motionforge.core.errors import ConfigError
from motionforge.core.types import Denoiser

StepRule = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE derivative dx/dσ = (x − x0)/σ (Karras et al. 2022)."""
    return (x - denoised) / sigma


def euler_step(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """One deterministic Euler step of the probability-flow ODE from sigma to sigma_next; lands on x0 at σ = 0."""
    if float(sigma_next) == 0.0:
        return denoised
    return x + (sigma_next - sigma) * to_d(x, sigma, denoised)


STEP_RULES: dict[str, StepRule] = {"euler": euler_step}


def step_rule(name: str) -> StepRule:
    """The step rule registered under ``name``; a clear error listing the choices otherwise."""
    if name not in STEP_RULES:
        raise ConfigError(f"sampler.step={name} is not a step rule; choose one of: {', '.join(STEP_RULES)}")
    return STEP_RULES[name]


class CountingDenoiser:
    """Wraps a Denoiser and counts window evaluations and frame evaluations (for the manifest)."""

    def __init__(self, inner: Denoiser) -> None:
        self.inner = inner
        self.calls = 0
        self.frame_evaluations = 0

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Forward to the wrapped denoiser and count the call; x [B, Fw, C, h, w]."""
        self.calls += 1
        self.frame_evaluations += int(x.shape[0] * x.shape[1])
        return self.inner.denoise(x, sigma, frames)
