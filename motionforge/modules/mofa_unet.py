"""SVD's UNet forward with ControlNet residuals added as MOFA-Video's trained adapters expect them.

diffusers' ``UNetSpatioTemporalConditionModel.forward`` takes no residuals, so this is the same
forward over the stock modules and weights, with one difference that MOFA's released UNet has:
after every down block, the residuals are added to *all* the skips gathered so far, so the skip k
gathered in block b receives its residual once per block from b on. At full size (skips
1 + 3 + 3 + 3 + 2) that is ×[4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1] (:func:`multiplicities`); the mid
block's residual is added once. The adapters were trained with this, so it is reproduced as is.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange, repeat


def skip_counts(unet: Any) -> list[int]:
    """How many skips the UNet has gathered after conv_in and after each down block: [1, 4, 7, 10, 12] for SVD."""
    counts = [1]
    for block in unet.down_blocks:
        counts.append(counts[-1] + len(block.resnets) + (1 if block.downsamplers is not None else 0))
    return counts


def multiplicities(unet: Any) -> list[int]:
    """How many times :func:`forward` adds each skip's residual: the blocks after which that skip had been gathered."""
    gathered = skip_counts(unet)[1:]
    return [sum(1 for count in gathered if count > k) for k in range(gathered[-1])]


def forward(
    unet: Any,
    sample: torch.Tensor,
    timestep: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    added_time_ids: torch.Tensor,
    down_residuals: list[torch.Tensor] | None = None,
    mid_residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """SVD's UNet on sample [B, F, 8, h, w] → [B, F, 4, h, w], the residuals ([B·F, C, h_k, w_k] per skip) added MOFA's way.

    Without residuals this is diffusers' forward exactly (same modules, same operations, same order).
    """
    batch, frames = sample.shape[:2]
    timesteps = torch.as_tensor(timestep, device=sample.device).reshape(-1)  # [1] or [B] (one per row, as in training)
    timesteps = timesteps.expand(batch) if timesteps.numel() == 1 else timesteps  # [B]
    emb = unet.time_embedding(unet.time_proj(timesteps).to(dtype=sample.dtype))  # [B, T]
    time_embeds = unet.add_time_proj(added_time_ids.flatten()).reshape(batch, -1).to(emb.dtype)  # [B, 3·A]
    emb = repeat(emb + unet.add_embedding(time_embeds), "b t -> (b f) t", f=frames)  # [B·F, T]
    context = repeat(encoder_hidden_states, "b n d -> (b f) n d", f=frames)  # [B·F, 1, D]
    hidden = unet.conv_in(rearrange(sample, "b f c h w -> (b f) c h w"))  # [B·F, C0, h, w]
    indicator = torch.zeros(batch, frames, dtype=hidden.dtype, device=hidden.device)  # [B, F]
    skips: list[torch.Tensor] = [hidden]
    for block in unet.down_blocks:
        kwargs = {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
        hidden, outputs = block(hidden_states=hidden, temb=emb, image_only_indicator=indicator, **kwargs)
        skips.extend(outputs)
        if down_residuals is not None:  # MOFA: every skip so far gets its residual again
            skips = [skip + residual for skip, residual in zip(skips, down_residuals)] + skips[len(down_residuals) :]
    hidden = unet.mid_block(hidden_states=hidden, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator)
    if mid_residual is not None:
        hidden = hidden + mid_residual
    up_factor = 2**unet.num_upsamplers
    forward_size = any(s % up_factor != 0 for s in sample.shape[-2:])
    for index, block in enumerate(unet.up_blocks):
        count = len(block.resnets)
        outputs, skips = tuple(skips[-count:]), skips[:-count]
        size = skips[-1].shape[2:] if forward_size and index < len(unet.up_blocks) - 1 else None
        kwargs = {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
        hidden = block(
            hidden_states=hidden,
            temb=emb,
            res_hidden_states_tuple=outputs,
            upsample_size=size,
            image_only_indicator=indicator,
            **kwargs,
        )
    hidden = unet.conv_out(unet.conv_act(unet.conv_norm_out(hidden)))  # [B·F, 4, h, w]
    return rearrange(hidden, "(b f) c h w -> b f c h w", b=batch)
