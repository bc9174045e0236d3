"""Sigma schedules from diffusers scheduler configs, and the k-diffusion-style wrapper that turns a model into a Denoiser.

Every diffusion backbone is run in sigma space (Karras et al. 2022): the sampler's latents are
x = x0 + σ·ε, and a denoiser returns its estimate of x0. A model trained in the variance-preserving
form z = √ᾱ·x0 + √(1−ᾱ)·ε sees z = x / √(σ²+1) with σ = √((1−ᾱ)/ᾱ), at the timestep of that σ.

- SVD (EulerDiscreteScheduler, v-prediction, continuous timesteps): the sigmas are the scheduler's
  own (Karras), the timestep is 0.25·log σ, and x0 = x/(σ²+1) − σ/√(σ²+1)·v, as diffusers computes it.
- SD1.5/AnimateDiff (DDIM, eps-prediction): deterministic DDIM is Euler in sigma space on
  x = z/√ᾱ, so the sigmas are those of DDIM's timesteps followed by the σ of its final ᾱ
  (``final_alpha_cumprod``: 0 when ``set_alpha_to_one``), and x0 = x − σ·ε. The sampled latents are
  then at that final σ: :meth:`Schedule.to_model_latents` maps them back to the model's z.
  This matches diffusers exactly when DDIM steps from each timestep to the next one it lists
  (``timestep_spacing`` "leading", diffusers' default, or "trailing" with steps dividing the
  training steps); with "linspace" diffusers lands each step at t − T//steps but evaluates the next
  at another listed t, which is no single noise schedule, and here the listed timesteps are used.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from motionforge.core.errors import ConfigError

log = logging.getLogger(__name__)

PREDICTIONS = ("epsilon", "v_prediction")


@dataclass(frozen=True)
class Schedule:
    """A backbone's noise schedule in sigma space and the model timestep of each sigma.

    ``sigmas`` [T+1] descending (float32), ending with the final sigma (0, or DDIM's final σ);
    ``timesteps`` [T] the model timestep at each of the first T sigmas; ``init_noise_scale`` the
    factor that puts the initial Gaussian noise diffusers draws (times its scheduler's
    ``init_noise_sigma``, in model space) into sigma space at ``sigmas[0]``.
    ``train_log_sigmas`` [N] (ascending) of the training timesteps, to give any other sigma a
    timestep by interpolation; ``continuous`` uses 0.25·log σ instead (EDM-style SVD).
    """

    sigmas: torch.Tensor
    timesteps: torch.Tensor
    prediction_type: str
    init_noise_scale: float
    train_log_sigmas: np.ndarray = field(repr=False)
    continuous: bool = False

    @property
    def final_sigma(self) -> float:
        """The sigma the sampled latents end at."""
        return float(self.sigmas[-1])

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The model timestep for a scalar sigma: the scheduler's own for its sigmas, else interpolated in log sigma."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(())
        if self.continuous:
            return 0.25 * sigma.log()
        match = torch.isclose(self.sigmas[:-1], sigma, rtol=1e-6, atol=0.0).nonzero()
        if len(match):
            return self.timesteps[int(match[0, 0])].clone()
        log_sigma = math.log(max(float(sigma), 1e-10))
        index = np.arange(len(self.train_log_sigmas), dtype=np.float64)
        return torch.tensor(float(np.interp(log_sigma, self.train_log_sigmas, index)), dtype=torch.float32)


def to_model_latents(latents: torch.Tensor, final_sigma: float) -> torch.Tensor:
    """Sampled latents [...] at the final sigma → the model's latents z = x/√(σ²+1) (unchanged when σ is 0)."""
    if final_sigma == 0.0:
        return latents
    return latents / (final_sigma**2 + 1) ** 0.5


def ddim_final_sigma(config: Mapping[str, Any]) -> float:
    """The sigma of DDIM's final ᾱ for a scheduler config: 0 with set_alpha_to_one, else that of the first training step."""
    alpha = float(DDIMScheduler.from_config(dict(config)).final_alpha_cumprod)
    return ((1 - alpha) / alpha) ** 0.5


def _checked_prediction(config: Mapping[str, Any]) -> str:
    """The scheduler's prediction type, if this module can turn it into x0."""
    prediction = config.get("prediction_type", "epsilon")
    if prediction not in PREDICTIONS:
        raise ConfigError(f"the scheduler's prediction_type={prediction} is not supported; supported: {', '.join(PREDICTIONS)}")
    return prediction


def _train_log_sigmas(alphas_cumprod: torch.Tensor) -> np.ndarray:
    """log σ of every training timestep, [N] float64, ascending with the timestep."""
    alphas = alphas_cumprod.double().numpy()
    return np.log(((1 - alphas) / alphas) ** 0.5)


def ddim_schedule(config: Mapping[str, Any], steps: int) -> Schedule:
    """Deterministic DDIM (eta 0) for a scheduler config of an SD-style model (any scheduler class's config works)."""
    scheduler = DDIMScheduler.from_config(dict(config))
    if scheduler.config.clip_sample or scheduler.config.thresholding:
        log.info("the scheduler config clips or thresholds x0; sigma-space samplers do not, so that setting is ignored")
    if steps > scheduler.config.num_train_timesteps:
        raise ConfigError(f"steps={steps} is more than the model's {scheduler.config.num_train_timesteps} training timesteps")
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps.to(torch.int64)  # [T]
    alphas = scheduler.alphas_cumprod  # [N] float32
    ratio = scheduler.config.num_train_timesteps // steps
    landing = [int(t) - ratio for t in timesteps]
    if any(land != int(nxt) for land, nxt in zip(landing[:-1], timesteps[1:])):
        log.info(
            "DDIM with timestep_spacing=%s steps between timesteps it does not evaluate; using its listed timesteps",
            scheduler.config.timestep_spacing,
        )
    evaluated = alphas[timesteps]  # [T]
    final = torch.as_tensor(scheduler.final_alpha_cumprod, dtype=torch.float32).reshape(1)  # [1]
    alpha = torch.cat([evaluated, final])  # [T+1]
    sigmas = ((1 - alpha) / alpha) ** 0.5  # [T+1]
    return Schedule(
        sigmas=sigmas.to(torch.float32),
        timesteps=timesteps.to(torch.float32),
        prediction_type=_checked_prediction(scheduler.config),
        init_noise_scale=float(scheduler.init_noise_sigma) * float((sigmas[0] ** 2 + 1) ** 0.5),
        train_log_sigmas=_train_log_sigmas(alphas),
    )


def euler_schedule(config: Mapping[str, Any], steps: int) -> Schedule:
    """EulerDiscreteScheduler's own sigmas and timesteps for its config (SVD: Karras sigmas, continuous timesteps)."""
    scheduler = EulerDiscreteScheduler.from_config(dict(config))
    scheduler.set_timesteps(steps)
    prediction = _checked_prediction(scheduler.config)
    continuous = scheduler.config.timestep_type == "continuous" and prediction == "v_prediction"
    return Schedule(
        sigmas=scheduler.sigmas.to(torch.float32),
        timesteps=scheduler.timesteps.to(torch.float32),
        prediction_type=prediction,
        init_noise_scale=float(scheduler.init_noise_sigma),  # Euler's samples are already in sigma space
        train_log_sigmas=_train_log_sigmas(scheduler.alphas_cumprod),
        continuous=continuous,
    )


class GuidedModel(Protocol):
    """A backbone's model with its conditioning bound: model-space input z [B, Fw, C, h, w] at timestep t → guided output."""

    def __call__(self, z: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The model's (guided) prediction, eps or v, same shape as z."""
        ...


class KarrasDenoiser:
    """Wraps a model (eps- or v-prediction, guidance inside) as a sigma-space Denoiser that returns x0."""

    def __init__(self, model: GuidedModel, schedule: Schedule) -> None:
        self.model = model
        self.schedule = schedule

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [B, Fw, C, h, w] at scalar sigma → x0, same shape (c_in = 1/√(σ²+1), c_skip and c_out of the prediction type)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(()).cpu()
        z = x / (sigma**2 + 1) ** 0.5  # [B, Fw, C, h, w], model space
        output = self.model(z, self.schedule.timestep(sigma), frames)  # [B, Fw, C, h, w]
        if self.schedule.prediction_type == "v_prediction":
            return output * (-sigma / (sigma**2 + 1) ** 0.5) + x / (sigma**2 + 1)
        return x - sigma * output
