"""MOFA-Video's adapters: the released manifest key for key at full size, the facts shapes cannot show, and loading."""

from __future__ import annotations

import functools
import itertools
import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from motionforge.backbones.diffusion import tiny
from motionforge.core.errors import InputError
from motionforge.modules import checkpoints, mofa
from motionforge.modules.mofa import MofaAdapter, MofaSize

# SVD-xt 1.1's unet/config.json (diffusers' defaults are SVD's, num_frames 25)
SVD_XT_UNET = {
    "_class_name": "UNetSpatioTemporalConditionModel",
    "addition_time_embed_dim": 256,
    "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 1024,
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal"] * 3 + ["DownBlockSpatioTemporal"],
    "in_channels": 8,
    "layers_per_block": 2,
    "num_attention_heads": [5, 10, 20, 20],
    "num_frames": 25,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 768,
    "sample_size": 96,
    "transformer_layers_per_block": 1,
    "up_block_types": ["UpBlockSpatioTemporal"] + ["CrossAttnUpBlockSpatioTemporal"] * 3,
}
# what MOFA's FlowControlNet registers: its parent's defaults
PARENT_DEFAULTS = {
    "_class_name": "FlowControlNet",
    "_diffusers_version": "0.24.0",
    "addition_time_embed_dim": 256,
    "block_out_channels": [320, 640, 1280, 1280],
    "conditioning_channels": 3,
    "conditioning_embedding_out_channels": [16, 32, 96, 256],
    "cross_attention_dim": 1024,
    "down_block_types": SVD_XT_UNET["down_block_types"],
    "in_channels": 8,
    "layers_per_block": 2,
    "num_attention_heads": [5, 10, 10, 20],
    "num_frames": 25,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 768,
    "sample_size": None,
    "transformer_layers_per_block": 1,
    "up_block_types": SVD_XT_UNET["up_block_types"],
}
ENCODER_PREFIXES = ("conv_in.", "time_embedding.", "add_embedding.", "down_blocks.", "mid_block.")


def conv(name: str, out: int, inp: int, k: int) -> dict[str, tuple[int, ...]]:
    """A convolution's two entries in a manifest."""
    return {f"{name}.weight": (out, inp, k, k), f"{name}.bias": (out,)}


def embedding(name: str, widths: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """A conditioning embedding's manifest (§1.7): conv_in, six 3×3 blocks, conv_out to 320."""
    shapes = conv(f"{name}.conv_in", widths[0], 3, 3)
    for i, (narrow, wide) in enumerate(itertools.pairwise(widths)):
        shapes |= conv(f"{name}.blocks.{2 * i}", narrow, narrow, 3) | conv(f"{name}.blocks.{2 * i + 1}", wide, narrow, 3)
    return shapes | conv(f"{name}.conv_out", 320, widths[-1], 3)


def svd_encoder_shapes() -> dict[str, tuple[int, ...]]:
    """The same-prefix subset of a meta-built SVD-xt UNet."""
    from diffusers import UNetSpatioTemporalConditionModel

    config = {k: v for k, v in SVD_XT_UNET.items() if not k.startswith("_")}
    shapes = checkpoints.module_shapes(lambda: UNetSpatioTemporalConditionModel(**config))
    return {name: shape for name, shape in shapes.items() if name.startswith(ENCODER_PREFIXES)}


def traj_manifest() -> dict[str, tuple[int, ...]]:
    """The trajectory adapter's manifest as the notes write it from MOFA's construction rules."""
    shapes = svd_encoder_shapes()
    for i, c in enumerate([320] * 4 + [640] * 3 + [1280] * 5):
        shapes |= conv(f"controlnet_down_blocks.{i}", c, c, 1)
    shapes |= conv("controlnet_mid_block", 1280, 1280, 1) | embedding("controlnet_cond_embedding", (16, 32, 96, 256))
    for i, (out, inp) in enumerate([(320, 320), (640, 320), (1280, 640)]):
        shapes |= conv(f"flow_encoder.encoders.{i}.conv_in", out, inp, 3) | conv(f"flow_encoder.zeroconvs.{i}", out, out, 1)
    return shapes


def ldmk_manifest() -> dict[str, tuple[int, ...]]:
    """The keypoint adapter's: the trajectory one's without the zero convs, with the landmark embedding, zero_outs, occlusions."""
    shapes = {k: v for k, v in traj_manifest().items() if not k.startswith("flow_encoder.zeroconvs.")}
    shapes |= embedding("controlnet_ldmk_embedding", (16, 32, 64, 128))
    for scale, c in {"8": 320, "16": 320, "32": 640, "64": 1280}.items():
        shapes |= conv(f"zero_outs.{scale}", c, c, 1)
        hourglass = f"occlusions.{scale}.hourglass"
        for i, (out, inp) in enumerate([(128, 2 * c + 2), (256, 128), (512, 256)]):
            shapes |= conv(f"{hourglass}.encoder.down_blocks.{i}.conv", out, inp, 3)
        for i, (out, inp) in enumerate([(256, 512), (128, 512), (64, 256)]):
            shapes |= conv(f"{hourglass}.decoder.up_blocks.{i}.conv", out, inp, 3)
        shapes |= conv(f"occlusions.{scale}.matting_mask", 1, 64, 7) | conv(f"occlusions.{scale}.matting", c, 64, 7)
    return shapes


@pytest.mark.parametrize("kind, manifest", [("traj", traj_manifest), ("ldmk", ldmk_manifest)])
def test_the_full_size_adapter_is_the_released_manifest_key_for_key(kind, manifest) -> None:
    built = mofa.full_shapes(kind)
    expected = manifest()
    assert checkpoints.mismatch(built, expected) is None  # no missing, no extra, no mis-shaped key
    assert built == expected
    assert {k: v for k, v in built.items() if k.startswith(ENCODER_PREFIXES)} == svd_encoder_shapes()


def test_of_a_released_config_only_the_embedding_fields_change_the_module(tmp_path) -> None:
    released = {**PARENT_DEFAULTS, "conditioning_embedding_out_channels": [8, 16, 32, 64], "cross_attention_dim": 7}
    size = MofaSize.for_unet(SVD_XT_UNET, {**released, "num_attention_heads": [1, 1, 1, 1], "layers_per_block": 5})
    assert size == MofaSize(conditioning_embedding_out_channels=(8, 16, 32, 64))
    (tmp_path / "config.json").write_text(json.dumps({**PARENT_DEFAULTS, "block_out_channels": [64, 128, 256, 256]}))
    with pytest.raises(InputError, match=r"block_out_channels\[0\]=64, but the adapter feeds the UNet's 320 channels"):
        mofa.read_released_config(tmp_path, "backbone.mofa", "traj")


def test_the_encoder_is_svds_with_mofas_heads_whatever_the_config_says() -> None:
    from diffusers import UNetSpatioTemporalConditionModel

    released = {**PARENT_DEFAULTS, "num_attention_heads": [5, 10, 20, 20]}  # a config.json that says otherwise
    with torch.device("meta"):
        adapter = MofaAdapter(MofaSize.for_unet(SVD_XT_UNET, released))
        unet = UNetSpatioTemporalConditionModel(**{k: v for k, v in SVD_XT_UNET.items() if not k.startswith("_")})
    attention = "attentions.0.transformer_blocks.0.attn1"
    assert adapter.down_blocks[2].get_submodule(attention).heads == 10
    assert unet.down_blocks[2].get_submodule(attention).heads == 20
    heads = [adapter.down_blocks[i].get_submodule(attention).heads for i in range(3)] + [
        adapter.mid_block.attentions[0].transformer_blocks[0].attn1.heads
    ]
    assert heads == [5, 10, 10, 20]


@functools.cache
def tiny_unet():
    """The tiny SVD UNet of svd_tiny (seed 0), built once."""
    return tiny.tiny_svd_components()["unet"]


def test_the_picture_is_embedded_at_one_eighth_and_a_fresh_adapter_gives_zero_residuals() -> None:
    unet = tiny_unet()
    adapter = MofaAdapter(MofaSize.for_unet(unet.config), "traj")
    picture = torch.rand(1, 3, 64, 64) * 2 - 1
    embedded = adapter.controlnet_cond_embedding(picture)
    assert embedded.shape == (1, 32, 8, 8) and not embedded.any()  # zero conv_out
    sample, flow = torch.randn(1, 3, 8, 8, 8), torch.randn(1, 3, 2, 64, 64)
    down, mid = adapter(
        sample, torch.tensor(1.0), torch.randn(1, 1, 32), torch.ones(1, 3), picture, flow, torch.tensor([1, 0, 0]) > 0
    )
    assert len(down) == 6 and all(not r.any() for r in down) and not mid.any()


def test_flows_are_sampled_nearest_and_divided_by_the_scale() -> None:
    flow = torch.arange(2 * 64 * 64, dtype=torch.float32).view(1, 2, 64, 64)
    scaled = mofa.scaled_flows(flow, (4, 4), 16)
    assert torch.equal(scaled, flow[:, :, ::16, ::16] / 16)
    assert torch.equal(mofa.scaled_flows(flow[:, :, ::8, ::8], (4, 4), 16), scaled)  # from 1/8 as from the full frame


def random_features(kind: str = "traj") -> MofaAdapter:
    """A tiny adapter with its zero convolutions random, whose frame-0 features are not zero."""
    return mofa.randomise_zero_convs(MofaAdapter(MofaSize.for_unet(tiny_unet().config), kind), seed=1, std=0.5)


def test_zero_flow_keeps_frame_zeros_features_and_an_integer_shift_moves_them() -> None:
    adapter = random_features()
    picture = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        features = [adapter.controlnet_cond_embedding(picture)]
        features += adapter.flow_encoder(features[0])
        still = adapter.warped_features(picture, torch.zeros(1, 2, 2, 64, 64), torch.tensor([False, False]), 2)
        shift = torch.zeros(1, 1, 2, 64, 64)
        shift[:, :, 0] = 16.0  # 16 px right: 2 cells at 1/8, 1 at 1/16
        moved = adapter.warped_features(picture, shift, torch.tensor([False]), 1)
    for feature, warped in zip(features, still):
        assert torch.allclose(warped[:1], feature, atol=1e-5)
    assert torch.allclose(moved[0][..., 2:], features[0][..., :-2], atol=1e-5) and not moved[0][..., :2].any()
    assert torch.allclose(moved[1][..., 1:], features[1][..., :-1], atol=1e-5) and not moved[1][..., :1].any()
    kept = adapter.warped_features(picture, shift, torch.tensor([True]), 1)
    assert torch.equal(kept[0], features[0])  # the clip's frame 0 keeps its unwarped feature


def test_the_keypoint_adapter_mends_warped_features_and_draws_faces_in() -> None:
    adapter = random_features("ldmk")
    sample, picture = torch.randn(1, 2, 8, 8, 8), torch.rand(1, 3, 64, 64) * 2 - 1
    args = (sample, torch.tensor(1.0), torch.randn(1, 1, 32), torch.ones(1, 3), picture, torch.randn(1, 2, 2, 64, 64))
    faces = torch.zeros(1, 2, 3, 64, 64)
    with torch.no_grad():
        plain = adapter(*args, torch.tensor([True, False]), faces)
        drawn = adapter(*args, torch.tensor([True, False]), faces + 1)
    assert all(r.shape == (2, *shape) for r, shape in zip(plain[0], [(32, 8, 8)] * 3 + [(32, 4, 4)] + [(64, 4, 4)] * 2))
    assert not torch.allclose(plain[1], drawn[1])  # the landmark images change the residuals
    with pytest.raises(ValueError, match="drawn landmarks"):
        adapter(*args, torch.tensor([True, False]), None)


# ---------------------------------------------------------------------------------------------
# Released folders
# ---------------------------------------------------------------------------------------------


def write_folder(folder, state, config=PARENT_DEFAULTS):
    """A released adapter folder: config.json and diffusion_pytorch_model.safetensors."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "diffusion_pytorch_model.safetensors"))
    return folder


def test_a_released_folder_at_tiny_size_loads_strictly(tmp_path) -> None:
    unet = tiny_unet()
    source = random_features("traj")
    folder = write_folder(tmp_path / "ckpts" / "controlnet", source.state_dict())
    loaded = mofa.load_adapter(folder, "traj", unet.config, "backbone.mofa")
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in source.state_dict().items())
    assert not any(p.is_meta for p in loaded.parameters()) and not any(b.is_meta for b in loaded.buffers())


def test_a_wrong_shape_is_refused_naming_its_key(tmp_path) -> None:
    state = random_features("traj").state_dict()
    state["controlnet_down_blocks.3.weight"] = torch.zeros(32, 16, 1, 1)
    folder = write_folder(tmp_path / "controlnet", state)
    with pytest.raises(
        InputError, match=r"controlnet_down_blocks.3.weight has shape \[32, 16, 1, 1\], expected \[32, 32, 1, 1\]"
    ):
        mofa.load_adapter(folder, "traj", tiny_unet().config, "backbone.mofa")
    del state["controlnet_down_blocks.3.weight"]
    write_folder(folder, state)
    with pytest.raises(InputError, match=r"lacks controlnet_down_blocks.3.weight \(expected shape \[32, 32, 1, 1\]\)"):
        mofa.load_adapter(folder, "traj", tiny_unet().config, "backbone.mofa")


def test_folders_of_the_wrong_kind_are_one_sentence(tmp_path) -> None:
    unet = tiny_unet()
    keypoint = write_folder(tmp_path / "ldmk_controlnet", random_features("ldmk").state_dict())
    with pytest.raises(InputError, match="holds MOFA-Video's keypoint adapter .*pass it as backbone.mofa_landmark"):
        mofa.load_adapter(keypoint, "traj", unet.config, "backbone.mofa")
    unet.save_pretrained(tmp_path / "unet")
    with pytest.raises(InputError, match="holds a UNetSpatioTemporalConditionModel, not MOFA-Video's trajectory adapter"):
        mofa.load_adapter(tmp_path / "unet", "traj", unet.config, "backbone.mofa")
    (keypoint / "config.json").unlink()
    with pytest.raises(InputError, match="has no config.json; download the whole adapter folder"):
        mofa.load_adapter(keypoint, "ldmk", unet.config, "backbone.mofa_landmark")
    with pytest.raises(InputError, match="holds no diffusion_pytorch_model.safetensors"):
        mofa.load_adapter(tmp_path, "traj", unet.config, "backbone.mofa")


def sparse_safetensors(path, shapes: dict[str, tuple[int, ...]]) -> None:
    """A safetensors file with these shapes whose data is never written (a sparse file): a full-size header, no gigabytes."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 2 * int(torch.Size(shape).numel())  # float16
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text)
        handle.truncate(8 + len(text) + offset)


def test_weight_kinds_read_a_full_size_folder_from_its_header(tmp_path) -> None:
    kinds = {kind.name: kind for kind in mofa.WEIGHT_KINDS}
    assert set(kinds) == {"mofa_traj", "mofa_ldmk"}
    folder = tmp_path / "ckpts" / "controlnet"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(PARENT_DEFAULTS))
    sparse_safetensors(folder / "diffusion_pytorch_model.safetensors", traj_manifest())
    found = kinds["mofa_traj"].read(folder)
    assert checkpoints.mismatch(found, kinds["mofa_traj"].expected()) is None
    assert kinds["mofa_ldmk"].read(folder) is None  # the trajectory adapter's zero convs: not the keypoint adapter
    assert kinds["mofa_traj"].read(folder / "config.json") is None and kinds["mofa_ldmk"].read(tmp_path) is None
    (folder / "config.json").write_text(json.dumps(SVD_XT_UNET))
    assert kinds["mofa_traj"].read(folder) is None  # an SVD UNet's folder
