"""Wan 2.1 / 2.2 image-to-video: a flow-matching diffusion transformer over a causal 3D VAE, as WanImageToVideoPipeline runs it.

The conditioning is WanImageToVideoPipeline's: the prompt and negative prompt through UMT5 (padded to
``max_sequence_length``, zero past each prompt's tokens), classifier-free guidance at
``guidance_scale`` (two passes), and the picture as the pipeline gives it to each layout
(:mod:`.wan_folder`): Wan 2.1 and 2.2-A14B read a mask and the VAE latent of the picture followed by
black frames beside the noise, Wan 2.1 also CLIP's penultimate image features; Wan2.2-TI2V-5B
takes the picture's latent as latent frame 0, whose tokens are told timestep 0. The two experts of
Wan2.2-A14B switch at ``boundary_ratio``·1000, the second one guided at ``guidance_scale_2``.

The model is a rectified flow, run in sigma space as every backbone is (σ = t/(1 − t), see
:mod:`.schedules`), so each sampler and step rule applies; the scheduler is the folder's UniPC on
flow sigmas (``flow_shift`` over its shift) and the noise is drawn from the seed as the pipeline
draws it, so the same folder, seed and steps give the pipeline's video. The samplers see latent
frames: num_frames must be 4n+1 and windows count latent frames (:mod:`.latent_time`). The
zero-shot controls are :mod:`.steering`'s (latent_init, region), the plan resized to the latent
grid and to latent frames. ``wan_tiny`` is the same code on a small random model built from config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from einops import rearrange

from motionforge.backbones.diffusion import latent_time, loading, steering, tiny, tiny_wan, wan_folder
from motionforge.backbones.diffusion.base import DiffusionBase, DiffusionParams
from motionforge.backbones.diffusion.schedulers import begin_at, make_scheduler, scheduler_steps
from motionforge.backbones.diffusion.schedules import KarrasDenoiser, Schedule, is_flow, schedule_of
from motionforge.backbones.diffusion.wan_conditioning import (
    LAYOUT,
    clip_features,
    encode_prompt,
    picture_condition,
    reference_latent,
    wan_decoder,
)
from motionforge.core.errors import ConfigError
from motionforge.core.hookspecs import Register, hookimpl
from motionforge.core.types import FrameLimit, Prepared, RenderRequest, SamplerInput

log = logging.getLogger(__name__)

TRAINED_FRAMES = 81  # Wan 2.x is trained on 81-frame clips (5 s at 16 fps): 21 latent frames per call


@dataclass
class WanParams(steering.SteeringParams, DiffusionParams):
    """Wan's parameters, with WanImageToVideoPipeline's names and defaults, the steering and device keys."""

    guidance_scale: float = 5.0  # classifier-free guidance on the prompt (1 or less: none); the high-noise expert's on Wan 2.2
    guidance_scale_2: float | None = None  # the low-noise expert's guidance on Wan2.2-I2V-A14B (null: guidance_scale)
    negative_prompt: str | None = None  # what to steer away from (null: the empty prompt, as diffusers)
    flow_shift: float | None = None  # the flow schedule's shift (null: the folder's scheduler's; 3 for 480p, 5 for 720p)
    max_sequence_length: int = 512  # UMT5 tokens the prompt is padded (and cut) to
    vae_tiling: bool = False  # decode (and encode) the video in spatial tiles, as diffusers' enable_tiling: less memory


@dataclass
class WanConfig(WanParams):
    """Parameters of the wan backbone: a local diffusers folder of a Wan 2.1/2.2 image-to-video checkpoint and the conditioning."""

    pretrained: str | None = (
        None  # local folder: Wan2.1-I2V-14B-480P/720P-Diffusers, Wan2.2-I2V-A14B-Diffusers or Wan2.2-TI2V-5B-Diffusers
    )
    allow_pickle: bool = False  # also load pickle-based weights (.bin …): only for files you trust


@dataclass
class WanTinyConfig(WanParams):
    """Parameters of the wan_tiny backbone: the layout of the tiny model and the conditioning (the model is built from config)."""

    layout: str = "2.1"  # 2.1 (CLIP image encoder) | 2.2 (two experts) | ti2v (first-frame latent): which Wan folder it mimics


@dataclass
class WanModels:
    """The loaded components of one Wan checkpoint; ``transformer_2`` and the image encoder only where the layout has them."""

    transformer: Any  # WanTransformer3DModel (Wan 2.2: the high-noise expert)
    vae: Any  # AutoencoderKLWan
    text_encoder: Any  # UMT5EncoderModel
    tokenizer: Any  # T5 tokenizer (UMT5's vocabulary)
    scheduler_config: dict[str, Any]
    layout: wan_folder.WanLayout
    transformer_2: Any = None  # the low-noise expert (Wan2.2-I2V-A14B)
    image_encoder: Any = None  # CLIPVisionModel (Wan 2.1)
    image_processor: Any = None  # CLIPImageProcessor (Wan 2.1)
    window: int = latent_time.latent_frames(TRAINED_FRAMES, 4)  # latent frames per call the model was trained on

    @property
    def unet(self) -> Any:
        """The denoising network (what the device keys and the steering read their dtype from): the transformer."""
        return self.transformer

    @property
    def temporal(self) -> int:
        """Pixel frames per latent frame after the first (4)."""
        return int(self.vae.config.scale_factor_temporal)

    @property
    def spatial(self) -> int:
        """Pixels per latent cell (8; 16 for the TI2V-5B VAE)."""
        return int(self.vae.config.scale_factor_spatial)

    @property
    def multiple(self) -> int:
        """What the height and width must be a multiple of: the VAE's factor times the transformer's patch."""
        return self.spatial * int(self.transformer.config.patch_size[1])


@dataclass(frozen=True)
class Expert:
    """One transformer of a run, the timesteps it denoises (from ``low`` up) and its guidance scale."""

    transformer: Any
    low: float
    guidance_scale: float


class WanModel:
    """The Wan transformer(s) with one run's prompt, picture and guidance bound: flow velocity for latents of any window."""

    def __init__(
        self,
        experts: list[Expert],
        embeddings: torch.Tensor,
        negative: torch.Tensor | None,
        condition: torch.Tensor,
        image: Any,
        first_frame: bool,
    ) -> None:
        self.experts = experts  # high-noise expert first
        self.embeddings = embeddings  # [1, S, D] prompt
        self.negative = negative  # [1, S, D] negative prompt, or None (no guidance)
        self.condition = condition  # [1, Cc, F_l, h, w]: mask + picture latents (I2V), or [1, C, 1, h, w] the picture's (TI2V)
        self.image = image  # [1, N, D'] CLIP features (Wan 2.1) or None
        self.first_frame = first_frame  # TI2V: latent frame 0 is the picture's latent, told timestep 0

    def expert(self, timestep: torch.Tensor) -> Expert:
        """The expert that denoises this timestep (the first whose range holds it)."""
        return next(e for e in self.experts if float(timestep) >= e.low)

    def inputs(
        self, sample: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The transformer's hidden states [B, Cin, Fw, h, w] and timesteps ([B], or [B, tokens] for TI2V) for a window."""
        batch = sample.shape[0]
        if not self.first_frame:
            condition = self.condition[:, :, frames.to(self.condition.device)].to(sample.device)  # [1, Cc, Fw, h, w]
            hidden = torch.cat([sample, condition.expand(batch, -1, -1, -1, -1).to(sample.dtype)], dim=1)
            return hidden.to(dtype), timestep.to(sample.device).expand(batch)
        noisy = (frames != 0).to(device=sample.device, dtype=sample.dtype).view(1, 1, -1, 1, 1)  # [1, 1, Fw, 1, 1]
        mask = noisy.expand(1, 1, -1, *sample.shape[-2:])  # [1, 1, Fw, h, w]: 0 on latent frame 0
        hidden = (1 - mask) * self.condition.to(sample) + mask * sample  # [B, C, Fw, h, w]
        patch = self.experts[0].transformer.config.patch_size
        tokens = (mask[0, 0][:, :: patch[1], :: patch[2]] * timestep.to(sample.device)).flatten()  # [Fw·h/2·w/2]
        return hidden.to(dtype), tokens[None].expand(batch, -1)

    def __call__(self, z: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """z [B, Fw, C, h, w] flow sample at timestep → guided velocity ε − x0 [B, Fw, C, h, w]."""
        expert = self.expert(timestep)
        model = expert.transformer
        sample = rearrange(z, LAYOUT)  # [B, C, Fw, h, w]
        hidden, times = self.inputs(sample, timestep, frames, model.dtype)
        batch = sample.shape[0]
        image = None if self.image is None else self.image.to(hidden.device).expand(batch, -1, -1)

        def velocity(prompt: torch.Tensor) -> torch.Tensor:
            states = prompt.to(hidden.device).expand(batch, -1, -1)
            return model(
                hidden_states=hidden,
                timestep=times,
                encoder_hidden_states=states,
                encoder_hidden_states_image=image,
                return_dict=False,
            )[0]

        output = velocity(self.embeddings)  # [B, C, Fw, h, w]
        if self.negative is not None:
            uncond = velocity(self.negative)
            output = uncond + expert.guidance_scale * (output - uncond)
        return rearrange(output.to(z.dtype), "b c f h w -> b f c h w")


def check_params(config: WanParams) -> None:
    """Check Wan's parameters and the steering keys; one sentence per mistake."""
    steering.check(config)
    if config.warped_attention:
        raise ConfigError(
            "backbone.warped_attention=true is not available on Wan: its transformer has no temporal attention layers to warp; "
            "use backbone.latent_init=true (or a region) to steer it"
        )
    if config.guidance_scale < 0 or (config.guidance_scale_2 is not None and config.guidance_scale_2 < 0):
        raise ConfigError("backbone.guidance_scale and backbone.guidance_scale_2 must be zero or more (5.0 by default)")
    if config.flow_shift is not None and config.flow_shift <= 0:
        raise ConfigError(f"backbone.flow_shift={config.flow_shift} must be more than 0 (3 for 480p, 5 for 720p), or null")
    if config.max_sequence_length < 1:
        raise ConfigError(f"backbone.max_sequence_length={config.max_sequence_length} must be at least 1 (512 by default)")


def check_size(models: WanModels, request: RenderRequest, name: str) -> None:
    """Refuse a clip length that is not 4n+1 and a size that is not a multiple of the VAE factor times the patch."""
    context = request.context
    latent_time.check_frames(context.num_frames, models.temporal, name)
    multiple = models.multiple
    if context.height % multiple or context.width % multiple:
        raise ConfigError(
            f"height={context.height} and width={context.width} must be multiples of {multiple} for {name} (its VAE's "
            f"{models.spatial}× times the transformer's patch of 2); e.g. height={context.height // multiple * multiple or multiple}"
        )


class WanBackbone(DiffusionBase):
    """Wan 2.1 / 2.2 image-to-video from a local diffusers folder (``backbone.pretrained``), prompted."""

    name = "wan"
    Config = WanConfig
    folders = {"pretrained": "a Wan 2.1/2.2 image-to-video checkpoint (…-Diffusers)"}  # noqa: RUF012 - as the other backbones
    tiny = "wan_tiny"
    offload_order = ("text_encoder", "image_encoder", "transformer", "transformer_2", "vae")  # diffusers' model_cpu_offload_seq
    cuda_dtype = torch.bfloat16  # Wan is trained and released in bfloat16
    temporal_compression = 4  # its VAE's: clips are 4n+1 frames (the benchmarks round up to it)

    def load_folders(self, config: WanConfig, folders: dict[str, Path], dtype: torch.dtype, device: torch.device) -> WanModels:
        """Load a Wan folder's components (its layout checked first) onto device in dtype."""
        folder = folders["pretrained"]
        layout = wan_folder.read_layout(folder)
        loaded, transformer = wan_folder.load_folder(folder, layout, config.allow_pickle, dtype, device)
        second = transformer("transformer_2") if layout.boundary_ratio is not None else None
        scheduler = loading.read_config(folder / "scheduler", "scheduler_config.json", wan_folder.KEY)
        return WanModels(transformer("transformer"), scheduler_config=scheduler, layout=layout, transformer_2=second, **loaded)

    def timesteps(
        self, config: Any, models: Any, steps: int, generator: torch.Generator, layout: str | None = None
    ) -> tuple[Schedule, Any]:
        """The run's flow schedule in sigma space (the shift over the folder's when asked) and its scheduler's step rule."""
        overrides = {**config.scheduler_config, **({"flow_shift": config.flow_shift} if config.flow_shift is not None else {})}
        scheduler = make_scheduler(models.scheduler_config, config.scheduler, overrides, steps)
        if not is_flow(scheduler):
            raise ConfigError(
                f"backbone.scheduler={config.scheduler} does not step a flow-matching model, which Wan is; set it to null "
                "(the folder's UniPC on flow sigmas), or to unipc or dpmpp_2m (they keep the folder's use_flow_sigmas)"
            )
        schedule = schedule_of(scheduler, begin_at(scheduler, steering.start_step(config, steps)))
        return schedule, scheduler_steps(scheduler, schedule, generator, layout)

    def experts(self, config: WanParams, models: WanModels) -> list[Expert]:
        """The run's transformers, high-noise first, each with its range of timesteps and guidance scale."""
        boundary = models.layout.boundary_ratio
        if boundary is None or models.transformer_2 is None:
            return [Expert(models.transformer, -float("inf"), config.guidance_scale)]
        low = boundary * int(models.scheduler_config.get("num_train_timesteps", 1000))
        second = config.guidance_scale if config.guidance_scale_2 is None else config.guidance_scale_2
        return [Expert(models.transformer, low, config.guidance_scale), Expert(models.transformer_2, -float("inf"), second)]

    @torch.no_grad()
    def prepare(self, config: WanParams, request: RenderRequest) -> Prepared:
        """Encode the prompts and the picture, draw the pipeline's noise, and bind them to a steered flow denoiser over latent frames."""
        context, plan, device = request.context, request.plan, request.context.device
        # 1. Check the inputs; the models (loaded once per process) with VAE tiling as asked; the run's generator
        check_params(config)
        latent_time.check_frames(context.num_frames, self.temporal_compression, self.name)  # before any weight loads
        models = self.ready(config, device)
        check_size(models, request, self.name)
        if config.guidance_scale_2 is not None and models.layout.boundary_ratio is None:
            log.warning("%s: backbone.guidance_scale_2 is for Wan2.2-I2V-A14B's second expert; this model has one", self.name)
        if config.vae_tiling:
            models.vae.enable_tiling()  # diffusers' spatial tiles (on the cached VAE, so set for every run)
        else:
            models.vae.disable_tiling()
        generator = torch.Generator("cpu").manual_seed(request.seed)
        # 2. Encode the prompt, and the negative prompt under guidance
        embeddings = encode_prompt(models, request.prompt, config.max_sequence_length, device)  # [1, S, D]
        guided = config.guidance_scale > 1
        negative = encode_prompt(models, config.negative_prompt or "", config.max_sequence_length, device) if guided else None
        # 3. Encode the picture: CLIP's features (Wan 2.1), and its VAE condition (mask + latents, or TI2V's first latent)
        image = clip_features(models, context.image, device) if models.layout.image_encoder else None  # [1, N, D']
        condition = picture_condition(models, context.image, context.num_frames, device)
        # 4. The flow schedule in sigma space (from latent_init's start) and the scheduler's step rule, on the pipeline's layout
        schedule, stepper = self.timesteps(config, models, request.steps, generator, LAYOUT)
        # 5. The initial noise, drawn as the pipeline draws it ([1, C, F_l, h, w] from the CPU generator)
        frames = latent_time.latent_frames(context.num_frames, models.temporal)
        shape = (1, int(models.vae.config.z_dim), frames, context.height // models.spatial, context.width // models.spatial)
        noise = rearrange(torch.randn(shape, generator=generator, dtype=torch.float32), "b c f h w -> b f c h w")
        # 6. The guided transformer(s) as a sigma-space denoiser, steered by the plan at latent size and latent frames
        first = models.layout.expand_timesteps
        model = WanModel(self.experts(config, models), embeddings, negative, condition, image, first)
        steered = steering.steer(
            KarrasDenoiser(model, schedule),
            config,
            plan,
            schedule=schedule,
            noise=noise,
            reference=lambda: reference_latent(models, context.image, device),
            unet=models.transformer,
            guidance=2 if guided else 1,
            hold_first_frame=first,
            init_flow=latent_time.to_latent_frames(plan.flow, models.temporal),
        )
        # 7. The sampler's input (latent frames; the rotary table bounds a call), and the decoder bound to this run
        limit = FrameLimit(
            int(models.transformer.config.rope_max_seq_len), "the transformer's rotary position table (rope_max_seq_len)"
        )
        problem = SamplerInput(
            steered.denoiser, schedule.sigmas, steered.latents.to(device), models.window, generator, stepper, limit
        )
        decode = wan_decoder(models, schedule)
        return Prepared(problem, decode, self.notes(plan, steered.used), steered.used)

    def memory_estimate(self, config: Any, shape: Any) -> dict[str, int]:
        """The bytes a run holds at its peak besides the weights: latents, the VAE's activations over 4 frames, the frames."""
        width = 8 if self.models_factory is not None else 96  # the VAE decoder's base channels (tiny 8, Wan 2.x 96)
        area = min(shape.frame_pixels, 256 * 256) if getattr(config, "vae_tiling", False) else shape.frame_pixels
        latent = 16 * 4 * ((shape.num_frames - 1) // 4 + 1) * shape.frame_pixels // 64
        return {
            "latents": 8 * latent,  # noise, condition, sampler state and the scheduler's history
            "VAE activations": 4 * width * 4 * 8 * area,  # 4 frames at a time through the causal decoder, a few widths deep
            "decoded frames": 2 * 3 * 4 * shape.pixels,
        }


def tiny_models(config: WanTinyConfig, dtype: torch.dtype, device: torch.device) -> WanModels:
    """The tiny Wan components of the config's layout (:mod:`motionforge.backbones.diffusion.tiny_wan`, seed 0) as loaded models."""
    if config.layout not in tiny_wan.LAYOUTS:
        raise ConfigError(f"backbone.layout={config.layout} is not one of {', '.join(tiny_wan.LAYOUTS)}")
    parts = tiny_wan.tiny_wan_components(config.layout)
    place = {
        name: loading.place(parts[name], device, dtype) if parts[name] is not None else None
        for name in ("vae", "text_encoder", "image_encoder")
    }
    experts = {
        name: wan_folder.cast(parts[name], device, dtype) if parts[name] is not None else None
        for name in ("transformer", "transformer_2")
    }
    layout = wan_folder.WanLayout(
        config.layout, parts["boundary_ratio"], parts["expand_timesteps"], parts["image_encoder"] is not None
    )
    return WanModels(
        experts["transformer"],
        place["vae"],
        place["text_encoder"],
        parts["tokenizer"],
        tiny.scheduler_config(parts["scheduler"]),
        layout,
        experts["transformer_2"],
        place["image_encoder"],
        parts["image_processor"],
        window=tiny_wan.FRAMES,
    )


class WanTinyBackbone(WanBackbone):
    """Wan's code on a small random model built from config (three layouts): for tests and overhead benchmarks (its frames are noise)."""

    name = "wan_tiny"
    Config = WanTinyConfig
    models_factory = staticmethod(tiny_models)

    def cache_extra(self, config: Any) -> tuple[Any, ...]:
        """The tiny layout."""
        return (config.layout,)


@hookimpl
def register_backbones(register: Register) -> None:
    """Register wan and wan_tiny."""
    register(WanBackbone)
    register(WanTinyBackbone)
