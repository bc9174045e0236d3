"""Stable Video Diffusion: the image's CLIP embedding and VAE latent condition every frame, as in diffusers' pipeline.

The conditioning is StableVideoDiffusionPipeline's: the CLIP image embedding (the picture resized to
224×224 with antialiasing), the VAE latent of the picture with ``noise_aug_strength`` Gaussian noise
added, concatenated to every frame's latents, ``added_time_ids`` = (fps − 1, motion_bucket_id,
noise_aug_strength), and classifier-free guidance that rises linearly over the window from
``min_guidance_scale`` on its first frame to ``max_guidance_scale`` on its last (unconditional: zero
embedding and zero image latent). With the single sampler the window is the clip, as in diffusers;
the long-video samplers repeat the ramp in every window, as MOFA-Video's released code does. The sigmas and the initial noise are the checkpoint's own
EulerDiscreteScheduler's, drawn from the run's seed exactly as diffusers draws them, so the same
seed gives diffusers' video. ``svd_tiny`` is the same code on a small random model built from config.
The zero-shot motion controls (``latent_init``, ``region``, ``motion_bucket_from_strength``, and
``warped_attention`` in :mod:`motionforge.backbones.motion_attention`) are in :mod:`motionforge.backbones.steering`; off or no-ops by default, so the parity holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from einops import rearrange, repeat

from motionforge.backbones import loading, motion_attention, notes, runtime, steering
from motionforge.core.errors import ConfigError, InputError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import RenderRequest, SamplerInput

if TYPE_CHECKING:
    from motionforge.backbones.schedules import Schedule

log = logging.getLogger(__name__)

WHAT = "a Stable Video Diffusion checkpoint"
COMPONENTS = {
    "unet": "config.json",
    "vae": "config.json",
    "image_encoder": "config.json",
    "feature_extractor": "preprocessor_config.json",
    "scheduler": "scheduler_config.json",
}
UNET_CLASS = "UNetSpatioTemporalConditionModel"
CLIP_SIZE = (224, 224)  # SVD's CLIP input size


@dataclass
class SvdParams(steering.SteeringParams, runtime.RuntimeParams):
    """SVD's conditioning parameters, with StableVideoDiffusionPipeline's names and defaults, the steering and device keys."""

    fps: int = 7  # the frame rate the model is conditioned on (as diffusers, independent of the output's fps)
    motion_bucket_id: int = 127  # more motion with higher values
    noise_aug_strength: float = 0.02  # noise added to the conditioning image before it is encoded
    min_guidance_scale: float = 1.0  # guidance on a window's first frame
    max_guidance_scale: float = 3.0  # guidance on a window's last frame (1 or less: no classifier-free guidance)
    decode_chunk_size: int | None = (
        None  # frames the VAE decodes at once; null = the model's window (all of a clip that fits one)
    )
    dtype: str = "auto"  # auto (float16 on CUDA, float32 elsewhere) | float32 | float16 | bfloat16
    motion_bucket_from_strength: bool = True  # a motion strength the plan asks for (M_s) sets motion_bucket_id


@dataclass
class SvdConfig(SvdParams):
    """Parameters of the svd backbone: a local diffusers folder and the conditioning."""

    pretrained: str | None = None  # local folder of an SVD checkpoint in diffusers format (img2vid: 14 frames, -xt: 25)
    allow_pickle: bool = False  # also load pickle-based weights (.bin …): only for files you trust


@dataclass
class SvdTinyConfig(SvdParams):
    """Parameters of the svd_tiny backbone: the conditioning only (the model is built from config)."""


@dataclass
class SvdModels:
    """The loaded components of one SVD checkpoint."""

    unet: Any  # UNetSpatioTemporalConditionModel
    vae: Any  # AutoencoderKLTemporalDecoder
    image_encoder: Any  # CLIPVisionModelWithProjection
    feature_extractor: Any  # CLIPImageProcessor
    scheduler_config: dict[str, Any]

    @property
    def window(self) -> int:
        """The native number of frames (the UNet's num_frames: 14 or 25)."""
        return int(self.unet.config.num_frames)

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell (8 for SVD)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


class SvdModel:
    """SVD's UNet with one run's image conditioning bound; classifier-free guidance per frame inside."""

    def __init__(
        self,
        unet: Any,
        embeddings: torch.Tensor,
        image_latents: torch.Tensor,
        time_ids: torch.Tensor,
        guidance: tuple[float, float] | None,
    ) -> None:
        self.unet = unet
        self.embeddings = embeddings  # [1, 1, D] CLIP image embedding
        self.image_latents = image_latents  # [1, C, h, w] VAE latent of the noised picture
        self.time_ids = time_ids  # [1, 3] fps − 1, motion bucket, noise augmentation
        self.guidance = guidance  # (first, last) guidance scale across a window's frames, or None (no guidance)

    def __call__(self, z: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """z [B, Fw, C, h, w] in model space at timestep → guided v-prediction [B, Fw, C, h, w]."""
        batch, window = z.shape[:2]
        condition = repeat(self.image_latents, "1 c h w -> b f c h w", b=batch, f=window)  # [B, Fw, C, h, w]
        embeddings = self.embeddings.expand(batch, -1, -1)  # [B, 1, D]
        time_ids = self.time_ids.expand(batch, -1)  # [B, 3]
        timestep = timestep.to(z.device)
        if self.guidance is None:
            sample = torch.cat([z, condition], dim=2)  # [B, Fw, 2C, h, w]
            return self.unet(sample, timestep, encoder_hidden_states=embeddings, added_time_ids=time_ids, return_dict=False)[0]
        sample = torch.cat([torch.cat([z, z]), torch.cat([torch.zeros_like(condition), condition])], dim=2)  # [2B, Fw, 2C, h, w]
        embeddings = torch.cat([torch.zeros_like(embeddings), embeddings])  # [2B, 1, D]
        output = self.unet(
            sample, timestep, encoder_hidden_states=embeddings, added_time_ids=time_ids.repeat(2, 1), return_dict=False
        )[0]
        uncond, cond = output.chunk(2)  # [B, Fw, C, h, w] each
        low, high = self.guidance
        scale = torch.linspace(low, high, window).to(device=z.device, dtype=z.dtype).view(1, window, 1, 1, 1)  # [1, Fw, 1, 1, 1]
        return uncond + scale * (cond - uncond)


def check_params(config: SvdParams) -> None:
    """Check SVD's conditioning parameters; one sentence per mistake."""
    if config.fps < 1:
        raise ConfigError(f"backbone.fps={config.fps} must be at least 1 (SVD is conditioned on fps − 1)")
    if config.motion_bucket_id < 0:
        raise ConfigError(f"backbone.motion_bucket_id={config.motion_bucket_id} must be zero or more (127 by default)")
    if config.noise_aug_strength < 0:
        raise ConfigError(f"backbone.noise_aug_strength={config.noise_aug_strength} must be zero or more")
    if config.min_guidance_scale < 0 or config.max_guidance_scale < 0:
        raise ConfigError("backbone.min_guidance_scale and backbone.max_guidance_scale must be zero or more")
    if config.decode_chunk_size is not None and config.decode_chunk_size < 1:
        raise ConfigError(
            f"backbone.decode_chunk_size={config.decode_chunk_size} must be at least 1, or null for the model's window"
        )


def load_folder(folder: Any, allow_pickle: bool, dtype: torch.dtype, device: torch.device) -> SvdModels:
    """Load an SVD diffusers folder's components (checked first) onto device in dtype."""
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionModelWithProjection

    key = "backbone.pretrained"
    check_folder(folder)
    load = loading.load_component

    def options(name: str) -> dict[str, Any]:
        return {"dtype": dtype, **loading.weight_options(folder / name, allow_pickle, key)}

    unet = load(UNetSpatioTemporalConditionModel.from_pretrained, folder, "unet", key, "the UNet", **options("unet"))
    vae = load(AutoencoderKLTemporalDecoder.from_pretrained, folder, "vae", key, "the VAE", **options("vae"))
    image_encoder = load(
        CLIPVisionModelWithProjection.from_pretrained,
        folder,
        "image_encoder",
        key,
        "the CLIP image encoder",
        **options("image_encoder"),
    )
    extractor = load(
        loading.clip_image_processor_class().from_pretrained,
        folder,
        "feature_extractor",
        key,
        "the feature extractor",
        local_files_only=True,
    )
    scheduler = loading.read_config(folder / "scheduler", "scheduler_config.json", key)
    unet, vae, image_encoder = (loading.place(model, device, dtype) for model in (unet, vae, image_encoder))
    return SvdModels(unet, vae, image_encoder, extractor, scheduler)


def check_folder(folder: Any) -> None:
    """Check that a folder is a complete SVD checkpoint in diffusers format; one sentence when it is not."""
    key = "backbone.pretrained"
    index = loading.read_config(folder, "model_index.json", key)
    pipeline = index.get("_class_name", "an unknown pipeline")
    unet_class = None
    if (folder / "unet" / "config.json").is_file():
        unet_class = loading.read_config(folder / "unet", "config.json", key).get("_class_name")
    if unet_class != UNET_CLASS:
        raise InputError(
            f"{key}={folder} holds a {pipeline} (its UNet is {unet_class or 'missing'}), not Stable Video Diffusion; "
            "pass an SVD folder (StableVideoDiffusionPipeline), or use backbone=animatediff for an SD1.5 folder"
        )
    loading.require_components(folder, COMPONENTS, key, WHAT)


def clip_embedding(models: SvdModels, image: torch.Tensor) -> torch.Tensor:
    """CLIP image embedding of a picture [3, H, W] in [0, 1] as diffusers computes it for a PIL image: [1, 1, D]."""
    with loading.quiet("transformers.utils.import_utils"):  # the module names CLIPImageProcessor, which warns without torchvision
        from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    pixels = image[None].float().cpu() * 2.0 - 1.0  # [1, 3, H, W] in [-1, 1]
    pixels = (_resize_with_antialiasing(pixels, CLIP_SIZE) + 1.0) / 2.0  # [1, 3, 224, 224] in [0, 1]
    pixels = models.feature_extractor(
        images=pixels, do_normalize=True, do_center_crop=False, do_resize=False, do_rescale=False, return_tensors="pt"
    ).pixel_values  # [1, 3, 224, 224] normalised for CLIP
    encoder = models.image_encoder
    pixels = pixels.to(device=encoder.device, dtype=encoder.dtype)
    return encoder(pixels).image_embeds.unsqueeze(1)  # [1, 1, D]


def image_latent(models: SvdModels, image: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """VAE latent (the distribution's mode, unscaled) of the picture [3, H, W] with noise augmentation: [1, C, h, w].

    Draws the augmentation noise from ``generator`` first, as diffusers does, so the initial latents drawn after it match.
    """
    pixels = image[None].float().cpu() * 2.0 - 1.0  # [1, 3, H, W] in [-1, 1]
    noise = torch.randn(pixels.shape, generator=generator, dtype=pixels.dtype)  # [1, 3, H, W]
    pixels = pixels + strength * noise
    vae = models.vae
    with loading.float32_vae(vae, loading.needs_upcast(vae)):
        pixels = pixels.to(device=vae.device, dtype=vae.dtype)
        latent = vae.encode(pixels).latent_dist.mode()  # [1, C, h, w]
    return latent.to(models.unet.dtype)


class SvdBackbone:
    """Stable Video Diffusion from a local diffusers folder (``backbone.pretrained``), image-conditioned."""

    name = "svd"
    Config = SvdConfig

    def load(self, config: Any, device: torch.device) -> SvdModels:
        """The checkpoint's components on device in the config's dtype (loaded once per process)."""
        dtype = loading.resolve_dtype(config.dtype, device)
        folder = loading.local_folder(config.pretrained, "backbone.pretrained", WHAT, tiny="svd_tiny")
        key = ("svd", str(folder), config.allow_pickle, str(dtype), str(device), config.cpu_offload)
        where = runtime.load_device(config, device)
        return loading.MODELS.get(key, lambda: offloaded(load_folder(folder, config.allow_pickle, dtype, where), config, device))

    @torch.no_grad()
    def prepare(self, config: Any, request: RenderRequest) -> SamplerInput:
        """Encode the picture, draw the initial noise and bind the conditioning to a denoiser over windows of frames."""
        from motionforge.backbones.schedules import KarrasDenoiser, euler_schedule

        check_params(config)
        steering.check(config)
        context, plan = request.context, request.plan
        runtime.check(config, context.device)
        models = self.load(config, context.device)
        runtime.set_unet_attention(models.unet, config)
        bucket = self.motion_bucket(config, request)
        self.explain(request, self.steered(config, request, bucket))
        generator = torch.Generator("cpu").manual_seed(request.seed)
        guided = config.max_guidance_scale > 1
        embeddings = clip_embedding(models, context.image)  # [1, 1, D]
        image_latents = image_latent(models, context.image, config.noise_aug_strength, generator)  # [1, C, h, w]
        dtype = embeddings.dtype
        time_ids = torch.tensor([[config.fps - 1, bucket, config.noise_aug_strength]], dtype=dtype)
        time_ids = time_ids.to(context.device)  # [1, 3]
        self.check_time_ids(models, time_ids)
        schedule = euler_schedule(models.scheduler_config, request.steps)
        noise = self.initial_noise(models, context.num_frames, context.height, context.width, dtype, generator)
        latents, sigmas = noise * schedule.init_noise_scale, schedule.sigmas  # [1, F, C, h, w] at sigmas[0]
        reference = None
        if steering.uses_latent_init(config, request.steps) or steering.uses_region(config, plan):
            reference = steering.reference_latent(models, context.image)  # [1, C, h, w]
        if steering.uses_latent_init(config, request.steps):
            latents, sigmas = steering.latent_init(reference, plan.flow, noise, sigmas, config.init_strength)
        guidance = (config.min_guidance_scale, config.max_guidance_scale) if guided else None
        model = SvdModel(models.unet, embeddings, image_latents, time_ids, guidance)
        denoiser = motion_attention.warp_attention(
            KarrasDenoiser(model, schedule),
            config,
            models.unet,
            plan.flow,
            noise.shape[-2:],
            sigmas,
            2 if guided else 1,
            runtime.warped_backends(config),
        )
        denoiser = steering.hold_region(denoiser, config, plan, reference, sigmas)
        return SamplerInput(denoiser, sigmas, latents.to(context.device), models.window, generator)

    @staticmethod
    def motion_bucket(config: Any, request: RenderRequest) -> int:
        """motion_bucket_id: mapped from the plan's motion strength when one is asked and the map is on, else the config's."""
        if not config.motion_bucket_from_strength or request.plan.strength is None:
            return config.motion_bucket_id
        return steering.motion_bucket(request.plan.strength, request.context.height, request.context.width)

    @staticmethod
    def steered(config: Any, request: RenderRequest, bucket: int) -> list[str]:
        """The steering mechanisms that use the plan in this run (for the log)."""
        used = ["latent_init"] if steering.uses_latent_init(config, request.steps) else []
        used += ["region"] if steering.uses_region(config, request.plan) else []
        used += ["warped_attention"] if motion_attention.uses_warped_attention(config) else []
        if config.motion_bucket_from_strength and request.plan.strength is not None:
            used.append(f"motion_bucket_id={bucket} from strength {request.plan.strength:g}")
        return used

    @staticmethod
    def initial_latents(
        models: SvdModels,
        schedule: Schedule,
        frames: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """Gaussian noise [1, F, C, h, w] drawn as diffusers draws it (CPU generator, its shape and dtype), scaled to sigmas[0]."""
        return SvdBackbone.initial_noise(models, frames, height, width, dtype, generator) * schedule.init_noise_scale

    @staticmethod
    def initial_noise(
        models: SvdModels, frames: int, height: int, width: int, dtype: torch.dtype, generator: torch.Generator
    ) -> torch.Tensor:
        """Unit Gaussian noise [1, F, C, h, w] drawn as diffusers draws it (CPU generator, its shape and dtype)."""
        factor = models.vae_scale_factor
        shape = (1, frames, models.unet.config.in_channels // 2, height // factor, width // factor)
        return torch.randn(shape, generator=generator, dtype=dtype)

    @staticmethod
    def check_time_ids(models: SvdModels, time_ids: torch.Tensor) -> None:
        """The UNet must expect three added time ids (a checkpoint with another added embedding is not SVD)."""
        expected = models.unet.add_embedding.linear_1.in_features
        given = models.unet.config.addition_time_embed_dim * time_ids.shape[1]
        if expected != given:
            raise InputError(
                f"the UNet expects an added time embedding of {expected} values, not {given}; is the checkpoint SVD?"
            )

    def explain(self, request: RenderRequest, used: list[str] | None = None) -> None:
        """Say what this backbone leaves out of the run: the prompt (SVD has no text input) and, unsteered, the plan's motion."""
        if request.prompt:
            log.warning("%s takes no prompt; the prompt is ignored", self.name)
        notes.plan_not_followed(self.name, request, used or [])

    @torch.no_grad()
    def decode(self, config: Any, latents: torch.Tensor) -> torch.Tensor:
        """Latents [1, F, C, h, w] → frames [F, 3, H, W] in [0, 1], decode_chunk_size frames at a time."""
        models = self.load(config, latents.device)
        vae = models.vae
        flat = 1 / vae.config.scaling_factor * rearrange(latents, "b f c h w -> (b f) c h w").to(vae.dtype)  # [F, C, h, w]
        chunk = config.decode_chunk_size or models.window  # diffusers' "all frames" for a clip of one window; bounded beyond
        frames = [vae.decode(flat[i : i + chunk], num_frames=len(flat[i : i + chunk])).sample for i in range(0, len(flat), chunk)]
        return (torch.cat(frames).float() / 2 + 0.5).clamp(0, 1)  # [F, 3, H, W]


class SvdTinyBackbone(SvdBackbone):
    """SVD's code on a small random model built from config: for tests and overhead benchmarks (its frames are noise)."""

    name = "svd_tiny"
    Config = SvdTinyConfig
    memory_per_pixel = 1100  # bytes per frame-pixel at a run's peak (measured on a CPU in float32; see core/memory.py)

    def load(self, config: Any, device: torch.device) -> SvdModels:
        """The tiny components on device in the config's dtype (built once per process, seed 0)."""
        dtype = loading.resolve_dtype(config.dtype, device)
        key = ("svd_tiny", str(dtype), str(device), config.cpu_offload)
        return loading.MODELS.get(key, lambda: offloaded(tiny_models(dtype, runtime.load_device(config, device)), config, device))

    def explain(self, request: RenderRequest, used: list[str] | None = None) -> None:
        """Say that the weights are random, then what SVD leaves out."""
        notes.random_weights(self.name, request)
        super().explain(request, used)


def offloaded(models: SvdModels, config: Any, device: torch.device) -> SvdModels:
    """The models with accelerate's CPU offload hooks (image encoder, UNet, VAE) under cpu_offload, else as they are."""
    if config.cpu_offload:
        runtime.offload([models.image_encoder, models.unet, models.vae], device)
    return models


def tiny_models(dtype: torch.dtype, device: torch.device, seed: int = 0) -> SvdModels:
    """The tiny SVD components (motionforge.backbones.tiny) as loaded models."""
    from motionforge.backbones.tiny import tiny_svd_components

    parts = tiny_svd_components(seed)
    unet, vae, encoder = (loading.place(parts[name], device, dtype) for name in ("unet", "vae", "image_encoder"))
    return SvdModels(unet, vae, encoder, parts["feature_extractor"], dict(parts["scheduler"].config))


@hookimpl
def register_backbones(register: Any) -> None:
    """Register svd and svd_tiny."""
    register(SvdBackbone)
    register(SvdTinyBackbone)
