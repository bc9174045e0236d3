"""Motion-I2V's selective noising (AnimateDiff's ``selective_noising``): the clip's frame 0 is the picture at every step."""

from __future__ import annotations

import torch

from motionforge.core.types import Denoiser


class SelectiveNoising:
    """Motion-I2V's selective noising: the clip's frame 0 is the clean reference latent at every step.

    The model sees the clean latent in frame 0 (noise-free) beside the noisy frames, and the
    denoiser returns it as frame 0's x0, so the clip starts from the picture.
    """

    def __init__(self, inner: Denoiser, reference: torch.Tensor) -> None:
        self.inner = inner
        self.reference = reference  # [1, C, h, w] clean latent in model space (= sigma space at σ = 0)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [B, Fw, C, h, w] at sigma → x0 with frame 0 (if in the window) held at the reference."""
        held = (frames == 0).to(x.device)  # [Fw]
        if not bool(held.any()):
            return self.inner.denoise(x, sigma, frames)
        scale = float((torch.as_tensor(sigma, dtype=torch.float32) ** 2 + 1) ** 0.5)  # z = x / scale
        reference = self.reference.to(x.dtype)[:, None]  # [1, 1, C, h, w]
        x = torch.where(held[None, :, None, None, None], reference * scale, x)
        return torch.where(held[None, :, None, None, None], reference, self.inner.denoise(x, sigma, frames))
