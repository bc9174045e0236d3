"""CMP as a densifier: a plan's sparse samples and the picture → dense flow, as MOFA-Video feeds and reads the network.

Per frame i the samples are drawn onto a square grid of the network's size (384 as released):
at each sample's start pixel the displacement f_{0→i} in that grid's pixels (channels 0, 1: dx,
dy) and the sample's weight in that frame (channels 2 and 3, the same mask twice). The network
reads frame 0's picture with every frame's samples, so the picture is encoded once per clip; the
frames then go through the decoder a few at a time. Its flow is resized to the working frame by
nearest neighbour and its displacements rescaled to working pixels, as MOFA-Video does. Samples
that share a grid pixel are averaged by weight (their mask is their total weight, at most 1);
MOFA-Video rounds displacements down to whole grid pixels, motionforge keeps them exact. A frame
in which no sample moves has no motion (frame 0 above all), so the network's small bias never
shifts a still frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from motionforge.core.flowfield import FlowField
from motionforge.core.memory import FLOAT_BYTES
from motionforge.core.types import MotionContext, SparsePoints
from motionforge.modules.cmp.network import CMP, CMPConfig

# Frames decoded at once: the decoder's widest stage holds ~700 floats per pixel at half the network's size.
DECODE_FRAMES = 4
# Floats per half-size pixel the decoder holds at its peak per frame (skips, the 1/2 fusion, the logits and their softmax).
DECODER_FLOATS = 700


class CMPDensifier:
    """Dense flow from sparse samples by CMP, for a picture: the image encoding is kept while the picture stays the same."""

    name = "cmp"

    def __init__(self, model: CMP) -> None:
        """A densifier around a CMP network in eval mode."""
        self.model = model
        self._encoded: tuple[torch.Tensor, tuple[torch.Tensor, list[torch.Tensor]]] | None = None

    @property
    def config(self) -> CMPConfig:
        """The network's config (its size and bins)."""
        return self.model.config

    def _encoding(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The network's encoding of a picture [3, H, W] in [0, 1], computed once per picture."""
        if self._encoded is not None and self._encoded[0] is image:
            return self._encoded[1]
        size = self.config.size
        square = F.interpolate(image[None].float(), size=(size, size), mode="nearest")  # [1, 3, S, S], as MOFA-Video resizes
        device = next(self.model.parameters()).device
        with torch.no_grad():
            encoded = self.model.encode(square.to(device))
        self._encoded = (image, encoded)
        return encoded

    def raster(self, points: SparsePoints, start: int, stop: int, height: int, width: int) -> torch.Tensor:
        """The network's sparse input for frames start … stop − 1: [n, 4, S, S] ([dx, dy, mask, mask], grid pixels)."""
        size = self.config.size
        scale = torch.tensor([size / width, size / height], dtype=torch.float32, device=points.flow.device)  # [2]
        cells = ((points.positions.float() + 0.5) * scale).floor().long().clamp(0, size - 1)  # [N, 2] grid (x, y)
        index = cells[:, 1] * size + cells[:, 0]  # [N]
        weight = points.weight[:, start:stop].float()  # [N, n]
        moved = points.flow[:, start:stop].float() * scale * weight[..., None]  # [N, n, 2]
        count = weight.shape[1]
        total = torch.zeros(count, size * size, device=weight.device).index_add_(1, index, weight.transpose(0, 1))  # [n, S*S]
        summed = torch.zeros(count, 2, size * size, device=weight.device)
        summed.index_add_(2, index, rearrange(moved, "n f c -> f c n"))  # [n, 2, S*S]
        flow = summed / total.clamp(min=1e-12)[:, None]  # [n, 2, S*S]
        mask = total.clamp(max=1.0)[:, None].expand(-1, 2, -1)  # [n, 2, S*S]
        return torch.cat([flow, mask], dim=1).view(count, 4, size, size)

    def field(self, points: SparsePoints, context: MotionContext) -> FlowField:
        """The samples' dense flow over the working frame for every frame of the clip: a field holding [F, 2, H, W]."""
        height, width, num_frames = context.height, context.width, points.flow.shape[1]
        out = torch.zeros(num_frames, 2, height, width, device=context.device)  # [F, 2, H, W]
        if len(points) == 0:
            return FlowField.of(out)
        moving = ((points.flow.abs().amax(dim=2) > 0) & (points.weight > 0)).any(dim=0)  # [F] frames where a sample moves
        frames = torch.nonzero(moving).flatten().tolist()
        if not frames:
            return FlowField.of(out)
        encoded = self._encoding(context.image)
        device = encoded[0].device
        size = self.config.size
        rescale = torch.tensor([width / size, height / size], device=device).view(1, 2, 1, 1)
        for first in range(0, len(frames), DECODE_FRAMES):
            chosen = frames[first : first + DECODE_FRAMES]
            sparse = torch.cat([self.raster(points, i, i + 1, height, width) for i in chosen]).to(device)  # [n, 4, S, S]
            with torch.no_grad():
                flow = self.model.decode(encoded, sparse)  # [n, 2, S, S] grid pixels
            flow = F.interpolate(flow, size=(height, width), mode="nearest") * rescale  # [n, 2, H, W] working pixels
            out[chosen] = flow.to(out)
        return FlowField.of(out)


def densifier_memory(config: CMPConfig, num_frames: int, height: int, width: int) -> dict[str, int]:
    """The bytes CMP densifying a clip holds, by part: its weights, the picture's encoding, a few frames' decoding, the flow."""
    from motionforge.modules.cmp.loading import expected_shapes

    weights = sum(int(torch.Size(shape).numel()) for shape in expected_shapes(config).values())
    size = config.size
    stem, layer1 = config.width * (size // 2) ** 2, config.stage_outputs[0] * (size // 4) ** 2
    deep = (config.stage_outputs[3] + config.image_dim) * (size // 8) ** 2
    decode = min(num_frames, DECODE_FRAMES) * (DECODER_FLOATS * (size // 2) ** 2 + 8 * size * size)
    return {
        "CMP weights": FLOAT_BYTES * weights,
        "CMP image encoding": FLOAT_BYTES * (3 * size * size + 2 * stem + layer1 + 2 * deep),
        "CMP decoding": FLOAT_BYTES * decode,
        "CMP dense flow": FLOAT_BYTES * 2 * num_frames * height * width,
    }
