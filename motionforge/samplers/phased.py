"""Shared-noise phased inference (Controllable Longer Image Animation, §3.4): later windows redo only the last steps of the first.

Our reading of eqs. 9–12. The clip is cut into K windows of L frames side by side (the last
shifted back to end on the last frame; its frames that an earlier window already made are kept
from that window). Window 1 runs all T steps. At step M = ⌊γT⌋ it keeps its x0 estimate x0⁽¹⁾
and its predicted noise n = (x_M − x0⁽¹⁾)/σ_M (eq. 10: the noise the model sees in x_M). Every later
window k starts at step M from

    x_M⁽ᵏ⁾ = x0⁽¹⁾ + σ_M · normalise(shuffle_k(n) + ω·ε_k)          (eqs. 11–12)

where shuffle_k permutes the frame order of n (a permutation drawn from the run's seeded
generator, so fixed by the seed and k), ε_k ~ N(0, I) is fresh noise, and normalise rescales to
the standard deviation of n, so the noise level stays that of window 1. Window k then runs steps
M … T−1 (eq. 9: V^k = D(z¹_{1:M}, zᵏ_{M+1:T})) with its own frames' motion control, since the
denoiser gets its absolute frame indices. The contours come from window 1's first M steps, the
detailed motion of each window from its own last T − M. Denoiser calls: T + (K−1)(T−M).
γ = 1 makes every window a copy of window 1's result; with ω = 0 and ``shuffle=false``
the windows differ only by their motion control. Each later window steps with a fork of window 1's
stepper taken at step M: a diffusers scheduler's state (its position and multistep history) as
window 1 had it there; the sigma-space rules carry no schedule position, so theirs start afresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from motionforge.core.errors import ConfigError
from motionforge.core.hookspecs import Register, hookimpl
from motionforge.core.types import Denoiser, SamplerInput, Step, StepCallback, Stepper
from motionforge.samplers.steps import Euler, check_step, stepping
from motionforge.samplers.windows import consecutive_windows, fit_window


def phase_step(gamma: float, steps: int) -> int:
    """M = ⌊γ·T⌋, the step at which phased inference splits (γ in [0, 1], T steps)."""
    return math.floor(gamma * steps + 1e-9)


def shared_noise(noise: torch.Tensor, omega: float, shuffle: bool, generator: torch.Generator) -> torch.Tensor:
    """normalise(shuffle_k(n) + ω·ε_k) for one later window: n [B, L, C, h, w] → the same shape, drawn from the generator on the CPU."""
    length = noise.shape[1]
    order = torch.randperm(length, generator=generator) if shuffle else torch.arange(length)
    mixed = noise[:, order.to(noise.device)]  # [B, L, C, h, w]
    if omega > 0:
        fresh = torch.randn(noise.shape, generator=generator, dtype=torch.float32).to(device=noise.device, dtype=noise.dtype)
        mixed = mixed + omega * fresh
    accurate = torch.promote_types(noise.dtype, torch.float32)  # half precision sums in float32
    spread = mixed.to(accurate).std()
    if float(spread) > 0:
        mixed = mixed * (noise.to(accurate).std() / spread).to(noise.dtype)
    return mixed


@torch.no_grad()
def sample_phased(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    window: int,
    gamma: float = 0.8,
    omega: float = 0.2,
    shuffle: bool = True,
    stepper: Stepper | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise latents x [B, F, C, h, w] (scaled to sigmas[0]) along sigmas [T+1] by shared-noise phased inference; returns x0.

    Windows of ``window`` frames; see the module's docstring for the rule. ``stepper`` steps window
    1 (Euler when None) and is forked at step M for the others; ``generator`` draws the shuffles
    and the fresh noise (a fixed seed when None).
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    stepper = stepper if stepper is not None else Euler()
    num_frames, steps = x.shape[1], len(sigmas) - 1
    windows = consecutive_windows(num_frames, min(window, num_frames))
    split = phase_step(gamma, steps)
    total = steps + (len(windows) - 1) * (steps - split)
    out = x.clone()  # [B, F, C, h, w]
    made = torch.zeros(num_frames, dtype=torch.bool)  # frames an earlier window already made
    kept: tuple[torch.Tensor, torch.Tensor] | None = None  # window 1's (x0, n) at step M
    forked: Stepper | None = None  # window 1's stepper as it was at step M
    first: torch.Tensor | None = None  # window 1's result
    calls = 0
    for k, frames in enumerate(windows):
        index = frames.to(x.device)
        if k == 0:
            latents, start, steps_with = x[:, index], 0, stepper
        elif kept is None:  # γ = 1: nothing left to redo
            latents, start, steps_with = first.clone(), steps, stepper
        else:
            x0, noise = kept
            latents, start = x0 + sigmas[split].to(x0.dtype) * shared_noise(noise, omega, shuffle, generator), split
            steps_with = forked.fork()
        for i in range(start, steps):
            sigma, sigma_next = sigmas[i], sigmas[i + 1]
            denoised = denoiser.denoise(latents, sigma, frames)  # [B, L, C, h, w]
            if k == 0 and i == split:
                kept, forked = (denoised, (latents - denoised) / sigma.to(latents.dtype)), stepper.fork()
            calls += 1
            if callback is not None:
                callback(Step(i, sigma, sigma_next, latents, denoised, frames, call=calls, total=total, window=k))
            latents = steps_with(latents, denoised, sigma, sigma_next)
        if k == 0:
            first = latents
        new = ~made[frames]  # [L]
        out[:, index[new.to(x.device)]] = latents[:, new.to(x.device)]
        made[frames] = True
    return out


@dataclass
class PhasedConfig:
    """Parameters of the shared-noise phased sampler."""

    window: int | None = None  # frames per window; null = the backbone's trained window
    gamma: float = 0.8  # γ: later windows redo the steps after M = ⌊γ·steps⌋ (1 = copies of window 1)
    omega: float = 0.2  # ω: fresh noise mixed into the shared noise of later windows (0 = none)
    shuffle: bool = True  # permute the shared noise's frame order per window (false = the same order)
    step: str | None = None  # null: the backbone's own scheduler; or a sigma-space rule: euler | euler_ancestral | dpmpp_2m

    def __post_init__(self) -> None:
        check_step(self.step)
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"sampler.gamma={self.gamma} must be between 0 and 1 (0.8 in the paper)")
        if not self.omega >= 0.0:
            raise ConfigError(f"sampler.omega={self.omega} must be zero or more (0.2 in the paper)")
        if self.window is not None and self.window < 1:
            raise ConfigError(f"sampler.window={self.window} must be at least 1 frame")


class PhasedSampler:
    """Shared-noise phased inference for long clips: full steps for window 1, only the last steps for the others."""

    name = "phased"
    Config = PhasedConfig

    def sample(self, config: PhasedConfig, problem: SamplerInput, *, callback: StepCallback | None = None) -> torch.Tensor:
        """Run :func:`sample_phased` on the backbone's denoiser, schedule and initial latents."""
        window = fit_window(config.window, problem)
        sigmas, stepper = stepping(config.step, problem)
        return sample_phased(
            problem.denoiser,
            problem.latents,
            sigmas,
            window=window,
            gamma=config.gamma,
            omega=config.omega,
            shuffle=config.shuffle,
            stepper=stepper,
            generator=problem.generator,
            callback=callback,
        )


@hookimpl
def register_samplers(register: Register) -> None:
    """Register the shared-noise phased sampler."""
    register(PhasedSampler)
