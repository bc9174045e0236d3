"""SD1.5 + AnimateDiff: a text-to-video UNet made image-to-video by Motion-I2V's selective noising.

The UNet is the SD1.5 folder's with the adapter's motion modules inserted (:mod:`motion_adapter`);
the prompts are encoded by its CLIP text encoder, with classifier-free guidance at ``guidance_scale``.
The scheduler is the folder's own (PNDM in SD1.5's layout) or the one ``scheduler`` names, and the
noise is drawn from the seed as AnimateDiffPipeline draws it, so with ``selective_noising=false``
this is AnimateDiffPipeline; with it, frame 0 is the picture's clean latent at every step. An
IP-Adapter (:mod:`.ip_adapter`) may condition every frame on the picture's CLIP embedding. 16 trained
frames (more with a warning), at most motion_max_seq_length per call. The zero-shot controls are
:mod:`.steering`'s, off or no-ops by default; ``animatediff_tiny`` is this code on a small random model.
``motion_i2v`` puts Motion-I2V's trained motion module in the adapter's place (:mod:`.motion_i2v`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from einops import rearrange

from motionforge.backbones.diffusion import ip_adapter, loading, motion_adapter, motion_i2v, runtime, steering, tiny
from motionforge.backbones.diffusion.base import DiffusionBase, DiffusionParams, vae_decoder, vae_scale_factor
from motionforge.backbones.diffusion.schedules import KarrasDenoiser
from motionforge.backbones.diffusion.steering import strength
from motionforge.core.errors import ConfigError
from motionforge.core.hookspecs import Register, hookimpl
from motionforge.core.types import FrameLimit, Prepared, RenderRequest, SamplerInput

log = logging.getLogger(__name__)

KEY = "backbone.pretrained"
COMPONENTS = {name: "config.json" for name in ("unet", "vae", "text_encoder")} | {
    "tokenizer": "tokenizer_config.json",
    "scheduler": "scheduler_config.json",
}
LAYOUT = "b f c h w -> b c f h w"  # the sampler's latents as AnimateDiffPipeline holds them


@dataclass
class AnimateDiffParams(steering.SteeringParams, DiffusionParams):
    """AnimateDiff's parameters, with AnimateDiffPipeline's names and defaults, Motion-I2V's image conditioning, steering and device keys."""

    guidance_scale: float = 7.5  # classifier-free guidance on the prompt (1 or less: none)
    negative_prompt: str | None = None  # what to steer away from (null: the empty prompt)
    selective_noising: bool = True  # Motion-I2V: frame 0 is the picture's clean latent at every step (false: text-to-video)
    decode_chunk_size: int = 16  # frames the VAE decodes at once
    init_flow_from_strength: bool = True  # latent_init warps along the plan's flow rescaled to the motion strength it asks for
    ip_adapter_scale: float = 1.0  # weight of the IP-Adapter's image tokens beside the prompt's (set_ip_adapter_scale; 0: off)


@dataclass
class AnimateDiffConfig(AnimateDiffParams):
    """Parameters of the animatediff backbone: an SD1.5 folder, a motion adapter folder and the conditioning."""

    pretrained: str | None = None  # local folder of an SD1.5 checkpoint in diffusers format
    motion_adapter: str | None = None  # local folder of a diffusers MotionAdapter for SD1.5 (null with motion_i2v)
    motion_i2v: str | None = None  # Motion-I2V's motion_block.bin (or .safetensors) in the adapter's place; null: none
    allow_pickle: bool = False  # also load pickle-based weights (.bin …): only for files you trust
    ip_adapter: str | None = None  # local IP-Adapter weights file (…/models/ip-adapter_sd15.safetensors); null: none
    ip_adapter_image_encoder: str | None = None  # local folder of its CLIP image encoder (null: image_encoder/ beside the file)


@dataclass
class AnimateDiffTinyConfig(AnimateDiffParams):
    """Parameters of the animatediff_tiny backbone: the conditioning only (the model is built from config)."""

    ip_adapter: bool = False  # put a tiny random IP-Adapter (and CLIP image encoder) on the model
    motion_i2v: str | None = None  # tiny: a tiny random Motion-I2V module (seed 0), or a file of one; null: the tiny adapter


@dataclass
class AnimateDiffModels:
    """The loaded components: SD1.5 with the motion modules inserted, and the IP-Adapter's image side when one is on."""

    unet: Any  # UNetMotionModel
    vae: Any  # AutoencoderKL
    text_encoder: Any  # CLIPTextModel
    tokenizer: Any  # CLIPTokenizer
    scheduler_config: dict[str, Any]
    ip_adapter: ip_adapter.IPAdapterParts | None = None

    @property
    def image_encoder(self) -> Any:
        """The IP-Adapter's CLIP image encoder, or None."""
        return None if self.ip_adapter is None else self.ip_adapter.image_encoder


class AnimateDiffModel:
    """The motion UNet with one run's prompt embeddings bound; classifier-free guidance inside."""

    def __init__(
        self, unet: Any, embeddings: torch.Tensor, negative: torch.Tensor | None, guidance_scale: float, image_embeds: Any = None
    ) -> None:
        self.unet = unet
        self.embeddings = embeddings  # [1, S, D] prompt
        self.negative = negative  # [1, S, D] negative prompt, or None (no guidance)
        self.guidance_scale = guidance_scale
        self.image_embeds = image_embeds  # the picture's ip_adapter.ImageEmbeds (negative too under guidance), or None

    def hidden_states(self, batch: int, window: int) -> torch.Tensor:
        """Text embeddings repeated per frame as the motion UNet wants them: [(G·B)·Fw, S, D] (G = 2 with guidance)."""
        prompts = [self.embeddings.expand(batch, -1, -1)]  # [B, S, D]
        if self.negative is not None:
            prompts.insert(0, self.negative.expand(batch, -1, -1))
        return torch.cat(prompts).repeat_interleave(window, dim=0)

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


def check_params(config: AnimateDiffParams) -> None:
    """Check AnimateDiff's parameters and the steering keys; one sentence per mistake."""
    steering.check(config)
    motion_i2v.check(config)
    if config.guidance_scale < 0:
        raise ConfigError(f"backbone.guidance_scale={config.guidance_scale} must be zero or more (7.5 by default)")
    if config.decode_chunk_size < 1:
        raise ConfigError(f"backbone.decode_chunk_size={config.decode_chunk_size} must be at least 1")


def encode_prompt(models: AnimateDiffModels, prompt: str, max_length: int | None = None) -> torch.Tensor:
    """The CLIP text encoder's last hidden state for a prompt, padded to the tokenizer's length: [1, S, D]."""
    tokenizer, encoder = models.tokenizer, models.text_encoder
    length = max_length or tokenizer.model_max_length
    tokens = tokenizer(prompt, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
    if len(tokenizer(prompt).input_ids) > length:
        log.warning("the prompt is longer than the text encoder's %d tokens; the rest is cut off", length)
    mask = tokens.attention_mask.to(encoder.device) if getattr(encoder.config, "use_attention_mask", False) else None
    return encoder(tokens.input_ids.to(encoder.device), attention_mask=mask)[0].to(dtype=encoder.dtype)  # [1, S, D]


class AnimateDiffBackbone(DiffusionBase):
    """SD1.5 + an AnimateDiff motion adapter from local diffusers folders, prompted, image-conditioned by selective noising."""

    name = "animatediff"
    Config = AnimateDiffConfig
    folders = {"pretrained": "a Stable Diffusion 1.5 checkpoint", "motion_adapter": "an AnimateDiff motion adapter"}
    tiny = "animatediff_tiny"
    offload_order = ("text_encoder", "image_encoder", "unet", "vae")  # diffusers' model_cpu_offload_seq

    def cache_extra(self, config: Any) -> tuple[Any, ...]:
        """The IP-Adapter on the UNet (its files; the tiny preset's flag) and Motion-I2V's module (its file, or tiny)."""
        module = motion_i2v.cache_key(config)
        if isinstance(config.ip_adapter, bool) or config.ip_adapter is None:
            return (config.ip_adapter, *module)
        return (str(ip_adapter.paths(config.ip_adapter, config.ip_adapter_image_encoder, config.allow_pickle)), *module)

    def folder_keys(self, config: Any) -> dict[str, str]:
        """The SD1.5 folder, and the motion adapter's unless Motion-I2V's module takes its place."""
        motion_i2v.check(config)
        return {"pretrained": self.folders["pretrained"]} if config.motion_i2v is not None else self.folders

    def load_folders(self, config: AnimateDiffConfig, folders: dict[str, Path], dtype: torch.dtype, device: torch.device) -> Any:
        """The SD1.5 components and the motion adapter (checked first, the IP-Adapter's file too), motion modules inserted."""
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        folder, adapter_folder = folders["pretrained"], folders.get("motion_adapter")
        advice = "pass an SD1.5 folder (StableDiffusionPipeline), or use backbone=svd for SVD"
        unet_config = loading.check_pipeline(folder, KEY, COMPONENTS, "Stable Diffusion 1.5", ("UNet2DConditionModel", 4), advice)
        if adapter_folder is None:
            adapter = motion_i2v.load(config.motion_i2v, unet_config)  # checked key for key before SD1.5 loads
            adapter_folder = Path(config.motion_i2v)
        else:
            motion_adapter.check_fit(adapter_folder, unet_config, folder)
            adapter = None
        ip = (
            None
            if config.ip_adapter is None
            else ip_adapter.paths(config.ip_adapter, config.ip_adapter_image_encoder, config.allow_pickle)
        )
        state = ip_adapter.read_weights(ip[0]) if ip else None
        parts = {
            "unet": loading.Part(UNet2DConditionModel.from_pretrained, "the UNet"),
            "vae": loading.Part(AutoencoderKL.from_pretrained, "the VAE"),
            "text_encoder": loading.Part(CLIPTextModel.from_pretrained, "the text encoder"),
            "tokenizer": loading.Part(CLIPTokenizer.from_pretrained, "the tokenizer", False),
        }
        loaded = loading.load_parts(folder, parts, config.allow_pickle, dtype, torch.device("cpu"), KEY)
        adapter = adapter if adapter is not None else motion_adapter.load(adapter_folder, config.allow_pickle, dtype)
        unet = loading.place(motion_adapter.motion_unet(loaded["unet"], adapter, folder, adapter_folder), device, dtype)
        vae, text_encoder = (loading.place(loaded[name], device, dtype) for name in ("vae", "text_encoder"))
        image = ip_adapter.load(unet, state, *ip, config.allow_pickle, dtype) if ip is not None and state is not None else None
        scheduler = loading.read_config(folder / "scheduler", "scheduler_config.json", KEY)
        return AnimateDiffModels(unet, vae, text_encoder, loaded["tokenizer"], scheduler, image)

    @torch.no_grad()
    def prepare(self, config: AnimateDiffParams, request: RenderRequest) -> Prepared:
        """Encode the prompts (and the picture), draw AnimateDiffPipeline's noise, and bind them to a steered denoiser over windows."""
        context, plan = request.context, request.plan
        # 1. Check the inputs; the models (loaded once per process) with the IP-Adapter's scale; the run's generator
        check_params(config)
        models = self.ready(config, context.device)
        if models.ip_adapter is not None:
            ip_adapter.set_scale(models.unet, models.ip_adapter, config.ip_adapter_scale)
        if not config.selective_noising:
            how = "sees the picture only through the IP-Adapter" if config.ip_adapter else "is text-to-video"
            log.warning("%s: selective_noising=false, so the clip %s and does not start from the picture", self.name, how)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        # 2. Encode the prompt, the negative prompt under guidance, and the picture for the IP-Adapter
        embeddings = encode_prompt(models, request.prompt)  # [1, S, D]
        guided = config.guidance_scale > 1
        negative = encode_prompt(models, config.negative_prompt or "", embeddings.shape[1]) if guided else None
        image_embeds = None
        if models.ip_adapter is not None:
            hidden_states = ip_adapter.reads_hidden_states(models.unet)
            image_embeds = ip_adapter.encode(models.ip_adapter, context.image, hidden_states, guidance=guided)
        # 3. The scheduler's steps in sigma space (from latent_init's start) and its step rule, on the pipeline's layout
        schedule, stepper = self.timesteps(config, models, request.steps, generator, LAYOUT)
        # 4. The initial noise, drawn as AnimateDiffPipeline draws it ([1, C, F, h, w] from the CPU generator)
        factor = vae_scale_factor(models.vae)
        shape = (1, models.unet.config.in_channels, context.num_frames, context.height // factor, context.width // factor)
        noise = rearrange(torch.randn(shape, generator=generator, dtype=embeddings.dtype), "b c f h w -> b f c h w")
        # 5. The guided motion UNet as a sigma-space denoiser (Motion-I2V's attention on the plan's flow, with its module),
        #    steered by the plan (selective noising holds frame 0)
        model = AnimateDiffModel(models.unet, embeddings, negative, config.guidance_scale, image_embeds)
        denoiser = KarrasDenoiser(model, schedule)
        module = config.motion_i2v is not None
        if module:
            denoiser = motion_i2v.wrap(denoiser, models.unet, plan.field, runtime.warped_backends(config))
        from_strength = config.init_flow_from_strength and plan.strength is not None
        steered = steering.steer(
            denoiser, config, plan, schedule=schedule, noise=noise,
            reference=lambda: steering.reference_latent(models, context.image), unet=models.unet, guidance=2 if guided else 1,
            hold_first_frame=config.selective_noising,
            init_flow=strength.flow_at_strength(plan.flow, plan.strength) if from_strength else None,
        )  # fmt: skip
        # 6. The sampler's input (at most the positional table's frames per call), and the decoder bound to this run
        limit = FrameLimit(
            int(models.unet.config.motion_max_seq_length), "the motion modules' positional table (motion_max_seq_length)"
        )
        limit = motion_i2v.frame_limit(models.unet) if module else limit
        latents = steered.latents.to(context.device)  # [1, F, C, h, w] at the schedule's first sigma
        problem = SamplerInput(steered.denoiser, schedule.sigmas, latents, motion_adapter.FRAMES, generator, stepper, limit)
        decode = vae_decoder(models.vae, schedule, config.decode_chunk_size)
        used = [motion_i2v.STEERING, *steered.used] if module else steered.used
        said = motion_i2v.notes(config, context, self.models_factory is not None) if module else []
        return Prepared(problem, decode, [*self.notes(plan, used), *said], used)


def tiny_models(config: AnimateDiffTinyConfig, dtype: torch.dtype, device: torch.device) -> AnimateDiffModels:
    """The tiny SD1.5 components and motion adapter (:mod:`motionforge.backbones.diffusion.tiny`, seed 0), the tiny IP-Adapter if asked."""
    parts = tiny.tiny_sd_components()
    adapter = tiny.tiny_motion_adapter() if config.motion_i2v is None else motion_i2v.tiny_module(config.motion_i2v)
    unet = motion_adapter.motion_unet(parts["unet"], adapter)
    unet, vae, text_encoder = (loading.place(model, device, dtype) for model in (unet, parts["vae"], parts["text_encoder"]))
    image = tiny.install_tiny_ip_adapter(unet, parts["unet"], device, dtype) if config.ip_adapter else None
    return AnimateDiffModels(unet, vae, text_encoder, parts["tokenizer"], tiny.scheduler_config(parts["scheduler"]), image)


class AnimateDiffTinyBackbone(AnimateDiffBackbone):
    """AnimateDiff's code on a small random model built from config: for tests and overhead benchmarks (its frames are noise)."""

    name = "animatediff_tiny"
    Config = AnimateDiffTinyConfig
    models_factory = staticmethod(tiny_models)
    memory_per_pixel = 240  # bytes per frame-pixel at a run's peak (measured on a CPU in float32; see core/memory.py)


@hookimpl
def register_backbones(register: Register) -> None:
    """Register animatediff and animatediff_tiny."""
    register(AnimateDiffBackbone)
    register(AnimateDiffTinyBackbone)
