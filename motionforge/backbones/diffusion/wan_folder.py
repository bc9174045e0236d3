"""The Wan 2.x diffusers folders users have, told apart and checked before any weight loads, and their loading.

- Wan2.1-I2V-14B-480P/720P-Diffusers: one transformer whose input is noise, mask and picture
  (2·z + 4 channels) and a CLIP image encoder (the transformer's ``image_dim`` is set).
- Wan2.2-I2V-A14B-Diffusers: two experts, ``transformer`` for timesteps ≥ boundary_ratio·1000 and
  ``transformer_2`` below, no image encoder.
- Wan2.2-TI2V-5B-Diffusers: ``expand_timesteps`` (the picture's latent is latent frame 0, whose
  tokens are told timestep 0), z input channels, a VAE that patchifies (16× in space).

A text-to-video folder (z input channels without expand_timesteps) is refused. Without accelerate,
diffusers cannot load a model that keeps modules in float32 (the Wan transformer's norms and time
embedding); then the transformer loads in float32 and is cast here, those modules kept in float32.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from motionforge.backbones.diffusion import loading
from motionforge.core.errors import InputError

KEY = "backbone.pretrained"
PIPELINES = ("WanImageToVideoPipeline", "WanPipeline")
TRANSFORMER = "WanTransformer3DModel"
ADVICE = "pass a Wan2.1-I2V, Wan2.2-I2V-A14B or Wan2.2-TI2V-5B folder in diffusers format (the -Diffusers repositories)"


@dataclass(frozen=True)
class WanLayout:
    """What a Wan folder holds: which of the three layouts, its experts' boundary, its components."""

    kind: str  # "2.1" (CLIP image encoder), "2.2" (two experts) or "ti2v" (first-frame latent, expanded timesteps)
    boundary_ratio: float | None  # the two experts' switch, as a fraction of the training timesteps (None: one transformer)
    expand_timesteps: bool  # TI2V: the picture's latent is frame 0, told timestep 0
    image_encoder: bool  # Wan 2.1: the transformer reads CLIP image features

    @property
    def components(self) -> dict[str, str]:
        """Each component subfolder the layout needs, and its config file."""
        needed = {"transformer": "config.json", "vae": "config.json", "text_encoder": "config.json"}
        needed |= {"tokenizer": "tokenizer_config.json", "scheduler": "scheduler_config.json"}
        if self.boundary_ratio is not None:
            needed["transformer_2"] = "config.json"
        if self.image_encoder:
            needed |= {"image_encoder": "config.json", "image_processor": "preprocessor_config.json"}
        return needed


def read_layout(folder: Path) -> WanLayout:
    """The layout of a Wan folder from its model_index.json and configs; one sentence when it is not an image-to-video Wan."""
    index = loading.read_config(folder, "model_index.json", KEY)
    found = index.get("_class_name", "an unknown pipeline")
    transformer = folder / "transformer" / "config.json"
    config = loading.read_config(folder / "transformer", "config.json", KEY) if transformer.is_file() else {}
    if found not in PIPELINES or config.get("_class_name") != TRANSFORMER:
        raise InputError(
            f"{KEY}={folder} holds a {found} (its transformer is {config.get('_class_name', 'missing')}), not a Wan "
            f"image-to-video checkpoint; {ADVICE}, or use backbone=svd or backbone=animatediff for those folders"
        )
    vae = loading.read_config(folder / "vae", "config.json", KEY) if (folder / "vae" / "config.json").is_file() else {}
    latent, channels = int(vae.get("z_dim", 16)), int(config.get("in_channels", 0))
    expand = bool(index.get("expand_timesteps", False))
    if not expand and channels != 2 * latent + 4:
        raise InputError(
            f"{KEY}={folder} is a Wan text-to-video checkpoint (its transformer takes {channels} channels, no picture); {ADVICE}"
        )
    boundary = index.get("boundary_ratio")
    two = isinstance(index.get("transformer_2"), list) and index["transformer_2"][0] is not None
    if two and boundary is None:
        raise InputError(
            f"{KEY}={folder} has a transformer_2/ but no boundary_ratio in model_index.json; is the folder complete?"
        )
    kind = "ti2v" if expand else ("2.2" if boundary is not None else "2.1")
    layout = WanLayout(kind, None if boundary is None else float(boundary), expand, config.get("image_dim") is not None)
    loading.require_components(folder, layout.components, KEY, "a Wan image-to-video checkpoint")
    return layout


def keeps_float32(model: torch.nn.Module) -> list[str]:
    """The modules of a model that diffusers keeps in float32 whatever the dtype (``_keep_in_fp32_modules``)."""
    names = getattr(model, "_keep_in_fp32_modules", None) or []
    return [name for name, _ in model.named_modules() if any(part in names for part in name.split("."))]


def cast(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """Move a model to device in dtype, its float32-kept modules (if any) left in float32, in eval mode."""
    kept = keeps_float32(model)
    model = torch.nn.Module.to(model.to(device), dtype=dtype)
    for name in kept:
        model.get_submodule(name).to(dtype=torch.float32)
    return model.eval()


def load_transformer(folder: Path, name: str, allow_pickle: bool, dtype: torch.dtype, device: torch.device) -> Any:
    """One Wan transformer of the folder; without accelerate loaded in float32 with diffusers' float32 list set aside, then cast."""
    from diffusers import WanTransformer3DModel

    options = loading.weight_options(folder / name, allow_pickle, KEY)
    what = "the high-noise expert" if name == "transformer_2" else "the transformer"
    what = "the low-noise expert (transformer_2)" if name == "transformer_2" else what
    if importlib.util.find_spec("accelerate") is not None:
        model = loading.load_component(WanTransformer3DModel.from_pretrained, folder, name, KEY, what, dtype=dtype, **options)
        return loading.place(model, device, dtype)
    with without_float32_list(WanTransformer3DModel):
        model = loading.load_component(
            WanTransformer3DModel.from_pretrained, folder, name, KEY, what, dtype=torch.float32, **options
        )
    return cast(model, device, dtype)


@contextmanager
def without_float32_list(cls: type) -> Iterator[None]:
    """Set a diffusers model class's ``_keep_in_fp32_modules`` aside for the duration (diffusers refuses it without accelerate)."""
    saved = cls.__dict__.get("_keep_in_fp32_modules")
    cls._keep_in_fp32_modules = None
    try:
        yield
    finally:
        cls._keep_in_fp32_modules = saved


def loaders() -> dict[str, loading.Part]:
    """The components of a Wan folder besides its transformers, each with its loader."""
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, CLIPVisionModel, UMT5EncoderModel

    return {
        "vae": loading.Part(AutoencoderKLWan.from_pretrained, "the VAE"),
        "text_encoder": loading.Part(UMT5EncoderModel.from_pretrained, "the UMT5 text encoder"),
        "tokenizer": loading.Part(AutoTokenizer.from_pretrained, "the tokenizer", False),
        "image_encoder": loading.Part(CLIPVisionModel.from_pretrained, "the CLIP image encoder"),
        "image_processor": loading.Part(loading.clip_image_processor_class().from_pretrained, "the image processor", False),
    }


def load_folder(
    folder: Path, layout: WanLayout, allow_pickle: bool, dtype: torch.dtype, device: torch.device
) -> tuple[dict[str, Any], Callable[[str], Any]]:
    """The loaded components of a checked Wan folder (the ones its layout has), and a loader of its transformers by name."""
    parts = {name: part for name, part in loaders().items() if name in layout.components}
    loaded = loading.load_parts(folder, parts, allow_pickle, dtype, device, KEY)
    return loaded, lambda name: load_transformer(folder, name, allow_pickle, dtype, device)


class _FtfyAbsent:
    """What the pipeline's prompt cleaning calls when ftfy is not installed: no fixes (what the wan backbone does then)."""

    @staticmethod
    def fix_text(text: str) -> str:
        """The text as it is."""
        return text


def diffusers_pipeline(folder: Path, dtype: torch.dtype = torch.float32) -> Any:
    """WanImageToVideoPipeline from a Wan folder, loaded as this environment allows (for parity tests and the overhead bench).

    Without accelerate the transformers load with diffusers' float32 list set aside (as :func:`load_transformer`);
    without ftfy the pipeline's prompt cleaning (which calls it unconditionally) skips its fixes, as the backbone's does.
    """
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel
    from diffusers.pipelines.wan import pipeline_wan_i2v

    if importlib.util.find_spec("ftfy") is None and not hasattr(pipeline_wan_i2v, "ftfy"):
        pipeline_wan_i2v.ftfy = _FtfyAbsent
    if importlib.util.find_spec("accelerate") is not None:
        return WanImageToVideoPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True)
    with without_float32_list(WanTransformer3DModel):
        pipe = WanImageToVideoPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    for name in ("transformer", "transformer_2"):
        if getattr(pipe, name, None) is not None:
            setattr(pipe, name, cast(getattr(pipe, name), torch.device("cpu"), dtype))
    return pipe
