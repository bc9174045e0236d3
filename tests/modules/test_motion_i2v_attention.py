"""Motion-I2V's attention processor against a naive reference: interleaving, positions 0 … 2L−2, real-frame queries."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from motionforge.modules import motion_i2v
from motionforge.modules.motion_i2v_attention import (
    MotionI2VAttention,
    MotionI2VAttnProcessor,
    MotionI2VContext,
    installed,
    motion_modules,
)

B, H, W, L, C, HEADS = 2, 3, 4, 4, 8, 2


def naive_splat_avg(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Forward-splat x [C, h, w] by flow [2, h, w], bilinear shares averaged per target pixel, one source pixel at a time."""
    channels, height, width = x.shape
    total, weight = torch.zeros(channels, height, width, dtype=torch.float64), torch.zeros(height, width, dtype=torch.float64)
    for y in range(height):
        for x0 in range(width):
            tx, ty = x0 + float(flow[0, y, x0]), y + float(flow[1, y, x0])
            left, top = math.floor(tx), math.floor(ty)
            for cx, cy in ((left, top), (left + 1, top), (left, top + 1), (left + 1, top + 1)):
                share = (1 - abs(tx - cx)) * (1 - abs(ty - cy))
                if 0 <= cx < width and 0 <= cy < height and share > 0:
                    total[:, cy, cx] += share * x[:, y, x0].double()
                    weight[cy, cx] += share
    return torch.where(weight > 0, total / weight.clamp_min(1e-12), 0.0).float()


def naive_motion_i2v(attn: Attention, hidden: torch.Tensor, flows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Motion-I2V's attention written out: hidden [B·h·w, L, C], flows [L−1, 2, h, w] from frame 0, table [1, P, C]."""
    grid = hidden.reshape(B, H, W, L, C)  # the (b h w) order of a motion module's sequences
    out = torch.zeros_like(hidden)
    for b in range(B):
        frame0 = grid[b, :, :, 0].permute(2, 0, 1)  # [C, h, w]
        warped = [naive_splat_avg(frame0, flows[t - 1]).permute(1, 2, 0) for t in range(1, L)]  # [h, w, C] each
        for y in range(H):
            for x in range(W):
                sequence = []  # [f0, w1, f1, w2, …, w_{L−1}, f_{L−1}]
                for t in range(L):
                    if t > 0:
                        sequence.append(warped[t - 1][y, x])
                    sequence.append(grid[b, y, x, t])
                tokens = torch.stack(sequence) + table[0, : 2 * L - 1]  # [2L−1, C], positions 0 … 2L−2
                queries = attn.to_q(tokens[0::2])  # the real frames only: [L, C]
                keys, values = attn.to_k(tokens), attn.to_v(tokens)  # all 2L−1: [2L−1, C]
                heads = []
                for n in range(HEADS):
                    part = slice(n * C // HEADS, (n + 1) * C // HEADS)
                    scores = torch.einsum("ld,md->lm", queries[:, part], keys[:, part]) / math.sqrt(C // HEADS)
                    heads.append(scores.softmax(-1) @ values[:, part])  # [L, d]
                out[b * H * W + y * W + x] = attn.to_out[0](torch.cat(heads, dim=-1))
    return out


@pytest.fixture
def attn() -> Attention:
    """A temporal self-attention layer as AnimateDiff's motion modules have it, random weights."""
    torch.manual_seed(0)
    return Attention(query_dim=C, heads=HEADS, dim_head=C // HEADS, bias=False).eval()


def table() -> torch.Tensor:
    """A positional table with distinct rows (random, so that a wrong position shows): [1, 32, C]."""
    return torch.randn(1, 32, C, generator=torch.Generator().manual_seed(1))


def test_the_processor_is_the_naive_interleaved_attention(attn) -> None:
    hidden = torch.randn(B * H * W, L, C, generator=torch.Generator().manual_seed(2))
    flow = torch.randn(L, 2, H, W, generator=torch.Generator().manual_seed(3)) * 1.5
    flow[0] = 0  # frame 0 does not move
    context = MotionI2VContext(flow, size=(H, W))
    positions = table()
    with torch.no_grad():
        got = MotionI2VAttnProcessor(context, positions)(attn, hidden)
        want = naive_motion_i2v(attn, hidden, flow[1:], positions)
    assert got.shape == (B * H * W, L, C)
    assert torch.allclose(got, want, atol=1e-5)


def test_with_zero_flow_and_identical_frames_it_is_attention_over_2l_minus_1_tokens(attn) -> None:
    frame = torch.randn(B * H * W, 1, C, generator=torch.Generator().manual_seed(4))
    positions = table()
    context = MotionI2VContext(torch.zeros(L, 2, H, W), size=(H, W))
    with torch.no_grad():
        got = MotionI2VAttnProcessor(context, positions)(attn, frame.expand(-1, L, -1))
        tokens = frame.expand(-1, 2 * L - 1, -1) + positions[:, : 2 * L - 1]  # [S, 2L−1, C]
        plain = AttnProcessor2_0()(attn, tokens)[:, 0::2]  # every token attends over the 2L−1; the real frames kept
    assert torch.allclose(got, plain, atol=1e-5)


def test_a_window_without_frame_0_takes_its_first_frame_as_reference_with_relative_flows() -> None:
    flow = torch.zeros(8, 2, H * 4, W * 4)
    flow[:, 0] = torch.arange(8.0).view(8, 1, 1)  # frame t is frame 0 moved t pixels right
    context = MotionI2VContext(flow, frames=torch.tensor([3, 4, 5, 6]))
    relative = context.flows(4, H * 4, W * 4, torch.device("cpu"))  # [3, 2, h, w] f_{3→t} on frame 3's pixels
    landed = (slice(None), slice(None), slice(None), slice(3, None))  # frame 0's pixels reach columns 3 … of frame 3
    assert torch.allclose(relative[landed][:, 0], torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1).expand(3, H * 4, W * 4 - 3))
    assert torch.equal(relative[:, 1], torch.zeros(3, H * 4, W * 4))
    assert torch.equal(
        MotionI2VContext(flow, frames=torch.tensor([0, 4, 5])).flows(3, H * 4, W * 4, torch.device("cpu")), flow[[4, 5]]
    )


def test_installed_runs_every_motion_module_through_it_and_undoes_everything_after(monkeypatch) -> None:
    from motionforge.backbones.diffusion import motion_adapter, tiny

    unet = motion_adapter.motion_unet(tiny.tiny_sd_components()["unet"], motion_i2v.tiny())
    blocks = [block for module in motion_modules(unet).values() for block in module.transformer_blocks]
    tables, before = [block.pos_embed for block in blocks], dict(unet.attn_processors)
    seen, call = [], MotionI2VAttnProcessor.__call__

    def spy(self, attn, hidden_states, *args, **kwargs):
        seen.append((self.context.size, hidden_states.shape[1], all(block.pos_embed is None for block in blocks)))
        return call(self, attn, hidden_states, *args, **kwargs)

    monkeypatch.setattr(MotionI2VAttnProcessor, "__call__", spy)
    sample, text = torch.randn(1, 4, 5, 8, 8), torch.randn(5, 77, 32)  # [B, C, F, h, w], a prompt per frame
    with torch.no_grad(), installed(unet, MotionI2VContext(torch.zeros(5, 2, 64, 64))):
        unet(sample, torch.tensor(10), encoder_hidden_states=text)
    # 11 modules (down 2 + 2, mid 1, up 3 + 3), attn1 and attn2 each; 8×8 latents at the first level, 4×4 at the second
    assert len(seen) == 22
    assert {size for size, _, _ in seen} == {(8, 8), (4, 4)} and all(frames == 5 and off for _, frames, off in seen)
    assert unet.attn_processors == before
    assert [block.pos_embed for block in blocks] == tables


def test_the_denoiser_wrapper_tells_the_processors_the_window() -> None:
    context = MotionI2VContext(torch.zeros(4, 2, 8, 8))

    class Inner:
        def denoise(self, x, sigma, frames):
            return x

    class Model(torch.nn.Module):
        attn_processors: ClassVar[dict] = {}

        def set_attn_processor(self, processors):
            pass

    wrapped = MotionI2VAttention(Inner(), Model(), context)
    x = torch.zeros(1, 2, 4, 8, 8)
    assert torch.equal(wrapped.denoise(x, torch.tensor(1.0), torch.tensor([2, 3])), x)
    assert context.frames.tolist() == [2, 3]
