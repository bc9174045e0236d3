"""Warped latent initialisation (Controllable Longer Image Animation, Motion-I2V's zero-shot video-to-video).

Frame i starts from the picture's clean latent forward-splatted along the plan's f_{0→i} at latent
resolution (softmax splatting, faster motion in front; where less than one source cell lands, the
unwarped reference shows through in proportion, so disocclusions show the picture as it was),
noised to the sigma at index round((1 − init_strength)·T) of the schedule, as diffusers' img2vid
``strength``: x = warped + σ_start·noise with the backbone's own noise draw, and the sampler runs
the schedule from there (fewer steps). A start index of 0 is pure noise: the run is untouched.
"""

from __future__ import annotations

import torch

from motionforge.kernels import splat
from motionforge.motion.fuse import magnitude, resize_flow

OCCLUSION = 0.5  # softmax splatting metric per latent pixel of motion: where cells collide, the faster one is in front


def warp_reference(reference: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The reference latent [1, C, h, w] forward-splatted along flows [F, 2, h, w] (latent pixels): [F, C, h, w].

    Softmax splatting with faster motion in front; a cell that receives coverage c < 1 is
    c·splatted + (1 − c)·reference (holes show the unwarped reference); frames with no motion are
    the reference exactly.
    """
    frames = flow.shape[0]
    out = reference.expand(frames, -1, -1, -1).clone()  # [F, C, h, w]
    moving = flow.flatten(1).abs().amax(dim=1) > 0  # [F]
    if not bool(moving.any()):
        return out
    source = reference.float()
    moved = flow[moving].float()  # [M, 2, h, w]
    warped = splat(source, moved, "softmax", OCCLUSION * magnitude(moved, keepdim=True))  # [M, C, h, w]
    coverage = splat(torch.ones_like(source[:, :1]), moved, "sum").clamp(max=1.0)  # [M, 1, h, w]
    out[moving] = (coverage * warped + (1 - coverage) * source).to(out.dtype)
    return out


def latent_init(reference: torch.Tensor, flow: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Warped initial latents noised to the start sigma (the schedule already starts at :func:`start_step`).

    reference [1, C, h, w] clean latent in sigma space at σ = 0; flow [F, 2, H, W] working pixels;
    noise [1, F, C, h, w] unit Gaussian; sigma the schedule's first → latents [1, F, C, h, w] at sigma.
    """
    height, width = reference.shape[-2:]
    small = resize_flow(flow.to(reference.device).float(), height, width)  # [F, 2, h, w] in latent pixels
    warped = warp_reference(reference, small)[None]  # [1, F, C, h, w]
    return warped.to(noise.dtype) + sigma.to(noise.dtype) * noise.to(warped.device)
