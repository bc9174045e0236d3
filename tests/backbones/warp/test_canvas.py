"""The two canvases draw the same frames: OpenCV on uint8 pictures (fast on a CPU) and the torch reference."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from motionforge import animate, compose_config
from motionforge.backbones.warp.canvas import _mirror
from motionforge.bench.cases import cases, overrides


@pytest.mark.parametrize("padding", ["reflect", "border", "zeros"])
def test_opencv_and_torch_canvases_draw_the_same_frames(tmp_path: Path, padding: str) -> None:
    case = next(c for c in cases(128) if c.name == "crossing")  # two brushed layers that cross, over a background
    path = tmp_path / "case.png"
    Image.fromarray(case.image).save(path)
    common = [*overrides(case, path), "num_frames=5", "output.save=false", "progress=false", f"backbone.padding={padding}"]
    camera = [
        "adapters=[trajectory,brush,camera]",
        "adapters.camera.pan=[2,1]",
        "adapters.camera.zoom=1.1",
    ]  # the background moves too
    fast = animate(compose_config([*common, *camera, "backbone.canvas=opencv"])).frames.astype(int)
    reference = animate(compose_config([*common, *camera, "backbone.canvas=torch"])).frames.astype(int)
    difference = np.abs(fast - reference)
    assert difference.max() <= 3 and difference.mean() < 0.3  # 8-bit rounding at each step against float throughout


def test_the_torch_canvas_mirrors_as_opencv_does() -> None:
    width = 7
    positions = torch.arange(-12.0, 19.0)
    mirrored = _mirror(positions, width).long().tolist()
    row = np.arange(width, dtype=np.float32)[None]  # a picture whose value is its column
    expected = [int(cv2.copyMakeBorder(row, 0, 0, 12, 12, cv2.BORDER_REFLECT_101)[0, i]) for i in range(len(positions))]
    assert mirrored == expected
