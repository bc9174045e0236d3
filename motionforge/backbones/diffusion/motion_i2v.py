"""Motion-I2V's trained motion module on the animatediff backbones (``backbone.motion_i2v``).

With ``backbone.motion_i2v=PATH`` (stage 2's ``models/stage2/Motion_Module/motion_block.bin``, or a
``.safetensors`` of it) the motion modules come from that file instead of ``backbone.motion_adapter``
(giving both is an error), and every denoiser call runs them with Motion-I2V's motion-augmented
attention (:mod:`motionforge.modules.motion_i2v_attention`) driven by the plan's dense flow f_{0→t},
whichever adapters made it. Frame 0 is the picture's clean latent at every step (selective noising,
as Motion-I2V's pipeline), and the brush's region hold applies as usual. A window holds at most
(motion_max_seq_length + 1) // 2 = 16 frames (its interleaved sequence has 2L − 1 positions); longer
clips go through ``sampler=periodic_overlap``. ``animatediff_tiny backbone.motion_i2v=tiny`` puts a
tiny random module (seed 0) on the tiny model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from motionforge.core.errors import ConfigError
from motionforge.core.flowfield import FlowField
from motionforge.core.types import Denoiser, FrameLimit, MotionContext
from motionforge.modules import motion_i2v
from motionforge.modules.motion_i2v_attention import MotionI2VAttention, MotionI2VContext

log = logging.getLogger(__name__)

KEY = motion_i2v.KEY
TINY = "tiny"
TRAINED = (320, 512, 16)  # Motion-I2V's stage 2 was trained at 320×512 (h×w) on 16 frames
STEERING = "motion_i2v"  # its name in the manifest's steering list


def check(config: Any) -> None:
    """The keys that do not go with the module; one sentence per mistake."""
    if getattr(config, "motion_i2v", None) is None:
        return
    if getattr(config, "motion_adapter", None) is not None:
        raise ConfigError(
            f"backbone.motion_adapter and {KEY} both name the motion modules; pass one ({KEY}'s motion_block.bin "
            "holds the whole motion module, so backbone.motion_adapter=null)"
        )
    if not config.selective_noising:
        raise ConfigError(
            f"backbone.selective_noising=false does not go with {KEY}: Motion-I2V's module works with frame 0 held at the "
            "picture; set backbone.selective_noising=true"
        )
    if config.warped_attention:
        raise ConfigError(
            f"backbone.warped_attention=true does not go with {KEY}: the module's own motion-augmented attention replaces "
            "the zero-shot one; set backbone.warped_attention=false"
        )


def cache_key(config: Any) -> tuple[Any, ...]:
    """What tells apart two loads with different modules: the file's resolved path (or tiny), or nothing."""
    value = getattr(config, "motion_i2v", None)
    if value is None or value == TINY:
        return (value,)
    return (str(Path(str(value)).expanduser().resolve()),)


def adapter_config(unet_config: dict[str, Any]) -> dict[str, Any]:
    """The module's MotionAdapter config for an SD1.5-style UNet config: AnimateDiff-v2's, with the UNet's block channels."""
    layers = unet_config.get("layers_per_block", 2)
    return {
        **motion_i2v.FULL_CONFIG,
        "block_out_channels": tuple(unet_config.get("block_out_channels", motion_i2v.FULL_CONFIG["block_out_channels"])),
        "motion_layers_per_block": layers,
    }


def load(value: str, unet_config: dict[str, Any]) -> torch.nn.Module:
    """The module of the file ``backbone.motion_i2v`` names, fitted to the UNet's config (checked key for key)."""
    return motion_i2v.load(value, adapter_config(unet_config))


def tiny_module(value: str) -> torch.nn.Module:
    """The tiny preset's module: ``tiny`` is the random one (seed 0), a path a file of the tiny model's size."""
    if value == TINY:
        return motion_i2v.tiny()
    return motion_i2v.load(value, motion_i2v.TINY_CONFIG)


def frame_limit(unet: Any) -> FrameLimit:
    """At most (motion_max_seq_length + 1) // 2 frames per call: the interleaved sequence has 2L − 1 positions."""
    table = int(unet.config.motion_max_seq_length)
    return FrameLimit((table + 1) // 2, f"Motion-I2V's interleaved sequence of 2L−1 positions in a table of {table}")


def wrap(denoiser: Denoiser, unet: Any, flow: FlowField, backends: tuple[str | None, str | None]) -> Denoiser:
    """The denoiser with Motion-I2V's attention installed around each call, driven by the plan's flow field [F, 2, H, W]."""
    context = MotionI2VContext(flow)
    context.attention_backend, context.splat_backend = backends
    return MotionI2VAttention(denoiser, unet, context)


def notes(config: Any, context: MotionContext, tiny: bool) -> list[str]:
    """What the manifest says: the module ran (from which file), and a size or length other than the one it was trained at."""
    said = [f"Motion-I2V's motion module ({config.motion_i2v}) ran with its motion-augmented attention on the plan's flow"]
    height, width, frames = TRAINED
    if not tiny and (context.height, context.width) != (height, width):
        said.append(f"Motion-I2V's module was trained at {height}×{width}; this run is {context.height}×{context.width}")
    if not tiny and context.num_frames != frames:
        said.append(f"Motion-I2V's module was trained on {frames} frames; this clip has {context.num_frames}")
    for note in said:
        log.info(note)
    return said
