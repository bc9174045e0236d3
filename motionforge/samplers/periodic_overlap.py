"""MOFA-Video's periodic sampling: overlapping windows denoised at every step, their x0 estimates fused per frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from motionforge.core.denoiser import check_step, make_stepper
from motionforge.core.errors import ConfigError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import Denoiser, SamplerInput, StepCallback
from motionforge.samplers.windows import WEIGHTINGS, check_window, fusion_weights, overlapping_windows


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
    step: str = "euler",
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise latents x [B, F, C, h, w] (scaled to sigmas[0]) along sigmas [T+1] in overlapping windows; returns x0.

    At every sigma the denoiser runs on each window of ``window`` frames (every ``stride``
    frames, default window // 2, the last shifted back to end on the last frame; see
    :func:`~motionforge.samplers.windows.overlapping_windows`), with the window's absolute frame
    indices so that motion control uses f_{0→i} of those frames. The x0 estimates are averaged per
    frame with ``weighting`` (flat is the paper's; the weights of each frame sum to one), and one
    step of ``step`` moves the whole clip. Averaging x0 estimates of a shared x_t is the same as
    averaging the windows' stepped latents, which is what MOFA-Video's code does. One window
    covering the clip is the single sampler exactly.
    """
    num_frames = x.shape[1]
    stride = check_stride(stride, window, anchor_first_frame)
    windows = overlapping_windows(num_frames, window, stride, anchor_first_frame)
    weights = fusion_weights(windows, num_frames, weighting, anchor_first_frame)
    stepper = make_stepper(step, generator)
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
            callback(
                {"x": x, "i": i, "sigma": sigma, "sigma_next": sigma_next, "denoised": denoised, "frames": everything,
                 "call": i + 1, "total": steps}
            )  # fmt: skip
        x = stepper(x, denoised, sigma, sigma_next)
    return x


def check_stride(stride: int | None, window: int, anchor_first_frame: bool) -> int:
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
    """Parameters of the periodic-overlap sampler."""

    window: int | None = None  # frames per window; null = the backbone's native window
    stride: int | None = None  # frames between window starts; null = window // 2
    weighting: str = "flat"  # how overlapping x0 estimates are averaged: flat (the paper) | pyramid | gaussian
    anchor_first_frame: bool = False  # put frame 0 at the head of every window (MOFA-Video's released code for SVD)
    step: str = "euler"  # the step rule: euler | euler_ancestral | dpmpp_2m


class PeriodicOverlapSampler:
    """Overlapping windows fused at every step (MOFA-Video's periodic sampling), for clips longer than the backbone's window."""

    name = "periodic_overlap"
    Config = PeriodicOverlapConfig

    def check(self, config: PeriodicOverlapConfig) -> None:
        """Check the parameters that do not depend on the backbone; one sentence per mistake."""
        check_step(config.step)
        if config.weighting not in WEIGHTINGS:
            raise ConfigError(f"sampler.weighting={config.weighting} is not a weighting; choose one of: {', '.join(WEIGHTINGS)}")
        minimum = 2 if config.anchor_first_frame else 1
        if config.window is not None and config.window < minimum:
            raise ConfigError(f"sampler.window={config.window} must be at least {minimum} frames")

    def sample(
        self, config: PeriodicOverlapConfig, problem: SamplerInput, *, callback: StepCallback | None = None
    ) -> torch.Tensor:
        """Run :func:`sample_periodic_overlap` on the backbone's denoiser, schedule and initial latents."""
        self.check(config)
        window = check_window(config.window, problem.window, 2 if config.anchor_first_frame else 1)
        return sample_periodic_overlap(
            problem.denoiser,
            problem.latents,
            problem.sigmas,
            window=window,
            stride=config.stride,
            weighting=config.weighting,
            anchor_first_frame=config.anchor_first_frame,
            step=config.step,
            generator=problem.generator,
            callback=callback,
        )


@hookimpl
def register_samplers(register: Any) -> None:
    """Register the periodic-overlap sampler."""
    register(PeriodicOverlapSampler)
