"""MOFA-Video's adapters for SVD: a ControlNet-like copy of SVD's encoder fed frame 0's features warped along a flow.

Both released adapters (``FlowControlNet`` of MOFA-Video-Traj and of MOFA-Video-Keypoint) are built
here by :class:`MofaAdapter` from a :class:`MofaSize`, with diffusers' own SVD blocks so that the
key names are the released files' (``conv_in``, ``time_embedding``, ``add_embedding``,
``down_blocks``, ``mid_block``; no up blocks). What the adapter does with one window:

1. ``conv_in`` of the UNet's input (noisy latents and image latent) and SVD's time embeddings.
2. The picture (in [−1, 1]) is embedded to 1/8 size (:class:`ConditioningEmbedding`, zero
   ``conv_out``) and encoded deeper (:class:`FirstFrameEncoder`): one feature per scale the encoder
   visits (8, 16, 32, 64 at full size).
3. The flow f_{0→t} of each frame (pixels) is resized to each feature's size by nearest sampling
   and divided by the scale, and the frame-0 feature is forward-splatted along it (average
   splatting, :func:`motionforge.kernels.splat`); frame 0 itself keeps the unwarped feature. The
   keypoint adapter mends each warped feature with :class:`~motionforge.modules.matting.ForegroundMatting`
   and a zero 1×1 ``zero_outs`` convolution, and adds its landmark image embedding at 1/8 and after
   the first down block.
4. The warped features are added to the hidden state after ``conv_in``, after each down block
   (the deepest one again after the last block, and before the mid block).
5. Zero 1×1 convolutions turn the encoder's skips and the mid block's output into the residuals
   for SVD's UNet (:mod:`motionforge.modules.mofa_unet`), times the control scale.

MOFA's constructor always builds its parent with the parent's defaults, so of a released
``config.json`` only ``block_out_channels[0]``, ``conditioning_channels`` and
``conditioning_embedding_out_channels`` change the module; the attention heads are always
(5, 10, 10, 20), whatever the file says (SVD's UNet has (5, 10, 20, 20)).
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from motionforge.core.errors import InputError
from motionforge.kernels import splat
from motionforge.modules import checkpoints
from motionforge.modules.checkpoints import Shapes, WeightKind
from motionforge.modules.matting import ForegroundMatting

KINDS = ("traj", "ldmk")
WHAT = {
    "traj": "MOFA-Video's trajectory adapter (FlowControlNet of MOFA-Video-Traj)",
    "ldmk": "MOFA-Video's keypoint adapter (FlowControlNet of MOFA-Video-Keypoint)",
}
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
SVD_BLOCKS = (320, 640, 1280, 1280)
MOFA_HEADS = (5, 10, 10, 20)  # MOFA's ControlNet, always (SVD's UNet: 5, 10, 20, 20)
SVD_DOWN_BLOCKS = ("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",)


@dataclass(frozen=True)
class MofaSize:
    """The shape of a MOFA adapter; the defaults are the released ones (MOFA's parent defaults: SVD-xt's encoder)."""

    in_channels: int = 8  # the UNet's input: noisy latents and image latent
    block_out_channels: tuple[int, ...] = SVD_BLOCKS
    down_block_types: tuple[str, ...] = SVD_DOWN_BLOCKS
    layers_per_block: int = 2
    transformer_layers_per_block: int = 1
    num_attention_heads: tuple[int, ...] = MOFA_HEADS
    cross_attention_dim: int = 1024
    addition_time_embed_dim: int = 256
    projection_class_embeddings_input_dim: int = 768
    conditioning_channels: int = 3  # the picture's channels
    conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256)
    landmark_embedding_out_channels: tuple[int, ...] = (16, 32, 64, 128)  # keypoint adapter only
    matting_expansion: int = 64  # keypoint adapter's hourglass: channels of its first level
    matting_most: int = 512  # and its widest

    @classmethod
    def for_unet(cls, unet_config: Mapping[str, Any], released: Mapping[str, Any] | None = None) -> MofaSize:
        """The adapter that conditions a UNet of this config; a released config.json's three live fields applied.

        SVD's own UNet (img2vid or -xt) gets the released structure, heads (5, 10, 10, 20) included; any
        other UNet (the tiny one of the tests) gets an encoder that mirrors it, its own heads, and a
        narrow hourglass.
        """
        blocks = tuple(unet_config["block_out_channels"])
        released = dict(released or {})
        embedding = tuple(released.get("conditioning_embedding_out_channels") or cls.conditioning_embedding_out_channels)
        size = cls(
            in_channels=int(unet_config["in_channels"]),
            block_out_channels=blocks,
            down_block_types=tuple(unet_config["down_block_types"]),
            layers_per_block=int(unet_config["layers_per_block"]),
            transformer_layers_per_block=int(unet_config.get("transformer_layers_per_block", 1)),
            cross_attention_dim=int(unet_config["cross_attention_dim"]),
            addition_time_embed_dim=int(unet_config["addition_time_embed_dim"]),
            projection_class_embeddings_input_dim=int(unet_config["projection_class_embeddings_input_dim"]),
            conditioning_channels=int(released.get("conditioning_channels", cls.conditioning_channels)),
            conditioning_embedding_out_channels=embedding,
        )
        if blocks == SVD_BLOCKS:
            return size
        heads = unet_config["num_attention_heads"]
        heads = (heads,) * len(blocks) if isinstance(heads, int) else tuple(heads)
        return replace(size, num_attention_heads=heads, matting_expansion=8, matting_most=64)


def zero_conv(channels: int) -> nn.Conv2d:
    """A zero-initialised 1×1 convolution (the ControlNet's way of starting as a no-op)."""
    conv = nn.Conv2d(channels, channels, kernel_size=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class ConditioningEmbedding(nn.Module):
    """A picture [B, 3, H, W] → features [B, C, H/8, W/8]: conv_in, then (same, stride 2) pairs, SiLU between, zero conv_out."""

    def __init__(self, out_channels: int, in_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, widths[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        for narrow, wide in itertools.pairwise(widths):
            self.blocks.append(nn.Conv2d(narrow, narrow, kernel_size=3, padding=1))
            self.blocks.append(nn.Conv2d(narrow, wide, kernel_size=3, padding=1, stride=2))
        self.conv_out = nn.Conv2d(widths[-1], out_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] → [B, C, H/8, W/8] (with four widths: three stride-2 convolutions)."""
        x = F.silu(self.conv_in(image))
        for conv in self.blocks:
            x = F.silu(conv(x))
        return self.conv_out(x)


class EncoderLayer(nn.Module):
    """One 3×3 convolution (stride 2 where the encoder halves the size), then SiLU."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=2 if downsample else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, h, w] → [B, C_out, h or h/2, w or w/2]."""
        return F.silu(self.conv_in(x))


class FirstFrameEncoder(nn.Module):
    """Frame 0's embedding → one deeper feature per down block that downsamples (and the last block's, if it is wider).

    At full size: 320 → 320 (1/16), 640 (1/32), 1280 (1/64), the last block reusing 1280; the
    trajectory adapter follows each with a zero 1×1 ``zeroconvs`` convolution, the keypoint one not.
    """

    def __init__(self, blocks: tuple[int, ...], zeroconvs: bool) -> None:
        super().__init__()
        self.encoders = nn.ModuleList()
        previous = blocks[0]
        for index, channels in enumerate(blocks):
            last = index == len(blocks) - 1
            if last and channels == previous:
                break  # the last block keeps the size and the width: its feature is the previous one (MOFA)
            self.encoders.append(EncoderLayer(previous, channels, downsample=not last))
            previous = channels
        self.zeroconvs = nn.ModuleList(zero_conv(layer.conv_in.out_channels) for layer in self.encoders) if zeroconvs else None

    def forward(self, embedding: torch.Tensor) -> list[torch.Tensor]:
        """[B, C0, h, w] → the deeper features, shallowest first."""
        features, x = [], embedding
        for index, layer in enumerate(self.encoders):
            x = layer(x)
            features.append(self.zeroconvs[index](x) if self.zeroconvs is not None else x)
        return features


def scaled_flows(flow: torch.Tensor, size: tuple[int, int], pixels_per_cell: int) -> torch.Tensor:
    """Flows [N, 2, H', W'] in image pixels → [N, 2, h, w] in cells of ``pixels_per_cell`` pixels (nearest sampling, /s)."""
    return F.interpolate(flow, size=size, mode="nearest") / pixels_per_cell


class MofaAdapter(nn.Module):
    """One MOFA adapter (``kind`` "traj" or "ldmk"): a window's UNet input, the picture and the flows → SVD residuals."""

    def __init__(self, size: MofaSize = MofaSize(), kind: str = "traj") -> None:
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps
        from diffusers.models.unets.unet_3d_blocks import UNetMidBlockSpatioTemporal, get_down_block

        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not one of {KINDS}")
        self.size, self.kind = size, kind
        blocks, first = size.block_out_channels, size.block_out_channels[0]
        time_dim = 4 * first
        # the SVD encoder, with diffusers' blocks and the UNet's key names
        self.conv_in = nn.Conv2d(size.in_channels, first, kernel_size=3, padding=1)
        self.time_proj = Timesteps(first, True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(first, time_dim)
        self.add_time_proj = Timesteps(size.addition_time_embed_dim, True, downscale_freq_shift=0)
        self.add_embedding = TimestepEmbedding(size.projection_class_embeddings_input_dim, time_dim)
        self.down_blocks = nn.ModuleList()
        previous = first
        for index, block_type in enumerate(size.down_block_types):
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    num_layers=size.layers_per_block,
                    transformer_layers_per_block=size.transformer_layers_per_block,
                    in_channels=previous,
                    out_channels=blocks[index],
                    temb_channels=time_dim,
                    add_downsample=index < len(blocks) - 1,
                    resnet_eps=1e-5,
                    cross_attention_dim=size.cross_attention_dim,
                    num_attention_heads=size.num_attention_heads[index],
                    resnet_act_fn="silu",
                )
            )
            previous = blocks[index]
        self.mid_block = UNetMidBlockSpatioTemporal(
            blocks[-1],
            temb_channels=time_dim,
            transformer_layers_per_block=size.transformer_layers_per_block,
            cross_attention_dim=size.cross_attention_dim,
            num_attention_heads=size.num_attention_heads[-1],
        )
        # the residual outputs: one zero conv per skip of the encoder (conv_in's, then each block's), one for the mid block
        skips = [first] + [
            blocks[index] for index in range(len(blocks)) for _ in range(size.layers_per_block + (index < len(blocks) - 1))
        ]
        self.controlnet_down_blocks = nn.ModuleList(nn.Conv2d(c, c, kernel_size=1) for c in skips)
        for conv in self.controlnet_down_blocks:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.controlnet_mid_block = zero_conv(blocks[-1])
        # MOFA's additions: the picture's embedding and its deeper features
        self.controlnet_cond_embedding = ConditioningEmbedding(
            first, size.conditioning_channels, size.conditioning_embedding_out_channels
        )
        self.flow_encoder = FirstFrameEncoder(blocks, zeroconvs=kind == "traj")
        if kind == "ldmk":
            self.controlnet_ldmk_embedding = ConditioningEmbedding(
                first, size.conditioning_channels, size.landmark_embedding_out_channels
            )
            widths = self.feature_widths()
            self.zero_outs = nn.ModuleDict({name: zero_conv(c) for name, c in widths.items()})
            self.occlusions = nn.ModuleDict(
                {name: ForegroundMatting(c, size.matting_expansion, size.matting_most) for name, c in widths.items()}
            )

    def feature_widths(self) -> dict[str, int]:
        """The channels of frame 0's feature i, named as MOFA names its scales: {"8": 320, "16": 320, "32": 640, "64": 1280}.

        Feature i is named 8·2^i, its scale at full size (the tiny mirror of a 2-block UNet has its
        second feature at 1/16 too: the names stay unique).
        """
        channels = [self.size.block_out_channels[0]] + [layer.conv_in.out_channels for layer in self.flow_encoder.encoders]
        return {str(8 * 2**index): width for index, width in enumerate(channels)}

    def warped_features(
        self, picture: torch.Tensor, flow: torch.Tensor, reference: torch.Tensor, frames: int
    ) -> list[torch.Tensor]:
        """Frame 0's features at every scale, warped to each frame of the window: one [B·Fw, C, h, w] per scale.

        picture [B, 3, H, W] in [−1, 1]; flow [B, Fw, 2, H', W'] f_{0→t} in image pixels at any size
        that nearest sampling can bring to each scale (H' = H, or H/8 sampled nearest); reference
        [Fw] bool marks the window's frame 0, which keeps the unwarped feature.
        """
        batch, height = picture.shape[0], picture.shape[-2]
        embedding = self.controlnet_cond_embedding(picture)  # [B, C0, H/8, W/8]
        features = [embedding, *self.flow_encoder(embedding)]
        warped = []
        for index, feature in enumerate(features):
            scale, name = height // feature.shape[-2], str(8 * 2**index)
            moved = scaled_flows(
                rearrange(flow, "b f c h w -> (b f) c h w").float(), feature.shape[-2:], scale
            )  # [B·Fw, 2, h, w]
            source = repeat(feature, "b c h w -> (b f) c h w", f=frames)  # [B·Fw, C, h, w]
            out = splat(source.float(), moved, "avg").to(feature.dtype)  # [B·Fw, C, h, w]
            if self.kind == "ldmk":
                out = self.zero_outs[name](self.occlusions[name](source, moved.to(source.dtype), out)[0])
            keep = repeat(reference.to(feature.device), "f -> (b f) 1 1 1", b=batch)  # [B·Fw, 1, 1, 1]
            warped.append(torch.where(keep, source, out))
        return warped

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        picture: torch.Tensor,
        flow: torch.Tensor,
        reference: torch.Tensor,
        landmarks: torch.Tensor | None = None,
        scale: float = 1.0,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The residuals for SVD's UNet: (one [B·Fw, C, h, w] per skip, the mid block's [B·Fw, C, h, w]), times ``scale``.

        sample [B, Fw, 8, h, w] the UNet's input; timestep scalar or [B] (one per row, as in training); encoder_hidden_states [B, 1, D];
        added_time_ids [B, 3]; picture [B, 3, H, W] in [−1, 1]; flow [B, Fw, 2, H', W'] (see
        :meth:`warped_features`); reference [Fw] bool (the window's frame 0); landmarks
        [B, Fw, 3, H, W] in [0, 1], the keypoint adapter's drawn faces.
        """
        batch, frames = sample.shape[:2]
        timesteps = timestep.reshape(-1).to(sample.device)  # [1] or [B]
        timesteps = timesteps.expand(batch) if timesteps.numel() == 1 else timesteps  # [B]
        emb = self.time_embedding(self.time_proj(timesteps).to(sample.dtype))  # [B, T]
        time_embeds = self.add_time_proj(added_time_ids.flatten()).reshape(batch, -1).to(emb.dtype)  # [B, 3·A]
        emb = repeat(emb + self.add_embedding(time_embeds), "b t -> (b f) t", f=frames)  # [B·Fw, T]
        context = repeat(encoder_hidden_states, "b n d -> (b f) n d", f=frames)  # [B·Fw, 1, D]
        indicator = torch.zeros(batch, frames, dtype=sample.dtype, device=sample.device)  # [B, Fw]
        hidden = self.conv_in(rearrange(sample, "b f c h w -> (b f) c h w"))  # [B·Fw, C0, h, w]
        warped = self.warped_features(picture, flow, reference, frames)
        faces = self.landmark_features(landmarks) if self.kind == "ldmk" else {}
        hidden = hidden + warped[0] + faces.get(hidden.shape[-2], 0)
        skips = [hidden]
        for index, block in enumerate(self.down_blocks):
            kwargs = {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
            hidden, outputs = block(hidden_states=hidden, temb=emb, image_only_indicator=indicator, **kwargs)
            hidden = hidden + warped[min(index + 1, len(warped) - 1)]
            if index == 0:
                hidden = hidden + faces.get(hidden.shape[-2], 0)
            skips.extend(outputs)
        hidden = hidden + warped[-1]
        hidden = self.mid_block(hidden_states=hidden, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator)
        down = [conv(skip) * scale for conv, skip in zip(self.controlnet_down_blocks, skips)]
        return down, self.controlnet_mid_block(hidden) * scale

    def landmark_features(self, landmarks: torch.Tensor | None) -> dict[int, torch.Tensor]:
        """The drawn faces [B, Fw, 3, H, W] embedded at 1/8 and sampled (nearest) to 1/16 and 1/32, by their height."""
        if landmarks is None:
            raise ValueError("the keypoint adapter needs the drawn landmarks of the window")
        embedded = self.controlnet_ldmk_embedding(rearrange(landmarks, "b f c h w -> (b f) c h w"))  # [B·Fw, C0, H/8, W/8]
        features = {embedded.shape[-2]: embedded}
        for factor in (2, 4):
            smaller = F.interpolate(embedded, size=(embedded.shape[-2] // factor, embedded.shape[-1] // factor), mode="nearest")
            features.setdefault(smaller.shape[-2], smaller)
        return features


def randomise_zero_convs(adapter: MofaAdapter, seed: int = 0, std: float = 0.05) -> MofaAdapter:
    """Give every zero-initialised convolution random weights (seeded): a random adapter that is not a no-op, for tests."""
    generator = torch.Generator().manual_seed(seed)
    zeroed = [*adapter.controlnet_down_blocks, adapter.controlnet_mid_block, adapter.controlnet_cond_embedding.conv_out]
    zeroed += list(adapter.flow_encoder.zeroconvs or [])
    if adapter.kind == "ldmk":
        zeroed += [*adapter.zero_outs.values(), adapter.controlnet_ldmk_embedding.conv_out]
    with torch.no_grad():
        for conv in zeroed:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * std)
    return adapter


# --------------------------------------------------------------------------------------------
# Released folders: ckpts/controlnet/{config.json, diffusion_pytorch_model.safetensors}
# --------------------------------------------------------------------------------------------


def _is_released_folder(path: Path) -> bool:
    """Whether a path is a folder holding an adapter's safetensors file."""
    return path.is_dir() and (path / WEIGHTS_NAME).is_file()


def read_folder_shapes(path: Path, kind: str | None = None) -> Shapes | None:
    """A released adapter folder's tensor shapes from its safetensors header.

    None when the path is no such folder: not a folder with config.json and the safetensors file,
    a config.json of another model (an SVD UNet's), or, given ``kind``, a file that holds the
    other adapter (a landmark embedding, or the trajectory adapter's flow-encoder zero convs).
    """
    path = Path(path)
    if not (_is_released_folder(path) and (path / CONFIG_NAME).is_file()):
        return None
    try:
        name = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8")).get("_class_name")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    if name not in (None, "FlowControlNet"):
        return None
    found = checkpoints.read_shapes(path / WEIGHTS_NAME, str(path))
    return None if kind is not None and kind_of(found) not in (None, kind) else found


def full_shapes(kind: str) -> Shapes:
    """The released adapter's keys and shapes (built at full size on the meta device)."""
    return checkpoints.module_shapes(lambda: MofaAdapter(MofaSize(), kind))


def kind_of(found: Shapes) -> str | None:
    """Which adapter a file's keys say it is: "ldmk" (a landmark embedding), "traj" (flow-encoder zero convs), or None."""
    if any(name.startswith("controlnet_ldmk_embedding.") for name in found):
        return "ldmk"
    if any(name.startswith("flow_encoder.zeroconvs.") for name in found):
        return "traj"
    return None


WEIGHT_KINDS = [
    WeightKind(
        "mofa_traj", WHAT["traj"], functools.partial(read_folder_shapes, kind="traj"), functools.partial(full_shapes, "traj")
    ),
    WeightKind(
        "mofa_ldmk", WHAT["ldmk"], functools.partial(read_folder_shapes, kind="ldmk"), functools.partial(full_shapes, "ldmk")
    ),
]

OTHER_KEY = {"traj": "backbone.mofa_landmark", "ldmk": "backbone.mofa"}


def read_released_config(folder: Path, key: str, kind: str, unet_first: int = SVD_BLOCKS[0]) -> dict[str, Any]:
    """A released folder's config.json, checked to be a MOFA adapter's; one sentence when it is missing or another model's."""
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise InputError(
            f"{key}={folder} has no {CONFIG_NAME}; download the whole adapter folder ({CONFIG_NAME} and {WEIGHTS_NAME}, "
            "e.g. ckpts/controlnet of MyNiuuu/MOFA-Video-Traj)"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{key}={folder}: its {CONFIG_NAME} is not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise InputError(f"{key}={folder}: its {CONFIG_NAME} is not a JSON object")
    name = config.get("_class_name")
    if name not in (None, "FlowControlNet"):
        raise InputError(
            f"{key}={folder} holds a {name}, not {WHAT[kind]}; pass the folder of a MOFA adapter (its FlowControlNet)"
        )
    first = (config.get("block_out_channels") or SVD_BLOCKS)[0]
    if first not in (SVD_BLOCKS[0], unet_first):  # a released config says 320 (MOFA's parent default); a toy one its UNet's
        raise InputError(
            f"{key}={folder}: its {CONFIG_NAME} has block_out_channels[0]={first}, but the adapter feeds the UNet's "
            f"{unet_first} channels; is it an adapter for this UNet?"
        )
    return config


def load_adapter(folder: Path, kind: str, unet_config: Mapping[str, Any], key: str) -> MofaAdapter:
    """A released adapter folder, checked key by key and shape by shape and loaded strictly, for a UNet of this config (CPU)."""
    if not (folder / WEIGHTS_NAME).is_file():
        raise InputError(
            f"{key}={folder} holds no {WEIGHTS_NAME}; pass the folder of {WHAT[kind]} ({CONFIG_NAME} and {WEIGHTS_NAME})"
        )
    config = read_released_config(folder, key, kind, int(unet_config["block_out_channels"][0]))
    size = MofaSize.for_unet(unet_config, config)
    weights = folder / WEIGHTS_NAME
    found = checkpoints.read_shapes(weights, key)
    other = kind_of(found)
    if other is not None and other != kind:
        raise InputError(f"{key}={folder} holds {WHAT[other]}, not {WHAT[kind]}; pass it as {OTHER_KEY[kind]} instead")
    expected = checkpoints.module_shapes(lambda: MofaAdapter(size, kind))
    checkpoints.check_shapes(found, expected, weights, key, WHAT[kind])
    with torch.device("meta"):
        adapter = MofaAdapter(size, kind)
    adapter.load_state_dict(checkpoints.read_state_dict(weights, key), strict=True, assign=True)
    return adapter.eval()
