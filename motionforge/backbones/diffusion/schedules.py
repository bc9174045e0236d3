"""A diffusers scheduler's steps in sigma space, and the k-diffusion-style wrapper that turns a model into a Denoiser.

Every diffusion backbone is run in sigma space (Karras et al. 2022): the sampler's latents are
x = x0 + σ·ε, and a denoiser returns its estimate of x0. A model trained in the variance-preserving
form z = √ᾱ·x0 + √(1−ᾱ)·ε sees z = x / √(σ²+1) with σ = √((1−ᾱ)/ᾱ), at a timestep label.

:func:`schedule_of` reads the steps of a diffusers scheduler: ``sigmas``, the noise level of its
sample before each step (and after the last), and ``timesteps``, the label the model is told.
They differ where diffusers steps to a point it does not evaluate next: DDIM steps from t_i to
t_i − T/steps (``linspace``, ``trailing``) and then evaluates the model at t_{i+1} on that sample,
so there the sample sits at σ(t_i − T/steps) while the model is told t_{i+1}; PNDM repeats its
second timestep. ``label_sigmas`` are the noise levels each model output is read at (that of the
label for DDIM, PNDM and LCM; the schedule's own sigma for the schedulers that keep sigmas: Euler,
DPM-Solver, UniPC). The scheduler's own sample is z for the variance-preserving schedulers and x
itself for the Euler family; :meth:`Schedule.to_sample` and :meth:`Schedule.from_sample` convert.

A rectified-flow model (Wan: UniPC or DPM-Solver with ``use_flow_sigmas``, FlowMatchEuler) has the
sample z_t = (1 − t)·x0 + t·ε at flow time t ∈ [0, 1) and predicts the velocity v = ε − x0. Divided
by (1 − t) it is x0 + (t/(1 − t))·ε: the same sigma-space latents with σ = t/(1 − t), t = σ/(1 + σ),
z = x/(1 + σ). So every sigma-space sampler runs it unchanged; the denoiser returns x0 = z − t·v,
and a deterministic Euler step in σ is exactly the flow-matching Euler step z' = z + (t' − t)·v.
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from motionforge.core.errors import ConfigError

PREDICTIONS = ("epsilon", "v_prediction", "flow_prediction")


def flow_sigma(t: torch.Tensor) -> torch.Tensor:
    """σ = t/(1 − t), the sigma-space noise level of rectified-flow time t (0 at t = 0; t = 1 is taken at 1 − 10⁻⁶, as UniPC does)."""
    t = t.double().clamp(max=1 - 1e-6)
    return t / (1 - t)


def is_flow(scheduler: Any) -> bool:
    """Whether a diffusers scheduler steps a rectified-flow model (a FlowMatch class, or one that takes flow sigmas and has them on)."""
    takes = "use_flow_sigmas" in inspect.signature(type(scheduler).__init__).parameters
    return "FlowMatch" in type(scheduler).__name__ or (takes and bool(scheduler.config.get("use_flow_sigmas")))


def sigma_of(alpha_cumprod: float) -> float:
    """σ = √((1 − ᾱ)/ᾱ), the noise level of a variance-preserving ᾱ (0 for ᾱ = 1)."""
    return math.sqrt((1.0 - alpha_cumprod) / alpha_cumprod)


@dataclass(frozen=True)
class Schedule:
    """A scheduler's steps in sigma space and the model timestep label of each.

    ``sigmas`` [T+1] descending (float32; a step may keep its sigma: PNDM), ending with the final
    sigma (0, or DDIM's final σ); ``timesteps`` [T] the label of each step; ``label_sigmas`` [T] the
    noise level each model output is read at; ``init_noise_scale`` the factor that puts the unit
    Gaussian noise diffusers draws into sigma space at ``sigmas[0]``; ``variance_preserving``
    whether the scheduler's sample is z = x/√(σ²+1) (else it is x); ``train_log_sigmas`` [N]
    (ascending) of the training timesteps, to give any other sigma a timestep by interpolation;
    ``continuous`` uses 0.25·log σ instead (EDM-style SVD); ``start`` is the index of the first
    step in the scheduler's own timesteps (img2img's begin index). ``flow`` marks a rectified-flow
    scheduler: its sample is z = x/(1 + σ), and any sigma's timestep is ``train_timesteps``·σ/(1 + σ).
    """

    sigmas: torch.Tensor
    timesteps: torch.Tensor
    label_sigmas: torch.Tensor
    prediction_type: str
    init_noise_scale: float
    variance_preserving: bool
    train_log_sigmas: np.ndarray = field(repr=False)
    continuous: bool = False
    start: int = 0
    flow: bool = False
    train_timesteps: int = 1000

    @property
    def final_sigma(self) -> float:
        """The sigma the sampled latents end at."""
        return float(self.sigmas[-1])

    def index(self, sigma: torch.Tensor) -> int | None:
        """The first step whose sigma is this one, or None for a sigma off the schedule."""
        match = torch.isclose(self.sigmas[:-1], torch.as_tensor(sigma, dtype=torch.float32).reshape(()), rtol=1e-6, atol=0.0)
        found = match.nonzero()
        return int(found[0, 0]) if len(found) else None

    def label(self, sigma: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(the model timestep, the noise level its output is read at) for a scalar sigma: the schedule's own, else interpolated."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(())
        step = self.index(sigma)
        if step is not None:
            return self.timesteps[step].clone(), float(self.label_sigmas[step])
        if self.continuous:
            return 0.25 * sigma.log(), float(sigma)
        if self.flow:
            return torch.tensor(self.train_timesteps * float(sigma) / (1 + float(sigma)), dtype=torch.float32), float(sigma)
        index = np.arange(len(self.train_log_sigmas), dtype=np.float64)
        timestep = float(np.interp(math.log(max(float(sigma), 1e-10)), self.train_log_sigmas, index))
        return torch.tensor(timestep, dtype=torch.float32), float(sigma)

    def to_sample(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """Sigma-space latents x at sigma → the scheduler's sample (z = x/√(σ²+1); x/(1 + σ) for flow; x for the Euler family)."""
        if self.flow:
            return x / (1 + sigma)
        return x / (sigma**2 + 1) ** 0.5 if self.variance_preserving and sigma else x

    def from_sample(self, sample: torch.Tensor, sigma: float) -> torch.Tensor:
        """The scheduler's sample at sigma → sigma-space latents x."""
        if self.flow:
            return sample * (1 + sigma)
        return sample * (sigma**2 + 1) ** 0.5 if self.variance_preserving and sigma else sample


def _landings(scheduler: Any, labels: list[int]) -> list[float | None]:
    """Where each step of a scheduler without a sigma table puts its sample, as a timestep (None: the clean sample, σ = 0)."""
    name, ratio = type(scheduler).__name__, scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    if name == "DDIMScheduler":
        return [t - ratio for t in labels]
    if name == "PNDMScheduler":  # its second step redoes the first with the two outputs averaged, landing on its own label
        return [t if k == 1 else t - ratio for k, t in enumerate(labels)]
    if name == "LCMScheduler":  # each step lands on the next label; the last returns the denoised sample
        return [*labels[1:], None]
    raise ConfigError(f"{name} has no sigma schedule motionforge can follow; choose another backbone.scheduler")


def _sigma_at(scheduler: Any, timestep: float | None) -> float:
    """The noise level of a landing timestep: that of its ᾱ, the final ᾱ below 0, and 0 for the clean sample."""
    if timestep is None:
        return 0.0
    if timestep < 0:
        return sigma_of(float(scheduler.final_alpha_cumprod))
    return sigma_of(float(scheduler.alphas_cumprod[int(timestep)]))


def flow_schedule_of(scheduler: Any, start: int = 0) -> Schedule:
    """The sigma-space view of a rectified-flow scheduler: its flow times t become σ = t/(1 − t), its unit noise sits at σ_0."""
    sigmas = flow_sigma(scheduler.sigmas[start:]).float()  # [T+1], the last 0
    return Schedule(
        sigmas=sigmas,
        timesteps=scheduler.timesteps[start:].to(torch.float32),
        label_sigmas=sigmas[:-1],
        prediction_type="flow_prediction",
        init_noise_scale=float(scheduler.init_noise_sigma if hasattr(scheduler, "init_noise_sigma") else 1.0)
        * (1 + float(sigmas[0])),
        variance_preserving=False,
        train_log_sigmas=np.zeros(0),
        start=start,
        flow=True,
        train_timesteps=int(scheduler.config.num_train_timesteps),
    )


def schedule_of(scheduler: Any, start: int = 0) -> Schedule:
    """The sigma-space view of a diffusers scheduler whose timesteps are set, from its step ``start`` (its begin index)."""
    if is_flow(scheduler):
        return flow_schedule_of(scheduler, start)
    prediction = scheduler.config.get("prediction_type", "epsilon")
    if prediction not in PREDICTIONS:
        raise ConfigError(f"the scheduler's prediction_type={prediction} is not supported; supported: {', '.join(PREDICTIONS)}")
    labels = scheduler.timesteps[start:]  # [T]
    own = getattr(scheduler, "sigmas", None)
    if own is not None and len(own) == len(scheduler.timesteps) + 1:  # Euler, DPM-Solver, UniPC: the sigmas are the steps
        sigmas = own[start:].float()
        label_sigmas = sigmas[:-1]
    else:
        read = [_sigma_at(scheduler, float(t)) for t in labels]
        landed = [_sigma_at(scheduler, t) for t in _landings(scheduler, [int(t) for t in labels])]
        label_sigmas = torch.tensor(read, dtype=torch.float32)
        sigmas = torch.tensor([read[0], *landed], dtype=torch.float32)
    # the Euler family's model input is its sample divided by √(σ²+1); probed at its first, largest sigma
    probe = copy.deepcopy(scheduler).scale_model_input(torch.ones(()), scheduler.timesteps[0])
    variance_preserving = bool(torch.isclose(probe, torch.ones(())))
    first = float(sigmas[0])
    init_scale = float(scheduler.init_noise_sigma) * ((first**2 + 1) ** 0.5 if variance_preserving else 1.0)
    alphas = scheduler.alphas_cumprod.double().numpy()
    continuous = scheduler.config.get("timestep_type") == "continuous" and prediction == "v_prediction"
    return Schedule(
        sigmas=sigmas.to(torch.float32),
        timesteps=labels.to(torch.float32),
        label_sigmas=label_sigmas.to(torch.float32),
        prediction_type=prediction,
        init_noise_scale=init_scale,
        variance_preserving=variance_preserving,
        train_log_sigmas=np.log(((1 - alphas) / alphas) ** 0.5),
        continuous=continuous,
        start=start,
    )


class GuidedModel(Protocol):
    """A backbone's model with its conditioning bound: model-space input z [B, Fw, C, h, w] at timestep t → guided output."""

    def __call__(self, z: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The model's (guided) prediction, eps or v, same shape as z."""
        ...


def scalings(sigma: torch.Tensor, read_at: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_in, c_read): the model sees z = c_in·x, and reads its output against x_r = c_read·z, the sample at σ_r = read_at.

    c_in = 1/√(σ²+1); x_r = z·√(σ_r²+1) is x itself when the output is read at the sample's own sigma.
    """
    return 1 / (sigma**2 + 1) ** 0.5, torch.as_tensor((read_at**2 + 1) ** 0.5, dtype=torch.float32)


class KarrasDenoiser:
    """Wraps a model (eps- or v-prediction, guidance inside) as a sigma-space Denoiser that returns x0 as its scheduler reads it."""

    def __init__(self, model: GuidedModel, schedule: Schedule) -> None:
        self.model = model
        self.schedule = schedule

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [B, Fw, C, h, w] at scalar sigma → x0, same shape (eps: x_r − σ_r·ε; v: x_r/(σ_r²+1) − σ_r/√(σ_r²+1)·v; flow: z − t·v)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(()).cpu()
        timestep, read_at = self.schedule.label(sigma)
        if self.schedule.flow:
            z = x / (1 + float(sigma))  # [B, Fw, C, h, w], the flow sample at t = σ/(1 + σ)
            return z - (float(sigma) / (1 + float(sigma))) * self.model(z, timestep, frames)
        c_in, c_read = scalings(sigma, read_at)
        z = x * c_in  # [B, Fw, C, h, w], model space
        output = self.model(z, timestep, frames)  # [B, Fw, C, h, w]
        x_read = x if read_at == float(sigma) else z * c_read  # the sample as the scheduler reads it, at σ_r
        if self.schedule.prediction_type == "v_prediction":
            return output * (-read_at / (read_at**2 + 1) ** 0.5) + x_read / (read_at**2 + 1)
        return x_read - read_at * output
