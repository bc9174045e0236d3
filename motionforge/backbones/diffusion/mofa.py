"""MOFA-Video's trained adapters on the svd backbone: the plan's flow (and drawn landmarks) as ControlNet residuals.

``backbone.mofa`` is the folder of the trajectory adapter (MOFA-Video-Traj's ``ckpts/controlnet``),
``backbone.mofa_landmark`` that of the keypoint adapter (MOFA-Video-Hybrid's ``ckpts/mofa/ldmk_controlnet``);
on ``svd_tiny`` the value ``tiny`` builds a small random adapter instead (seed 0, its zero
convolutions made random too, so that it changes the clip). Every model call of a window:

- the trajectory adapter reads the plan's flow f_{0→t} of the window's frames, whatever densified
  it (Gaussian, or a learned densifier), sampled at the latents' size (1/8 of the frame for SVD) by
  nearest sampling (exactly what MOFA's nearest resizing to every scale reads);
- the keypoint adapter reads the same flow and the landmark control's tracks drawn as MOFA draws
  them (:mod:`motionforge.modules.mofa_landmarks`);
- with both, the residuals are blended ``face·mask + drag·(1 − mask)`` with the landmark control's
  face region resized (nearest) to each residual, each adapter at its own scale (MOFA-Video-Hybrid);
- the adapters run on the classifier-free-guidance batch, the picture and the flow the same for
  both halves, and their residuals enter SVD's UNet as MOFA's UNet adds them (:mod:`motionforge.modules.mofa_unet`).

Frame 0 of the clip keeps the picture's unwarped features wherever it is in a window; a window
without frame 0 (periodic_overlap without ``anchor_first_frame``, phased) warps every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import repeat

from motionforge.backbones.diffusion import loading
from motionforge.backbones.diffusion.tiny import _seeded
from motionforge.core.errors import ConfigError, InputError
from motionforge.core.types import MotionContext, MotionPlan
from motionforge.modules import mofa as modules
from motionforge.modules.mofa_landmarks import NUM_POINTS, draw_faces

KEYS = {"mofa": "traj", "mofa_landmark": "ldmk"}  # config key → adapter kind
TINY = "tiny"
MULTIPLE = 64  # H and W: the adapter's deepest features sit at 1/64


@dataclass
class MofaParams:
    """MOFA-Video's adapter keys of the svd backbones; off by default."""

    mofa: str | None = None  # folder of MOFA-Video's trajectory adapter (config.json + safetensors); svd_tiny: tiny
    mofa_scale: float = 0.6  # its control scale (MOFA's recommendation)
    mofa_landmark: str | None = None  # folder of MOFA-Video's keypoint adapter; svd_tiny: tiny
    mofa_landmark_scale: float = 1.0  # its control scale (MOFA's default)


def check(config: MofaParams) -> None:
    """Check the adapter keys' scales; one sentence per mistake."""
    for key in ("mofa_scale", "mofa_landmark_scale"):
        value = getattr(config, key)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"backbone.{key}={value} must be a number ≥ 0 (0: the adapter's residuals are zero)")


def uses_mofa(config: MofaParams) -> bool:
    """Whether a MOFA adapter is set."""
    return bool(config.mofa or config.mofa_landmark)


def cache_extra(config: MofaParams) -> tuple[Any, ...]:
    """What tells apart loads with different adapters: each key's folder (resolved) or ``tiny``."""
    values = []
    for key, kind in KEYS.items():
        value = getattr(config, key)
        if value in (None, "", TINY):
            values.append(value or None)
        else:
            values.append(str(loading.local_folder(value, f"backbone.{key}", modules.WHAT[kind])))
    return tuple(values)


def tiny_adapter(unet: Any, kind: str) -> modules.MofaAdapter:
    """A random adapter that fits a UNet (seed 0), its zero convolutions random as well so that it is not a no-op."""
    with _seeded(0):
        adapter = modules.MofaAdapter(modules.MofaSize.for_unet(unet.config), kind)
    return modules.randomise_zero_convs(adapter, seed=0).eval()


def load_adapters(config: MofaParams, unet: Any, dtype: torch.dtype, device: torch.device, tiny: bool) -> dict[str, Any]:
    """The adapters the config names, by key (``mofa``, ``mofa_landmark``), checked against the UNet and placed."""
    adapters: dict[str, Any] = {}
    for key, kind in KEYS.items():
        value = getattr(config, key)
        if not value:
            continue
        if value == TINY:
            if not tiny:
                raise ConfigError(
                    f"backbone.{key}=tiny builds a random adapter for svd_tiny only; "
                    f"pass the local folder of {modules.WHAT[kind]}"
                )
            adapter = tiny_adapter(unet, kind)
        else:
            folder = loading.local_folder(value, f"backbone.{key}", modules.WHAT[kind])
            adapter = modules.load_adapter(folder, kind, unet.config, f"backbone.{key}")
        adapters[key] = loading.place(adapter, device, dtype)
    return adapters


def check_size(context: MotionContext) -> None:
    """H and W must be multiples of 64 with an adapter; one sentence otherwise."""
    if context.height % MULTIPLE or context.width % MULTIPLE:
        raise ConfigError(
            f"MOFA-Video's adapters need height and width that are multiples of {MULTIPLE} (their deepest features are at "
            f"1/{MULTIPLE}); {context.width}×{context.height} is not: pass e.g. height={round(context.height / 64) * 64 or 64} "
            f"width={round(context.width / 64) * 64 or 64}"
        )


def sampled_flow(plan: MotionPlan, step: int, device: torch.device) -> torch.Tensor:
    """The plan's flow f_{0→t} at 1/step of the frame (nearest: pixel step·i), in pixels: [F, 2, H/step, W/step]."""
    parts = [flow[:, :, ::step, ::step].float() for _, flow in plan.field.chunks()]  # [n, 2, H/step, W/step] each
    return torch.cat(parts).to(device)


def landmark_tracks(plan: MotionPlan) -> torch.Tensor:
    """The landmark control's 68 tracks [68, F, 2]; one sentence when the control is missing or has another count."""
    hint = plan.hints.get("landmark")
    if hint is None or hint.tracks is None:
        raise ConfigError(
            "backbone.mofa_landmark draws the landmark control's faces: add it, e.g. adapters=[landmark,trajectory] "
            "adapters.landmark.file=landmarks.npy"
        )
    if hint.tracks.shape[0] != NUM_POINTS:
        raise InputError(
            f"MOFA-Video's keypoint adapter draws 68-point faces (the iBUG layout), but the landmark control gives "
            f"{hint.tracks.shape[0]} points inside the frame; pass a [T, 68, 2] sequence whose face lies in the picture"
        )
    return hint.tracks


def face_mask(plan: MotionPlan) -> torch.Tensor:
    """The landmark control's face region [1, 1, H, W], which the hybrid blends by; one sentence when it has none."""
    hint = plan.hints.get("landmark")
    if hint is None or hint.region is None:
        raise ConfigError(
            "with both backbone.mofa and backbone.mofa_landmark the residuals are blended by the face region: set "
            "adapters.landmark.face_region=true"
        )
    return hint.region.float()


def blend(face: torch.Tensor, drag: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MOFA-Video-Hybrid's blend of residuals [N, C, h, w]: face·mask + drag·(1 − mask), the mask [1, 1, H, W] resized nearest."""
    resized = F.interpolate(mask.to(device=face.device, dtype=face.dtype), size=face.shape[-2:], mode="nearest")  # [1, 1, h, w]
    return face * resized + drag * (1 - resized)


class MofaControl:
    """One run's adapters and their inputs: a window's UNet input → the residuals for SVD's UNet."""

    def __init__(
        self, adapters: dict[str, Any], config: MofaParams, context: MotionContext, plan: MotionPlan, factor: int = 8
    ) -> None:
        check_size(context)
        device = next(iter(adapters.values())).conv_in.weight.device
        self.adapters = {key: (adapter, float(getattr(config, f"{key}_scale"))) for key, adapter in adapters.items()}
        self.height, self.width = context.height, context.width
        self.picture = (context.image[None].float() * 2 - 1).to(device)  # [1, 3, H, W] in [−1, 1]
        self.flow = sampled_flow(plan, factor, device)  # [F, 2, H/f, W/f] pixels, at the VAE's factor f (8 for SVD)
        self.tracks = landmark_tracks(plan) if "mofa_landmark" in adapters else None  # [68, F, 2]
        self.mask = face_mask(plan).to(device) if len(adapters) == 2 else None  # [1, 1, H, W]

    def used(self) -> list[str]:
        """What the manifest says ran: each adapter and its scale (and the hybrid blend)."""
        names = {"mofa": "trajectory", "mofa_landmark": "keypoint"}
        said = [f"mofa {names[key]} adapter (scale {scale:g})" for key, (_, scale) in self.adapters.items()]
        return said + (["mofa hybrid blend by the face region"] if self.mask is not None else [])

    def __call__(
        self, sample: torch.Tensor, timestep: torch.Tensor, embeddings: torch.Tensor, time_ids: torch.Tensor, frames: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """sample [R, Fw, 8, h, w] (R = 2 with guidance), frames [Fw] → (residual per skip [R·Fw, C, h_k, w_k], mid residual)."""
        rows, dtype = sample.shape[0], sample.dtype
        index = frames.cpu().long()
        picture = self.picture.to(dtype).expand(rows, -1, -1, -1)  # [R, 3, H, W]
        flow = repeat(self.flow[index.to(self.flow.device)], "f c h w -> r f c h w", r=rows).to(dtype)  # [R, Fw, 2, H/8, W/8]
        reference = index == 0  # [Fw] the clip's frame 0
        out = {}
        for key, (adapter, scale) in self.adapters.items():
            landmarks = None
            if key == "mofa_landmark":
                drawn = draw_faces(self.tracks, index, self.height, self.width).to(
                    device=sample.device, dtype=dtype
                )  # [Fw, 3, H, W]
                landmarks = repeat(drawn, "f c h w -> r f c h w", r=rows)
            out[key] = adapter(sample, timestep, embeddings, time_ids, picture, flow, reference, landmarks, scale)
        if len(out) == 1:
            return next(iter(out.values()))
        (face_down, face_mid), (drag_down, drag_mid) = out["mofa_landmark"], out["mofa"]
        down = [blend(face, drag, self.mask) for face, drag in zip(face_down, drag_down)]
        return down, blend(face_mid, drag_mid, self.mask)
