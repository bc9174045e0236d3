"""AnimateDiff with Motion-I2V's trained motion module (backbone.motion_i2v), driven by motionforge's dense plan."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from motionforge.cli import main
from motionforge.modules import motion_i2v
from motionforge.modules.motion_i2v_attention import MotionI2VAttnProcessor
from tests.backbones.diffusion.conftest import read_png_frames
from tests.test_cli_failures import one_error

TINY = ["backbone=animatediff_tiny", "backbone.motion_i2v=tiny"]
SMALL = [
    "height=64",
    "width=64",
    "steps=1",
    "seed=3",
    "progress=false",
    "output.mp4=false",
    "output.gif=false",
    "output.frames=true",
]


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    """A dense flow f_{0→i} for 8 frames at 64×64 (frame i: the picture moved i pixels right and i/2 down): [8, 2, 64, 64]."""
    steps = np.arange(8, dtype=np.float32)
    flow = np.zeros((8, 2, 64, 64), dtype=np.float32)
    flow[:, 0], flow[:, 1] = steps[:, None, None], steps[:, None, None] / 2
    np.save(tmp_path / "flow.npy", flow)
    return tmp_path / "flow.npy"


def animate(*args: str, out: str = "run") -> dict:
    """Run ``motionforge animate`` on the arguments; the manifest of the run folder it wrote."""
    assert main(["animate", *args, f"output.dir={out}"]) == 0
    return json.loads(Path(out, "manifest.json").read_text())


def test_a_dense_flow_drives_the_modules_attention_and_the_manifest_says_it_ran(flow_file, monkeypatch) -> None:
    calls, call = [], MotionI2VAttnProcessor.__call__
    monkeypatch.setattr(MotionI2VAttnProcessor, "__call__", lambda self, *a, **k: calls.append(1) or call(self, *a, **k))
    manifest = animate(*TINY, "adapters=[dense_flow]", f"adapters.dense_flow.file={flow_file}", "num_frames=8", *SMALL)
    assert manifest["steering"] == ["motion_i2v"]
    assert any("Motion-I2V's motion module (tiny) ran" in note for note in manifest["notes"])
    assert len(calls) == 22  # 1 step × 11 motion modules × (attn1, attn2); guidance batches within a call
    assert read_png_frames(Path("run/frames")).shape == (8, 64, 64, 3)


def test_trajectories_drive_it_the_same_seed_gives_the_same_bytes_and_the_flow_matters() -> None:
    track = ["adapters=[trajectory]", "adapters.trajectory.paths=[[[20,20],[44,36]]]", "num_frames=4", *SMALL]
    animate(*TINY, *track, out="a")
    animate(*TINY, *track, out="b")
    animate(*TINY, "adapters=[]", "num_frames=4", *SMALL, out="still")
    frames = {name: sorted(Path(name, "frames").glob("*.png")) for name in ("a", "b", "still")}
    assert [p.read_bytes() for p in frames["a"]] == [p.read_bytes() for p in frames["b"]]
    assert read_png_frames(Path("a/frames")).tobytes() != read_png_frames(Path("still/frames")).tobytes()


def test_a_long_clip_runs_in_16_frame_windows_and_longer_windows_are_refused(flow_file, capsys) -> None:
    manifest = animate(*TINY, "adapters=[]", "num_frames=18", "sampler=periodic_overlap", *SMALL)
    assert manifest["steering"] == ["motion_i2v"] and read_png_frames(Path("run/frames")).shape == (18, 64, 64, 3)
    line = one_error(capsys, main(["animate", *TINY, "adapters=[]", "num_frames=20", *SMALL]))
    assert "at most 16" in line and "2L−1" in line and "sampler=periodic_overlap" in line
    line = one_error(
        capsys, main(["animate", *TINY, "adapters=[]", "num_frames=20", "sampler=periodic_overlap", "sampler.window=17", *SMALL])
    )
    assert "sampler.window=17" in line and "at most 16" in line


@pytest.fixture(scope="module")
def block_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A motion_block.bin of the tiny SD UNet's size, in the released layout (Motion-I2V/models/stage2/Motion_Module/)."""
    folder = tmp_path_factory.mktemp("Motion-I2V") / "models" / "stage2" / "Motion_Module"
    folder.mkdir(parents=True)
    return motion_i2v.save(motion_i2v.tiny(seed=7), folder / "motion_block.bin")


def test_the_full_backbone_takes_the_file_in_place_of_a_motion_adapter(sd_folder, block_file) -> None:
    run = [
        "backbone=animatediff",
        f"backbone.pretrained={sd_folder}",
        f"backbone.motion_i2v={block_file}",
        "num_frames=4",
        *SMALL,
    ]
    manifest = animate(*run, "adapters=[trajectory]", "adapters.trajectory.paths=[[[20,20],[44,36]]]")
    assert manifest["steering"] == ["motion_i2v"]
    assert any(str(block_file) in note for note in manifest["notes"])
    assert any("trained at 320×512" in note for note in manifest["notes"])


def test_keys_that_do_not_go_with_the_module_are_one_sentence(sd_folder, adapter_folder, block_file, capsys) -> None:
    full = [
        "backbone=animatediff",
        f"backbone.pretrained={sd_folder}",
        f"backbone.motion_i2v={block_file}",
        "num_frames=4",
        *SMALL,
    ]
    line = one_error(capsys, main(["animate", *full, f"backbone.motion_adapter={adapter_folder}"]))
    assert "backbone.motion_adapter and backbone.motion_i2v both" in line
    line = one_error(capsys, main(["animate", *TINY, "backbone.selective_noising=false", "num_frames=4", *SMALL]))
    assert "backbone.selective_noising=false does not go with backbone.motion_i2v" in line
    line = one_error(capsys, main(["animate", *TINY, "backbone.warped_attention=true", "num_frames=4", *SMALL]))
    assert "backbone.warped_attention=true does not go with" in line


def test_a_file_of_the_wrong_size_is_refused_naming_its_first_key(tmp_path, capsys) -> None:
    path = tmp_path / "motion_block.bin"
    state = motion_i2v.to_released(motion_i2v.tiny().state_dict())
    key = "down_blocks.1.motion_modules.0.temporal_transformer.proj_in.weight"
    state[key] = torch.zeros(32, 32)
    torch.save(state, path)
    line = one_error(
        capsys, main(["animate", "backbone=animatediff_tiny", f"backbone.motion_i2v={path}", "num_frames=4", *SMALL])
    )
    assert key in line and "expected [64, 64]" in line
    assert not Path("run").exists()


BLOCK, SD15 = os.environ.get("MOTIONFORGE_MOTION_I2V_BLOCK"), os.environ.get("MOTIONFORGE_SD15_DIR")


@pytest.mark.skipif(not (BLOCK and SD15), reason="set MOTIONFORGE_MOTION_I2V_BLOCK (motion_block.bin) and MOTIONFORGE_SD15_DIR")
def test_the_released_module_loads_strictly_and_runs_without_nans() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    run = ["backbone=animatediff", f"backbone.pretrained={SD15}", f"backbone.motion_i2v={BLOCK}", f"device={device}"]
    track = ["adapters=[trajectory]", "adapters.trajectory.paths=[[[200,160],[260,180]]]"]
    manifest = animate(
        *run, *track, "height=320", "width=512", "num_frames=16", "steps=4", "progress=false", "output.frames=true"
    )
    frames = read_png_frames(Path("run/frames"))
    assert manifest["steering"] == ["motion_i2v"] and frames.shape == (16, 320, 512, 3)
    assert frames.std() > 1.0  # a decoded picture, not a NaN-black clip


def test_the_model_cache_tells_modules_apart(tmp_path) -> None:
    from motionforge.backbones.diffusion.animatediff import AnimateDiffBackbone, AnimateDiffConfig, AnimateDiffTinyConfig

    backbone = AnimateDiffBackbone()
    keys = {
        backbone.cache_extra(config)
        for config in (
            AnimateDiffTinyConfig(),
            AnimateDiffTinyConfig(motion_i2v="tiny"),
            AnimateDiffConfig(motion_i2v=str(tmp_path / "a" / "motion_block.bin")),
            AnimateDiffConfig(motion_i2v=str(tmp_path / "b" / "motion_block.bin")),
        )
    }
    assert len(keys) == 4
