"""Task ``model=adapter``: MOFA-Video's trajectory adapter (its class, at the toy UNet's size) trained on a frozen toy SVD.

Tracks → sparse flow → densifier → warped features → residuals, as at sampling time: each clip's
sprite tracks (all of them, and a random subset) go through the trajectory adapter and the
default Gaussian densifier (:func:`motionforge.toy.plans.track_plan`), and the plan's flow is read
at the latents' size (:func:`motionforge.backbones.diffusion.mofa.sampled_flow`). The adapter's
residuals enter the frozen UNet as MOFA's UNet adds them; the loss is the UNet's v-prediction MSE.
The result is an adapter folder that ``backbone.mofa`` loads (config.json + safetensors).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from motionforge.backbones.diffusion.base import vae_scale_factor
from motionforge.backbones.diffusion.loading import local_folder
from motionforge.backbones.diffusion.mofa import sampled_flow
from motionforge.core.errors import InputError
from motionforge.modules import mofa_unet
from motionforge.modules.mofa import CONFIG_NAME, WEIGHTS_NAME, MofaAdapter, MofaSize
from motionforge.toy.plans import track_plan
from motionforge.train.conditioning import Conditioning, encode_clips, model_input, v_target
from motionforge.train.data import ClipTensors
from motionforge.train.unet import diffusion_batch

EMBEDDINGS = {4: (16, 32, 64), 8: (16, 32, 96, 256)}  # the picture's embedding widths for a VAE factor (1/4, 1/8)


def load_svd(value: Any, key: str) -> Any:
    """A trained toy SVD folder (a ``model=unet`` run's model/) through the svd backbone's own loading; one sentence otherwise."""
    from motionforge.backbones.diffusion.svd import SvdBackbone, SvdConfig

    if not value:
        raise InputError(f"{key} is not set; pass the folder of a trained SVD pipeline, e.g. {key}=train/unet/model")
    folder = local_folder(value, key, "a Stable Video Diffusion pipeline")
    models = SvdBackbone().load_folders(
        SvdConfig(pretrained=str(folder)), {"pretrained": folder}, torch.float32, torch.device("cpu")
    )
    for part in (models.unet, models.vae, models.image_encoder):
        part.eval().requires_grad_(False)
    return models


def adapter_size(unet_config: Any, factor: int) -> MofaSize:
    """The trajectory adapter that fits a UNet on a VAE of this factor (its picture embedding reaching the latents' size)."""
    if factor not in EMBEDDINGS:
        raise InputError(f"the VAE's factor is {factor}; the adapter's picture embedding is made for factors 4 and 8")
    return MofaSize.for_unet(unet_config, {"conditioning_embedding_out_channels": EMBEDDINGS[factor]})


def clip_flows(clips: ClipTensors, factor: int, variants: int, seed: int) -> tuple[torch.Tensor, list[list[int]]]:
    """Each clip's plan flows at the latents' size, for all its frame-0-visible tracks and random subsets: [N, V, F, 2, h, w]."""
    logging.getLogger("motionforge.adapters.trajectory").setLevel(logging.ERROR)  # hidden tracks are dropped, as animate does
    rng = np.random.default_rng(seed)
    flows, chosen = [], []
    for index in range(clips.count):
        picture = (clips.frames[index, 0] + 1) / 2  # [3, H, W] in [0, 1]
        tracks, visible = clips.tracks[index], clips.visible[index]
        shown = [s for s in range(len(tracks)) if visible[s, 0]] or list(range(len(tracks)))
        mine = []
        for variant in range(variants):
            count = len(shown) if variant == 0 else int(rng.integers(1, len(shown) + 1))
            subset = sorted(rng.choice(shown, size=count, replace=False).tolist())
            seen = visible[subset].copy()
            seen[:, 0] = True  # only a clip whose every sprite starts hidden gets here with a hidden start: take it as seen
            plan = track_plan(picture, tracks[subset], seen)
            mine.append(sampled_flow(plan, factor, torch.device("cpu")))  # [F, 2, h, w]
            chosen.append(subset)
        flows.append(torch.stack(mine))
    return torch.stack(flows), chosen


class AdapterLoss(nn.Module):
    """The adapter (trainable) on the frozen UNet, with the v-prediction loss as forward."""

    def __init__(self, adapter: MofaAdapter, unet: nn.Module) -> None:
        super().__init__()
        self.adapter = adapter
        self.frozen = [unet]  # a list, so that the frozen UNet is neither a parameter nor wrapped

    def forward(
        self, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, image_latents: torch.Tensor,
        embeddings: torch.Tensor, time_ids: torch.Tensor, picture: torch.Tensor, flow: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """x0, noise [B, F, C, h, w]; sigma [B]; image_latents [B, C, h, w]; embeddings [B, 1, D]; time_ids [B, 3];
        picture [B, 3, H, W] in [−1, 1]; flow [B, F, 2, h, w] in pixels → loss."""
        unet = self.frozen[0]
        sigma5 = sigma.view(-1, 1, 1, 1, 1)
        sample = model_input(x0 + sigma5 * noise, sigma5, image_latents)  # [B, F, 2C, h, w]
        timestep = 0.25 * sigma.log()  # [B]
        reference = torch.arange(sample.shape[1], device=sample.device) == 0  # [F] frame 0 keeps its features
        down, mid = self.adapter(sample, timestep, embeddings, time_ids, picture, flow, reference)
        out = mofa_unet.forward(unet, sample, timestep, embeddings, time_ids, down, mid)  # [B, F, C, h, w]
        return (out - v_target(x0, noise, sigma5)).pow(2).mean()


class AdapterTask:
    """Train the toy trajectory adapter on a frozen toy SVD and a toy dataset."""

    name = "adapter"

    def __init__(self, clips: ClipTensors, model: Any, seed: int, save_dtype: torch.dtype = torch.float32) -> None:
        self.save_dtype = save_dtype
        self.svd = load_svd(model.svd, "model.svd")
        self.factor = vae_scale_factor(self.svd.vae)
        self.cond: Conditioning = encode_clips(clips, self.svd.vae, self.svd.image_encoder, self.svd.feature_extractor, seed)
        self.flows, _ = clip_flows(clips, self.factor, int(model.variants), seed)  # [N, V, F, 2, h, w]
        self.pictures = clips.frames[:, 0]  # [N, 3, H, W] in [−1, 1]
        self.size = adapter_size(self.svd.unet.config, self.factor)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            adapter = MofaAdapter(self.size, "traj")
        self.module = AdapterLoss(adapter, self.svd.unet)
        self.batch_size, self.uncond_prob = int(model.batch_size), float(model.uncond_prob)
        self.p_mean, self.p_std = float(model.p_mean), float(model.p_std)

    def batch(self, step: int, generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """Clips' latents, noise, noise levels, conditioning, pictures, and one of each clip's plan flows."""
        index, batch = diffusion_batch(self.cond, self.batch_size, self.p_mean, self.p_std, self.uncond_prob, generator)
        variant = torch.randint(self.flows.shape[1], (len(index),), generator=generator)  # [B]
        batch = {**batch, "picture": self.pictures[index], "flow": self.flows[index, variant]}
        return {name: value.to(device) for name, value in batch.items()}

    def save(self, module: nn.Module, folder: Path) -> None:
        """Save the adapter as MOFA's folders are laid out: config.json (its live fields) and the safetensors file (save_dtype)."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.detach().to(self.save_dtype).contiguous() for name, tensor in module.adapter.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_NAME))
        config = {
            "_class_name": "FlowControlNet",
            "block_out_channels": list(self.size.block_out_channels),
            "conditioning_channels": self.size.conditioning_channels,
            "conditioning_embedding_out_channels": list(self.size.conditioning_embedding_out_channels),
            "trained_by": "motionforge train model=adapter (the toy world)",
        }
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2), encoding="utf-8")
