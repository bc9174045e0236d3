"""Step rules in sigma space shared by every sampler, and a denoiser wrapper that counts its calls.

A step rule moves latents x at sigma to sigma_next given the denoiser's estimate of the clean
latents there (k-diffusion's samplers, split into one step at a time so that windowed samplers can
step a clip, or each window, with the same rule). Rules with memory (DPM-Solver++(2M)) or noise
(Euler ancestral) are small objects made afresh for each trajectory by :func:`make_stepper`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

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


class Stepper(Protocol):
    """One trajectory's step rule: x at sigma and its x0 estimate → x at sigma_next."""

    def __call__(self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """Step x [B, F, C, h, w] from sigma to sigma_next."""
        ...


class EulerAncestral:
    """Euler ancestral (eta = 1): a deterministic step down to sigma_down, then fresh noise up to sigma_next."""

    def __init__(self, generator: torch.Generator | None) -> None:
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def __call__(self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """Step x [B, F, C, h, w]; the noise is drawn on the CPU from the run's generator, so any device gives the same bytes."""
        if float(sigma_next) == 0.0:
            return denoised
        sigma, sigma_next = torch.as_tensor(sigma, dtype=torch.float64), torch.as_tensor(sigma_next, dtype=torch.float64)
        sigma_up = torch.minimum(sigma_next, (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
        sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
        x = euler_step(x, denoised, sigma.to(x.dtype), sigma_down.to(x.dtype))
        noise = torch.randn(x.shape, generator=self.generator, dtype=torch.float32).to(device=x.device, dtype=x.dtype)
        return x + noise * sigma_up.to(x.dtype)


class DpmSolverPlusPlus2M:
    """DPM-Solver++(2M) (Lu et al. 2022): second order from the previous step's x0 estimate, first order on the first step."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None  # (x0 estimate, its sigma) of the last step

    def __call__(self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """Step x [B, F, C, h, w] in log-sigma time t = −log σ."""
        previous, self.previous = self.previous, (denoised, torch.as_tensor(sigma))
        if float(sigma_next) == 0.0:
            return denoised
        t, t_next = (
            -torch.log(torch.as_tensor(sigma, dtype=torch.float64)),
            -torch.log(torch.as_tensor(sigma_next, dtype=torch.float64)),
        )
        h = t_next - t
        estimate = denoised
        if previous is not None:
            old, old_sigma = previous
            r = (t - -torch.log(old_sigma.to(torch.float64))) / h  # the last step's length over this one's
            estimate = (1 + 1 / (2 * r)).to(x.dtype) * denoised - (1 / (2 * r)).to(x.dtype) * old
        ratio = (torch.as_tensor(sigma_next, dtype=torch.float64) / torch.as_tensor(sigma, dtype=torch.float64)).to(x.dtype)
        return ratio * x - torch.expm1(-h).to(x.dtype) * estimate


class Stateless:
    """A memoryless step function used as a Stepper."""

    def __init__(self, rule: StepRule) -> None:
        self.rule = rule

    def __call__(self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """Apply the step function."""
        return self.rule(x, denoised, sigma, sigma_next)


STEP_RULES: dict[str, Callable[[torch.Generator | None], Stepper]] = {
    "euler": lambda generator: Stateless(euler_step),
    "euler_ancestral": EulerAncestral,
    "dpmpp_2m": DpmSolverPlusPlus2M,
}


def check_step(name: str) -> None:
    """Refuse an unknown step rule with a sentence that lists the choices."""
    if name not in STEP_RULES:
        raise ConfigError(f"sampler.step={name} is not a step rule; choose one of: {', '.join(STEP_RULES)}")


def make_stepper(name: str, generator: torch.Generator | None = None) -> Stepper:
    """A fresh stepper for one trajectory under the step rule ``name`` (ancestral noise drawn from ``generator``)."""
    check_step(name)
    return STEP_RULES[name](generator)


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
