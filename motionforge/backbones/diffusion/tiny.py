"""Tiny randomly initialised diffusers components, built from config with no files, deterministic for a seed.

They have the real models' structure (a 4-block VAE, so 64 px ↔ 8 latents, as in SD and SVD) at a
few hundred thousand to two million parameters each: a whole pipeline runs in about half a second on
a CPU. Random weights give noise, not pictures: they are for tests and overhead benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLTemporalDecoder,
    DDIMScheduler,
    EulerDiscreteScheduler,
    MotionAdapter,
    UNet2DConditionModel,
    UNetSpatioTemporalConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from motionforge.backbones.diffusion import ip_adapter
from motionforge.backbones.diffusion.ip_adapter import cross_attention_layers
from motionforge.backbones.diffusion.loading import clip_image_processor_class, place

SVD_TINY_FRAMES = 14  # the tiny SVD UNet's native window, as SVD's 14-frame checkpoint
TINY_CROSS_DIM = 32


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator inside a forked RNG state, so building a model leaves the caller's RNG alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _bytes_to_unicode() -> list[str]:
    """The 256 printable characters CLIP's byte-level BPE uses for the bytes 0–255, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def tiny_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """A CLIP tokenizer with a byte-level vocabulary (514 ids) and no merges: any text tokenises, one id per character."""
    chars = _bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def tiny_sd_components(seed: int = 0) -> dict[str, Any]:
    """SD1.5-style components (UNet, VAE, CLIP text encoder, tokenizer, DDIM scheduler) with random weights."""
    tokenizer = tiny_tokenizer()
    with _seeded(seed):
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=8,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=TINY_CROSS_DIM,
            norm_num_groups=2,
        )
        vae = AutoencoderKL(
            block_out_channels=[8, 16, 16, 16],
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 4,
            up_block_types=["UpDecoderBlock2D"] * 4,
            latent_channels=4,
            norm_num_groups=4,
            layers_per_block=1,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                hidden_size=TINY_CROSS_DIM,
                intermediate_size=37,
                layer_norm_eps=1e-5,
                num_attention_heads=4,
                num_hidden_layers=2,
                vocab_size=len(tokenizer),
                max_position_embeddings=77,
                projection_dim=TINY_CROSS_DIM,
            )
        )
    # AnimateDiff's recommended DDIM betas; "leading" spacing (diffusers' default) steps exactly between listed timesteps
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="leading",
    )
    return {
        "unet": unet.eval(),
        "vae": vae.eval(),
        "text_encoder": text_encoder.eval(),
        "tokenizer": tokenizer,
        "scheduler": scheduler,
    }


def scheduler_config(scheduler: Any) -> dict[str, Any]:
    """A scheduler's config as a folder's scheduler_config.json holds it: its class and every setting, none left to defaults."""
    return {"_class_name": type(scheduler).__name__, **{k: v for k, v in scheduler.config.items() if not k.startswith("_")}}


def tiny_motion_adapter(seed: int = 0) -> MotionAdapter:
    """A motion adapter that fits the tiny SD UNet (same block channels and layers per block), random weights."""
    with _seeded(seed + 1):
        adapter = MotionAdapter(
            block_out_channels=(32, 64),
            motion_layers_per_block=2,
            motion_norm_num_groups=2,
            motion_num_attention_heads=4,
            motion_max_seq_length=32,
        )
    return adapter.eval()


def tiny_svd_components(seed: int = 0) -> dict[str, Any]:
    """Stable Video Diffusion components (spatio-temporal UNet, temporal VAE, CLIP vision, Euler scheduler), random weights."""
    with _seeded(seed):
        unet = UNetSpatioTemporalConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=2,
            sample_size=8,
            in_channels=8,
            out_channels=4,
            down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            cross_attention_dim=TINY_CROSS_DIM,
            num_attention_heads=(2, 4),
            addition_time_embed_dim=32,
            projection_class_embeddings_input_dim=3 * 32,  # three added ids (fps, motion bucket, noise augmentation)
            num_frames=SVD_TINY_FRAMES,
        )
        # the temporal decoder's GroupNorm has 32 groups: channels are multiples of 32
        vae = AutoencoderKLTemporalDecoder(
            block_out_channels=[32, 32, 32, 32],
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * 4,
            latent_channels=4,
            layers_per_block=1,
        )
        image_encoder = tiny_image_encoder()
    scheduler = EulerDiscreteScheduler(  # SVD's own scheduler config
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    return {
        "unet": unet.eval(),
        "vae": vae.eval(),
        "image_encoder": image_encoder.eval(),
        "feature_extractor": tiny_image_processor(),
        "scheduler": scheduler,
    }


def tiny_image_encoder() -> CLIPVisionModelWithProjection:
    """A CLIP vision tower with random weights from torch's global RNG (seed it first): 224 px, 7×7 patches of 32, 32-wide embeddings."""
    # SVD and the IP-Adapter's processor resize the image to 224×224 for CLIP, so the tower's image_size is 224
    return CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=TINY_CROSS_DIM,
            projection_dim=TINY_CROSS_DIM,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=224,
            intermediate_size=37,
            patch_size=32,
        )
    ).eval()


def tiny_image_processor() -> Any:
    """The CLIP image processor of the tiny encoder: shortest edge to 224, centre crop 224 (what load_ip_adapter builds by default)."""
    return clip_image_processor_class()(size={"shortest_edge": 224}, crop_size=224)


def tiny_ip_adapter(unet: UNet2DConditionModel, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random IP-Adapter for a UNet and the tiny image encoder, in the file layout load_ip_adapter reads.

    ``image_proj.*`` projects a CLIP image embedding to 4 image tokens; ``ip_adapter.{2i+1}.to_k_ip`` /
    ``to_v_ip`` are the image keys and values of the UNet's i-th cross-attention layer (the original
    IP-Adapter numbers the UNet's attention layers with self- and cross-attention alternating).
    """
    tokens, width = 4, unet.config.cross_attention_dim
    generator = torch.Generator().manual_seed(seed + 2)

    def weight(rows: int, columns: int) -> torch.Tensor:
        return torch.randn(rows, columns, generator=generator) / columns**0.5  # [rows, columns], as a Linear's scale

    state = {
        "image_proj.proj.weight": weight(tokens * width, TINY_CROSS_DIM),
        "image_proj.proj.bias": torch.zeros(tokens * width),
        "image_proj.norm.weight": torch.ones(width),
        "image_proj.norm.bias": torch.zeros(width),
    }
    for index, name in enumerate(cross_attention_layers(unet)):
        channels = unet.get_submodule(name).to_k.out_features
        state[f"ip_adapter.{2 * index + 1}.to_k_ip.weight"] = weight(channels, width)  # [C, D]
        state[f"ip_adapter.{2 * index + 1}.to_v_ip.weight"] = weight(channels, width)  # [C, D]
    return state


def tiny_ip_adapter_encoder(seed: int = 0) -> CLIPVisionModelWithProjection:
    """The image encoder that goes with tiny_ip_adapter: the tiny CLIP vision tower, random weights for the seed."""
    with _seeded(seed + 3):
        return tiny_image_encoder()


def install_tiny_ip_adapter(unet: Any, unet2d: UNet2DConditionModel, device: torch.device, dtype: torch.dtype) -> Any:
    """Put a tiny random IP-Adapter on a motion UNet built from ``unet2d``; its image side (encoder on device in dtype)."""
    parts = ip_adapter.IPAdapterParts(place(tiny_ip_adapter_encoder(), device, dtype), tiny_image_processor())
    ip_adapter.install(unet, ip_adapter.split(tiny_ip_adapter(unet2d)), parts, "tiny", "tiny")
    return parts


def save_tiny_svd(folder: Path) -> Path:
    """Save a tiny Stable Video Diffusion pipeline in diffusers format (safetensors), as a user's local folder would be."""
    from diffusers import StableVideoDiffusionPipeline

    StableVideoDiffusionPipeline(**tiny_svd_components()).save_pretrained(folder)
    return folder


def save_tiny_sd(folder: Path, scheduler: Any = None) -> Path:
    """Save a tiny SD1.5-layout pipeline (no safety checker) in diffusers format, with a scheduler (default: the tiny DDIM)."""
    from diffusers import StableDiffusionPipeline

    components = tiny_sd_components()
    if scheduler is not None:
        components["scheduler"] = scheduler
    pipeline = StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline.save_pretrained(folder)
    return folder


def save_tiny_motion_adapter(folder: Path) -> Path:
    """Save a tiny AnimateDiff motion adapter that fits the tiny SD1.5 UNet, in diffusers format."""
    tiny_motion_adapter().save_pretrained(folder)
    return folder
