"""Denoisers whose answer is known in closed form, and a Karras sigma schedule, for testing samplers exactly."""

from __future__ import annotations

import torch


def karras_sigmas(steps: int, sigma_min: float = 0.02, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """Karras et al.'s schedule of ``steps`` sigmas from sigma_max to sigma_min, then 0: [steps + 1] float64."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)])


def noise(shape=(1, 6, 4, 3, 5), seed: int = 0) -> torch.Tensor:
    """Standard normal latents [B, F, C, h, w] in float64."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class PointMass:
    """The ideal denoiser when all data is one point mu: it always answers mu (for the window's frames)."""

    def __init__(self, mu: torch.Tensor) -> None:
        self.mu = mu  # [1, F, C, h, w] or broadcastable to a window
        self.seen: list[tuple[tuple[int, ...], float, list[int]]] = []

    def denoise(self, x, sigma, frames):
        self.seen.append((tuple(x.shape), float(sigma), frames.tolist()))
        if self.mu.shape[1] > 1:
            return self.mu[:, frames].expand_as(x)
        return self.mu.expand_as(x)


class Gaussian:
    """The ideal denoiser for data N(mu, s²) per element: mu + s²/(s²+σ²)(x − mu)."""

    def __init__(self, mu: float, s: float) -> None:
        self.mu, self.s = mu, s
        self.seen: list[list[int]] = []

    def denoise(self, x, sigma, frames):
        self.seen.append([] if frames is None else frames.tolist())
        return self.mu + self.s**2 / (self.s**2 + sigma**2) * (x - self.mu)


class MovingGaussian(Gaussian):
    """Gaussian data whose mean moves with the frame index (a stand-in for motion control): mu_f = mu + speed·f."""

    def __init__(self, mu: float, s: float, speed: float) -> None:
        super().__init__(mu, s)
        self.speed = speed

    def denoise(self, x, sigma, frames):
        self.seen.append(frames.tolist())
        mu = (self.mu + self.speed * frames.to(x.dtype)).view(1, -1, 1, 1, 1)  # [1, Fw, 1, 1, 1]
        return mu + self.s**2 / (self.s**2 + sigma**2) * (x - mu)
