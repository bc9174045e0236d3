"""Stable Video Diffusion: the picture's CLIP embedding and VAE latent condition every frame, as in diffusers' pipeline.

The conditioning is StableVideoDiffusionPipeline's: the CLIP image embedding (the picture resized
to 224×224 with antialiasing), the VAE latent of the picture with ``noise_aug_strength`` noise,
concatenated to every frame's latents, ``added_time_ids`` = (fps − 1, motion_bucket_id,
noise_aug_strength), and classifier-free guidance rising linearly over a window's frames from
``min_guidance_scale`` to ``max_guidance_scale`` (unconditional: zero embedding and image latent).
With the single sampler the window is the clip, as in diffusers (longer than the UNet's frames
with a warning); the long-video samplers repeat the ramp in every window, as MOFA-Video's code does.

The scheduler is the checkpoint's EulerDiscreteScheduler (or the one ``scheduler`` names) and the
initial noise is drawn from the run's seed as diffusers draws it, so the same seed gives diffusers'
video. The zero-shot controls are :mod:`motionforge.backbones.diffusion.steering`'s, off or no-ops by default.
``svd_tiny`` is the same code on a small random model built from config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from einops import repeat

from motionforge.backbones.diffusion import loading, mofa, steering, tiny
from motionforge.backbones.diffusion.base import DiffusionBase, DiffusionParams, vae_decoder, vae_scale_factor
from motionforge.backbones.diffusion.schedules import KarrasDenoiser
from motionforge.backbones.diffusion.steering import strength
from motionforge.core.errors import ConfigError, InputError
from motionforge.core.hookspecs import Register, hookimpl
from motionforge.core.types import Prepared, RenderRequest, SamplerInput
from motionforge.modules import mofa_unet

log = logging.getLogger(__name__)

KEY = "backbone.pretrained"
COMPONENTS = {name: "config.json" for name in ("unet", "vae", "image_encoder")} | {
    "feature_extractor": "preprocessor_config.json",
    "scheduler": "scheduler_config.json",
}
UNET_CLASS = "UNetSpatioTemporalConditionModel"
CLIP_SIZE = (224, 224)  # SVD's CLIP input size


@dataclass
class SvdParams(mofa.MofaParams, steering.SteeringParams, DiffusionParams):
    """SVD's conditioning parameters, with StableVideoDiffusionPipeline's names and defaults; the steering, MOFA, device keys."""

    fps: int = 7  # the frame rate the model is conditioned on (as diffusers, independent of the output's fps)
    motion_bucket_id: int = 127  # more motion with higher values
    noise_aug_strength: float = 0.02  # noise added to the conditioning image before it is encoded
    min_guidance_scale: float = 1.0  # guidance on a window's first frame
    max_guidance_scale: float = 3.0  # guidance on a window's last frame (1 or less: no classifier-free guidance)
    decode_chunk_size: int | None = None  # frames the VAE decodes at once; null: all, as diffusers (the UNet's frames beyond 2× them)
    motion_bucket_from_strength: bool = True  # a motion strength the plan asks for (M_s) sets motion_bucket_id


@dataclass
class SvdConfig(SvdParams):
    """Parameters of the svd backbone: a local diffusers folder and the conditioning."""

    pretrained: str | None = None  # local folder of an SVD checkpoint in diffusers format (img2vid: 14 frames, -xt: 25)
    allow_pickle: bool = False  # also load pickle-based weights (.bin …): only for files you trust


@dataclass
class SvdTinyConfig(SvdParams):
    """Parameters of the svd_tiny backbone: the conditioning only (the model is built from config; mofa=tiny: random)."""


@dataclass
class SvdModels:
    """The loaded components of one SVD checkpoint."""

    unet: Any  # UNetSpatioTemporalConditionModel
    vae: Any  # AutoencoderKLTemporalDecoder
    image_encoder: Any  # CLIPVisionModelWithProjection
    feature_extractor: Any  # CLIPImageProcessor
    scheduler_config: dict[str, Any]
    mofa: Any = None  # MOFA-Video's trajectory adapter (modules.mofa.MofaAdapter), when backbone.mofa is set
    mofa_landmark: Any = None  # its keypoint adapter, when backbone.mofa_landmark is set

    @property
    def window(self) -> int:
        """The frames the UNet was trained on (its num_frames: 14 or 25)."""
        return int(self.unet.config.num_frames)


class SvdModel:
    """SVD's UNet with one run's image conditioning bound; classifier-free guidance per frame inside.

    ``control``, when set, gives ControlNet residuals for each call's UNet input (MOFA-Video's adapters,
    :class:`~motionforge.backbones.diffusion.mofa.MofaControl`), added as MOFA's UNet adds them.
    """

    def __init__(
        self, unet: Any, embeddings: torch.Tensor, image_latents: torch.Tensor, time_ids: torch.Tensor, guidance: Any,
        control: Any = None,
    ) -> None:  # fmt: skip
        self.unet = unet
        self.control = control
        self.embeddings = embeddings  # [1, 1, D] CLIP image embedding
        self.image_latents = image_latents  # [1, C, h, w] VAE latent of the noised picture
        self.time_ids = time_ids  # [1, 3] fps − 1, motion bucket, noise augmentation
        self.guidance = guidance  # (first, last) guidance scale across a window's frames, or None (no guidance)

    def __call__(self, z: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """z [B, Fw, C, h, w] in model space at timestep → guided v-prediction [B, Fw, C, h, w]."""
        batch, window = z.shape[:2]
        condition = repeat(self.image_latents, "1 c h w -> b f c h w", b=batch, f=window)  # [B, Fw, C, h, w]
        embeddings, time_ids, timestep = self.embeddings.expand(batch, -1, -1), self.time_ids.expand(batch, -1), timestep.to(z.device)
        if self.guidance is None:
            sample = torch.cat([z, condition], dim=2)  # [B, Fw, 2C, h, w]
            return self.predict(sample, timestep, embeddings, time_ids, frames)
        sample = torch.cat([torch.cat([z, z]), torch.cat([torch.zeros_like(condition), condition])], dim=2)  # [2B, Fw, 2C, h, w]
        embeddings = torch.cat([torch.zeros_like(embeddings), embeddings])  # [2B, 1, D]
        output = self.predict(sample, timestep, embeddings, time_ids.repeat(2, 1), frames)
        uncond, cond = output.chunk(2)  # [B, Fw, C, h, w] each
        low, high = self.guidance
        scale = torch.linspace(low, high, window).to(device=z.device, dtype=z.dtype).view(1, window, 1, 1, 1)  # [1, Fw, 1, 1, 1]
        return uncond + scale * (cond - uncond)

    def predict(
        self, sample: torch.Tensor, timestep: torch.Tensor, embeddings: torch.Tensor, time_ids: torch.Tensor, frames: torch.Tensor
    ) -> torch.Tensor:
        """The UNet on sample [R, Fw, 2C, h, w] (R rows: the guidance batch) → [R, Fw, C, h, w], with the control's residuals."""
        if self.control is None:
            return self.unet(sample, timestep, encoder_hidden_states=embeddings, added_time_ids=time_ids, return_dict=False)[0]
        down, mid = self.control(sample, timestep, embeddings, time_ids, frames)
        return mofa_unet.forward(self.unet, sample, timestep, embeddings, time_ids, down, mid)


def check_params(config: SvdParams) -> None:
    """Check SVD's conditioning parameters and the steering keys; one sentence per mistake."""
    steering.check(config)
    mofa.check(config)
    if config.fps < 1:
        raise ConfigError(f"backbone.fps={config.fps} must be at least 1 (SVD is conditioned on fps − 1)")
    if config.motion_bucket_id < 0:
        raise ConfigError(f"backbone.motion_bucket_id={config.motion_bucket_id} must be zero or more (127 by default)")
    if config.noise_aug_strength < 0:
        raise ConfigError(f"backbone.noise_aug_strength={config.noise_aug_strength} must be zero or more")
    if config.min_guidance_scale < 0 or config.max_guidance_scale < 0:
        raise ConfigError("backbone.min_guidance_scale and backbone.max_guidance_scale must be zero or more")
    if config.decode_chunk_size is not None and config.decode_chunk_size < 1:
        raise ConfigError(f"backbone.decode_chunk_size={config.decode_chunk_size} must be at least 1, or null for the UNet's frames")


def clip_embedding(models: SvdModels, image: torch.Tensor) -> torch.Tensor:
    """CLIP image embedding of a picture [3, H, W] in [0, 1] as diffusers computes it for a PIL image: [1, 1, D]."""
    with loading.quiet("transformers.utils.import_utils"):  # the module names CLIPImageProcessor, which warns without torchvision
        from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    pixels = (_resize_with_antialiasing(image[None].float().cpu() * 2.0 - 1.0, CLIP_SIZE) + 1.0) / 2.0  # [1, 3, 224, 224] in [0, 1]
    pixels = models.feature_extractor(
        images=pixels, do_normalize=True, do_center_crop=False, do_resize=False, do_rescale=False, return_tensors="pt"
    ).pixel_values  # [1, 3, 224, 224] normalised for CLIP
    encoder = models.image_encoder
    return encoder(pixels.to(device=encoder.device, dtype=encoder.dtype)).image_embeds.unsqueeze(1)  # [1, 1, D]


def image_latent(models: SvdModels, image: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """VAE latent (the mode, unscaled) of the picture [3, H, W] with noise augmentation, its noise drawn first as diffusers does: [1, C, h, w]."""
    pixels = image[None].float().cpu() * 2.0 - 1.0  # [1, 3, H, W] in [-1, 1]
    pixels = pixels + strength * torch.randn(pixels.shape, generator=generator, dtype=pixels.dtype)
    vae = models.vae
    with loading.float32_vae(vae, loading.needs_upcast(vae)):
        latent = vae.encode(pixels.to(device=vae.device, dtype=vae.dtype)).latent_dist.mode()  # [1, C, h, w]
    return latent.to(models.unet.dtype)


def added_time_ids(models: SvdModels, values: list[float], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The added time ids [1, 3] (fps − 1, motion bucket, noise augmentation); the UNet must expect three (else it is not SVD)."""
    expected = models.unet.add_embedding.linear_1.in_features
    given = models.unet.config.addition_time_embed_dim * len(values)
    if expected != given:
        raise InputError(f"the UNet expects an added time embedding of {expected} values, not {given}; is the checkpoint SVD?")
    return torch.tensor([values], dtype=dtype).to(device)


class SvdBackbone(DiffusionBase):
    """Stable Video Diffusion from a local diffusers folder (``backbone.pretrained``), image-conditioned."""

    name = "svd"
    Config = SvdConfig
    folders = {"pretrained": "a Stable Video Diffusion checkpoint"}
    tiny = "svd_tiny"
    offload_order = ("image_encoder", "mofa", "mofa_landmark", "unet", "vae")  # diffusers' model_cpu_offload_seq, with MOFA

    def cache_extra(self, config: SvdParams) -> tuple[Any, ...]:
        """The MOFA adapters on the UNet (their folders; ``tiny``)."""
        return mofa.cache_extra(config)

    def load_folders(self, config: SvdConfig, folders: dict[str, Path], dtype: torch.dtype, device: torch.device) -> SvdModels:
        """Load an SVD diffusers folder's components (checked first) onto device in dtype."""
        from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
        from transformers import CLIPVisionModelWithProjection

        folder = folders["pretrained"]
        advice = "pass an SVD folder (StableVideoDiffusionPipeline), or use backbone=animatediff for an SD1.5 folder"
        loading.check_pipeline(folder, KEY, COMPONENTS, "Stable Video Diffusion", (UNET_CLASS, None), advice)
        parts = {
            "unet": loading.Part(UNetSpatioTemporalConditionModel.from_pretrained, "the UNet"),
            "vae": loading.Part(AutoencoderKLTemporalDecoder.from_pretrained, "the VAE"),
            "image_encoder": loading.Part(CLIPVisionModelWithProjection.from_pretrained, "the CLIP image encoder"),
            "feature_extractor": loading.Part(loading.clip_image_processor_class().from_pretrained, "the feature extractor", False),
        }
        loaded = loading.load_parts(folder, parts, config.allow_pickle, dtype, device, KEY)
        adapters = mofa.load_adapters(config, loaded["unet"], dtype, device, tiny=False)
        scheduler_config = loading.read_config(folder / "scheduler", "scheduler_config.json", KEY)
        return SvdModels(**loaded, scheduler_config=scheduler_config, **adapters)

    @torch.no_grad()
    def prepare(self, config: SvdParams, request: RenderRequest) -> Prepared:
        """Encode the picture, draw diffusers' initial noise, and bind the conditioning to a steered denoiser over windows."""
        context, plan = request.context, request.plan
        # 1. Check the inputs; the models (loaded once per process); the run's generator
        check_params(config)
        models = self.ready(config, context.device)
        if request.prompt:
            log.warning("%s takes no prompt; the prompt is ignored", self.name)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        # 2. Encode the picture: its CLIP embedding, and its VAE latent with noise augmentation (that noise is drawn first)
        embeddings = clip_embedding(models, context.image)  # [1, 1, D]
        image_latents = image_latent(models, context.image, config.noise_aug_strength, generator)  # [1, C, h, w]
        # 3. The added time ids, the motion bucket mapped from the plan's motion strength when one is asked
        asked = config.motion_bucket_from_strength and plan.strength is not None
        bucket = strength.motion_bucket(plan.strength, context.height, context.width) if asked else config.motion_bucket_id
        time_ids = added_time_ids(models, [config.fps - 1, bucket, config.noise_aug_strength], embeddings.dtype, context.device)
        # 4. The scheduler's steps in sigma space (from latent_init's start) and its step rule
        schedule, stepper = self.timesteps(config, models, request.steps, generator)
        # 5. The initial noise, drawn as diffusers draws it: [1, F, C, h, w] from the CPU generator
        factor, channels = vae_scale_factor(models.vae), models.unet.config.in_channels // 2
        shape = (1, context.num_frames, channels, context.height // factor, context.width // factor)
        noise = torch.randn(shape, generator=generator, dtype=embeddings.dtype)
        # 6. The guided UNet as a sigma-space denoiser, steered by the plan
        guided = config.max_guidance_scale > 1
        guidance = (config.min_guidance_scale, config.max_guidance_scale) if guided else None
        adapters = {key: getattr(models, key) for key in mofa.KEYS if getattr(models, key) is not None}
        control = mofa.MofaControl(adapters, config, context, plan, factor) if adapters else None
        model = SvdModel(models.unet, embeddings, image_latents, time_ids, guidance, control)
        steered = steering.steer(
            KarrasDenoiser(model, schedule), config, plan, schedule=schedule, noise=noise,
            reference=lambda: steering.reference_latent(models, context.image), unet=models.unet, guidance=2 if guided else 1,
        )  # fmt: skip
        used = (control.used() if control else []) + steered.used
        used += [f"motion_bucket_id={bucket} from strength {plan.strength:g}"] if asked else []
        # 7. The sampler's input, and the decoder bound to these models and this schedule
        latents = steered.latents.to(context.device)  # [1, F, C, h, w] at the schedule's first sigma
        problem = SamplerInput(steered.denoiser, schedule.sigmas, latents, models.window, generator, stepper)
        frames = context.num_frames if context.num_frames <= 2 * models.window else models.window  # long clips: flat memory
        decode = vae_decoder(models.vae, schedule, config.decode_chunk_size or frames, temporal=True)
        return Prepared(problem, decode, self.notes(plan, used), used)


def tiny_models(config: SvdTinyConfig, dtype: torch.dtype, device: torch.device) -> SvdModels:
    """The tiny SVD components (:mod:`motionforge.backbones.diffusion.tiny`, seed 0) as loaded models."""
    parts = tiny.tiny_svd_components()
    unet, vae, encoder = (loading.place(parts[name], device, dtype) for name in ("unet", "vae", "image_encoder"))
    adapters = mofa.load_adapters(config, unet, dtype, device, tiny=True)
    return SvdModels(unet, vae, encoder, parts["feature_extractor"], tiny.scheduler_config(parts["scheduler"]), **adapters)


class SvdTinyBackbone(SvdBackbone):
    """SVD's code on a small random model built from config: for tests and overhead benchmarks (its frames are noise)."""

    name = "svd_tiny"
    Config = SvdTinyConfig
    models_factory = staticmethod(tiny_models)
    memory_per_pixel = 1100  # bytes per frame-pixel at a run's peak (measured on a CPU in float32; see core/memory.py)
    # MOFA's tiny adapters leave that peak as it is (it is the VAE's decode; measured at 256×256, 14 frames)


@hookimpl
def register_backbones(register: Register) -> None:
    """Register svd and svd_tiny."""
    register(SvdBackbone)
    register(SvdTinyBackbone)
