"""MOFA-Video's periodic sampling: overlapping windows denoised at every step, their x0 estimates fused per frame."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from motionforge.core.errors import ConfigError
from motionforge.core.hookspecs import Register, hookimpl
from motionforge.core.types import Denoiser, SamplerInput, Step, StepCallback, Stepper
from motionforge.samplers.steps import Euler, check_step, stepping
from motionforge.samplers.windows import WEIGHTINGS, fit_window, fusion_weights, overlapping_windows


@torch.no_grad()
def sample_periodic_overlap(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    window: int,
    stride: int | None = None,
    weighting: str = "flat",
    anchor_first_frame: bool = False,
    stepper: Stepper | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise latents x [B, F, C, h, w] (scaled to sigmas[0]) along sigmas [T+1] in overlapping windows; returns x0.

    At every sigma the denoiser runs on each window of ``window`` frames (every ``stride``
    frames, default half the window, the last shifted back to end on the last frame; see
    :func:`~motionforge.samplers.windows.overlapping_windows`), with the window's absolute frame
    indices so that motion control uses f_{0→i} of those frames. The x0 estimates are averaged per
    frame with ``weighting`` (flat is the paper's; the weights of each frame sum to one), and one
    step of ``stepper`` (Euler when None) moves the whole clip: a diffusers scheduler's stepper
    takes one scheduler step on the clip from the fused estimate. Averaging x0 estimates of a shared
    x_t is the same as averaging the windows' stepped latents, which is what MOFA-Video's code does.
    One window covering the clip is the single sampler exactly.
    """
    stepper = stepper if stepper is not None else Euler()
    num_frames = x.shape[1]
    stride = stride if stride is not None else resolve_stride(None, window, anchor_first_frame)
    windows = overlapping_windows(num_frames, window, stride, anchor_first_frame)
    weights = fusion_weights(windows, num_frames, weighting, anchor_first_frame)
    steps = len(sigmas) - 1
    everything = torch.arange(num_frames)
    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = torch.zeros_like(x)  # [B, F, C, h, w]
        for frames, weight in zip(windows, weights):
            index = frames.to(x.device)
            estimate = denoiser.denoise(x[:, index], sigma, frames)  # [B, Fw, C, h, w]
            denoised.index_add_(1, index, estimate * weight.to(device=x.device, dtype=x.dtype).view(1, -1, 1, 1, 1))
        if callback is not None:
            callback(Step(i, sigma, sigma_next, x, denoised, everything, call=i + 1, total=steps))
        x = stepper(x, denoised, sigma, sigma_next)
    return x


def resolve_stride(stride: int | None, window: int, anchor_first_frame: bool) -> int:
    """The stride between window starts: the config's, else half the window; one sentence when it would skip frames."""
    body = window - 1 if anchor_first_frame else window  # frames a window adds besides the anchor
    if stride is None:
        return max(body // 2, 1)
    if not 1 <= stride <= body:
        what = f"window − 1 = {body} with anchor_first_frame" if anchor_first_frame else f"the window of {window}"
        raise ConfigError(f"sampler.stride={stride} must be between 1 and {what}, or frames would fall between windows")
    return stride


@dataclass
class PeriodicOverlapConfig:
    """Parameters of the periodic-overlap sampler (checked when made)."""

    window: int | None = None  # frames per window; null = the backbone's trained window
    stride: int | None = None  # frames between window starts; null = window // 2
    weighting: str = "flat"  # how overlapping x0 estimates are averaged: flat (the paper) | pyramid | gaussian
    anchor_first_frame: bool = False  # put frame 0 at the head of every window (MOFA-Video's released code for SVD)
    step: str | None = None  # null: the backbone's own scheduler; or a sigma-space rule: euler | euler_ancestral | dpmpp_2m

    def __post_init__(self) -> None:
        check_step(self.step)
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(f"sampler.weighting={self.weighting} is not a weighting; choose one of: {', '.join(WEIGHTINGS)}")
        minimum = 2 if self.anchor_first_frame else 1
        if self.window is not None and self.window < minimum:
            raise ConfigError(f"sampler.window={self.window} must be at least {minimum} frames")


class PeriodicOverlapSampler:
    """Overlapping windows fused at every step (MOFA-Video's periodic sampling), for clips longer than the backbone's window."""

    name = "periodic_overlap"
    Config = PeriodicOverlapConfig

    def sample(
        self, config: PeriodicOverlapConfig, problem: SamplerInput, *, callback: StepCallback | None = None
    ) -> torch.Tensor:
        """Run :func:`sample_periodic_overlap` on the backbone's denoiser, schedule and initial latents."""
        window = fit_window(config.window, problem)
        sigmas, stepper = stepping(config.step, problem)
        return sample_periodic_overlap(
            problem.denoiser,
            problem.latents,
            sigmas,
            window=window,
            stride=resolve_stride(config.stride, window, config.anchor_first_frame),
            weighting=config.weighting,
            anchor_first_frame=config.anchor_first_frame,
            stepper=stepper,
            callback=callback,
        )


@hookimpl
def register_samplers(register: Register) -> None:
    """Register the periodic-overlap sampler."""
    register(PeriodicOverlapSampler)
