"""Zero-shot motion control for the diffusion backbones, composed by one entry point (:func:`steer`).

- ``latent_init``: frames start from the picture's latent warped along the plan
  (:mod:`~motionforge.backbones.diffusion.steering.latent_init`).
- ``region``: outside the brush, x0 is the picture's latent (:mod:`~motionforge.backbones.diffusion.steering.region`).
- ``warped_attention``: Motion-I2V's motion-augmented temporal attention
  (:mod:`~motionforge.backbones.diffusion.steering.warped_attention`).
- ``dual_clock``: Time-to-Move's two clocks, SDEdit from the moved picture and the moved region held longer
  (:mod:`~motionforge.backbones.diffusion.steering.dual_clock`).
- selective noising: the clip's frame 0 is the picture at every step
  (:mod:`~motionforge.backbones.diffusion.steering.selective_noising`).
- strength: SVD's motion bucket and AnimateDiff's latent_init flow follow the plan's motion strength
  (:mod:`~motionforge.backbones.diffusion.steering.strength`; the backbones call it themselves).

The step ranges (``region_start``/``_end``, ``warped_attention_start``/``_end``) are fractions of the
sampled steps, turned once per run into the sigmas they cover (:class:`StepWindow`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from motionforge.backbones.diffusion import loading, runtime
from motionforge.backbones.diffusion.schedules import Schedule
from motionforge.backbones.diffusion.steering import dual_clock, latent_init, region, selective_noising, warped_attention
from motionforge.backbones.diffusion.steering.dual_clock import DualClockParams
from motionforge.backbones.diffusion.steering.warped_attention import WarpedAttentionParams
from motionforge.core.errors import ConfigError
from motionforge.core.types import Denoiser, MotionPlan


def reference_latent(models: Any, image: torch.Tensor) -> torch.Tensor:
    """The clean picture [3, H, W] in [0, 1] as a scaled VAE latent (the mode), in the UNet's dtype: [1, C, h, w].

    ``models`` is a backbone's loaded components (it needs ``vae`` and ``unet``); this is what
    latent_init warps, what the region hold keeps, and what selective noising holds as frame 0.
    """
    vae = models.vae
    pixels = image[None].float() * 2.0 - 1.0  # [1, 3, H, W] in [-1, 1]
    with loading.float32_vae(vae, loading.needs_upcast(vae)):
        latent = vae.encode(pixels.to(device=vae.device, dtype=vae.dtype)).latent_dist.mode()  # [1, C, h, w]
    return (latent * vae.config.scaling_factor).to(models.unet.dtype)


@dataclass
class SteeringParams(DualClockParams, WarpedAttentionParams):
    """The zero-shot controls shared by the diffusion backbones; every one off (or a no-op) by default, so parity holds."""

    latent_init: bool = False  # frames start from the picture's latent warped along the plan, noised to init_strength's sigma
    init_strength: float = 0.7  # (0, 1]: how much noise latent_init starts from (1 = pure noise: off); lower runs fewer steps
    region: bool = True  # hold the latents outside the plan's region (the brush) at the picture's; a no-op without a region
    region_strength: float = 1.0  # [0, 1]: how firmly the outside is held (0: off)
    region_feather: float = 1.0  # latent pixels over which the hold fades out at the region's edge
    region_start: float = 0.0  # fraction of the sampled steps where the hold starts
    region_end: float = 1.0  # fraction of the sampled steps where it ends (1: through the last step)
    # warped_attention, warped_attention_strength, warped_attention_start, warped_attention_end: warped_attention.py
    # dual_clock, dual_clock_weak, dual_clock_strong: dual_clock.py


def check(config: SteeringParams) -> None:
    """Check the steering keys (warped attention's and the dual clock's too); one sentence per mistake."""
    warped_attention.check(config)
    dual_clock.check(config)
    if not 0.0 < config.init_strength <= 1.0:
        raise ConfigError(f"backbone.init_strength={config.init_strength} must be in (0, 1] (1 = start from pure noise)")
    if not 0.0 <= config.region_strength <= 1.0:
        raise ConfigError(f"backbone.region_strength={config.region_strength} must be in [0, 1] (0 = no hold)")
    if config.region_feather < 0:
        raise ConfigError(f"backbone.region_feather={config.region_feather} must be zero or more (latent pixels)")
    if not 0.0 <= config.region_start < config.region_end <= 1.0:
        raise ConfigError(
            f"backbone.region_start={config.region_start} and backbone.region_end={config.region_end} must satisfy "
            "0 <= region_start < region_end <= 1"
        )


def start_index(init_strength: float, steps: int) -> int:
    """The schedule index latent_init starts at: round((1 − init_strength)·T), at most T − 1 (one step is always run)."""
    return min(round((1.0 - init_strength) * steps), steps - 1)


def start_step(config: SteeringParams, steps: int) -> int:
    """The step of a schedule of ``steps`` steps that sampling starts at: latent_init's or the dual clock's start, else 0."""
    if steps > 0 and config.dual_clock:
        return dual_clock.start_index(config, steps)
    return start_index(config.init_strength, steps) if config.latent_init and steps > 0 else 0


@dataclass(frozen=True)
class StepWindow:
    """The sigmas of the steps [round(start·T), round(end·T)) of a schedule: a control is active at a sigma in [low, high]."""

    high: float
    low: float

    @classmethod
    def of(cls, sigmas: torch.Tensor, start: float, end: float) -> StepWindow:
        """The window of a fraction [start, end) of the steps of sigmas [T+1] (empty: active nowhere)."""
        steps = len(sigmas) - 1
        active = sigmas[:-1][round(start * steps) : round(end * steps)].float()
        if not len(active):
            return cls(-math.inf, math.inf)
        return cls(float(active.max()), float(active.min()))

    def __contains__(self, sigma: object) -> bool:
        """Whether a step at this sigma is in the window."""
        return self.low <= float(sigma) <= self.high  # type: ignore[arg-type]


def uses_region(config: SteeringParams, plan: MotionPlan) -> bool:
    """Whether the region hold changes this run (on, with a strength, and the plan has a region)."""
    return bool(config.region) and config.region_strength > 0 and plan.region is not None


@dataclass
class Steered:
    """A model's denoiser with the zero-shot controls around it, the initial latents, and what used the plan."""

    denoiser: Denoiser
    latents: torch.Tensor  # [1, F, C, h, w] at the schedule's first sigma
    used: list[str]


def steer(
    denoiser: Denoiser,
    config: SteeringParams,
    plan: MotionPlan,
    *,
    schedule: Schedule,
    noise: torch.Tensor,
    reference: Callable[[], torch.Tensor],
    unet: Any,
    guidance: int,
    hold_first_frame: bool = False,
    init_flow: torch.Tensor | None = None,
) -> Steered:
    """Put the zero-shot controls that apply around a model's denoiser, in one order, and say which ones did.

    From the model out: (1) the initial latents [1, F, C, h, w] are the unit ``noise`` scaled to the
    schedule's first sigma, or, under latent_init (the schedule then starts at :func:`start_step`),
    the picture's latent warped along ``init_flow`` (the plan's flow by default) plus that noise;
    (2) warped_attention installs its processors around each model call; under the dual clock the
    initial latents are the moved picture noised at t_weak and x0 follows it in the moved region until
    t_strong (:mod:`.dual_clock`); (3) selective noising
    (``hold_first_frame``) holds frame 0 at the picture; (4) the region hold replaces x0 outside the
    region last, so it wins. ``reference`` encodes the picture's clean latent [1, C, h, w] (called
    once, when a control needs it); ``unet`` is the model warped attention patches, ``guidance`` 2
    when its batch doubles for guidance. The step ranges are taken over the schedule's sigmas.
    """
    sigmas, held, clocked = schedule.sigmas, uses_region(config, plan), bool(config.dual_clock)
    initialised = schedule.start > 0 and not clocked
    picture = reference() if initialised or held or hold_first_frame or clocked else None  # [1, C, h, w]
    latents, used, flow = noise * schedule.init_noise_scale, [], plan.flow if init_flow is None else init_flow
    if initialised:
        latents = latent_init.latent_init(picture, flow, noise, sigmas[0])
        used.append("latent_init")
    if clocked:
        warped, moved = dual_clock.targets(picture, flow)  # [F, C, h, w], [F, 1, h, w]
        latents = warped[None].to(noise.dtype) + sigmas[0].to(noise.dtype) * noise.to(warped.device)  # SDEdit at t_weak
        steps = schedule.start + len(sigmas) - 1  # the schedule's T (it starts at t_weak's index)
        held_steps = sigmas[:-1][: max(0, round(config.dual_clock_strong * steps) - schedule.start)].float()
        active = StepWindow(float(held_steps.max()), float(held_steps.min())) if len(held_steps) else StepWindow.of(sigmas, 0, 0)
        used.append("dual_clock")
    if warped_attention.uses_warped_attention(config):
        active = StepWindow.of(sigmas, config.warped_attention_start, config.warped_attention_end)
        denoiser = warped_attention.warp_attention(
            denoiser, config, unet, plan.flow, noise.shape[-2:], active, guidance, runtime.warped_backends(config)
        )
        used.append("warped_attention")
    if clocked:
        denoiser = dual_clock.DualClock(denoiser, warped, moved, active)
    if hold_first_frame:
        denoiser = selective_noising.SelectiveNoising(denoiser, picture)
    if held:
        free = region.feathered(plan.region.to(picture.device), *picture.shape[-2:], config.region_feather)  # [1, 1, h, w]
        active = StepWindow.of(sigmas, config.region_start, config.region_end)
        denoiser = region.RegionHold(denoiser, picture, config.region_strength * (1.0 - free), active)
        used.append("region")
    return Steered(denoiser, latents, used)
