"""Frames of a VAE that compresses time (Wan: 4×): 4n+1 pixel frames ↔ n+1 latent frames, the first frame on its own.

Wan's causal VAE encodes frame 0 alone and every following group of ``factor`` frames into one
latent frame, so a clip of F = factor·n + 1 frames has n + 1 latent frames; latent frame j ≥ 1
stands for the pixel frames factor·(j − 1) + 1 … factor·j. The samplers work on latent frames:
for a Wan backbone ``sampler.window`` and ``sampler.stride`` count latent frames, and a window of
w latent frames decodes to factor·(w − 1) + 1 pixel frames (:func:`pixel_frames`).
"""

from __future__ import annotations

import torch

from motionforge.core.errors import ConfigError


def latent_frames(num_frames: int, factor: int) -> int:
    """The latent frames of a clip of ``num_frames`` = factor·n + 1 pixel frames: n + 1."""
    return (num_frames - 1) // factor + 1


def pixel_frames(latent: int, factor: int) -> int:
    """The pixel frames that ``latent`` latent frames decode to: factor·(latent − 1) + 1."""
    return factor * (latent - 1) + 1


def check_frames(num_frames: int, factor: int, backbone: str) -> None:
    """Refuse a clip length the VAE cannot encode (not factor·n + 1) in one sentence that names the nearest ones."""
    if num_frames < 1 or (num_frames - 1) % factor:
        below = max(1, (num_frames - 1) // factor * factor + 1)
        raise ConfigError(
            f"num_frames={num_frames} is not {factor}n+1: {backbone}'s VAE encodes the first frame alone and then "
            f"{factor} frames per latent frame; set num_frames={below} or {below + factor}"
        )


def groups(num_frames: int, factor: int) -> list[torch.Tensor]:
    """The pixel frames each latent frame stands for: [0], [1 … factor], [factor + 1 … 2·factor], … (index tensors)."""
    return [torch.tensor([0])] + [torch.arange(start, start + factor) for start in range(1, num_frames, factor)]


def to_latent_frames(values: torch.Tensor, factor: int) -> torch.Tensor:
    """Per-pixel-frame values [F, ...] (e.g. the plan's flow f_{0→i}) → per latent frame [F_l, ...], each the mean of its group."""
    return torch.stack([values[index.to(values.device)].mean(dim=0) for index in groups(values.shape[0], factor)])
