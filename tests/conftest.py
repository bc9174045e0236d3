"""Shared fixtures: tests never load installed third-party plugins, and never write outside tmp_path."""

from __future__ import annotations

import os

# Before motionforge loads any plugin: no entry points unless a test asks (subprocesses inherit it).
os.environ["MOTIONFORGE_LOAD_PLUGINS"] = ""
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Tests never reach the network: weights come from tiny models saved to temporary folders.
os.environ["HF_HUB_OFFLINE"] = "1"
# Triton kernels run on CPU tensors through Triton's interpreter; it must be on before any kernel is defined.
os.environ["TRITON_INTERPRET"] = "1"

import dataclasses  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterator  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from motionforge import MotionHint, hookimpl  # noqa: E402
from motionforge.core.registry import pm  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own empty folder, so default output folders land there."""
    monkeypatch.chdir(tmp_path)


def textured_square_image(size: int = 128, square: int = 24, centre: tuple[int, int] = (40, 60)) -> np.ndarray:
    """A grey picture with a bright textured square: uint8 [size, size, 3]; centre is (x, y)."""
    image = np.full((size, size, 3), 90, dtype=np.uint8)
    rng = np.random.default_rng(0)
    x0, y0 = centre[0] - square // 2, centre[1] - square // 2
    texture = rng.integers(0, 120, size=(square, square), dtype=np.uint8)
    image[y0 : y0 + square, x0 : x0 + square, 0] = 255
    image[y0 : y0 + square, x0 : x0 + square, 1] = texture
    image[y0 : y0 + square, x0 : x0 + square, 2] = texture // 2
    return image


def rastered(hint: MotionHint, context) -> MotionHint:
    """A hint whose sparse samples (``points``) are also given as their flow map and mask, as a dense hint lays them out."""
    flow, mask = hint.points.raster(context.height, context.width)
    return dataclasses.replace(hint, flow=flow, mask=mask)


def red_centroid(frame: np.ndarray) -> np.ndarray:
    """(x, y) centroid of the bright-red square of :func:`textured_square_image` in a uint8 frame [H, W, 3]."""
    weight = np.clip((frame[..., 0].astype(float) - 90) / (255 - 90), 0, 1)
    ys, xs = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


@pytest.fixture
def small_image(tmp_path: Path) -> Path:
    """A 64×48 PNG picture (a smooth gradient with a square) on disk."""
    ys, xs = np.mgrid[0:48, 0:64]
    image = np.stack([xs * 4, ys * 5, np.full_like(xs, 120)], axis=-1).astype(np.uint8)
    image[10:22, 20:32] = (250, 250, 40)
    path = tmp_path / "picture.png"
    Image.fromarray(image).save(path)
    return path


@dataclass
class WiggleConfig:
    """Parameters of the test adapter: a uniform horizontal drift."""

    amplitude: float = 2.0


class WiggleAdapter:
    """A test adapter: every pixel drifts right by amplitude × i/(F-1) pixels."""

    name = "wiggle"
    Config = WiggleConfig

    def build(self, config: WiggleConfig, context) -> MotionHint:
        """A dense hint of a uniform drift."""
        flow = torch.zeros(context.num_frames, 2, context.height, context.width)
        flow[:, 0] = torch.linspace(0, config.amplitude, context.num_frames)[:, None, None]
        return MotionHint(flow=flow)


class WigglePlugin:
    """A plugin registered for one test, the way a third-party package's module would be."""

    __name__ = "WigglePlugin"

    @hookimpl
    def register_adapters(self, register) -> None:
        """Register the wiggle adapter."""
        register(WiggleAdapter)


@pytest.fixture
def wiggle_plugin() -> Iterator[WigglePlugin]:
    """The wiggle plugin, registered for the duration of one test."""
    plugin = WigglePlugin()
    pm.register(plugin, name="undo-wiggle")
    try:
        yield plugin
    finally:
        pm.unregister(name="undo-wiggle")
