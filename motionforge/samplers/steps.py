"""Step rules in sigma space shared by every sampler, and how a sampler picks its rule and sigmas.

A step rule moves latents x at sigma to sigma_next given the denoiser's estimate of the clean
latents there (k-diffusion's samplers, split into one step at a time so that windowed samplers can
step a clip, or each window, with the same rule). Every rule is a small :class:`~motionforge.core.types.Stepper`
object made afresh for each trajectory; ``fork`` gives the stepper of a trajectory that branches off
(phased inference's later windows). A backbone may also hand over its own rule, one that drives its
checkpoint's diffusers scheduler (``SamplerInput.stepper``): :func:`stepping` picks between them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from motionforge.core.errors import ConfigError
from motionforge.core.types import SamplerInput, Stepper


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE derivative dx/dσ = (x − x0)/σ (Karras et al. 2022)."""
    return (x - denoised) / sigma


def euler_step(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """One deterministic Euler step of the probability-flow ODE from sigma to sigma_next; lands on x0 at σ = 0.

    x + (σ' − σ)·(x − x0)/σ, written as (σ'/σ)·x + (1 − σ'/σ)·x0 so that no two large terms cancel:
    a flow model's first σ is about 10⁶ (t = 1 − 10⁻⁶), where the difference form loses the
    next step's latents to float32 rounding.
    """
    if float(sigma_next) == 0.0:
        return denoised
    ratio = sigma_next / sigma
    return ratio * x + (1 - ratio) * denoised


def ancestral_step(sigma: torch.Tensor, sigma_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma_down, sigma_up) of an ancestral step with eta = 1: deterministic down to sigma_down, fresh noise of sigma_up."""
    sigma_up = torch.minimum(sigma_next, (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
    return (sigma_next**2 - sigma_up**2) ** 0.5, sigma_up


class Euler:
    """The deterministic Euler rule (memoryless)."""

    def __call__(self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """Step x [B, F, C, h, w] from sigma to sigma_next."""
        return euler_step(x, denoised, sigma, sigma_next)

    def fork(self) -> Euler:
        """Another Euler stepper (there is no memory to carry)."""
        return Euler()


class EulerAncestral:
    """Euler ancestral (eta = 1): a deterministic step down to sigma_down, then fresh noise up to sigma_next."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def __call__(self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """Step x [B, F, C, h, w]; the noise is drawn on the CPU from the run's generator, so any device gives the same bytes."""
        if float(sigma_next) == 0.0:
            return denoised
        sigma, sigma_next = torch.as_tensor(sigma, dtype=torch.float64), torch.as_tensor(sigma_next, dtype=torch.float64)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next)
        x = euler_step(x, denoised, sigma.to(x.dtype), sigma_down.to(x.dtype))
        noise = torch.randn(x.shape, generator=self.generator, dtype=torch.float32).to(device=x.device, dtype=x.dtype)
        return x + noise * sigma_up.to(x.dtype)

    def fork(self) -> EulerAncestral:
        """Another ancestral stepper drawing from the same generator."""
        return EulerAncestral(self.generator)


class DpmSolverPlusPlus2M:
    """DPM-Solver++(2M) (Lu et al. 2022): second order from the previous step's x0 estimate, first order on the first step."""

    def __init__(self) -> None:
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

    def fork(self) -> DpmSolverPlusPlus2M:
        """A fresh solver: a branching trajectory starts first-order, with no x0 estimate of its own to extrapolate from."""
        return DpmSolverPlusPlus2M()


STEP_RULES: dict[str, Callable[[torch.Generator | None], Stepper]] = {
    "euler": lambda generator: Euler(),
    "euler_ancestral": EulerAncestral,
    "dpmpp_2m": lambda generator: DpmSolverPlusPlus2M(),
}


def check_step(name: str | None) -> None:
    """Refuse an unknown step rule with a sentence that lists the choices (None: the backbone's own scheduler)."""
    if name is not None and name not in STEP_RULES:
        raise ConfigError(
            f"sampler.step={name} is not a step rule; choose one of: {', '.join(STEP_RULES)}, "
            "or null for the backbone's own scheduler"
        )


def make_stepper(name: str, generator: torch.Generator | None = None) -> Stepper:
    """A fresh stepper for one trajectory under the sigma-space rule ``name`` (ancestral noise drawn from ``generator``)."""
    check_step(name)
    return STEP_RULES[name](generator)


def stepping(name: str | None, problem: SamplerInput) -> tuple[torch.Tensor, Stepper]:
    """The sigmas [T+1] and the stepper a sampler runs: the backbone's own rule for None (if it has one), else a sigma-space rule.

    The sigma-space rules skip the steps that keep their sigma (PNDM repeats one, for its own use).
    """
    if name is None and problem.stepper is not None:
        return problem.sigmas, problem.stepper()
    return torch.unique_consecutive(problem.sigmas), make_stepper(name or "euler", problem.generator)
