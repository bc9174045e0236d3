"""The region hold (the motion brush): outside the plan's region, x0 is the picture's latent.

A Denoiser wrapper returns x0 = the reference latent outside the plan's region (feathered at latent
resolution, blended by ``region_strength``) during the active steps. An Euler step from x to σ' with
x0 = ref gives x' − ref = (σ'/σ)(x − ref): outside, the latents stay the reference plus the sampler's
own noise (one draw, the initial latents', shrinking with σ), and the last step to σ = 0 lands on the
reference exactly. Samplers see only a Denoiser.
"""

from __future__ import annotations

import math
from collections.abc import Container

import torch
import torch.nn.functional as F

from motionforge.core.types import Denoiser


def feathered(region: torch.Tensor, height: int, width: int, feather: float) -> torch.Tensor:
    """The plan's region [1, 1, H, W] at latent size, its edge faded outwards over ``feather`` latent pixels: [1, 1, h, w].

    The region is area-averaged to h×w, blurred by a Gaussian (σ = feather/2, cut at ``feather``
    cells, so cells further out stay exactly 0) and kept at least as large as it was.
    """
    inside = F.interpolate(region.float(), size=(height, width), mode="area")  # [1, 1, h, w]
    radius = math.ceil(feather)
    if radius < 1:
        return inside
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=inside.device)
    kernel = torch.exp(-0.5 * (offsets / (feather / 2)) ** 2)
    kernel = kernel / kernel.sum()  # [K]
    blurred = F.conv2d(inside, kernel.view(1, 1, 1, -1), padding=(0, radius))
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1), padding=(radius, 0))  # [1, 1, h, w]
    return torch.maximum(inside, blurred).clamp(0.0, 1.0)


class RegionHold:
    """A Denoiser wrapper: outside the region x0 is the reference latent (blended by a weight), during the active steps."""

    def __init__(self, inner: Denoiser, reference: torch.Tensor, hold: torch.Tensor, active: Container[object]) -> None:
        self.inner = inner
        self.reference = reference  # [1, C, h, w] clean latent in sigma space at σ = 0
        self.hold = hold  # [1, 1, h, w] in [0, 1]: 1 = x0 is the reference there
        self.active = active  # the sigmas of the active steps (a StepWindow)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [B, Fw, C, h, w] at sigma → x0 with the outside of the region lerped to the reference."""
        x0 = self.inner.denoise(x, sigma, frames)
        if sigma not in self.active:
            return x0
        reference = self.reference.to(x0)[:, None]  # [1, 1, C, h, w]
        hold = self.hold.to(x0)[:, None]  # [1, 1, 1, h, w]
        return torch.lerp(x0, reference.expand_as(x0), hold.expand_as(x0))  # weight 1 gives the reference exactly
