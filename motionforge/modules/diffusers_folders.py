"""Plain diffusers model folders that ``motionforge weights check`` recognises: SVD's UNet and Stable Diffusion 1.5's UNet.

A folder is one of these when its ``config.json`` names the class (``_class_name``); its tensors are
read from ``diffusion_pytorch_model[.fp16].safetensors`` (or a sharded index, or the ``.bin``
pickle) and compared with the class built on the meta device from the released checkpoints' own
settings. AnimateDiff motion adapters are left out: their released versions differ in layout
(frames of the positional table, the mid block), so one expected layout would misreport the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from motionforge.core.errors import InputError
from motionforge.modules import checkpoints

WEIGHT_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.bin",
)


def folder_class(path: Path) -> str | None:
    """The ``_class_name`` of a diffusers model folder's config.json, or None when the path is no such folder."""
    config = path / "config.json"
    if not path.is_dir() or not config.is_file():
        return None
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{config} is not a readable diffusers config (JSON with _class_name): {exc}") from exc
    return value if isinstance(value, str) else None


def folder_shapes(path: Path) -> checkpoints.Shapes:
    """Every tensor's shape in a diffusers model folder: its one weights file, or the shards its index lists."""
    for name in WEIGHT_NAMES:
        if (path / name).is_file():
            return checkpoints.read_shapes(path / name, "file")
    for index in sorted(path.glob("diffusion_pytorch_model*.index.json")):
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise InputError(f"{index} is not a readable shard index (JSON with weight_map): {exc}") from exc
        shapes: checkpoints.Shapes = {}
        for shard in shards:
            if not (path / shard).is_file():
                raise InputError(f"{path} lacks {shard}, a shard its index lists; download the whole folder")
            shapes.update(checkpoints.read_shapes(path / shard, "file"))
        return shapes
    raise InputError(f"{path} has a config.json but no diffusion_pytorch_model weights; download the whole folder")


def _reader(class_name: str) -> Callable[[Path], checkpoints.Shapes | None]:
    """A kind's reader: the folder's shapes when its config names this class, else None."""

    def read(path: Path) -> checkpoints.Shapes | None:
        """The shapes of a diffusers folder of this class, or None for anything else."""
        return folder_shapes(path) if folder_class(path) == class_name else None

    return read


def svd_unet_shapes() -> checkpoints.Shapes:
    """SVD's UNet (img2vid, img2vid-xt and xt-1.1 share it: diffusers' defaults) built on the meta device."""
    from diffusers import UNetSpatioTemporalConditionModel

    return checkpoints.module_shapes(lambda: UNetSpatioTemporalConditionModel())


def sd15_unet_shapes() -> checkpoints.Shapes:
    """Stable Diffusion 1.5's UNet (diffusers' defaults with CLIP ViT-L's 768-wide text states) built on the meta device."""
    from diffusers import UNet2DConditionModel

    return checkpoints.module_shapes(lambda: UNet2DConditionModel(cross_attention_dim=768))


WEIGHT_KINDS = [
    checkpoints.WeightKind(
        name="svd_unet",
        what="the UNet of Stable Video Diffusion (a diffusers folder)",
        read=_reader("UNetSpatioTemporalConditionModel"),
        expected=svd_unet_shapes,
    ),
    checkpoints.WeightKind(
        name="sd15_unet",
        what="the UNet of Stable Diffusion 1.5 (a diffusers folder)",
        read=_reader("UNet2DConditionModel"),
        expected=sd15_unet_shapes,
    ),
]
