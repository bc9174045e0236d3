"""CMP, MOFA-Video's sparse-to-dense flow network, written anew from its released layout (key names and shapes).

Three parts, named as in the released state dict: ``image_encoder`` (a ResNet-50 whose last two
stages are dilated instead of strided, so it stops at 1/8 size, then a 1×1 ``conv5`` to
``image_dim`` channels), ``flow_encoder`` (a shallow network reading the sparse flow and its mask at
1/8 size) and ``flow_decoder`` (four pooled branches fused at 1/8, then two skip stages back up to
1/2). The decoder's logits give, per axis, a softmax over ``nbins`` bins of displacement whose
expectation is the flow (:class:`Fuser`). Every width is a :class:`CMPConfig` field, so the tiny
network of the tests is the same code as the released one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

EXPANSION = 4  # a bottleneck's output channels per its inner channels


@dataclass(frozen=True)
class CMPConfig:
    """The widths of a CMP network; the defaults are the released one's (resnet50_vip+mpii_liteflow)."""

    width: int = 64  # stem channels; the four stages' bottlenecks are width·(1, 2, 4, 8) wide inside, 4× that outside
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)  # bottlenecks per stage (ResNet-50)
    dilations: tuple[int, int] = (2, 4)  # stages 3 and 4: dilation in every block's 3×3, stride 1 throughout
    image_dim: int = 256  # conv5's output: the image encoding's channels
    sparse_hidden: int = 16  # the sparse encoder's first conv
    sparse_dim: int = 16  # the sparse encoding's channels
    decoder_width: int = 128  # each decoder branch's channels
    nbins: int = 99  # displacement bins per axis
    fmax: float = 50.0  # the bins span [-fmax, fmax] pixels at the network's input size
    size: int = 384  # the square input size the network runs at

    @property
    def stage_outputs(self) -> tuple[int, int, int, int]:
        """Each ResNet stage's output channels."""
        return tuple(self.width * 2**stage * EXPANSION for stage in range(4))  # type: ignore[return-value]


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """A 3×3 conv (with bias), BatchNorm and ReLU, as the decoder stacks them."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class Bottleneck(nn.Module):
    """A ResNet bottleneck (1×1, 3×3 with the stride and dilation, 1×1), added to its input or its downsampled input."""

    def __init__(self, in_channels: int, inner: int, stride: int = 1, dilation: int = 1) -> None:
        """A block from in_channels to inner·4 channels; a 1×1 downsample path when the shape changes."""
        super().__init__()
        out_channels = inner * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, h, w] → [B, C_out, h/stride, w/stride]."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ImageEncoder(nn.Module):
    """The dilated ResNet: stem at 1/2, max-pool to 1/4, stage 2 strided to 1/8, stages 3–4 dilated at 1/8, then conv5."""

    def __init__(self, config: CMPConfig) -> None:
        """The encoder of this config's widths."""
        super().__init__()
        width = config.width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        strides, dilations = (1, 2, 1, 1), (1, 1, *config.dilations)
        channels = width
        for stage, (count, stride, dilation) in enumerate(zip(config.blocks, strides, dilations)):
            inner = width * 2**stage
            blocks = [
                Bottleneck(channels if i == 0 else inner * EXPANSION, inner, stride if i == 0 else 1, dilation)
                for i in range(count)
            ]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            channels = inner * EXPANSION
        self.conv5 = nn.Conv2d(channels, config.image_dim, 1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Image [B, 3, S, S] in [-1, 1] → its encoding [B, image_dim, S/8, S/8] and the skips [image, stem (1/2), stage 1 (1/4)]."""
        stem = self.relu(self.bn1(self.conv1(image)))  # [B, width, S/2, S/2]
        layer1 = self.layer1(self.maxpool(stem))  # [B, 4·width, S/4, S/4]
        deep = self.layer4(self.layer3(self.layer2(layer1)))  # [B, 32·width, S/8, S/8]
        return self.conv5(deep), [image, stem, layer1]


class SparseEncoder(nn.Module):
    """ShallowNet: the sparse flow and its mask [B, 4, S, S] → [B, sparse_dim, S/8, S/8]."""

    def __init__(self, config: CMPConfig) -> None:
        """Conv5×5 stride 2, BN, ReLU, max-pool 2, conv3×3, BN, ReLU, average-pool 2 (indices 0–7 as released)."""
        super().__init__()
        hidden, out = config.sparse_hidden, config.sparse_dim
        self.features = nn.Sequential(
            nn.Conv2d(4, hidden, 5, stride=2, padding=2),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, stride=2),
            nn.Conv2d(hidden, out, 3, padding=1),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(2, stride=2),
        )

    def forward(self, sparse: torch.Tensor) -> torch.Tensor:
        """[B, 4, S, S] → [B, sparse_dim, S/8, S/8]."""
        return self.features(sparse)


class FlowDecoder(nn.Module):
    """MotionDecoderSkipLayer: branches pooled by 1, 2, 4, 8 fused at 1/8, then skips at 1/4 and 1/2, then the bin logits."""

    def __init__(self, config: CMPConfig) -> None:
        """The decoder of this config's widths (released: 272 in, 128 per branch, 198 logits out)."""
        super().__init__()
        d, stem, layer1 = config.decoder_width, config.width, config.stage_outputs[0]
        inputs = config.image_dim + config.sparse_dim
        self.decoder1 = nn.Sequential(*_conv_bn_relu(inputs, d), *_conv_bn_relu(d, d), *_conv_bn_relu(d, d))
        for pool in (2, 4, 8):
            branch = [nn.MaxPool2d(pool, stride=pool), *_conv_bn_relu(inputs, d), *_conv_bn_relu(d, d), *_conv_bn_relu(d, d)]
            setattr(self, f"decoder{pool}", nn.Sequential(*branch))
        self.fusion8 = nn.Sequential(*_conv_bn_relu(4 * d, 2 * d))
        self.skipconv4 = nn.Sequential(*_conv_bn_relu(layer1, d))
        self.fusion4 = nn.Sequential(*_conv_bn_relu(2 * d + d, d))
        self.skipconv2 = nn.Sequential(*_conv_bn_relu(stem, d // 4))
        self.fusion2 = nn.Sequential(*_conv_bn_relu(d + d // 4, d // 2))
        self.head = nn.Conv2d(d // 2, 2 * config.nbins, 1)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """Encodings [B, image_dim + sparse_dim, S/8, S/8] and the image skips → logits [B, 2·nbins, S/2, S/2]."""
        _, stem, layer1 = skips  # the image itself is passed but unused, as released
        size8 = x.shape[-2:]
        branches = [self.decoder1(x)] + [_up(getattr(self, f"decoder{pool}")(x), size8) for pool in (2, 4, 8)]
        fused8 = self.fusion8(torch.cat(branches, dim=1))  # [B, 2d, S/8, S/8]
        fused4 = self.fusion4(torch.cat([_up(fused8, layer1.shape[-2:]), self.skipconv4(layer1)], dim=1))  # [B, d, S/4, S/4]
        fused2 = self.fusion2(torch.cat([_up(fused4, stem.shape[-2:]), self.skipconv2(stem)], dim=1))  # [B, d/2, S/2, S/2]
        return self.head(fused2)


def _up(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with aligned corners (the decoder's upsampling): [B, C, h, w] → [B, C, *size]."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class Fuser(nn.Module):
    """The flow from bin logits: per axis, the softmax over the bins times the bins' centres, summed."""

    def __init__(self, nbins: int, fmax: float) -> None:
        """Bin k's centre is k·(2·fmax/nbins) − fmax + fmax/nbins (released: k·100/99 − 50 + 50/99)."""
        super().__init__()
        step = 2.0 * fmax / nbins
        self.nbins = nbins
        self.register_buffer("centres", torch.arange(nbins, dtype=torch.float32) * step - fmax + step / 2, persistent=False)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits [B, 2·nbins, h, w] (x bins, then y bins) → flow [B, 2, h, w] in input pixels."""
        centres = self.centres.to(logits).view(1, 1, -1, 1, 1)
        probs = logits.unflatten(1, (2, self.nbins)).softmax(dim=2)  # [B, 2, nbins, h, w]
        return (probs * centres).sum(dim=2)


class CMP(nn.Module):
    """The whole network: image and sparse motion at the config's size → dense flow at that size, in its pixels.

    The image encoding depends on the picture alone, so :meth:`encode` runs once and
    :meth:`decode` once per frame (MOFA-Video feeds frame 0 with every frame's sparse motion).
    """

    def __init__(self, config: CMPConfig) -> None:
        """Encoders, decoder and bin fuser of this config."""
        super().__init__()
        self.config = config
        self.image_encoder = ImageEncoder(config)
        self.flow_encoder = SparseEncoder(config)
        self.flow_decoder = FlowDecoder(config)
        self.fuser = Fuser(config.nbins, config.fmax)

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Image [B, 3, S, S] in [0, 1] → its encoding and skips (the network reads image·2 − 1, not ImageNet's normalisation)."""
        return self.image_encoder(image * 2 - 1)

    def decode(self, encoded: tuple[torch.Tensor, list[torch.Tensor]], sparse: torch.Tensor) -> torch.Tensor:
        """An image's encoding (batch 1 or n) and sparse motion [n, 4, S, S] ([dx, dy, mask, mask]) → flow [n, 2, S, S]."""
        encoding, skips = encoded
        count = sparse.shape[0]
        encoding, skips = encoding.expand(count, -1, -1, -1), [skip.expand(count, -1, -1, -1) for skip in skips]
        joined = torch.cat([encoding, self.flow_encoder(sparse)], dim=1)  # [n, image_dim + sparse_dim, S/8, S/8]
        flow = self.fuser(self.flow_decoder(joined, skips))  # [n, 2, S/2, S/2]
        return _up(flow, sparse.shape[-2:])

    def forward(self, image: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        """Image [n or 1, 3, S, S] in [0, 1] and sparse motion [n, 4, S, S] → flow [n, 2, S, S]."""
        return self.decode(self.encode(image), sparse)
