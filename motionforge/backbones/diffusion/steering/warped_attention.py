"""Motion-I2V's motion-augmented temporal attention (``warped_attention``) as diffusers attention processors.

In every temporal self-attention layer (AnimateDiff's motion modules: attn1 and attn2; SVD's
TemporalBasicTransformerBlock: attn1) frame 0's features as the processor receives them are
forward-warped (``splat(..., "avg")``) along the plan's f_{0→i} resized to the layer's resolution,
and their to_k/to_v join the keys and values: every query attends over the L real keys plus the
N = L − 1 warped frames (frames 1 … L−1 of the window), as Motion-I2V's interleaved sequence lets
every frame see the warped copies of all frames. Queries are unchanged. In AnimateDiff the
processor receives z_i + PE(i): the warped copy of frame j is splat(z_0 − PE(0)) + PE(j), so it
carries its own frame's encoding; SVD adds its frame embedding before the block's norm, where it
cannot be separated, so frame 0's normed features are warped as they are. The output is
(1 − s)·plain + s·augmented for ``warped_attention_strength`` s, during the active steps only.

The UNet is shared by every run through the model cache, so :class:`WarpedAttention` (a Denoiser
wrapper) installs the processors around each denoiser call and restores the originals afterwards;
the processors read the flows, the step and the window from a per-run :class:`MotionAttentionContext`.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from einops import rearrange

from motionforge.core.errors import ConfigError
from motionforge.core.types import Denoiser
from motionforge.kernels import splat, temporal_attention
from motionforge.motion.fuse import resize_flow


@dataclass
class WarpedAttentionParams:
    """The warped-attention keys shared by the diffusion backbones; off by default, so parity holds."""

    warped_attention: bool = False  # Motion-I2V: temporal attention also sees frame 0's features warped along the plan
    warped_attention_strength: float = 1.0  # [0, 1]: blend of the augmented attention into the plain one (0: off)
    warped_attention_start: float = 0.0  # fraction of the sampled steps where it starts
    warped_attention_end: float = 1.0  # fraction of the sampled steps where it ends (1: through the last step)


def check(config: WarpedAttentionParams) -> None:
    """Check the warped-attention keys; one sentence per mistake."""
    if not 0.0 <= config.warped_attention_strength <= 1.0:
        raise ConfigError(
            f"backbone.warped_attention_strength={config.warped_attention_strength} must be in [0, 1] (0 = plain attention)"
        )
    if not 0.0 <= config.warped_attention_start < config.warped_attention_end <= 1.0:
        raise ConfigError(
            f"backbone.warped_attention_start={config.warped_attention_start} and "
            f"backbone.warped_attention_end={config.warped_attention_end} must satisfy "
            "0 <= warped_attention_start < warped_attention_end <= 1"
        )


def uses_warped_attention(config: WarpedAttentionParams) -> bool:
    """Whether warped attention changes this run (on with a strength above 0)."""
    return bool(config.warped_attention) and config.warped_attention_strength > 0


@dataclass
class MotionAttentionContext:
    """One run's state for the processors: the plan's flows, the latent size, and the current call's step and window."""

    flow: torch.Tensor  # [F, 2, H, W] the plan's f_{0→i} in working pixels
    height: int  # latent rows at the UNet's input
    width: int  # latent columns at the UNet's input
    strength: float = 1.0
    guidance: int = 1  # sequences per latent in the UNet's batch (2 with classifier-free guidance)
    batch: int = 1  # the UNet's batch in the current call (latent batch × guidance)
    frames: torch.Tensor | None = None  # [Fw] the clip's frame indices in the current window
    attention_backend: str | None = None  # motionforge.kernels backend= of temporal_attention (None: automatic)
    splat_backend: str | None = None  # motionforge.kernels backend= of splat (None: automatic)
    _flows: dict[tuple[int, int, str], torch.Tensor] = field(default_factory=dict, repr=False)

    def flow_at(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """The plan's flows resized and rescaled to height×width (once per resolution per run): [F, 2, height, width] float32."""
        key = (height, width, str(device))
        if key not in self._flows:
            self._flows[key] = resize_flow(self.flow.to(device).float(), height, width)
        return self._flows[key]

    def layer_size(self, sequences: int) -> tuple[int, int]:
        """The layer's spatial size h×w from its sequence count B·h·w (the UNet halves the latent size per level)."""
        spatial, rest = divmod(sequences, self.batch)
        height, width = self.height, self.width
        while not rest and height * width > spatial and (height > 1 or width > 1):
            height, width = -(-height // 2), -(-width // 2)
        if rest or height * width != spatial:
            raise RuntimeError(
                f"warped attention: {sequences} sequences do not fit batch {self.batch} at a level of {self.height}×{self.width}"
            )
        return height, width


class WarpedAttnProcessor:
    """A temporal self-attention processor that adds frame 0's features, warped along the plan, to the keys and values."""

    def __init__(self, original: Any, context: MotionAttentionContext, pos_embed: Any = None) -> None:
        self.original = original  # the processor it replaces (plain attention, and the s < 1 blend)
        self.context = context
        self.pos_embed = pos_embed  # AnimateDiff's sinusoidal embedding added before the attention, or None

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """hidden_states [B·h·w, L, C] → [B·h·w, L, C]: plain attention blended with the motion-augmented one."""
        plain_args = (attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        context = self.context
        reference = self.reference_index(hidden_states.shape[1])
        usable = encoder_hidden_states is None and attention_mask is None and hidden_states.ndim == 3
        if not (context.strength > 0 and usable and reference is not None):
            return self.original(*plain_args)
        augmented = self.augmented(attn, hidden_states, reference)  # [S, L, C]
        if context.strength >= 1:
            return augmented
        return torch.lerp(self.original(*plain_args), augmented, context.strength)

    def reference_index(self, length: int) -> int | None:
        """The window position of the clip's frame 0 (None when the window does not hold it, or holds one frame)."""
        frames = self.context.frames
        if length < 2:
            return None
        if frames is None or len(frames) != length:
            return 0
        found = (frames == 0).nonzero()
        return int(found[0, 0]) if len(found) else None

    def warped_features(self, hidden_states: torch.Tensor, reference: int) -> torch.Tensor:
        """Frame 0's features [S, L, C] forward-warped to every other frame of the window: [S, L−1, C]."""
        context = self.context
        sequences, length, channels = hidden_states.shape
        height, width = context.layer_size(sequences)
        batch = sequences // (height * width)
        frames = context.frames if context.frames is not None and len(context.frames) == length else torch.arange(length)
        others = [i for i in range(length) if i != reference]
        source = hidden_states[:, reference].float()  # [S, C]
        positions = None
        if self.pos_embed is not None:
            positions = self.pos_embed(torch.zeros(1, length, channels, device=hidden_states.device)).float()[0]  # [L, C]
            source = source - positions[reference]
        source = rearrange(source, "(b h w) c -> b c h w", b=batch, h=height, w=width)  # [B, C, h, w]
        flow = context.flow_at(height, width, hidden_states.device)[frames[others].to(hidden_states.device)]  # [N, 2, h, w]
        count = len(others)
        warped = splat(
            source.repeat_interleave(count, dim=0), flow.repeat(batch, 1, 1, 1), "avg", backend=context.splat_backend
        )  # [B·N, C, h, w]
        warped = rearrange(warped, "(b n) c h w -> (b h w) n c", b=batch)  # [S, N, C]
        if positions is not None:
            warped = warped + positions[others]
        return warped.to(hidden_states.dtype)

    def augmented(self, attn: Any, hidden_states: torch.Tensor, reference: int) -> torch.Tensor:
        """Motion-augmented temporal attention of hidden_states [S, L, C]: [S, L, C], as AttnProcessor2_0 finishes it."""
        residual = hidden_states
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        warped = self.warped_features(hidden_states, reference)  # [S, N, C]
        return attend_with_extra(attn, hidden_states, warped, residual, self.context.attention_backend)


def attend_with_extra(attn: Any, real: torch.Tensor, extra: torch.Tensor, residual: torch.Tensor, backend: str) -> torch.Tensor:
    """An attention layer over real tokens [S, L, C] whose keys and values also hold extra tokens [S, N, C]: [S, L, C].

    The queries are the real tokens'; the output is finished as diffusers' AttnProcessor2_0 finishes
    it (out projection, residual connection, rescale), so with no extra tokens it is that processor's.
    """
    heads = attn.heads

    def split(t: torch.Tensor) -> torch.Tensor:
        return rearrange(t, "s l (n d) -> s n l d", n=heads)  # [S, heads, L or N, d]

    query, key, value = split(attn.to_q(real)), split(attn.to_k(real)), split(attn.to_v(real))
    key_extra, value_extra = split(attn.to_k(extra)), split(attn.to_v(extra))
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key, key_extra = attn.norm_k(key), attn.norm_k(key_extra)
    out = temporal_attention(query, key, value, key_extra, value_extra, attn.scale, backend=backend)  # [S, heads, L, d]
    out = attn.to_out[1](attn.to_out[0](rearrange(out, "s n l d -> s l (n d)").to(query.dtype)))  # [S, L, C]
    if attn.residual_connection:
        out = out + residual
    return out / attn.rescale_output_factor


def temporal_layers(unet: Any) -> dict[str, Any]:
    """The temporal self-attention layers of a UNet by processor key, each with the positional embedding added before it."""
    layers: dict[str, Any] = {}
    for name, module in unet.named_modules():
        if ".motion_modules." in f".{name}." and hasattr(module, "attn1") and hasattr(module, "pos_embed"):
            for attn in ("attn1", "attn2"):  # AnimateDiff: both are temporal self-attention
                if getattr(module, attn, None) is not None:
                    layers[f"{name}.{attn}.processor"] = module.pos_embed
        elif ".temporal_transformer_blocks." in f".{name}." and name.rsplit(".", 1)[-1].isdigit() and hasattr(module, "attn1"):
            layers[f"{name}.attn1.processor"] = None  # SVD: attn2 cross-attends to the image embedding
    return layers


@contextmanager
def installed(unet: Any, context: MotionAttentionContext) -> Iterator[None]:
    """Warped-attention processors on the UNet's temporal layers for the duration; the original processors after."""
    originals = unet.attn_processors
    layers = temporal_layers(unet)
    swapped = {key: WarpedAttnProcessor(proc, context, layers[key]) if key in layers else proc for key, proc in originals.items()}
    unet.set_attn_processor(swapped)
    try:
        yield
    finally:
        unet.set_attn_processor(originals)


class WarpedAttention:
    """A Denoiser wrapper: each call runs with the warped-attention processors installed and the step's state in the context."""

    def __init__(self, inner: Denoiser, unet: Any, context: MotionAttentionContext, active: Container[object]) -> None:
        self.inner = inner
        self.unet = unet
        self.context = context
        self.active = active  # the sigmas of the active steps (a steering StepWindow)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [B, Fw, C, h, w] at sigma → x0, the UNet's temporal attention augmented during the active steps."""
        if sigma not in self.active:
            return self.inner.denoise(x, sigma, frames)
        context = self.context
        context.frames, context.batch = frames.cpu(), x.shape[0] * context.guidance
        with installed(self.unet, context):
            return self.inner.denoise(x, sigma, frames)


def warp_attention(
    denoiser: Denoiser,
    config: WarpedAttentionParams,
    unet: Any,
    flow: torch.Tensor,
    latent_size: tuple[int, int],
    active: Container[object],
    guidance: int,
    backends: tuple[str | None, str | None] = (None, None),
) -> Denoiser:
    """Wrap the denoiser in warped attention when it applies (else return it unchanged).

    flow [F, 2, H, W] the plan's f_{0→i} in working pixels; latent_size (h, w) at the UNet's input;
    active the sigmas of the steps it acts in; guidance 2 when the UNet's batch doubles for guidance;
    backends the kernels' backend= of temporal_attention and splat (None: automatic).
    """
    if not uses_warped_attention(config):
        return denoiser
    context = MotionAttentionContext(flow, *latent_size, strength=config.warped_attention_strength, guidance=guidance)
    context.attention_backend, context.splat_backend = backends
    return WarpedAttention(denoiser, unet, context, active)
