"""WanImageToVideoPipeline's frames for a tiny Wan folder (the folders are conftest's ``wan_folders``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from motionforge.backbones.diffusion.wan_folder import diffusers_pipeline

QUIET = ["adapters=[]", "height=64", "width=64", "progress=false"]


def pipeline_frames(folder: Path, picture: Path, frames: int, steps: int, seed: int, **kwargs) -> np.ndarray:  # fmt: skip
    """WanImageToVideoPipeline's frames for a picture, loaded through its own from_pretrained: uint8 [F, H, W, 3]."""
    pipe = diffusers_pipeline(folder)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        image=Image.open(picture).convert("RGB"), height=64, width=64, num_frames=frames, num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed), output_type="np", **kwargs,
    )  # fmt: skip
    return (np.asarray(out.frames[0]) * 255).round().astype(np.uint8)
