"""The engine's observers of a sampler: the denoiser-call counter and the step callback (progress bar, previews, the caller's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from einops import rearrange
from tqdm.auto import tqdm

from motionforge.core.types import Denoiser, Step, StepCallback

PREVIEW_FRAMES = 8  # frames shown side by side in a preview strip


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


class StepWatcher:
    """Follows a sampler's steps: advances a progress bar, keeps preview strips every ``every`` steps, calls ``then``.

    ``decode`` turns x0 estimates [1, Fp, C, h, w] into frames [Fp, 3, H, W] in [0, 1] (the run's
    bound decoder at σ = 0); previews decode the x0 estimate of at most 8 evenly spaced frames of the step.
    """

    def __init__(
        self,
        decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
        every: int = 0,
        progress: bool = False,
        then: StepCallback | None = None,
        label: str = "sampling",
    ) -> None:
        self.decode, self.every, self.then = decode, every, then
        self.progress, self.label = progress, label
        self.bar: Any = None
        self.previews: dict[str, np.ndarray] = {}  # file name under previews/ → uint8 strip [H, n·W, 3]

    def __call__(self, step: Step) -> None:
        """Take one step's record (see :class:`motionforge.core.types.Step`)."""
        if self.progress:
            if self.bar is None:
                self.bar = tqdm(total=step.total or None, desc=self.label, leave=False)
            self.bar.update(1)
        if self.every and self.decode is not None and (step.i + 1) % self.every == 0:
            self.previews[preview_name(step)] = self.strip(step.denoised)
        if self.then is not None:
            self.then(step)

    @torch.no_grad()
    def strip(self, denoised: torch.Tensor) -> np.ndarray:
        """The decoded x0 estimate of up to 8 evenly spaced frames of denoised [B, Fw, C, h, w], side by side: [H, n·W, 3] uint8."""
        count = denoised.shape[1]
        picks = torch.linspace(0, count - 1, min(PREVIEW_FRAMES, count)).round().long().unique()  # [n]
        frames = self.decode(denoised[:1, picks.to(denoised.device)])  # [n, 3, H, W]
        pixels = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        return rearrange(pixels, "n c h w -> h (n w) c").numpy()

    def close(self) -> None:
        """Close the progress bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def preview_name(step: Step) -> str:
    """A preview's file name: step012.png, or window2_step012.png for samplers that step windows one at a time."""
    name = f"step{step.i + 1:03d}.png"
    return f"window{step.window + 1}_{name}" if step.window is not None else name
