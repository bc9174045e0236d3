"""What the toy UNet is conditioned on, computed once per clip exactly as the svd backbone computes it at sampling time."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from einops import rearrange

from motionforge.backbones.diffusion.svd import clip_embedding, image_latent
from motionforge.train.data import ClipTensors
from motionforge.train.toy_models import NOISE_AUG


@dataclass
class Conditioning:
    """Per clip: the target latents, the picture's latent (noise-augmented, unscaled) and its CLIP embedding."""

    latents: torch.Tensor  # [N, F, C, h, w] scaled by the VAE's scaling factor (the diffusion's x0)
    image_latents: torch.Tensor  # [N, C, h, w] unscaled mode of the noise-augmented picture (SVD's concatenated latent)
    embeddings: torch.Tensor  # [N, 1, D]


@torch.no_grad()
def encode_clips(clips: ClipTensors, vae: Any, image_encoder: Any, feature_extractor: Any, seed: int) -> Conditioning:
    """Encode every clip: its frames to latents, its first frame to SVD's image latent and CLIP embedding."""
    models = SimpleNamespace(vae=vae, image_encoder=image_encoder, feature_extractor=feature_extractor, unet=vae)
    scale = float(vae.config.scaling_factor)
    latents, image_latents, embeddings = [], [], []
    for index in range(clips.count):
        frames = clips.frames[index]  # [F, 3, H, W] in [−1, 1]
        latents.append(vae.encode(frames).latent_dist.mode() * scale)  # [F, C, h, w]
        picture = (frames[0] + 1) / 2  # [3, H, W] in [0, 1]
        generator = torch.Generator().manual_seed(seed * 100_003 + index)
        image_latents.append(image_latent(models, picture, NOISE_AUG, generator)[0])  # [C, h, w]
        embeddings.append(clip_embedding(models, picture)[0])  # [1, D]
    return Conditioning(torch.stack(latents), torch.stack(image_latents), torch.stack(embeddings))


def model_input(x: torch.Tensor, sigma: torch.Tensor, image_latents: torch.Tensor) -> torch.Tensor:
    """The UNet's input: the noisy latents x [B, F, C, h, w] times c_in = 1/√(σ²+1), the image latent [B, C, h, w] beside each frame."""
    frames = x.shape[1]
    scaled = x / (sigma**2 + 1).sqrt()  # [B, F, C, h, w]
    beside = rearrange(image_latents, "b c h w -> b 1 c h w").expand(-1, frames, -1, -1, -1)  # [B, F, C, h, w]
    return torch.cat([scaled, beside], dim=2)  # [B, F, 2C, h, w]


def v_target(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The v-prediction target (ε − σ·x0)/√(σ²+1): what makes the svd backbone's denoiser return x0 (EDM weighting)."""
    return (noise - sigma * x0) / (sigma**2 + 1).sqrt()
