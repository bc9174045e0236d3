"""Tiny diffusion checkpoints saved once per session to temporary folders, as a user's local diffusers folders would be."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motionforge.backbones.diffusion import loading
from motionforge.backbones.diffusion.tiny import save_tiny_motion_adapter, save_tiny_sd, save_tiny_svd

STEERING_DEFAULTS = {
    "latent_init": False,
    "init_strength": 0.7,
    "region": True,
    "region_strength": 1.0,
    "region_feather": 1.0,
    "region_start": 0.0,
    "region_end": 1.0,
    "warped_attention": False,
    "warped_attention_strength": 1.0,
    "warped_attention_start": 0.0,
    "warped_attention_end": 1.0,
    "dual_clock": False,
    "dual_clock_weak": 0.06,
    "dual_clock_strong": 0.14,
}


@pytest.fixture(scope="session")
def svd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Stable Video Diffusion pipeline saved in diffusers format (safetensors)."""
    return save_tiny_svd(tmp_path_factory.mktemp("svd") / "svd")


@pytest.fixture(scope="session")
def sd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD1.5-layout folder (StableDiffusionPipeline, DDIM scheduler, no safety checker) in diffusers format."""
    return save_tiny_sd(tmp_path_factory.mktemp("sd") / "sd15")


@pytest.fixture(scope="session")
def adapter_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny AnimateDiff motion adapter that fits the tiny SD1.5 UNet, in diffusers format."""
    return save_tiny_motion_adapter(tmp_path_factory.mktemp("adapter") / "motion_adapter")


@pytest.fixture(scope="session")
def ip_adapter_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny IP-Adapter for the tiny SD1.5 UNet in h94/IP-Adapter's layout: models/ip-adapter_sd15.safetensors, models/image_encoder/."""
    from safetensors.torch import save_file

    from motionforge.backbones.diffusion.tiny import tiny_image_processor, tiny_ip_adapter, tiny_ip_adapter_encoder, tiny_sd_components

    models = tmp_path_factory.mktemp("ip_adapter") / "IP-Adapter" / "models"
    models.mkdir(parents=True)
    save_file(tiny_ip_adapter(tiny_sd_components()["unet"]), models / "ip-adapter_sd15.safetensors")
    tiny_ip_adapter_encoder().save_pretrained(models / "image_encoder")
    tiny_image_processor().save_pretrained(models / "image_encoder")
    return models / "ip-adapter_sd15.safetensors"


@pytest.fixture(scope="session")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64×64 PNG picture (a gradient with a square), the working size of the tiny models."""
    ys, xs = np.mgrid[0:64, 0:64]
    image = np.stack([xs * 4, ys * 4, np.full_like(xs, 120)], axis=-1).astype(np.uint8)
    image[20:36, 24:40] = (250, 240, 30)
    path = tmp_path_factory.mktemp("picture") / "picture.png"
    Image.fromarray(image).save(path)
    return path


@pytest.fixture(autouse=True)
def _fresh_model_cache() -> None:
    """Each test loads its models afresh (a test may count loads, or break a folder another test loaded)."""
    loading.clear_cache()


def read_png_frames(folder: Path) -> np.ndarray:
    """The PNG frames a run wrote (output.frames=true), uint8 [F, H, W, 3]."""
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in sorted(folder.glob("*.png"))])


@pytest.fixture(scope="session")
def wan_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny Wan pipeline folder per layout (2.1, 2.2, ti2v) in diffusers format (safetensors)."""
    from motionforge.backbones.diffusion.tiny_wan import save_tiny_wan

    root = tmp_path_factory.mktemp("wan")
    return {layout: save_tiny_wan(root / layout, layout) for layout in ("2.1", "2.2", "ti2v")}
