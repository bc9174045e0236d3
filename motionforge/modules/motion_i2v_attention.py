"""Motion-I2V's motion-augmented temporal attention, as diffusers attention processors on a motion UNet's modules.

In each motion module's attn1 and attn2 (both temporal self-attention) the processor receives the
block's LayerNorm output x [B·h·w, L, C] of a window of L frames (the block's own ``pos_embed`` is
taken off while it is installed, since diffusers adds it before the attention). Frame 0's tokens are
forward-splatted (``splat(..., "avg")``) along f_{0→t}, resized bilinearly to the layer's h×w with
the displacements scaled by the size ratio, to every other frame t: w_1 … w_{L−1}. The sequence
[x_0, w_1, x_1, w_2, …, w_{L−1}, x_{L−1}] (2L−1 tokens) gets the sinusoidal table at positions
0 … 2L−2; the queries are its real frames (the even positions), the keys and values all 2L−1
tokens, and the output has the L real frames. Attention over keys does not depend on their order,
so the kernels' ``temporal_attention`` (keys [real; warped]) computes it exactly.

A window whose first frame a is not the clip's frame 0 (a long clip under ``periodic_overlap``
without ``anchor_first_frame``) takes frame a as its reference, with flows f_{a→t} carried to frame
a's pixels: splat(f_{0→t} − f_{0→a}, f_{0→a}).

The layer's h×w comes from a forward pre-hook on each ``AnimateDiffTransformer3D`` (its input is
[(B·L), C, h, w]); the flows and the window from a per-run :class:`MotionI2VContext` (the mid block
calls its module without ``cross_attention_kwargs``). The UNet is cached and shared by runs, so
:class:`MotionI2VAttention` (a Denoiser wrapper) installs everything around each call and restores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from einops import rearrange

from motionforge.backbones.diffusion.steering.warped_attention import attend_with_extra
from motionforge.core.flowfield import FlowField
from motionforge.core.types import Denoiser
from motionforge.kernels import splat
from motionforge.motion.fuse import resize_flow


@dataclass
class MotionI2VContext:
    """One run's state for the processors: the plan's flows, the current window, and the size of the layer now running."""

    flow: torch.Tensor | FlowField  # [F, 2, H, W] the plan's f_{0→i} in working pixels (a field is read a frame at a time)
    frames: torch.Tensor | None = None  # [Fw] the clip's frame indices of the current window (None: 0 … L−1)
    size: tuple[int, int] | None = None  # (h, w) of the motion module running now (set by its pre-hook)
    attention_backend: str | None = None  # motionforge.kernels backend= of temporal_attention (None: automatic)
    splat_backend: str | None = None  # motionforge.kernels backend= of splat (None: automatic)
    _resized: dict[tuple[int, int, int, str], torch.Tensor] = field(default_factory=dict, repr=False)
    _flows: dict[tuple[Any, ...], torch.Tensor] = field(default_factory=dict, repr=False)

    def resized(self, frames: list[int], height: int, width: int, device: torch.device) -> torch.Tensor:
        """The plan's flows of some frames at h×w, displacements scaled by the size ratio (once per frame and size): [n, 2, h, w]."""
        for frame in frames:
            key = (frame, height, width, str(device))
            if key not in self._resized:
                self._resized[key] = resize_flow(self.flow[frame][None].to(device).float(), height, width)[0]  # [2, h, w]
        return torch.stack([self._resized[frame, height, width, str(device)] for frame in frames])  # float32

    def window_frames(self, length: int) -> torch.Tensor:
        """The clip's frame indices of a window of ``length`` frames: [L]."""
        frames = self.frames
        return frames if frames is not None and len(frames) == length else torch.arange(length)

    def flows(self, length: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        """The flows from the window's first frame a to its others, on frame a's pixels at h×w: [L−1, 2, h, w] float32."""
        frames = self.window_frames(length).tolist()
        key = (tuple(frames), height, width, str(device))
        if key not in self._flows:
            targets = self.resized(frames[1:], height, width, device)  # [L−1, 2, h, w] f_{0→t}
            if frames[0] != 0:
                start = self.resized(frames[:1], height, width, device).expand_as(targets)  # [L−1, 2, h, w] f_{0→a}
                targets = splat(targets - start, start, "avg", backend=self.splat_backend)  # f_{a→t} at frame a's pixels
            self._flows[key] = targets
        return self._flows[key]


class MotionI2VAttnProcessor:
    """Motion-I2V's VersatileAttention on a motion module's attn1 or attn2: the interleaved 2L−1 sequence, real-frame queries."""

    def __init__(self, context: MotionI2VContext, table: torch.Tensor) -> None:
        self.context = context
        self.table = table  # [1, P, C] the block's sinusoidal positional table (P ≥ 2L−1)

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden_states [B·h·w, L, C] (LayerNorm output, no positions) → [B·h·w, L, C]."""
        if encoder_hidden_states is not None or attention_mask is not None:
            raise RuntimeError("Motion-I2V's temporal attention is self-attention without a mask")
        residual = hidden_states
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        real, warped = self.sequence(hidden_states)  # [S, L, C], [S, L−1, C]
        return attend_with_extra(attn, real, warped, residual, self.context.attention_backend)

    def sequence(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The interleaved sequence's real frames (positions 0, 2, …, 2L−2) and warped ones (1, 3, …, 2L−3), positions added."""
        context = self.context
        sequences, length, _ = hidden_states.shape  # [B·h·w, L, C]
        if context.size is None:
            raise RuntimeError("Motion-I2V's attention ran outside a motion module (no layer size was recorded)")
        height, width = context.size
        batch, rest = divmod(sequences, height * width)
        positions = 2 * length - 1
        if rest or positions > self.table.shape[1]:
            raise RuntimeError(
                f"Motion-I2V's attention: {sequences} sequences of {length} frames do not fit a {height}×{width} layer "
                f"and a positional table of {self.table.shape[1]}"
            )
        table = self.table[0, :positions].to(device=hidden_states.device, dtype=hidden_states.dtype)  # [2L−1, C]
        if length == 1:
            return hidden_states + table, hidden_states[:, :0]  # frame 0 alone: nothing to warp
        source = rearrange(hidden_states[:, 0].float(), "(b h w) c -> b c h w", b=batch, h=height, w=width)  # [B, C, h, w]
        flow = context.flows(length, height, width, hidden_states.device)  # [L−1, 2, h, w]
        others = length - 1
        warped = splat(
            source.repeat_interleave(others, dim=0), flow.repeat(batch, 1, 1, 1), "avg", backend=context.splat_backend
        )  # [B·(L−1), C, h, w]
        warped = rearrange(warped, "(b n) c h w -> (b h w) n c", b=batch, n=others).to(hidden_states.dtype)  # [S, L−1, C]
        return hidden_states + table[0::2], warped + table[1::2]


def motion_modules(unet: Any) -> dict[str, Any]:
    """The UNet's motion modules (AnimateDiffTransformer3D) by module name."""
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    return {name: module for name, module in unet.named_modules() if isinstance(module, AnimateDiffTransformer3D)}


@contextmanager
def installed(unet: Any, context: MotionI2VContext) -> Iterator[None]:
    """Motion-I2V's processors on every motion module's attn1 and attn2, the blocks' pos_embed off, size hooks on; all undone after."""
    originals = unet.attn_processors
    swapped, tables, hooks = dict(originals), [], []

    def record_size(module: Any, args: tuple[Any, ...]) -> None:
        context.size = tuple(args[0].shape[-2:])  # the module's input [(B·L), C, h, w]

    try:
        for name, module in motion_modules(unet).items():
            hooks.append(module.register_forward_pre_hook(record_size))
            for index, block in enumerate(module.transformer_blocks):
                if block.pos_embed is None:
                    raise RuntimeError(f"Motion-I2V's attention needs the sinusoidal positions of {name}, which has none")
                tables.append((block, block.pos_embed))
                for attn in ("attn1", "attn2"):
                    swapped[f"{name}.transformer_blocks.{index}.{attn}.processor"] = MotionI2VAttnProcessor(
                        context, block.pos_embed.pe
                    )
                block.pos_embed = None  # the processor adds the positions on the interleaved sequence itself
        unet.set_attn_processor(swapped)
        yield
    finally:
        for hook in hooks:
            hook.remove()
        for block, pos_embed in tables:
            block.pos_embed = pos_embed
        unet.set_attn_processor(originals)
        context.size = None


class MotionI2VAttention:
    """A Denoiser wrapper: each call runs with Motion-I2V's attention installed and the window's frames in the context."""

    def __init__(self, inner: Denoiser, unet: Any, context: MotionI2VContext) -> None:
        self.inner = inner
        self.unet = unet
        self.context = context

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [B, Fw, C, h, w] at sigma → x0, every motion module's temporal attention Motion-I2V's."""
        self.context.frames = frames.cpu()
        with installed(self.unet, self.context):
            return self.inner.denoise(x, sigma, frames)
