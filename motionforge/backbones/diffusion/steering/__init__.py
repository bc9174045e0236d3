"""Zero-shot motion control for the diffusion backbones, composed by one entry point (:func:`steer`).

- ``latent_init`` (Controllable Longer Image Animation, Motion-I2V's zero-shot video-to-video): frame i
  starts from the picture's clean latent forward-splatted along the plan's f_{0→i} at latent
  resolution (softmax splatting, faster motion in front; where less than one source cell lands, the
  unwarped reference shows through in proportion, so disocclusions show the picture as it was),
  noised to the sigma at index round((1 − init_strength)·T) of the schedule, as diffusers' img2vid
  ``strength``: x = warped + σ_start·noise with the backbone's own noise draw, and the sampler runs
  the schedule from there (fewer steps). A start index of 0 is pure noise: the run is untouched.
- ``region`` (the motion brush): a Denoiser wrapper returns x0 = the reference latent outside the
  plan's region (feathered at latent resolution, blended by ``region_strength``) during the active
  steps. An Euler step from x to σ' with x0 = ref gives x' − ref = (σ'/σ)(x − ref): outside, the
  latents stay the reference plus the sampler's own noise (one draw, the initial latents', shrinking
  with σ), and the last step to σ = 0 lands on the reference exactly. Samplers see only a Denoiser.
- ``warped_attention`` (Motion-I2V's motion-augmented temporal attention): in
  :mod:`motionforge.backbones.diffusion.steering.warped_attention`.
- selective noising (Motion-I2V, AnimateDiff's ``selective_noising``): the clip's frame 0 is the
  picture's clean latent at every step (:class:`SelectiveNoising`).
- strength: SVD maps the plan's M_s to ``motion_bucket_id`` (:func:`motion_bucket`); AnimateDiff
  rescales the flow ``latent_init`` warps by so its M_s is the one asked (:func:`flow_at_strength`).

The step ranges (``region_start``/``_end``, ``warped_attention_start``/``_end``) are fractions of the
sampled steps, turned once per run into the sigmas they cover (:class:`StepWindow`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from motionforge.backbones.diffusion import loading, runtime
from motionforge.backbones.diffusion.schedules import Schedule
from motionforge.backbones.diffusion.steering import warped_attention
from motionforge.backbones.diffusion.steering.warped_attention import WarpedAttentionParams
from motionforge.core.errors import ConfigError
from motionforge.core.motion import magnitude, motion_strength, resize_flow
from motionforge.core.types import Denoiser, MotionPlan
from motionforge.kernels import splat

OCCLUSION = 0.5  # softmax splatting metric per latent pixel of motion: where cells collide, the faster one is in front
# M_s of the bundled sample (2.04 px/frame at 512 px) as a share of the longer side: SVD's default bucket 127
REFERENCE_MOTION = 0.004
DEFAULT_BUCKET = 127


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
class SteeringParams(WarpedAttentionParams):
    """The zero-shot controls shared by the diffusion backbones; every one off (or a no-op) by default, so parity holds."""

    latent_init: bool = False  # frames start from the picture's latent warped along the plan, noised to init_strength's sigma
    init_strength: float = 0.7  # (0, 1]: how much noise latent_init starts from (1 = pure noise: off); lower runs fewer steps
    region: bool = True  # hold the latents outside the plan's region (the brush) at the picture's; a no-op without a region
    region_strength: float = 1.0  # [0, 1]: how firmly the outside is held (0: off)
    region_feather: float = 1.0  # latent pixels over which the hold fades out at the region's edge
    region_start: float = 0.0  # fraction of the sampled steps where the hold starts
    region_end: float = 1.0  # fraction of the sampled steps where it ends (1: through the last step)
    # warped_attention, warped_attention_strength, warped_attention_start, warped_attention_end: warped_attention.py


def check(config: SteeringParams) -> None:
    """Check the steering keys (warped attention's too); one sentence per mistake."""
    warped_attention.check(config)
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
    """The step of a schedule of ``steps`` steps that sampling starts at: latent_init's start index when it is on, else 0."""
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


def flow_at_strength(flow: torch.Tensor, strength: float | None) -> torch.Tensor:
    """Flows [F, 2, H, W] rescaled so their M_s is ``strength`` (unchanged without a strength or without motion)."""
    current = motion_strength(flow)
    if strength is None or current <= 0:
        return flow
    return flow * (strength / current)


def motion_bucket(strength: float | None, height: int, width: int, default: int = DEFAULT_BUCKET) -> int:
    """SVD's motion_bucket_id for a motion strength M_s (px/frame at height×width): clamp(round(127·M_s/M_ref), 1, 255).

    M_ref = 0.004 × the longer side is the bundled sample's M_s (2.04 px/frame at 512 px), so its
    motion maps to diffusers' default 127 and twice it to 254; the map is linear through 0 and
    monotone. Without a strength the configured ``default`` is kept.
    """
    if strength is None:
        return default
    reference = REFERENCE_MOTION * max(height, width)
    return int(min(255, max(1, round(DEFAULT_BUCKET * strength / reference))))


def warp_reference(reference: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The reference latent [1, C, h, w] forward-splatted along flows [F, 2, h, w] (latent pixels): [F, C, h, w].

    Softmax splatting with faster motion in front; a cell that receives coverage c < 1 is
    c·splatted + (1 − c)·reference (holes show the unwarped reference); frames with no motion are
    the reference exactly.
    """
    frames = flow.shape[0]
    out = reference.expand(frames, -1, -1, -1).clone()  # [F, C, h, w]
    moving = flow.flatten(1).abs().amax(dim=1) > 0  # [F]
    if not bool(moving.any()):
        return out
    source = reference.float()
    moved = flow[moving].float()  # [M, 2, h, w]
    warped = splat(source, moved, "softmax", OCCLUSION * magnitude(moved, keepdim=True))  # [M, C, h, w]
    coverage = splat(torch.ones_like(source[:, :1]), moved, "sum").clamp(max=1.0)  # [M, 1, h, w]
    out[moving] = (coverage * warped + (1 - coverage) * source).to(out.dtype)
    return out


def latent_init(reference: torch.Tensor, flow: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Warped initial latents noised to the start sigma (the schedule already starts at :func:`start_step`).

    reference [1, C, h, w] clean latent in sigma space at σ = 0; flow [F, 2, H, W] working pixels;
    noise [1, F, C, h, w] unit Gaussian; sigma the schedule's first → latents [1, F, C, h, w] at sigma.
    """
    height, width = reference.shape[-2:]
    small = resize_flow(flow.to(reference.device).float(), height, width)  # [F, 2, h, w] in latent pixels
    warped = warp_reference(reference, small)[None]  # [1, F, C, h, w]
    return warped.to(noise.dtype) + sigma.to(noise.dtype) * noise.to(warped.device)


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

    def __init__(self, inner: Denoiser, reference: torch.Tensor, hold: torch.Tensor, active: StepWindow) -> None:
        self.inner = inner
        self.reference = reference  # [1, C, h, w] clean latent in sigma space at σ = 0
        self.hold = hold  # [1, 1, h, w] in [0, 1]: 1 = x0 is the reference there
        self.active = active

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [B, Fw, C, h, w] at sigma → x0 with the outside of the region lerped to the reference."""
        x0 = self.inner.denoise(x, sigma, frames)
        if sigma not in self.active:
            return x0
        reference = self.reference.to(x0)[:, None]  # [1, 1, C, h, w]
        hold = self.hold.to(x0)[:, None]  # [1, 1, 1, h, w]
        return torch.lerp(x0, reference.expand_as(x0), hold.expand_as(x0))  # weight 1 gives the reference exactly


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
    (2) warped_attention installs its processors around each model call; (3) selective noising
    (``hold_first_frame``) holds frame 0 at the picture; (4) the region hold replaces x0 outside the
    region last, so it wins. ``reference`` encodes the picture's clean latent [1, C, h, w] (called
    once, when a control needs it); ``unet`` is the model warped attention patches, ``guidance`` 2
    when its batch doubles for guidance. The step ranges are taken over the schedule's sigmas.
    """
    sigmas, initialised, held = schedule.sigmas, schedule.start > 0, uses_region(config, plan)
    picture = reference() if initialised or held or hold_first_frame else None  # [1, C, h, w]
    latents, used = noise * schedule.init_noise_scale, []
    if initialised:
        latents = latent_init(picture, plan.flow if init_flow is None else init_flow, noise, sigmas[0])
        used.append("latent_init")
    if warped_attention.uses_warped_attention(config):
        active = StepWindow.of(sigmas, config.warped_attention_start, config.warped_attention_end)
        denoiser = warped_attention.warp_attention(
            denoiser, config, unet, plan.flow, noise.shape[-2:], active, guidance, runtime.warped_backends(config)
        )
        used.append("warped_attention")
    if hold_first_frame:
        denoiser = SelectiveNoising(denoiser, picture)
    if held:
        free = feathered(plan.region.to(picture.device), *picture.shape[-2:], config.region_feather)  # [1, 1, h, w]
        active = StepWindow.of(sigmas, config.region_start, config.region_end)
        denoiser = RegionHold(denoiser, picture, config.region_strength * (1.0 - free), active)
        used.append("region")
    return Steered(denoiser, latents, used)
