"""Reading weight files without running their code, and checking them key by key against a module."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file

from motionforge.core.errors import InputError
from motionforge.modules import checkpoints


class Payload:
    """An object whose unpickling would run a command (what a malicious checkpoint holds)."""

    def __reduce__(self):
        return (os.system, ("echo unpickled",))


def test_a_training_checkpoint_gives_its_state_dict_and_shapes_without_data(tmp_path):
    path = tmp_path / "ckpt_iter_1.pth.tar"
    torch.save({"step": 1, "state_dict": {"module.conv.weight": torch.ones(4, 3, 3, 3)}, "optimizer": {}}, path)
    assert checkpoints.read_shapes(path, "k") == {"module.conv.weight": (4, 3, 3, 3)}
    state = checkpoints.read_state_dict(path, "k")
    assert torch.equal(checkpoints.strip_prefix(state, "module.")["conv.weight"], torch.ones(4, 3, 3, 3))


def test_safetensors_shapes_come_from_the_header(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"a": torch.zeros(2, 5), "b": torch.zeros(7)}, str(path))
    assert checkpoints.read_shapes(path, "k") == {"a": (2, 5), "b": (7,)}


def test_a_pickle_that_would_run_code_is_refused_in_one_sentence(tmp_path, capfd):
    path = tmp_path / "motion_block.bin"
    torch.save({"x": Payload()}, path)
    with pytest.raises(InputError, match="runs? code|run code"):
        checkpoints.read_state_dict(path, "backbone.motion_i2v")
    assert "unpickled" not in capfd.readouterr().out


def test_files_that_are_not_weights_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a weights file"):
        checkpoints.weights_path(tmp_path / "notes.txt", "k", "CMP")
    with pytest.raises(InputError, match="does not exist"):
        checkpoints.weights_path(tmp_path / "missing.pth", "k", "CMP")
    (tmp_path / "broken.pth").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a readable torch file"):
        checkpoints.read_shapes(tmp_path / "broken.pth", "k")


def test_the_first_key_that_does_not_fit_is_named():
    expected = checkpoints.module_shapes(lambda: torch.nn.Conv2d(3, 8, 3))
    assert expected == {"weight": (8, 3, 3, 3), "bias": (8,)}
    assert checkpoints.mismatch(expected, expected) is None
    assert "bias has shape [9], expected [8]" in checkpoints.mismatch({**expected, "bias": (9,)}, expected)
    assert "lacks bias" in checkpoints.mismatch({"weight": (8, 3, 3, 3)}, expected)
    assert checkpoints.mismatch({"weight": (8, 3, 3, 3)}, expected, optional=lambda name: name == "bias") is None
    assert "extra.w, which the module does not have" in checkpoints.mismatch({**expected, "extra.w": (1,)}, expected)
