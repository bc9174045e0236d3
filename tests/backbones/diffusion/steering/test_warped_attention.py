"""Motion-I2V's motion-augmented temporal attention (warped_attention) on one Attention module and the tiny backbones."""

from __future__ import annotations

import pytest
import torch

from motionforge import ConfigError, animate, compose_config
from motionforge.backbones.diffusion.steering import StepWindow, region, warped_attention
from motionforge.backbones.diffusion.steering.warped_attention import MotionAttentionContext, WarpedAttnProcessor
from tests.backbones.diffusion.steering.test_steering import BACKBONES, QUIET, box, reference, request, run


def attention_module() -> torch.nn.Module:
    """A small diffusers Attention (16 channels, 2 heads of 8) with random weights and biased output."""
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(0)
    return Attention(query_dim=16, heads=2, dim_head=8, bias=True).eval()


def reference_attention(attn: torch.nn.Module, hidden: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
    """Hand-written attention of hidden [S, L, C] over its own keys plus extra [S, N, C]: [S, L, C]."""
    heads, d = attn.heads, 8
    keys_in = torch.cat([hidden, extra], dim=1)  # [S, L+N, C]
    q = attn.to_q(hidden).view(len(hidden), -1, heads, d).transpose(1, 2)  # [S, heads, L, d]
    k = attn.to_k(keys_in).view(len(hidden), -1, heads, d).transpose(1, 2)  # [S, heads, L+N, d]
    v = attn.to_v(keys_in).view(len(hidden), -1, heads, d).transpose(1, 2)  # [S, heads, L+N, d]
    weights = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)  # [S, heads, L, L+N]
    out = (weights @ v).transpose(1, 2).reshape(len(hidden), -1, heads * d)  # [S, L, C]
    return attn.to_out[0](out)


@torch.no_grad()
def test_a_still_plan_attends_over_the_real_keys_and_copies_of_frame_0() -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0

    attn = attention_module()
    batch, height, width, frames = 2, 4, 3, 5  # batch 2: classifier-free guidance
    hidden = torch.randn(batch * height * width, frames, 16, generator=torch.Generator().manual_seed(1))  # [S, L, C]
    context = MotionAttentionContext(torch.zeros(frames, 2, 32, 24), height, width, guidance=2)
    context.frames, context.batch = torch.arange(frames), batch  # as the denoiser wrapper sets them
    processor = WarpedAttnProcessor(AttnProcessor2_0(), context)
    expected = reference_attention(attn, hidden, hidden[:, :1].expand(-1, frames - 1, -1))  # L−1 copies of frame 0
    assert torch.allclose(processor(attn, hidden), expected, atol=1e-5)
    context.strength = 0.25  # the output blends into plain attention
    plain = AttnProcessor2_0()(attn, hidden)  # [S, L, C]
    assert torch.allclose(processor(attn, hidden), 0.75 * plain + 0.25 * expected, atol=1e-5)
    context.strength = 0.0  # plain attention exactly
    assert torch.equal(processor(attn, hidden), plain)
    context.frames = torch.arange(1, frames + 1)  # a window without the clip's frame 0: plain attention
    context.strength = 1.0
    assert torch.equal(processor(attn, hidden), plain)


@torch.no_grad()
def test_a_moving_plan_warps_frame_0_to_each_frame_and_the_flows_are_resized_once() -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0

    attn = attention_module()
    height, width, frames = 4, 4, 3
    hidden = torch.randn(height * width, frames, 16, generator=torch.Generator().manual_seed(2))  # [S, L, C]
    flow = torch.zeros(frames, 2, 16, 16)  # working pixels, 4 per latent cell
    flow[:, 0] = 4.0 * torch.arange(frames, dtype=torch.float32)[:, None, None]  # frame i moves i cells right
    context = MotionAttentionContext(flow, height, width)
    processor = WarpedAttnProcessor(AttnProcessor2_0(), context)
    grid = hidden[:, 0].view(height, width, 16)  # frame 0 [h, w, C]
    extra = torch.zeros(frames - 1, height, width, 16)  # [N, h, w, C]: holes are 0 with avg splatting
    extra[0, :, 1:], extra[1, :, 2:] = grid[:, :-1], grid[:, :-2]
    expected = reference_attention(attn, hidden, extra.permute(1, 2, 0, 3).reshape(height * width, frames - 1, 16))
    assert torch.allclose(processor(attn, hidden), expected, atol=1e-5)
    assert list(context._flows) == [(4, 4, "cpu")]
    processor(attn, hidden)
    assert len(context._flows) == 1  # cached per resolution, not resized per call


@torch.no_grad()
def test_animatediffs_warped_copies_carry_their_own_frames_positional_encoding() -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding

    attn, embed = attention_module(), SinusoidalPositionalEmbedding(16, max_seq_length=32)
    frames = 4
    hidden = embed(torch.randn(9, frames, 16, generator=torch.Generator().manual_seed(3)))  # [S, L, C]: z_i + PE(i)
    context = MotionAttentionContext(torch.zeros(frames, 2, 3, 3), 3, 3)
    positions = embed(torch.zeros(1, frames, 16))[0]  # [L, C]
    extra = hidden[:, :1] - positions[0] + positions[1:]  # [S, L−1, C]: z_0 + PE(j)
    expected = reference_attention(attn, hidden, extra)
    assert torch.allclose(WarpedAttnProcessor(AttnProcessor2_0(), context, embed)(attn, hidden), expected, atol=1e-5)


def test_the_layer_size_follows_the_unets_levels() -> None:
    context = MotionAttentionContext(torch.zeros(2, 2, 40, 72), 5, 9, guidance=2)
    context.batch = 2
    assert [context.layer_size(2 * h * w) for h, w in ((5, 9), (3, 5), (2, 3), (1, 2))] == [(5, 9), (3, 5), (2, 3), (1, 2)]
    with pytest.raises(RuntimeError):
        context.layer_size(2 * 7)


def processors(name: str) -> dict:
    """The tiny backbone's UNet processors by key (the cached UNet the runs share)."""
    backbone, config_class, _ = BACKBONES[name]
    return backbone().load(config_class(), torch.device("cpu")).unet.attn_processors


@pytest.mark.parametrize("name", BACKBONES)
def test_warped_attention_changes_the_clip_strength_0_is_bit_identical_and_the_processors_are_restored(name) -> None:
    moving = request()
    before = processors(name)
    off, _ = run(name, moving)
    on, _ = run(name, moving, warped_attention=True)
    assert not torch.equal(off, on)
    assert processors(name) == before  # the shared UNet has its own processors back
    again, _ = run(name, moving)
    assert torch.equal(off, again)
    zero, _ = run(name, moving, warped_attention=True, warped_attention_strength=0.0)
    assert torch.equal(off, zero)
    late, _ = run(name, moving, warped_attention=True, warped_attention_start=0.5)
    assert not torch.equal(late, off) and not torch.equal(late, on)


def test_the_processors_are_restored_when_a_denoiser_call_fails() -> None:
    unet = BACKBONES["animatediff_tiny"][0]().load(BACKBONES["animatediff_tiny"][1](), torch.device("cpu")).unet
    before = unet.attn_processors
    seen: list = []

    class Failing:
        def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
            seen.append(type(unet.attn_processors[next(iter(warped_attention.temporal_layers(unet)))]).__name__)
            raise KeyboardInterrupt

    context = MotionAttentionContext(torch.zeros(4, 2, 64, 64), 8, 8)
    wrapper = warped_attention.WarpedAttention(Failing(), unet, context, StepWindow.of(torch.tensor([2.0, 1.0, 0.0]), 0.0, 1.0))
    with pytest.raises(KeyboardInterrupt):
        wrapper.denoise(torch.zeros(1, 4, 4, 8, 8), torch.tensor(2.0), torch.arange(4))
    assert seen == ["WarpedAttnProcessor"] and unet.attn_processors == before


def test_the_temporal_layers_are_the_motion_modules_and_svds_temporal_attn1() -> None:
    svd = warped_attention.temporal_layers(BACKBONES["svd_tiny"][0]().load(BACKBONES["svd_tiny"][1](), torch.device("cpu")).unet)
    assert svd and all(".temporal_transformer_blocks." in key and key.endswith("attn1.processor") for key in svd)
    assert all(embed is None for embed in svd.values())
    backbone, config_class, _ = BACKBONES["animatediff_tiny"]
    animated = warped_attention.temporal_layers(backbone().load(config_class(), torch.device("cpu")).unet)
    assert {key.rsplit(".", 2)[-2] for key in animated} == {"attn1", "attn2"}
    assert all(".motion_modules." in key and embed is not None for key, embed in animated.items())


@pytest.mark.parametrize("name", BACKBONES)
def test_a_camera_pan_through_the_config_with_guidance_changes_the_frames(name) -> None:
    keys = [f"backbone={name}", "adapters=[camera]", "adapters.camera.pan=[3,0]", "num_frames=4", "steps=2"]
    keys += ["output.save=false", *QUIET]
    off = animate(compose_config(keys)).frames
    on = animate(compose_config([*keys, "backbone.warped_attention=true"])).frames
    zero = animate(compose_config([*keys, "backbone.warped_attention=true", "backbone.warped_attention_strength=0"])).frames
    assert not torch.equal(torch.as_tensor(off), torch.as_tensor(on))
    assert torch.equal(torch.as_tensor(off), torch.as_tensor(zero))


@pytest.mark.parametrize("name", BACKBONES)
def test_warped_attention_combines_with_latent_init_and_the_region_hold(name) -> None:
    brushed = request(region=box())
    without, _ = run(name, brushed, latent_init=True)
    combined, _ = run(name, brushed, latent_init=True, warped_attention=True, warped_attention_strength=0.5)
    assert not torch.equal(without, combined)
    if name == "svd_tiny":  # the hold still lands the outside of the region on the reference exactly
        ref = reference(name, brushed)[:, None]  # [1, 1, C, h, w]
        outside = (region.feathered(box(), 8, 8, 1.0) == 0).expand_as(combined)  # [1, F, C, h, w]
        assert torch.equal(combined[outside], ref.expand_as(combined)[outside])


def test_a_run_with_warped_attention_follows_the_plan_in_its_notes() -> None:
    keys = ["backbone=svd_tiny", "adapters=[camera]", "adapters.camera.pan=[3,0]", "num_frames=4", "steps=2"]
    keys += ["output.save=false", *QUIET]
    plain = animate(compose_config(keys)).metadata["notes"]
    warped = animate(compose_config([*keys, "backbone.warped_attention=true"])).metadata["notes"]
    assert any("does not follow the motion plan" in note for note in plain)
    assert not any("does not follow the motion plan" in note for note in warped)


MISTAKES = {
    "warped_attention_strength=1.5": r"backbone.warped_attention_strength=1.5 must be in \[0, 1\]",
    "warped_attention_strength=-1": r"backbone.warped_attention_strength=-1.0 must be in \[0, 1\]",
    "warped_attention_start=0.5": r"0 <= warped_attention_start < warped_attention_end <= 1",
    "warped_attention_end=1.5": r"0 <= warped_attention_start < warped_attention_end <= 1",
    "warped_attention_start=-0.1": r"0 <= warped_attention_start < warped_attention_end <= 1",
}


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("override, message", MISTAKES.items(), ids=MISTAKES.keys())
def test_warped_attention_mistakes_are_one_sentence(name, override, message) -> None:
    keys = [
        f"backbone={name}",
        f"backbone.{override}",
        "backbone.warped_attention_end=0.5" if "start=0.5" in override else "seed=0",
    ]
    with pytest.raises(ConfigError, match=message):
        animate(compose_config([*keys, "adapters=[]", "num_frames=4", "steps=2", "output.save=false", *QUIET]))
