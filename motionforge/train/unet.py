"""Task ``model=unet``: the toy SVD-architecture UNet on a trained toy VAE, v-prediction with SVD's EDM noise levels.

Each step draws clips, log σ ~ N(p_mean, p_std²) per clip, and drops the conditioning (CLIP
embedding and image latent, together) with probability ``uncond_prob``, so that SVD's
classifier-free guidance has an unconditional model to steer from. The result is a whole
StableVideoDiffusionPipeline folder: the UNet, the VAE it was trained on, the frozen CLIP tower,
its processor and the scheduler.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from motionforge.backbones.diffusion.loading import local_folder, quiet
from motionforge.backbones.diffusion.tiny import tiny_image_processor
from motionforge.core.errors import InputError
from motionforge.train.conditioning import Conditioning, encode_clips, model_input, v_target
from motionforge.train.data import ClipTensors, batch_indices
from motionforge.train.toy_models import FPS_ID, MOTION_BUCKET, NOISE_AUG, toy_image_encoder, toy_scheduler, toy_unet


def load_vae(value: Any, key: str) -> Any:
    """A trained toy VAE folder (a ``model=vae`` run's model/); one sentence when it is not one."""
    from diffusers import AutoencoderKLTemporalDecoder

    if not value:
        raise InputError(f"{key} is not set; pass the folder of a trained VAE, e.g. {key}=train/vae/model")
    folder = local_folder(value, key, "a temporal VAE (AutoencoderKLTemporalDecoder)")
    try:
        vae = AutoencoderKLTemporalDecoder.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{key}={value} is not a temporal VAE folder ({type(exc).__name__}); pass a `model=vae` run's model/ folder"
        ) from None
    return vae.eval().requires_grad_(False)


class UnetLoss(nn.Module):
    """The UNet with its loss as forward: x0, noise, σ and the conditioning of a batch → the v-prediction MSE."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(
        self, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, image_latents: torch.Tensor,
        embeddings: torch.Tensor, time_ids: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """x0, noise [B, F, C, h, w]; sigma [B]; image_latents [B, C, h, w]; embeddings [B, 1, D]; time_ids [B, 3] → loss."""
        sigma5 = sigma.view(-1, 1, 1, 1, 1)
        x = x0 + sigma5 * noise  # [B, F, C, h, w]
        out = self.unet(model_input(x, sigma5, image_latents), 0.25 * sigma.log(), embeddings, time_ids).sample
        return (out - v_target(x0, noise, sigma5)).pow(2).mean()


def noise_levels(count: int, p_mean: float, p_std: float, generator: torch.Generator) -> torch.Tensor:
    """σ [count] with log σ ~ N(p_mean, p_std²) (EDM's log-normal)."""
    return (torch.randn(count, generator=generator) * p_std + p_mean).exp()


def drop(conditioning: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The conditioning [B, ...] zeroed where keep [B] is false (SVD's unconditional input is zeros)."""
    return conditioning * keep.view(-1, *([1] * (conditioning.dim() - 1))).to(conditioning.dtype)


def diffusion_batch(
    cond: Conditioning, batch_size: int, p_mean: float, p_std: float, uncond_prob: float, generator: torch.Generator
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A step's clip indices [B] and what the UNet's loss reads of them (x0, noise, σ, the conditioning, dropped now and
    then, and the added time ids), drawn in this order from the step's generator."""
    index = batch_indices(cond.latents.shape[0], batch_size, generator)
    x0 = cond.latents[index]  # [B, F, C, h, w]
    noise = torch.randn(x0.shape, generator=generator)
    sigma = noise_levels(len(index), p_mean, p_std, generator)  # [B]
    keep = torch.rand(len(index), generator=generator) >= uncond_prob  # [B]
    time_ids = torch.tensor([[FPS_ID, MOTION_BUCKET, NOISE_AUG]]).expand(len(index), -1)  # [B, 3]
    batch = {
        "x0": x0, "noise": noise, "sigma": sigma, "image_latents": drop(cond.image_latents[index], keep),
        "embeddings": drop(cond.embeddings[index], keep), "time_ids": time_ids,
    }  # fmt: skip
    return index, batch


class UnetTask:
    """Train the toy UNet on a toy dataset, its clips encoded by a trained toy VAE."""

    name = "unet"

    def __init__(self, clips: ClipTensors, model: Any, seed: int, save_dtype: torch.dtype = torch.float32) -> None:
        self.save_dtype = save_dtype
        self.vae = load_vae(model.vae, "model.vae")
        self.image_encoder = toy_image_encoder(seed).requires_grad_(False)
        self.feature_extractor = tiny_image_processor()
        self.cond: Conditioning = encode_clips(clips, self.vae, self.image_encoder, self.feature_extractor, seed)
        frames, latent = self.cond.latents.shape[1], self.cond.latents.shape[-1]
        self.module = UnetLoss(toy_unet(seed, frames, latent))
        self.batch_size, self.uncond_prob = int(model.batch_size), float(model.uncond_prob)
        self.p_mean, self.p_std = float(model.p_mean), float(model.p_std)

    def batch(self, step: int, generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """Clips' latents, their noise and noise levels, and their conditioning (dropped now and then)."""
        _, batch = diffusion_batch(self.cond, self.batch_size, self.p_mean, self.p_std, self.uncond_prob, generator)
        return {name: value.to(device) for name, value in batch.items()}

    def save(self, module: nn.Module, folder: Path) -> None:
        """Save the whole pipeline in diffusers format (StableVideoDiffusionPipeline, safetensors, in save_dtype)."""
        from diffusers import StableVideoDiffusionPipeline

        pipeline = StableVideoDiffusionPipeline(
            vae=copy.deepcopy(self.vae), image_encoder=copy.deepcopy(self.image_encoder), unet=copy.deepcopy(module.unet).eval(),
            scheduler=toy_scheduler(), feature_extractor=self.feature_extractor,
        )  # fmt: skip
        with quiet("diffusers.models.modeling_utils"):  # its note on casting with to(): nothing here must stay float32
            pipeline.to(self.save_dtype).save_pretrained(folder)
