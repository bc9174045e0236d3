"""SD1.5 + AnimateDiff: a text-to-video UNet made image-to-video by Motion-I2V's selective noising.

The UNet is the SD1.5 folder's UNet2DConditionModel with the motion adapter's temporal modules
inserted (diffusers' UNetMotionModel.from_unet2d, as AnimateDiffPipeline builds it). The prompt and
``negative_prompt`` are encoded by the folder's CLIP text encoder, with classifier-free guidance at
``guidance_scale``; the sigmas are deterministic DDIM's for the folder's scheduler config, in sigma
space; the initial noise is drawn from the run's seed exactly as AnimateDiffPipeline draws it. With
``selective_noising`` (Motion-I2V), frame 0 of the clip is the clean VAE latent of the picture at
every step, so the video starts from the picture; without it the backbone is AnimateDiffPipeline.
An optional IP-Adapter (``ip_adapter``, :mod:`motionforge.backbones.ip_adapter`) also conditions every
frame on the picture's CLIP image embedding, as AnimateDiffPipeline's ``ip_adapter_image`` does.
``animatediff_tiny`` is the same code on a small random model built from config. The zero-shot
motion controls (``latent_init``, ``region``, ``init_flow_from_strength``, and ``warped_attention``
in :mod:`motionforge.backbones.motion_attention`) are in :mod:`motionforge.backbones.steering`; off or no-ops by default, so the parity holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from einops import rearrange

from motionforge.backbones import ip_adapter, loading, motion_attention, notes, runtime, steering
from motionforge.core.errors import ConfigError, InputError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import Denoiser, RenderRequest, SamplerInput

log = logging.getLogger(__name__)

WHAT = "a Stable Diffusion 1.5 checkpoint"
ADAPTER_WHAT = "an AnimateDiff motion adapter"
COMPONENTS = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "tokenizer": "tokenizer_config.json",
    "scheduler": "scheduler_config.json",
}
UNET_CLASS = "UNet2DConditionModel"
ADAPTER_CLASS = "MotionAdapter"
WINDOW = 16  # AnimateDiff's motion modules are trained on 16 frames


@dataclass
class AnimateDiffParams(steering.SteeringParams, runtime.RuntimeParams):
    """AnimateDiff's parameters, with AnimateDiffPipeline's names and defaults, Motion-I2V's image conditioning, the steering and device keys."""

    guidance_scale: float = 7.5  # classifier-free guidance on the prompt (1 or less: none)
    negative_prompt: str | None = None  # what to steer away from (null: the empty prompt)
    selective_noising: bool = True  # Motion-I2V: frame 0 is the picture's clean latent at every step (false: text-to-video)
    decode_chunk_size: int = 16  # frames the VAE decodes at once
    dtype: str = "auto"  # auto (float16 on CUDA, float32 elsewhere) | float32 | float16 | bfloat16
    init_flow_from_strength: bool = True  # latent_init warps along the plan's flow rescaled to the motion strength it asks for
    ip_adapter_scale: float = 1.0  # weight of the IP-Adapter's image tokens beside the prompt's (set_ip_adapter_scale; 0: off)


@dataclass
class AnimateDiffConfig(AnimateDiffParams):
    """Parameters of the animatediff backbone: an SD1.5 folder, a motion adapter folder and the conditioning."""

    pretrained: str | None = None  # local folder of an SD1.5 checkpoint in diffusers format
    motion_adapter: str | None = None  # local folder of a diffusers MotionAdapter for SD1.5
    allow_pickle: bool = False  # also load pickle-based weights (.bin …): only for files you trust
    ip_adapter: str | None = None  # local IP-Adapter weights file (…/models/ip-adapter_sd15.safetensors); null: none
    ip_adapter_image_encoder: str | None = None  # local folder of its CLIP image encoder (null: image_encoder/ beside the file)


@dataclass
class AnimateDiffTinyConfig(AnimateDiffParams):
    """Parameters of the animatediff_tiny backbone: the conditioning only (the model is built from config)."""

    ip_adapter: bool = False  # put a tiny random IP-Adapter (and CLIP image encoder) on the model


@dataclass
class AnimateDiffModels:
    """The loaded components: SD1.5 with the motion modules inserted."""

    unet: Any  # UNetMotionModel
    vae: Any  # AutoencoderKL
    text_encoder: Any  # CLIPTextModel
    tokenizer: Any  # CLIPTokenizer
    scheduler_config: dict[str, Any]
    ip_adapter: ip_adapter.IPAdapterParts | None = None  # the IP-Adapter's image encoder when one is on the UNet

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell (8 for SD1.5)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


class AnimateDiffModel:
    """The motion UNet with one run's prompt embeddings bound; classifier-free guidance inside."""

    def __init__(
        self,
        unet: Any,
        embeddings: torch.Tensor,
        negative: torch.Tensor | None,
        guidance_scale: float,
        image_embeds: ip_adapter.ImageEmbeds | None = None,
    ) -> None:
        self.unet = unet
        self.embeddings = embeddings  # [1, S, D] prompt
        self.negative = negative  # [1, S, D] negative prompt, or None (no guidance)
        self.guidance_scale = guidance_scale
        self.image_embeds = image_embeds  # the picture's IP-Adapter embeddings (negative too under guidance), or None
        self._per_frame: dict[tuple[int, int], torch.Tensor] = {}

    def hidden_states(self, batch: int, window: int) -> torch.Tensor:
        """Text embeddings repeated per frame as the motion UNet wants them: [(G·B)·Fw, S, D] (G = 2 with guidance)."""
        key = (batch, window)
        if key not in self._per_frame:
            prompts = [self.embeddings.expand(batch, -1, -1)]  # [B, S, D]
            if self.negative is not None:
                prompts.insert(0, self.negative.expand(batch, -1, -1))
            self._per_frame[key] = torch.cat(prompts).repeat_interleave(window, dim=0)
        return self._per_frame[key]

    def __call__(self, z: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """z [B, Fw, C, h, w] in model space at timestep → guided eps-prediction [B, Fw, C, h, w]."""
        batch, window = z.shape[:2]
        sample = rearrange(z, "b f c h w -> b c f h w")  # the motion UNet's layout
        if self.negative is not None:
            sample = torch.cat([sample, sample])  # [2B, C, Fw, h, w]
        added = None
        if self.image_embeds is not None:
            added = {"image_embeds": [e.to(z.device) for e in self.image_embeds.batched(batch)]}  # [[G·B, 1, D]]
        hidden = self.hidden_states(batch, window)
        output = self.unet(sample, timestep.to(z.device), encoder_hidden_states=hidden, added_cond_kwargs=added).sample
        if self.negative is not None:
            uncond, cond = output.chunk(2)
            output = uncond + self.guidance_scale * (cond - uncond)
        return rearrange(output, "b c f h w -> b f c h w")


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


def check_params(config: AnimateDiffParams) -> None:
    """Check AnimateDiff's parameters; one sentence per mistake."""
    if config.guidance_scale < 0:
        raise ConfigError(f"backbone.guidance_scale={config.guidance_scale} must be zero or more (7.5 by default)")
    if config.decode_chunk_size < 1:
        raise ConfigError(f"backbone.decode_chunk_size={config.decode_chunk_size} must be at least 1")


def check_folders(folder: Any, adapter: Any) -> None:
    """Check an SD1.5 folder and a motion adapter folder, and that the adapter fits the UNet; one sentence when not."""
    key, adapter_key = "backbone.pretrained", "backbone.motion_adapter"
    index = loading.read_config(folder, "model_index.json", key)
    unet_config = loading.read_config(folder / "unet", "config.json", key) if (folder / "unet" / "config.json").is_file() else {}
    unet_class = unet_config.get("_class_name")
    if unet_class != UNET_CLASS or unet_config.get("in_channels", 4) != 4:
        pipeline = index.get("_class_name", "an unknown pipeline")
        raise InputError(
            f"{key}={folder} holds a {pipeline} (its UNet is {unet_class or 'missing'} with {unet_config.get('in_channels', '?')} "
            "input channels), not Stable Diffusion 1.5; pass an SD1.5 folder (StableDiffusionPipeline), or use backbone=svd for SVD"
        )
    loading.require_components(folder, COMPONENTS, key, WHAT)
    adapter_config = loading.read_config(adapter, "config.json", adapter_key)
    if adapter_config.get("_class_name") != ADAPTER_CLASS:
        raise InputError(
            f"{adapter_key}={adapter} holds a {adapter_config.get('_class_name', 'model of unknown type')}, not a MotionAdapter"
        )
    check_fit(unet_config, adapter_config, folder, adapter)


def check_fit(unet: dict[str, Any], adapter: dict[str, Any], folder: Any, adapter_folder: Any) -> None:
    """The motion adapter's blocks must match the UNet's: channels and layers per block (it was made for this base model)."""
    blocks = len(unet.get("down_block_types", ()))

    def per_block(value: Any) -> list[int]:
        return [value] * blocks if isinstance(value, int) else list(value or ())

    theirs, ours = list(adapter.get("block_out_channels", ())), list(unet.get("block_out_channels", ()))
    layers, adapter_layers = per_block(unet.get("layers_per_block", 2)), per_block(adapter.get("motion_layers_per_block", 2))
    problem = None
    if theirs != ours:
        problem = f"its block channels are {theirs} and the UNet's are {ours}"
    elif layers != adapter_layers:
        problem = f"it has {adapter_layers} layers per block and the UNet has {layers}"
    elif adapter.get("conv_in_channels"):
        problem = "it is a PIA adapter with its own input layer, which this backbone does not support"
    elif adapter.get("motion_max_seq_length", 32) < WINDOW:
        problem = f"its motion modules hold {adapter.get('motion_max_seq_length')} frames, fewer than AnimateDiff's {WINDOW}"
    if problem:
        raise InputError(
            f"the motion adapter at {adapter_folder} does not fit the UNet at {folder}: {problem}; use an AnimateDiff adapter made for SD1.5"
        )


def load_folders(
    folder: Any,
    adapter_folder: Any,
    allow_pickle: bool,
    dtype: torch.dtype,
    device: torch.device,
    ip: tuple[Path, Path] | None = None,
) -> AnimateDiffModels:
    """Load the SD1.5 components and the motion adapter (checked first), insert the motion modules, move to device in dtype.

    ip: the IP-Adapter's weights file and image encoder folder (its file is read and checked before the rest loads), or None.
    """
    from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    key = "backbone.pretrained"
    check_folders(folder, adapter_folder)
    state = ip_adapter.read_weights(ip[0]) if ip else None
    load = loading.load_component

    def options(path: Any, config_key: str = key) -> dict[str, Any]:
        return {"dtype": dtype, **loading.weight_options(path, allow_pickle, config_key)}

    unet2d = load(UNet2DConditionModel.from_pretrained, folder, "unet", key, "the UNet", **options(folder / "unet"))
    adapter = load(
        MotionAdapter.from_pretrained, adapter_folder, None, "backbone.motion_adapter", "the motion adapter",
        **options(adapter_folder, "backbone.motion_adapter"),
    )  # fmt: skip
    unet = motion_unet(unet2d, adapter, folder, adapter_folder)
    vae = load(AutoencoderKL.from_pretrained, folder, "vae", key, "the VAE", **options(folder / "vae"))
    text_encoder = load(
        CLIPTextModel.from_pretrained, folder, "text_encoder", key, "the text encoder", **options(folder / "text_encoder")
    )
    tokenizer = load(CLIPTokenizer.from_pretrained, folder, "tokenizer", key, "the tokenizer", local_files_only=True)
    scheduler = loading.read_config(folder / "scheduler", "scheduler_config.json", key)
    unet, vae, text_encoder = (loading.place(model, device, dtype) for model in (unet, vae, text_encoder))
    parts = ip_adapter.load(unet, state, *ip, allow_pickle, dtype) if ip is not None and state is not None else None
    return AnimateDiffModels(unet, vae, text_encoder, tokenizer, scheduler, parts)


def motion_unet(unet2d: Any, adapter: Any, folder: Any = None, adapter_folder: Any = None) -> Any:
    """SD1.5's UNet with the adapter's motion modules inserted, as AnimateDiffPipeline builds it."""
    from diffusers import UNetMotionModel

    try:
        with loading.quiet("diffusers.models.modeling_utils"):  # it casts its own result to the UNet's dtype, and says so
            return UNetMotionModel.from_unet2d(unet2d, adapter)
    except (ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputError(f"the motion adapter at {adapter_folder} does not fit the UNet at {folder} ({reason})") from exc


def encode_prompt(models: AnimateDiffModels, prompt: str, max_length: int | None = None) -> torch.Tensor:
    """The CLIP text encoder's last hidden state for a prompt, padded to the tokenizer's length: [1, S, D]."""
    tokenizer, encoder = models.tokenizer, models.text_encoder
    length = max_length or tokenizer.model_max_length
    tokens = tokenizer(prompt, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
    if len(tokenizer(prompt).input_ids) > length:
        log.warning("the prompt is longer than the text encoder's %d tokens; the rest is cut off", length)
    mask = tokens.attention_mask.to(encoder.device) if getattr(encoder.config, "use_attention_mask", False) else None
    hidden = encoder(tokens.input_ids.to(encoder.device), attention_mask=mask)[0]  # [1, S, D]
    return hidden.to(dtype=encoder.dtype)


class AnimateDiffBackbone:
    """SD1.5 + an AnimateDiff motion adapter from local diffusers folders, prompted, image-conditioned by selective noising."""

    name = "animatediff"
    Config = AnimateDiffConfig

    def load(self, config: Any, device: torch.device) -> AnimateDiffModels:
        """The components on device in the config's dtype (loaded once per process)."""
        dtype = loading.resolve_dtype(config.dtype, device)
        folder = loading.local_folder(config.pretrained, "backbone.pretrained", WHAT, tiny="animatediff_tiny")
        adapter = loading.local_folder(config.motion_adapter, "backbone.motion_adapter", ADAPTER_WHAT, tiny="animatediff_tiny")
        ip = None
        if config.ip_adapter is not None:
            ip = ip_adapter.paths(config.ip_adapter, config.ip_adapter_image_encoder, config.allow_pickle)
        key = (
            "animatediff",
            str(folder),
            str(adapter),
            str(ip),
            config.allow_pickle,
            str(dtype),
            str(device),
            config.cpu_offload,
        )
        where = runtime.load_device(config, device)
        return loading.MODELS.get(
            key, lambda: offloaded(load_folders(folder, adapter, config.allow_pickle, dtype, where, ip), config, device)
        )

    @torch.no_grad()
    def prepare(self, config: Any, request: RenderRequest) -> SamplerInput:
        """Encode the prompts (and the picture), draw the initial noise and bind them to a denoiser over windows of frames."""
        from motionforge.backbones.schedules import KarrasDenoiser, ddim_schedule

        check_params(config)
        steering.check(config)
        context, plan = request.context, request.plan
        runtime.check(config, context.device)
        models = self.load(config, context.device)
        runtime.set_unet_attention(models.unet, config)
        if models.ip_adapter is not None:
            ip_adapter.set_scale(models.unet, models.ip_adapter, config.ip_adapter_scale)
        self.explain(config, request)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        embeddings = encode_prompt(models, request.prompt)  # [1, S, D]
        negative = encode_prompt(models, config.negative_prompt or "", embeddings.shape[1]) if config.guidance_scale > 1 else None
        schedule = ddim_schedule(models.scheduler_config, request.steps)
        noise = self.initial_latents(models, context.num_frames, context.height, context.width, embeddings.dtype, generator)
        latents, sigmas = noise * schedule.init_noise_scale, schedule.sigmas  # [1, F, C, h, w] at sigmas[0]
        initialised = steering.uses_latent_init(config, request.steps)
        needed = config.selective_noising or initialised or steering.uses_region(config, plan)
        reference = steering.reference_latent(models, context.image) if needed else None  # [1, C, h, w]
        if initialised:
            flow = steering.flow_at_strength(plan.flow, plan.strength) if config.init_flow_from_strength else plan.flow
            latents, sigmas = steering.latent_init(reference, flow, noise, sigmas, config.init_strength)
        image_embeds = None
        if models.ip_adapter is not None:
            hidden_states = ip_adapter.reads_hidden_states(models.unet)
            image_embeds = ip_adapter.encode(models.ip_adapter, context.image, hidden_states, guidance=negative is not None)
        model = AnimateDiffModel(models.unet, embeddings, negative, config.guidance_scale, image_embeds)
        denoiser: Denoiser = KarrasDenoiser(model, schedule)
        guidance = 1 if negative is None else 2
        backends = runtime.warped_backends(config)
        denoiser = motion_attention.warp_attention(
            denoiser, config, models.unet, plan.flow, noise.shape[-2:], sigmas, guidance, backends
        )
        if config.selective_noising:
            denoiser = SelectiveNoising(denoiser, reference)
        denoiser = steering.hold_region(denoiser, config, plan, reference, sigmas)
        return SamplerInput(denoiser, sigmas, latents.to(context.device), WINDOW, generator)

    @staticmethod
    def initial_latents(
        models: AnimateDiffModels, frames: int, height: int, width: int, dtype: torch.dtype, generator: torch.Generator
    ) -> torch.Tensor:
        """Gaussian noise drawn as AnimateDiffPipeline draws it ([1, C, F, h, w] from the CPU generator), as [1, F, C, h, w]."""
        factor = models.vae_scale_factor
        shape = (1, models.unet.config.in_channels, frames, height // factor, width // factor)
        noise = torch.randn(shape, generator=generator, dtype=dtype)  # [1, C, F, h, w]
        return rearrange(noise, "b c f h w -> b f c h w")

    def explain(self, config: Any, request: RenderRequest) -> None:
        """Say what this backbone leaves out of the run: the picture (without selective noising) and the plan's motion."""
        if not config.selective_noising:
            how = "sees the picture only through the IP-Adapter" if config.ip_adapter else "is text-to-video"
            log.warning("%s: selective_noising=false, so the clip %s and does not start from the picture", self.name, how)
        used = ["latent_init"] if steering.uses_latent_init(config, request.steps) else []
        used += ["region"] if steering.uses_region(config, request.plan) else []
        used += ["warped_attention"] if motion_attention.uses_warped_attention(config) else []
        notes.plan_not_followed(self.name, request, used)

    @torch.no_grad()
    def decode(self, config: Any, latents: torch.Tensor) -> torch.Tensor:
        """Latents [1, F, C, h, w] at the final sigma → frames [F, 3, H, W] in [0, 1], decode_chunk_size frames at a time."""
        from motionforge.backbones.schedules import ddim_final_sigma, to_model_latents

        models = self.load(config, latents.device)
        vae = models.vae
        latents = to_model_latents(latents, ddim_final_sigma(models.scheduler_config))
        flat = 1 / vae.config.scaling_factor * rearrange(latents, "b f c h w -> (b f) c h w").to(vae.dtype)  # [F, C, h, w]
        chunk = config.decode_chunk_size
        frames = [vae.decode(flat[i : i + chunk]).sample for i in range(0, len(flat), chunk)]
        return (torch.cat(frames).float() / 2 + 0.5).clamp(0, 1)  # [F, 3, H, W]


class AnimateDiffTinyBackbone(AnimateDiffBackbone):
    """AnimateDiff's code on a small random model built from config: for tests and overhead benchmarks (its frames are noise)."""

    name = "animatediff_tiny"
    Config = AnimateDiffTinyConfig
    memory_per_pixel = 240  # bytes per frame-pixel at a run's peak (measured on a CPU in float32; see core/memory.py)

    def load(self, config: Any, device: torch.device) -> AnimateDiffModels:
        """The tiny components on device in the config's dtype (built once per process, seed 0)."""
        dtype = loading.resolve_dtype(config.dtype, device)
        key = ("animatediff_tiny", config.ip_adapter, str(dtype), str(device), config.cpu_offload)
        where = runtime.load_device(config, device)
        return loading.MODELS.get(key, lambda: offloaded(tiny_models(dtype, where, ip=config.ip_adapter), config, device))

    def explain(self, config: Any, request: RenderRequest) -> None:
        """Say that the weights are random, then what AnimateDiff leaves out."""
        notes.random_weights(self.name, request)
        super().explain(config, request)


def offloaded(models: AnimateDiffModels, config: Any, device: torch.device) -> AnimateDiffModels:
    """The models with accelerate's CPU offload hooks (text encoder, image encoder, UNet, VAE) under cpu_offload, else as they are."""
    if config.cpu_offload:
        encoder = [models.ip_adapter.image_encoder] if models.ip_adapter is not None else []
        runtime.offload([models.text_encoder, *encoder, models.unet, models.vae], device)
    return models


def tiny_models(dtype: torch.dtype, device: torch.device, seed: int = 0, ip: bool = False) -> AnimateDiffModels:
    """The tiny SD1.5 components and motion adapter (motionforge.backbones.tiny), with the tiny IP-Adapter if ip, as loaded models."""
    from motionforge.backbones.tiny import (
        tiny_image_processor,
        tiny_ip_adapter,
        tiny_ip_adapter_encoder,
        tiny_motion_adapter,
        tiny_sd_components,
    )

    parts = tiny_sd_components(seed)
    unet = motion_unet(parts["unet"], tiny_motion_adapter(seed))
    unet, vae, text_encoder = (loading.place(model, device, dtype) for model in (unet, parts["vae"], parts["text_encoder"]))
    image = None
    if ip:
        image = ip_adapter.IPAdapterParts(loading.place(tiny_ip_adapter_encoder(seed), device, dtype), tiny_image_processor())
        ip_adapter.install(unet, ip_adapter.split(tiny_ip_adapter(parts["unet"], seed)), image, "tiny", "tiny")
    return AnimateDiffModels(unet, vae, text_encoder, parts["tokenizer"], dict(parts["scheduler"].config), image)


@hookimpl
def register_backbones(register: Any) -> None:
    """Register animatediff and animatediff_tiny."""
    register(AnimateDiffBackbone)
    register(AnimateDiffTinyBackbone)
