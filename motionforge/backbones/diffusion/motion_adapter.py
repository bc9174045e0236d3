"""An AnimateDiff motion adapter on an SD1.5 UNet: its folder checked against the UNet's, loaded, and inserted.

The adapter's temporal modules go into the UNet with diffusers' ``UNetMotionModel.from_unet2d``, as
AnimateDiffPipeline builds it. Before anything loads, the adapter's config must fit the UNet's
(block channels, layers per block), hold AnimateDiff's 16 frames, and not be a PIA adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from motionforge.backbones.diffusion import loading
from motionforge.core.errors import InputError

KEY = "backbone.motion_adapter"
FRAMES = 16  # AnimateDiff's motion modules are trained on 16 frames


def check_fit(adapter_folder: Path, unet: dict[str, Any], folder: Path) -> None:
    """The adapter folder must hold a MotionAdapter whose blocks match the UNet config's; one sentence when not."""
    adapter = loading.read_config(adapter_folder, "config.json", KEY)
    if adapter.get("_class_name") != "MotionAdapter":
        kind = adapter.get("_class_name", "model of unknown type")
        raise InputError(f"{KEY}={adapter_folder} holds a {kind}, not a MotionAdapter")
    blocks = len(unet.get("down_block_types", ()))

    def per_block(value: Any) -> list[int]:
        return [value] * blocks if isinstance(value, int) else list(value or ())

    theirs, ours = list(adapter.get("block_out_channels", ())), list(unet.get("block_out_channels", ()))
    layers, adapter_layers = per_block(unet.get("layers_per_block", 2)), per_block(adapter.get("motion_layers_per_block", 2))
    problem = None
    if theirs != ours:
        problem = f"its block channels are {theirs} and the UNet's are {ours}"
    elif layers != adapter_layers:
        problem = f"it has {adapter_layers} layers per block and the UNet has {layers}"
    elif adapter.get("conv_in_channels"):
        problem = "it is a PIA adapter with its own input layer, which this backbone does not support"
    elif adapter.get("motion_max_seq_length", 32) < FRAMES:
        problem = f"its motion modules hold {adapter.get('motion_max_seq_length')} frames, fewer than AnimateDiff's {FRAMES}"
    if problem:
        raise InputError(
            f"the motion adapter at {adapter_folder} does not fit the UNet at {folder}: {problem}; "
            "use an AnimateDiff adapter made for SD1.5"
        )


def load(adapter_folder: Path, allow_pickle: bool, dtype: torch.dtype) -> Any:
    """The MotionAdapter from its local folder (safetensors unless pickle is allowed), in dtype, on the CPU."""
    from diffusers import MotionAdapter

    options = {"dtype": dtype, **loading.weight_options(adapter_folder, allow_pickle, KEY)}
    return loading.load_component(MotionAdapter.from_pretrained, adapter_folder, None, KEY, "the motion adapter", **options)


def motion_unet(unet2d: Any, adapter: Any, folder: Any = None, adapter_folder: Any = None) -> Any:
    """SD1.5's UNet with the adapter's motion modules inserted, as AnimateDiffPipeline builds it."""
    from diffusers import UNetMotionModel

    try:
        with loading.quiet("diffusers.models.modeling_utils"):  # it casts its own result to the UNet's dtype, and says so
            return UNetMotionModel.from_unet2d(unet2d, adapter)
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"the motion adapter at {adapter_folder} does not fit the UNet at {folder} ({str(exc)[:200]})") from exc
