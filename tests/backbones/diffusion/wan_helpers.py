"""WanImageToVideoPipeline's frames for a tiny Wan folder (the folders are conftest's ``wan_folders``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from motionforge.backbones.diffusion.wan_folder import without_float32_list

QUIET = ["adapters=[]", "height=64", "width=64", "progress=false"]


class _NoFtfy:
    """Stands in for ftfy where it is not installed: the pipeline's prompt cleaning calls it unconditionally."""

    @staticmethod
    def fix_text(text: str) -> str:
        return text


def pipeline_frames(folder: Path, picture: Path, frames: int, steps: int, seed: int, monkeypatch: pytest.MonkeyPatch, **kwargs) -> np.ndarray:  # fmt: skip
    """WanImageToVideoPipeline's frames for a picture, loaded through its own from_pretrained: uint8 [F, H, W, 3]."""
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel
    from diffusers.pipelines.wan import pipeline_wan_i2v

    if importlib.util.find_spec("ftfy") is None:
        monkeypatch.setattr(pipeline_wan_i2v, "ftfy", _NoFtfy, raising=False)
    with without_float32_list(WanTransformer3DModel):  # diffusers needs accelerate to load it otherwise
        pipe = WanImageToVideoPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        image=Image.open(picture).convert("RGB"), height=64, width=64, num_frames=frames, num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed), output_type="np", **kwargs,
    )  # fmt: skip
    return (np.asarray(out.frames[0]) * 255).round().astype(np.uint8)
