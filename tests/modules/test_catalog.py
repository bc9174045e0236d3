"""Which released module a file holds, and whether every key and shape matches: the catalog behind `weights check`."""

from __future__ import annotations

import json
import math
import struct

import pytest
import torch
from safetensors.torch import save_file

from motionforge.core.errors import InputError
from motionforge.modules import catalog
from motionforge.modules.cmp import expected_shapes
from motionforge.modules.cmp.loading import tolerated


def released_cmp(tmp_path, change=None, name="ckpt_iter_42000.pth.tar"):
    """A file in the released CMP layout (``module.`` keys, no num_batches_tracked) whose tensors are stride-0 views."""
    state = {f"module.{k}": torch.zeros(()).expand(v) for k, v in expected_shapes().items() if not tolerated(k)}
    if change:
        change(state)
    path = tmp_path / name
    torch.save({"step": 42000, "state_dict": state, "optimizer": {}}, path)
    return path


def test_every_module_of_the_list_gives_its_kinds() -> None:
    assert catalog.MODULES[0] == "motionforge.modules.cmp"
    assert [kind.name for kind in catalog.kinds()][:1] == ["cmp"]


def test_the_released_cmp_file_matches_every_tensor(tmp_path) -> None:
    verdict = catalog.check(released_cmp(tmp_path))
    assert verdict.matches and verdict.known and verdict.status == 0
    assert verdict.tensors == len([k for k in expected_shapes() if not tolerated(k)])
    assert verdict.line() == (
        f"ckpt_iter_42000.pth.tar: CMP, MOFA-Video's sparse-to-dense flow network — all {verdict.tensors} tensors match "
        "(num_batches_tracked absent, as released)"
    )


def test_a_wrong_shape_is_the_first_mismatch(tmp_path) -> None:
    path = released_cmp(tmp_path, lambda s: s.update({"module.flow_decoder.head.bias": torch.zeros(197)}))
    verdict = catalog.check(path)
    assert not verdict.matches and verdict.known and verdict.status == 1
    assert verdict.line().endswith("but it does not match: flow_decoder.head.bias has shape [197], expected [198]")


def test_a_file_of_no_known_module_names_the_closest_kind(tmp_path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3)}, str(path))
    verdict = catalog.check(path)
    assert not verdict.matches and not verdict.known
    assert verdict.line().startswith("other.safetensors: no module motionforge knows; the closest is CMP")
    assert "it lacks image_encoder.conv1.weight (expected shape [64, 3, 7, 7])" in verdict.line()
    assert verdict.record()["kind"] == "cmp" and verdict.record()["matches"] is False


def test_a_folder_or_file_no_kind_is_stored_as_says_so(tmp_path) -> None:
    verdict = catalog.check(tmp_path)
    assert verdict.kind is None and verdict.status == 1
    assert "no module motionforge knows is stored this way (it is a folder that none of its kinds (cmp, " in verdict.line()
    (tmp_path / "notes.txt").write_text("hello")
    assert "(it is a file that none of its kinds" in catalog.check(tmp_path / "notes.txt").line()


def sparse_safetensors(path, shapes) -> None:
    """A safetensors file of fp16 tensors of these shapes whose data is a hole (a sparse file: no disk, any size)."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 2 * math.prod(shape)
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(blob)) + blob)
        handle.truncate(8 + len(blob) + offset)


def test_a_diffusers_unet_folder_is_checked_against_the_released_layout(tmp_path) -> None:
    from motionforge.modules.diffusers_folders import sd15_unet_shapes

    folder = tmp_path / "unet"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel", "cross_attention_dim": 768}))
    shapes = sd15_unet_shapes()
    sparse_safetensors(folder / "diffusion_pytorch_model.fp16.safetensors", shapes)
    verdict = catalog.check(folder)
    assert verdict.matches and verdict.kind.name == "sd15_unet"
    assert verdict.line() == f"unet: the UNet of Stable Diffusion 1.5 (a diffusers folder) — all {len(shapes)} tensors match"
    sparse_safetensors(folder / "diffusion_pytorch_model.fp16.safetensors", {**shapes, "conv_in.weight": (320, 9, 3, 3)})
    assert (
        catalog.check(folder).line().endswith("does not match: conv_in.weight has shape [320, 9, 3, 3], expected [320, 4, 3, 3]")
    )
    (folder / "diffusion_pytorch_model.fp16.safetensors").unlink()
    with pytest.raises(InputError, match="has a config.json but no diffusion_pytorch_model weights"):
        catalog.check(folder)


def test_missing_and_unreadable_paths_are_one_sentence(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        catalog.check(tmp_path / "missing.pth.tar")
    (tmp_path / "broken.pth.tar").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a readable torch file"):
        catalog.check(tmp_path / "broken.pth.tar")


def released_motion_block(tmp_path, wrong: str | None = None):
    """A full-size motion_block.bin in the released UNet namespace, stride-0 tensors (one key given a wrong shape)."""
    from motionforge.modules import motion_i2v

    shapes = motion_i2v.released_shapes(motion_i2v.FULL_CONFIG)
    state = {k: torch.zeros(()).expand((3,) if k == wrong else shape) for k, shape in shapes.items()}
    path = tmp_path / "motion_block.bin"
    torch.save(state, path)
    return path, sorted(shapes)


def test_motion_i2vs_motion_block_is_recognised_and_a_wrong_shape_named(tmp_path) -> None:
    path, names = released_motion_block(tmp_path)
    verdict = catalog.check(path)
    assert verdict.matches and verdict.status == 0 and "Motion-I2V" in verdict.line()
    path, _ = released_motion_block(tmp_path, wrong=names[0])
    verdict = catalog.check(path)
    assert verdict.known and not verdict.matches and verdict.status == 1
    from motionforge.modules.motion_i2v import diffusers_name

    assert f"{diffusers_name(names[0])} has shape [3]" in verdict.line()  # named as the module (diffusers) names it
