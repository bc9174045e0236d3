"""MOFA-Video's occlusion matting for its keypoint adapter: an hourglass that mends features warped along a flow.

For each warped frame the hourglass reads the reference features, the flow and the warped
features together (2C + 2 channels), at one resolution throughout (its three "down" and three
"up" 3×3 convolutions keep the size; the decoder concatenates each encoder output, skip first,
with what it has so far). Two 7×7 heads give a soft mask m (sigmoid) and a matting image; the
result is ``warped·m + matting·(1 − m)``: the warped feature where it is trusted, an inpainted
one elsewhere. Key names follow the released keypoint checkpoint (``hourglass.encoder.down_blocks.i.conv`` …).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvRelu(nn.Module):
    """One 3×3 convolution that keeps the size, then ReLU (the hourglass's every layer)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, h, w] → [B, C_out, h, w]."""
        return F.relu(self.conv(x))


def _width(expansion: int, level: int, most: int) -> int:
    """The channels of hourglass level ``level``: expansion · 2^level, at most ``most``."""
    return min(most, expansion * 2**level)


class HourglassEncoder(nn.Module):
    """Three same-size layers widening expansion·2, ·4, ·8 (at most ``most`` channels); every output is kept."""

    def __init__(self, in_channels: int, expansion: int, most: int, blocks: int = 3) -> None:
        super().__init__()
        widths = [in_channels] + [_width(expansion, level + 1, most) for level in range(blocks)]
        self.down_blocks = nn.ModuleList(ConvRelu(widths[i], widths[i + 1]) for i in range(blocks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[B, C, h, w] → each layer's output, shallowest first."""
        outputs = []
        for block in self.down_blocks:
            x = block(x)
            outputs.append(x)
        return outputs


class HourglassDecoder(nn.Module):
    """Three same-size layers narrowing back to ``expansion`` channels, each after the matching encoder output joins."""

    def __init__(self, expansion: int, most: int, blocks: int = 3) -> None:
        super().__init__()
        layers = []
        for level in reversed(range(blocks)):
            joined = (1 if level == blocks - 1 else 2) * _width(expansion, level + 1, most)
            layers.append(ConvRelu(joined, _width(expansion, level, most)))
        self.up_blocks = nn.ModuleList(layers)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        """The encoder's outputs (shallowest first) → [B, expansion, h, w]."""
        x = None
        for block, skip in zip(self.up_blocks, reversed(skips)):
            x = block(skip if x is None else torch.cat([skip, x], dim=1))
        return x


class Hourglass(nn.Module):
    """The encoder and decoder together."""

    def __init__(self, in_channels: int, expansion: int, most: int) -> None:
        super().__init__()
        self.encoder = HourglassEncoder(in_channels, expansion, most)
        self.decoder = HourglassDecoder(expansion, most)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, h, w] → [B, expansion, h, w]."""
        return self.decoder(self.encoder(x))


class ForegroundMatting(nn.Module):
    """Mends features warped along a flow: ``warped·m + matting·(1 − m)`` with m and the matting image from an hourglass."""

    def __init__(self, channels: int, expansion: int = 64, most: int = 512) -> None:
        super().__init__()
        self.hourglass = Hourglass(2 * channels + 2, expansion, most)
        self.matting_mask = nn.Conv2d(expansion, 1, kernel_size=7, padding=3)
        self.matting = nn.Conv2d(expansion, channels, kernel_size=7, padding=3)

    def forward(self, reference: torch.Tensor, flow: torch.Tensor, warped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """reference [B, C, h, w], flow [B, 2, h, w], warped [B, C, h, w] → (mended [B, C, h, w], mask [B, 1, h, w])."""
        hidden = self.hourglass(torch.cat([reference, flow, warped], dim=1))  # [B, expansion, h, w]
        mask = torch.sigmoid(self.matting_mask(hidden))  # [B, 1, h, w]
        return warped * mask + self.matting(hidden) * (1 - mask), mask
