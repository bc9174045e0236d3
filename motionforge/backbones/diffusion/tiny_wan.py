"""A tiny random Wan 2.x built from config with no files: the three folder layouts users have, in miniature.

``2.1`` is Wan2.1-I2V's layout (one transformer, a CLIP image encoder, 36 input channels), ``2.2``
Wan2.2-I2V-A14B's (two experts switched at ``boundary_ratio``, no image encoder) and ``ti2v``
Wan2.2-TI2V-5B's (the picture's latent is frame 0, timesteps expanded per token, a VAE that
patchifies by 2). The UMT5 tokenizer is a unigram vocabulary of single characters built in memory.
Everything is deterministic for a seed; random weights give noise, not pictures.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanTransformer3DModel
from transformers import CLIPVisionConfig, CLIPVisionModel, T5Tokenizer, UMT5Config, UMT5EncoderModel

from motionforge.backbones.diffusion.loading import clip_image_processor_class
from motionforge.backbones.diffusion.tiny import _seeded

LAYOUTS = ("2.1", "2.2", "ti2v")
TEXT_DIM = 32
LATENT_CHANNELS = 16  # Wan 2.1's VAE has 16 latent channels (Wan 2.2's 5B VAE 48; the tiny one keeps 16)
BOUNDARY_RATIO = 0.9  # Wan2.2-I2V-A14B's
FRAMES = 5  # the tiny transformer's trained window, in latent frames (17 frames)
ROPE_FRAMES = 32  # its rotary table: at most 32 latent frames (and 32 patches a side) per call
IMAGE_SIZE = 32  # the tiny CLIP tower's input size


def tiny_umt5_tokenizer() -> T5Tokenizer:
    """A UMT5-style tokenizer (pad 0, eos 1, unk 2) whose unigram vocabulary is the printable ASCII characters and '▁'."""
    pieces = ["▁", *string.ascii_letters, *string.digits, *string.punctuation]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(piece, -1.0) for piece in pieces]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_text_encoder(tokenizer: T5Tokenizer) -> UMT5EncoderModel:
    """A two-layer UMT5 encoder over the tiny tokenizer, random weights from torch's global RNG (seed it first)."""
    config = UMT5Config(
        vocab_size=len(tokenizer), d_model=TEXT_DIM, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )  # fmt: skip
    return UMT5EncoderModel(config).eval()


def tiny_vae(layout: str) -> AutoencoderKLWan:
    """Wan's causal 3D VAE in miniature: 4× in time, 8× in space (16× with the 5B VAE's patchify), 16 latent channels."""
    ti2v = layout == "ti2v"
    return AutoencoderKLWan(
        base_dim=8, z_dim=LATENT_CHANNELS, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.1 * (i % 5) - 0.2 for i in range(LATENT_CHANNELS)], latents_std=[1.0 + 0.1 * (i % 3) for i in range(LATENT_CHANNELS)],
        is_residual=ti2v, patch_size=2 if ti2v else None, scale_factor_spatial=16 if ti2v else 8,
        in_channels=12 if ti2v else 3, out_channels=12 if ti2v else 3,  # the 5B VAE patchifies RGB by 2×2 first
    ).eval()  # fmt: skip


def tiny_transformer(layout: str) -> WanTransformer3DModel:
    """A two-block Wan DiT: 36 input channels (noise, mask, picture) for I2V, 16 for TI2V; an image projection for 2.1."""
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
        in_channels=LATENT_CHANNELS if layout == "ti2v" else 2 * LATENT_CHANNELS + 4, out_channels=LATENT_CHANNELS,
        text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=ROPE_FRAMES, image_dim=TEXT_DIM if layout == "2.1" else None,
    ).eval()  # fmt: skip


def tiny_image_encoder() -> CLIPVisionModel:
    """A CLIP vision tower (32 px, patches of 8) whose penultimate hidden states condition Wan 2.1; random weights."""
    config = CLIPVisionConfig(
        hidden_size=TEXT_DIM, projection_dim=TEXT_DIM, num_hidden_layers=2, num_attention_heads=4,
        image_size=IMAGE_SIZE, intermediate_size=37, patch_size=8,
    )  # fmt: skip
    return CLIPVisionModel(config).eval()


def tiny_scheduler() -> UniPCMultistepScheduler:
    """The Wan folders' scheduler: UniPC on flow sigmas with flow prediction, shift 3 (the 480P setting)."""
    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, num_train_timesteps=1000
    )


def tiny_wan_components(layout: str = "2.1", seed: int = 0) -> dict[str, Any]:
    """The components of a tiny Wan pipeline of one layout (2.1, 2.2, ti2v), as WanImageToVideoPipeline takes them."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    tokenizer = tiny_umt5_tokenizer()
    with _seeded(seed):
        text_encoder, vae, transformer = tiny_text_encoder(tokenizer), tiny_vae(layout), tiny_transformer(layout)
        transformer_2 = tiny_transformer(layout) if layout == "2.2" else None
        image_encoder = tiny_image_encoder() if layout == "2.1" else None
    processor = clip_image_processor_class()(size={"shortest_edge": IMAGE_SIZE}, crop_size=IMAGE_SIZE) if image_encoder else None
    return {
        "tokenizer": tokenizer, "text_encoder": text_encoder, "vae": vae, "scheduler": tiny_scheduler(),
        "image_processor": processor, "image_encoder": image_encoder, "transformer": transformer, "transformer_2": transformer_2,
        "boundary_ratio": BOUNDARY_RATIO if layout == "2.2" else None, "expand_timesteps": layout == "ti2v",
    }  # fmt: skip


def save_tiny_wan(folder: Path, layout: str = "2.1") -> Path:
    """Save a tiny Wan pipeline of one layout in diffusers format (safetensors), as a user's local folder would be."""
    from diffusers import WanImageToVideoPipeline

    WanImageToVideoPipeline(**tiny_wan_components(layout)).save_pretrained(folder)
    return folder
