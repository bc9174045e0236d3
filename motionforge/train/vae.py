"""Task ``model=vae``: the toy temporal VAE, trained to reconstruct clips from their latents' mode (L1 + MSE + a small KL)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import nn

from motionforge.backbones.diffusion.loading import quiet
from motionforge.train.data import ClipTensors, batch_indices
from motionforge.train.toy_models import toy_vae


class VaeLoss(nn.Module):
    """The VAE with its training loss as forward: clips [B, F, 3, H, W] and the posterior's noise → the loss."""

    def __init__(self, vae: nn.Module, kl_weight: float) -> None:
        super().__init__()
        self.vae, self.kl_weight = vae, kl_weight

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """clips [B, F, 3, H, W] in [−1, 1] → L1 + MSE of the reconstruction from the posterior's mode + kl_weight·KL.

        The decoder reads the mode, as every use of the toy VAE does (SVD's image latent, the UNet's
        training latents): trained on samples, the toy VAE stays blurred for thousands of steps.
        """
        frames = clips.shape[1]
        pixels = rearrange(clips, "b f c h w -> (b f) c h w")  # [B·F, 3, H, W]
        posterior = self.vae.encode(pixels).latent_dist
        latents = posterior.mode()  # [B·F, C, h, w]
        rebuilt = self.vae.decode(latents, num_frames=frames).sample  # [B·F, 3, H, W]
        error = rebuilt - pixels
        return error.abs().mean() + error.pow(2).mean() + self.kl_weight * posterior.kl().mean()


class VaeTask:
    """Train the toy VAE on a toy dataset's clips."""

    name = "vae"

    def __init__(self, clips: ClipTensors, model: Any, seed: int, save_dtype: torch.dtype = torch.float32) -> None:
        self.clips, self.batch_size, self.save_dtype = clips, int(model.batch_size), save_dtype
        self.module = VaeLoss(toy_vae(seed), float(model.kl_weight))

    def batch(self, step: int, generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """A batch of whole clips."""
        clips = self.clips.frames[batch_indices(self.clips.count, self.batch_size, generator)]  # [B, F, 3, H, W]
        return {"clips": clips.to(device)}

    def save(self, module: nn.Module, folder: Path) -> None:
        """Measure the latents' scale on up to 256 clips (1/std, as SD's 0.18215), record it in the config, save the VAE (save_dtype)."""
        vae = module.vae.eval()
        with torch.no_grad():
            sample = self.clips.frames[:256].flatten(0, 1)  # [n, 3, H, W]
            latents = torch.cat([vae.encode(part).latent_dist.mode() for part in sample.split(64)])
        vae.register_to_config(scaling_factor=round(float(1.0 / latents.std()), 5))
        with quiet("diffusers.models.modeling_utils"):  # its note on casting with to(): nothing here must stay float32
            copy.deepcopy(vae).to(self.save_dtype).save_pretrained(folder)
