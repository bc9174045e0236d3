"""The toy world's model shapes: a 3-block temporal VAE (64 px ↔ 16 latents of 8 channels), a 2-block SVD UNet, SVD's scheduler with σ_max 80.

They are SVD's classes (``AutoencoderKLTemporalDecoder``, ``UNetSpatioTemporalConditionModel``,
``CLIPVisionModelWithProjection``, ``EulerDiscreteScheduler``) at a size that trains on a CPU; the
CLIP tower stays random and frozen (the toy model reads the picture through its VAE latent).
"""

from __future__ import annotations

from typing import Any

from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel

from motionforge.backbones.diffusion.tiny import TINY_CROSS_DIM, _seeded, tiny_image_encoder

VAE_BLOCKS = (32, 64, 64)  # three blocks: a factor of 4 (GroupNorm(32) inside: multiples of 32)
LATENT_CHANNELS = 8  # 16×16×8 latents for 64×64×3 pixels (6× compression: sharp sprites after a short training)
UNET_BLOCKS = (64, 128)
FPS_ID, MOTION_BUCKET, NOISE_AUG = 6, 127, 0.02  # the added time ids the toy UNet is trained with (SVD's defaults)


def toy_vae(seed: int) -> AutoencoderKLTemporalDecoder:
    """The toy temporal VAE, randomly initialised from a seed."""
    with _seeded(seed):
        return AutoencoderKLTemporalDecoder(
            block_out_channels=list(VAE_BLOCKS),
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D"] * len(VAE_BLOCKS),
            latent_channels=LATENT_CHANNELS,
            layers_per_block=1,
        )


def toy_unet(seed: int, num_frames: int, latent_size: int) -> UNetSpatioTemporalConditionModel:
    """The toy image-to-video UNet (SVD's architecture: the image latent concatenated, CLIP cross-attention, three added ids)."""
    with _seeded(seed):
        return UNetSpatioTemporalConditionModel(
            block_out_channels=UNET_BLOCKS,
            layers_per_block=1,
            sample_size=latent_size,
            in_channels=2 * LATENT_CHANNELS,
            out_channels=LATENT_CHANNELS,
            down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            cross_attention_dim=TINY_CROSS_DIM,
            num_attention_heads=(2, 4),
            addition_time_embed_dim=32,
            projection_class_embeddings_input_dim=3 * 32,
            num_frames=num_frames,
        )


def toy_image_encoder(seed: int) -> Any:
    """The frozen random CLIP vision tower of the toy pipeline."""
    with _seeded(seed + 7):
        return tiny_image_encoder()


def toy_scheduler() -> EulerDiscreteScheduler:
    """SVD's Euler scheduler (v-prediction, continuous timesteps 0.25·log σ, Karras sigmas) with σ_max 80 for the toy model."""
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=80.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
