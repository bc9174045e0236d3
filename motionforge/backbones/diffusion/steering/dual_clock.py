"""Time-to-Move's dual-clock denoising: SDEdit from the picture moved along the plan, the moved region held longer.

Sampling starts at step round(``dual_clock_weak``·T) (t_weak) from the picture's latent warped
along the plan (:func:`~.latent_init.warp_reference`) noised to that step's sigma, as latent_init
does. From there until step round(``dual_clock_strong``·T) (t_strong), inside the region the plan
moves — each frame's moving cells (more than ``MOVING_CELLS`` latent pixels of motion) carried to
where they land in that frame — x0 is that frame's warped latent. On a deterministic first-order
step from x to σ' that gives x' − w = (σ'/σ)(x − w): inside, the latents stay the warped picture
plus the run's own noise at the current level, which is TTM's replacement "at matching noise
level" with one noise draw (no seam between steps). Outside the moved region the model is free
from t_weak on. No denoiser call is added. TTM's recommended starts for 50 steps are (3, 7) on
Wan 2.2 (the defaults here: 0.06 and 0.14) and (16, 21) on SVD (0.32 and 0.42).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

import torch

from motionforge.backbones.diffusion.steering.latent_init import warp_reference
from motionforge.core.errors import ConfigError
from motionforge.core.types import Denoiser
from motionforge.kernels import splat
from motionforge.motion.fuse import magnitude, resize_flow

MOVING_CELLS = 0.25  # latent pixels of motion above which a cell belongs to the moved region (2 px at SD's 8×)


@dataclass
class DualClockParams:
    """The dual-clock keys shared by the diffusion backbones; off by default, so parity holds."""

    dual_clock: bool = False  # Time-to-Move: start from the moved picture at dual_clock_weak, hold the moved region until _strong
    dual_clock_weak: float = 0.06  # fraction of the steps where sampling starts (t_weak; TTM: 3/50 on Wan, 16/50 on SVD)
    dual_clock_strong: float = 0.14  # fraction of the steps until which the moved region follows the moved picture (t_strong)


def check(config: DualClockParams) -> None:
    """Check the dual-clock keys; one sentence per mistake."""
    if not 0.0 <= config.dual_clock_weak < config.dual_clock_strong <= 1.0:
        raise ConfigError(
            f"backbone.dual_clock_weak={config.dual_clock_weak} and backbone.dual_clock_strong={config.dual_clock_strong} "
            "must satisfy 0 <= dual_clock_weak < dual_clock_strong <= 1 (fractions of the steps: TTM's Wan start is 0.06, 0.14)"
        )
    if config.dual_clock and getattr(config, "latent_init", False):
        raise ConfigError(
            "backbone.dual_clock and backbone.latent_init both set where sampling starts from the moved picture; "
            "turn one off (dual_clock starts at dual_clock_weak, latent_init at init_strength)"
        )


def start_index(config: DualClockParams, steps: int) -> int:
    """The schedule index sampling starts at under the dual clock: round(weak·T), at most T − 1."""
    return min(round(config.dual_clock_weak * steps), steps - 1)


def moved_region(small: torch.Tensor) -> torch.Tensor:
    """Where the moving cells of each frame land, from flows [F, 2, h, w] in latent pixels: [F, 1, h, w] in [0, 1]."""
    moving = (magnitude(small, keepdim=True) > MOVING_CELLS).float()  # [F, 1, h, w] where each frame's motion starts
    return splat(moving, small.float(), "sum").clamp(0.0, 1.0)  # [F, 1, h, w] where it lands


def targets(reference: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The warped picture [F, C, h, w] and its moved region [F, 1, h, w] from the clean latent [1, C, h, w] and flows in pixels."""
    height, width = reference.shape[-2:]
    small = resize_flow(flow.to(reference.device).float(), height, width)  # [F, 2, h, w] in latent pixels
    return warp_reference(reference, small), moved_region(small)


class DualClock:
    """A Denoiser wrapper: inside each frame's moved region x0 is that frame's warped picture, during the strong clock's steps."""

    def __init__(self, inner: Denoiser, warped: torch.Tensor, region: torch.Tensor, active: Container[object]) -> None:
        self.inner = inner
        self.warped = warped  # [F, C, h, w] the picture's latent moved along the plan, clean (σ = 0)
        self.region = region  # [F, 1, h, w] in [0, 1]: where x0 is the warped picture
        self.active = active  # the sigmas of the steps from t_weak to t_strong (a StepWindow)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [B, Fw, C, h, w] at sigma over clip frames [Fw] → x0 with the moved region lerped to the warped picture."""
        x0 = self.inner.denoise(x, sigma, frames)
        if sigma not in self.active:
            return x0
        index = frames.to(self.warped.device).long()
        warped = self.warped[index].to(x0)[None]  # [1, Fw, C, h, w]
        region = self.region[index].to(x0)[None]  # [1, Fw, 1, h, w]
        return torch.lerp(x0, warped.expand_as(x0), region.expand_as(x0))
