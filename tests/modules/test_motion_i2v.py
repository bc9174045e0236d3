"""Motion-I2V's motion_block.bin: its manifest at full size, its mapping onto MotionAdapter, and strict, code-free loading."""

from __future__ import annotations

import pytest
import torch

from motionforge import InputError
from motionforge.modules import checkpoints, motion_i2v


def manifest_from_the_notes() -> dict[str, tuple[int, ...]]:
    """The released keys and shapes, written from the notes' rules (§2.3): AnimateDiff-v2 modules in the UNet namespace."""
    modules = [
        (f"{kind}.{i}.motion_modules.{j}", channels)
        for kind, widths, per_block in (("down_blocks", (320, 640, 1280, 1280), 2), ("up_blocks", (1280, 1280, 640, 320), 3))
        for i, channels in enumerate(widths)
        for j in range(per_block)
    ] + [("mid_block.motion_modules.0", 1280)]
    assert len(modules) == 21
    shapes: dict[str, tuple[int, ...]] = {}
    for module, c in modules:
        root = f"{module}.temporal_transformer"
        block = f"{root}.transformer_blocks.0"
        for name in ("norm", "transformer_blocks.0.norms.0", "transformer_blocks.0.norms.1", "transformer_blocks.0.ff_norm"):
            shapes[f"{root}.{name}.weight"], shapes[f"{root}.{name}.bias"] = (c,), (c,)
        for name in ("proj_in", "proj_out"):
            shapes[f"{root}.{name}.weight"], shapes[f"{root}.{name}.bias"] = (c, c), (c,)
        for k in (0, 1):
            attention = f"{block}.attention_blocks.{k}"
            for name in ("to_q", "to_k", "to_v"):
                shapes[f"{attention}.{name}.weight"] = (c, c)
            shapes[f"{attention}.to_out.0.weight"], shapes[f"{attention}.to_out.0.bias"] = (c, c), (c,)
            shapes[f"{attention}.pos_encoder.pe"] = (1, 32, c)
        shapes[f"{block}.ff.net.0.proj.weight"], shapes[f"{block}.ff.net.0.proj.bias"] = (8 * c, c), (8 * c,)
        shapes[f"{block}.ff.net.2.weight"], shapes[f"{block}.ff.net.2.bias"] = (c, 4 * c), (c,)
    return shapes


def test_the_full_size_module_holds_the_notes_manifest_key_for_key_and_shape_for_shape() -> None:
    expected = manifest_from_the_notes()
    assert len(expected) == 21 * 28
    assert motion_i2v.released_shapes(motion_i2v.FULL_CONFIG) == expected


def test_renamed_the_manifest_is_a_default_diffusers_motion_adapter() -> None:
    from diffusers import MotionAdapter

    renamed = {motion_i2v.diffusers_name(name): shape for name, shape in manifest_from_the_notes().items()}
    renamed.pop(None)  # the second attention's positional table: diffusers keeps one per block
    assert renamed == checkpoints.module_shapes(MotionAdapter)
    assert motion_i2v.WEIGHT_KINDS[0].expected() == renamed


def test_diffusers_names_follow_diffusers_own_conversion() -> None:
    name = motion_i2v.diffusers_name
    assert name("up_blocks.2.motion_modules.1.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_out.0.bias") == (
        "up_blocks.2.motion_modules.1.transformer_blocks.0.attn2.to_out.0.bias"
    )
    assert name("mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.ff_norm.weight") == (
        "mid_block.motion_modules.0.transformer_blocks.0.norm3.weight"
    )
    assert name("down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.norms.0.bias") == (
        "down_blocks.0.motion_modules.0.transformer_blocks.0.norm1.bias"
    )
    assert name("down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe") == (
        "down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe"
    )
    assert (
        name("down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe") is None
    )
    assert name("conv_in.weight") == "conv_in.weight"  # not a motion module's: left as it is, so it counts as extra


@pytest.fixture
def module() -> torch.nn.Module:
    """The tiny Motion-I2V module (random weights, seed 0)."""
    return motion_i2v.tiny()


@pytest.mark.parametrize("suffix", [".bin", ".safetensors"])
def test_a_released_file_in_the_unet_namespace_loads_every_weight(module, tmp_path, suffix) -> None:
    path = motion_i2v.save(module, tmp_path / f"motion_block{suffix}")
    assert all(".temporal_transformer." in name for name in checkpoints.read_shapes(path, "test"))
    loaded = motion_i2v.load(path, motion_i2v.TINY_CONFIG)
    want, got = module.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[name], got[name]) for name in want)


def test_a_file_without_positional_tables_gets_the_sinusoid(module, tmp_path) -> None:
    state = {name: t for name, t in motion_i2v.to_released(module.state_dict()).items() if not name.endswith("pe")}
    torch.save(state, tmp_path / "motion_block.bin")
    loaded = motion_i2v.load(tmp_path / "motion_block.bin", motion_i2v.TINY_CONFIG)
    table = loaded.state_dict()["down_blocks.1.motion_modules.0.transformer_blocks.0.pos_embed.pe"]  # [1, 32, 64]
    position, channel = 5, 6
    assert table[0, position, channel].item() == pytest.approx(torch.sin(torch.tensor(position / 10000 ** (channel / 64))).item())


BAD = {
    "wrong shape": "up_blocks.1.motion_modules.2.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_v.weight",
    "missing": "mid_block.motion_modules.0.temporal_transformer.proj_out.bias",
    "extra": "conv_in.weight",
}


@pytest.mark.parametrize("fault", BAD)
def test_a_file_that_does_not_fit_is_refused_in_one_sentence_naming_its_key(module, tmp_path, fault) -> None:
    state = motion_i2v.to_released(module.state_dict())
    key = BAD[fault]
    if fault == "wrong shape":
        state[key] = torch.zeros(3, 3)
    elif fault == "missing":
        del state[key]
    else:
        state[key] = torch.zeros(32, 4, 3, 3)
    torch.save(state, tmp_path / "motion_block.bin")
    with pytest.raises(InputError) as error:
        motion_i2v.load(tmp_path / "motion_block.bin", motion_i2v.TINY_CONFIG)
    message = str(error.value)
    assert key in message and "backbone.motion_i2v=" in message and "\n" not in message
    if fault == "wrong shape":
        assert "has shape [3, 3], expected [32, 32]" in message  # the tiny up_blocks.1 has C = 32


def test_two_positional_tables_that_disagree_are_refused(module, tmp_path) -> None:
    state = motion_i2v.to_released(module.state_dict())
    second = "down_blocks.0.motion_modules.1.temporal_transformer.transformer_blocks.0.attention_blocks.1.pos_encoder.pe"
    state[second] = state[second] + 1
    torch.save(state, tmp_path / "motion_block.bin")
    with pytest.raises(InputError, match="attention_blocks.1.pos_encoder.pe differs"):
        motion_i2v.load(tmp_path / "motion_block.bin", motion_i2v.TINY_CONFIG)


def test_a_pickle_that_would_run_code_is_refused(tmp_path) -> None:
    torch.save({"optimizer": torch.optim.SGD}, tmp_path / "motion_block.bin")  # a class: only a full unpickler would import it
    with pytest.raises(InputError, match="run code"):
        motion_i2v.load(tmp_path / "motion_block.bin", motion_i2v.TINY_CONFIG)


def test_weights_check_recognises_the_file_by_its_layout(module, tmp_path) -> None:
    kind = motion_i2v.WEIGHT_KINDS[0]
    assert kind.name == "motion_i2v"
    path = motion_i2v.save(module, tmp_path / "motion_block.bin")
    assert kind.read(path) == motion_i2v.adapter_shapes(motion_i2v.TINY_CONFIG)
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "other.bin")
    assert kind.read(tmp_path / "other.bin") is None
    assert kind.read(tmp_path) is None
    assert kind.optional("down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe")
