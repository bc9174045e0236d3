"""Wan 2.x: the same video as WanImageToVideoPipeline for the same folder, seed and steps, in each of the three layouts."""

from __future__ import annotations

import numpy as np
import pytest

from motionforge import animate, compose_config
from tests.backbones.diffusion.conftest import read_png_frames
from tests.backbones.diffusion.wan_helpers import QUIET, pipeline_frames

PARITY = {
    "Wan 2.1 (CLIP image features), guided": ("2.1", {"prompt": "a red kite", "negative_prompt": "blur", "guidance_scale": 4.0}),
    "Wan 2.1 unguided": ("2.1", {"prompt": "a kite", "guidance_scale": 1.0}),
    "Wan 2.2 two experts, two guidance scales": ("2.2", {"prompt": "a kite", "guidance_scale": 3.0, "guidance_scale_2": 2.0}),
    "Wan 2.2 TI2V (first-frame latent)": ("ti2v", {"prompt": "a kite", "guidance_scale": 3.0}),
}


@pytest.mark.parametrize("layout, params", PARITY.values(), ids=PARITY.keys())
def test_the_frames_are_the_pipelines_frames(wan_folders, picture, tmp_path, monkeypatch, layout, params) -> None:
    expected = pipeline_frames(wan_folders[layout], picture, 9, steps=4, seed=5, monkeypatch=monkeypatch, **params)
    prompt = params.pop("prompt")
    overrides = [f"backbone.{key}={value}" for key, value in params.items()]
    run = ["backbone=wan", f"backbone.pretrained={wan_folders[layout]}", f"image={picture}", "num_frames=9", "steps=4", "seed=5"]
    run += [f"prompt={prompt}", "output.dir=run", "output.frames=true", "output.mp4=false", "output.gif=false"]
    animate(compose_config([*run, *overrides, *QUIET]))
    got = read_png_frames(tmp_path / "run" / "frames")
    assert got.shape == expected.shape == (9, 64, 64, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # 1/255: float rounding only
