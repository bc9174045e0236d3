"""An IP-Adapter on the AnimateDiff UNet: the run's picture conditions every frame through its CLIP image embedding.

``backbone.ip_adapter`` names the adapter's weights file, as in h94/IP-Adapter's layout
(``models/ip-adapter_sd15.safetensors``, the CLIP image encoder it was trained with in
``models/image_encoder/`` beside it, or where ``backbone.ip_adapter_image_encoder`` says). The file is
read here under the loading policy (a local file, safetensors unless ``allow_pickle``), checked, and put
on the loaded motion UNet by diffusers' ``load_ip_adapter`` through a throwaway AnimateDiffPipeline that
holds the UNet and the image encoder: the UNet's cross-attention layers get IP-Adapter processors (the
motion modules keep theirs) and its ``encoder_hid_proj`` the image projection. The picture is encoded as
AnimateDiffPipeline.encode_image encodes a PIL image: CLIP's image processor, then the encoder's image
embedding, or its penultimate hidden states for adapters whose projection reads them ("plus", "full");
the negative under classifier-free guidance is zeros, or the zero image's hidden states.
``ip_adapter_scale`` is set on each run with ``set_ip_adapter_scale`` (the UNet is shared through the cache).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange, repeat
from PIL import Image

from motionforge.backbones.diffusion import loading
from motionforge.core.errors import InputError

KEY = "backbone.ip_adapter"
ENCODER_KEY = "backbone.ip_adapter_image_encoder"
WHAT = "an IP-Adapter for SD1.5"
ENCODER_WHAT = "the CLIP image encoder the IP-Adapter was trained with"
EXAMPLE = "models/ip-adapter_sd15.safetensors"
ADVICE = "use an IP-Adapter made for SD1.5, e.g. ip-adapter_sd15.safetensors"


@dataclass
class IPAdapterParts:
    """The picture's side of an IP-Adapter: the CLIP image encoder and its image processor."""

    image_encoder: Any  # CLIPVisionModelWithProjection
    feature_extractor: Any  # CLIP image processor


@dataclass
class ImageEmbeds:
    """One run's picture embeddings for the UNet's ``added_cond_kwargs``, and the negative ones under guidance."""

    positive: torch.Tensor  # [1, 1, D] image embedding, or [1, 1, T, D] hidden states ("plus", "full")
    negative: torch.Tensor | None  # the same shape: zeros, or the zero image's hidden states; None without guidance

    def batched(self, batch: int) -> list[torch.Tensor]:
        """The embeddings for a UNet batch of `batch` latents, negatives first: [[G·B, 1, …]] (the UNet repeats them per frame)."""
        parts = [self.positive] if self.negative is None else [self.negative, self.positive]
        return [torch.cat([repeat(part, "1 ... -> b ...", b=batch) for part in parts])]


def paths(weights: str, image_encoder: str | None, allow_pickle: bool) -> tuple[Path, Path]:
    """The IP-Adapter's weights file (safetensors unless pickle is allowed) and its image encoder folder (by default image_encoder/ beside the file)."""
    file = loading.local_file(weights, KEY, WHAT, EXAMPLE)
    loading.weights_file(file, allow_pickle, KEY)
    if image_encoder is not None:
        return file, loading.local_folder(image_encoder, ENCODER_KEY, ENCODER_WHAT)
    folder = file.parent / "image_encoder"
    if not folder.is_dir():
        raise InputError(
            f"{KEY}={weights} has no image_encoder/ folder beside it; pass the folder of {ENCODER_WHAT} "
            f"({ENCODER_KEY}=/path/to/IP-Adapter/models/image_encoder)"
        )
    return file, folder


def read_weights(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The IP-Adapter file's tensors (a file paths() accepted) as load_ip_adapter takes them, {"image_proj": {…}, "ip_adapter": {…}}, checked."""
    import safetensors.torch
    from diffusers.models.model_loading_utils import load_state_dict

    try:
        if path.name.endswith(loading.SAFE_SUFFIXES):
            tensors = safetensors.torch.load_file(path)
        else:
            tensors = load_state_dict(str(path))  # torch.load with weights_only=True, as load_ip_adapter reads a .bin
    except (OSError, ValueError, RuntimeError, safetensors.SafetensorError, pickle.UnpicklingError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputError(f"{KEY}: could not read {path} ({reason})") from exc
    state = split(tensors)
    check_kind(state, path)
    return state


def split(tensors: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """Group an IP-Adapter's tensors as load_ip_adapter does: "image_proj.x" → state["image_proj"]["x"] (nested files as they are)."""
    state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for name, value in tensors.items():
        group, _, rest = name.partition(".")
        if name in state and isinstance(value, dict):
            state[name].update(value)
        elif group in state and rest:
            state[group][rest] = value
    return state


def check_kind(state: dict[str, dict[str, torch.Tensor]], path: Path) -> None:
    """The file must be an IP-Adapter whose projection reads a CLIP image embedding (plain, plus or full); one sentence when not."""
    image_proj = state["image_proj"]
    if not image_proj or not state["ip_adapter"]:
        raise InputError(
            f"{KEY}={path} is not an IP-Adapter weights file (it has no image_proj.* and ip_adapter.* tensors); {ADVICE}"
        )
    if not any(name in image_proj for name in ("proj.weight", "proj.3.weight", "latents")):
        raise InputError(
            f"{KEY}={path} has no image projection that reads a CLIP image embedding (FaceID adapters read face embeddings, "
            "which this backbone does not compute); use a CLIP-image IP-Adapter such as ip-adapter_sd15.safetensors"
        )


def cross_attention_layers(unet: Any) -> list[str]:
    """The UNet's cross-attention layers that get the adapter's image keys, in load_ip_adapter's order (index i reads key 2·i + 1)."""
    keys = [key for key in unet.attn_processors if key.endswith("attn2.processor") and "motion_modules" not in key]
    return [key.removesuffix(".processor") for key in keys]


def check_fit(state: dict[str, dict[str, torch.Tensor]], unet: Any, path: Path) -> None:
    """The adapter's image keys must fit the UNet's cross-attention layers, in number and shape (an SDXL adapter does not)."""
    keys, width = state["ip_adapter"], unet.config.cross_attention_dim
    layers = cross_attention_layers(unet)
    count = sum(name.endswith(".to_k_ip.weight") for name in keys)
    first = keys.get("1.to_k_ip.weight")  # [C, D] the first layer's image keys
    problem = None
    if first is not None and first.shape[-1] != width:
        problem = f"its image keys take {first.shape[-1]} channels and the UNet's cross-attention takes {width}"
    elif count != len(layers):
        problem = f"it has image keys for {count} cross-attention layers and the UNet has {len(layers)}"
    for index, layer in enumerate(layers):
        wanted = [unet.get_submodule(layer).to_k.out_features, width]  # [C, D]
        for name in (f"{2 * index + 1}.to_k_ip.weight", f"{2 * index + 1}.to_v_ip.weight"):
            shape = list(keys[name].shape) if name in keys else None
            if problem is None and shape != wanted:
                problem = f"its {name} is {shape or 'missing'} where the UNet's {layer} takes {wanted}"
    if problem:
        raise InputError(f"{KEY}={path} does not fit the UNet: {problem}; {ADVICE}")


def load_encoder(folder: Path, allow_pickle: bool, dtype: torch.dtype, device: torch.device) -> IPAdapterParts:
    """The CLIP image encoder from its local folder (safetensors unless allowed otherwise) and its image processor."""
    from transformers import CLIPVisionModelWithProjection

    config = loading.read_config(folder, "config.json", ENCODER_KEY)
    if config.get("model_type") not in ("clip_vision_model", "clip"):
        raise InputError(
            f"{ENCODER_KEY}={folder} holds a {config.get('model_type', 'model of unknown type')}, not a CLIP vision model; "
            f"pass the folder of {ENCODER_WHAT}"
        )
    options = loading.weight_options(folder, allow_pickle, ENCODER_KEY)
    load = CLIPVisionModelWithProjection.from_pretrained
    encoder = loading.load_component(load, folder, None, ENCODER_KEY, "the CLIP image encoder", dtype=dtype, **options)
    return IPAdapterParts(loading.place(encoder, device, dtype), image_processor(folder, encoder.config.image_size))


def image_processor(folder: Path, size: int) -> Any:
    """The folder's CLIP image processor, or the one load_ip_adapter builds without one (shortest edge and centre crop at size)."""
    if (folder / "preprocessor_config.json").is_file():
        load = loading.clip_image_processor_class().from_pretrained
        return loading.load_component(load, folder, None, ENCODER_KEY, "the image processor", local_files_only=True)
    return loading.clip_image_processor_class()(size={"shortest_edge": size}, crop_size=size)


def load(
    unet: Any, state: dict[str, dict[str, torch.Tensor]], weights: Path, folder: Path, allow_pickle: bool, dtype: torch.dtype
) -> IPAdapterParts:
    """Load the adapter's image encoder beside the UNet (same device and dtype) and put the read adapter on the UNet."""
    parts = load_encoder(folder, allow_pickle, dtype, unet.device)
    install(unet, state, parts, weights, folder)
    return parts


def pipeline(unet: Any, parts: IPAdapterParts) -> Any:
    """A throwaway AnimateDiffPipeline holding only the UNet and the image encoder: what IPAdapterMixin's methods use."""
    from diffusers import AnimateDiffPipeline

    return AnimateDiffPipeline(
        vae=None, text_encoder=None, tokenizer=None, unet=unet, motion_adapter=None, scheduler=None,
        feature_extractor=parts.feature_extractor, image_encoder=parts.image_encoder,
    )  # fmt: skip


def install(unet: Any, state: dict[str, dict[str, torch.Tensor]], parts: IPAdapterParts, weights: Any, folder: Any) -> None:
    """Put the adapter on the motion UNet with diffusers' load_ip_adapter, then check that the image encoder fits its projection."""
    check_fit(state, unet, weights)
    try:
        with loading.quiet("diffusers.models.modeling_utils"):  # it casts the UNet to its own dtype at the end, and says so
            pipeline(unet, parts).load_ip_adapter(state, subfolder=None, weight_name=None, low_cpu_mem_usage=False)
    except (KeyError, RuntimeError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise InputError(f"{KEY}={weights} does not fit the UNet ({reason}); {ADVICE}") from exc
    blank = torch.zeros(3, 64, 64)  # [3, H, W]: any picture shows whether the shapes fit
    try:
        with torch.no_grad():
            unet.encoder_hid_proj(encode(parts, blank, reads_hidden_states(unet), guidance=False).batched(1))
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputError(
            f"{ENCODER_KEY}: the image encoder at {folder} does not fit the IP-Adapter at {weights} ({reason}); "
            f"pass the folder of {ENCODER_WHAT}"
        ) from exc


def set_scale(unet: Any, parts: IPAdapterParts, scale: float) -> None:
    """Weigh the adapter's image tokens beside the prompt's at scale, with diffusers' set_ip_adapter_scale (0: off)."""
    pipeline(unet, parts).set_ip_adapter_scale(scale)


def reads_hidden_states(unet: Any) -> bool:
    """Whether the UNet's IP-Adapter projection reads the encoder's hidden states ("plus", "full") rather than its image embedding."""
    from diffusers.models.embeddings import ImageProjection

    (layer,) = unet.encoder_hid_proj.image_projection_layers
    return not isinstance(layer, ImageProjection)


def to_pil(image: torch.Tensor) -> Image.Image:
    """The picture [3, H, W] in [0, 1] as the 8-bit PIL image it was read from."""
    pixels = rearrange(image.detach().float().cpu(), "c h w -> h w c").mul(255).round().clamp(0, 255)  # [H, W, 3]
    return Image.fromarray(pixels.numpy().astype(np.uint8))


def encode(parts: IPAdapterParts, image: torch.Tensor, hidden_states: bool, guidance: bool) -> ImageEmbeds:
    """The picture [3, H, W] in [0, 1] as AnimateDiffPipeline.prepare_ip_adapter_image_embeds encodes it (a PIL image, one adapter)."""
    encoder = parts.image_encoder
    pixels = parts.feature_extractor(to_pil(image), return_tensors="pt").pixel_values  # [1, 3, 224, 224] normalised for CLIP
    pixels = pixels.to(device=encoder.device, dtype=encoder.dtype)
    if not hidden_states:
        positive = encoder(pixels).image_embeds  # [1, D]
        negative = torch.zeros_like(positive)
    else:
        positive = encoder(pixels, output_hidden_states=True).hidden_states[-2]  # [1, T, D]
        negative = encoder(torch.zeros_like(pixels), output_hidden_states=True).hidden_states[-2] if guidance else None
    return ImageEmbeds(positive[None], negative[None] if guidance else None)  # [1, 1, D] or [1, 1, T, D]
