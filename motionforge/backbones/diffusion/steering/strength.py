"""The plan's motion strength M_s for the diffusion backbones: SVD's motion bucket, and AnimateDiff's latent_init flow."""

from __future__ import annotations

import torch

from motionforge.motion.fuse import motion_strength

# M_s of the bundled sample (2.04 px/frame at 512 px) as a share of the longer side: SVD's default bucket 127
REFERENCE_MOTION = 0.004
DEFAULT_BUCKET = 127


def flow_at_strength(flow: torch.Tensor, strength: float | None) -> torch.Tensor:
    """Flows [F, 2, H, W] rescaled so their M_s is ``strength`` (unchanged without a strength or without motion)."""
    current = motion_strength(flow)
    if strength is None or current <= 0:
        return flow
    return flow * (strength / current)


def motion_bucket(strength: float | None, height: int, width: int, default: int = DEFAULT_BUCKET) -> int:
    """SVD's motion_bucket_id for a motion strength M_s (px/frame at height×width): clamp(round(127·M_s/M_ref), 1, 255).

    M_ref = 0.004 × the longer side is the bundled sample's M_s (2.04 px/frame at 512 px), so its
    motion maps to diffusers' default 127 and twice it to 254; the map is linear through 0 and
    monotone. Without a strength the configured ``default`` is kept.
    """
    if strength is None:
        return default
    reference = REFERENCE_MOTION * max(height, width)
    return int(min(255, max(1, round(DEFAULT_BUCKET * strength / reference))))
