"""The command line: `motionforge animate` (a Hydra app) and `motionforge plugins`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from motionforge import InputError
from motionforge.cli import main

SMALL = ["num_frames=4", "height=64", "width=64", "progress=false"]


def read_frames(path: Path) -> np.ndarray:
    """All frames of a video or GIF as uint8 [F, H, W, 3]."""
    with imageio.get_reader(path) as reader:
        return np.stack([np.asarray(frame)[..., :3] for frame in reader.iter_data()])


def motionforge(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the command in a fresh process, as a user would."""
    return subprocess.run([sys.executable, "-m", "motionforge", *args], capture_output=True, text=True, env=env)


def test_animate_end_to_end_in_a_subprocess(tmp_path) -> None:
    run = tmp_path / "run"
    result = motionforge("animate", "num_frames=6", "height=64", "width=96", "fps=12", "progress=false", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(run)
    for name in ("animation.mp4", "animation.gif"):
        frames = read_frames(run / name)
        assert frames.shape == (6, 64, 96, 3), name
        assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 1.0, name
    assert {p.name for p in run.iterdir()} == {".hydra", "animate.log", "animation.mp4", "animation.gif", "flow.mp4", "hint.png", "manifest.json"}
    assert (run / ".hydra" / "overrides.yaml").read_text().count("num_frames=6") == 1
    assert json.loads((run / "manifest.json").read_text())["fps"] == 12.0


def test_cfg_job_prints_the_composed_config_and_writes_nothing(tmp_path, capsys) -> None:
    assert main(["animate", "--cfg", "job", "num_frames=24", "adapters.trajectory.paths=[[[100,120],[180,120]]]"]) == 0
    printed = capsys.readouterr().out
    assert "num_frames: 24" in printed and "backbone:" in printed and "- - 100" in printed
    assert not any(tmp_path.iterdir())


def test_multirun_sweeps_over_seeds(tmp_path) -> None:
    assert main(["animate", "-m", "seed=0,1", *SMALL, f"hydra.sweep.dir={tmp_path / 'sweep'}"]) == 0
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "animation.mp4").is_file()
    assert (tmp_path / "sweep" / "multirun.yaml").is_file()


def test_output_save_false_writes_nothing_at_all(tmp_path, capsys) -> None:
    assert main(["animate", *SMALL, "output.save=false"]) == 0
    assert "nothing written" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())  # no run folder, no .hydra/, no log
    assert main(["animate", *SMALL, "output.save=false", f"hydra.run.dir={tmp_path / 'run'}"]) == 0
    assert not (tmp_path / "run").exists()


def test_plugins_table_and_json(capsys) -> None:
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["plugin", "version", "adapters", "backbones", "samplers", "status"]
    assert any(line.split() == ["motionforge.adapters.trajectory", "0.1.0", "trajectory", "-", "-", "ok"] for line in table[1:])
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    warp = next(r for r in rows if r["name"] == "motionforge.backbones.warp")
    assert warp["backbones"] == ["warp"] and warp["builtin"] and warp["hooks"] == ["register_backbones"]
    assert warp["broken"] is None


def test_version_help_and_unknown_commands(capsys) -> None:
    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("motionforge ")
    assert main(["--help"]) == 0 and "animate" in capsys.readouterr().out
    assert main([]) == 2 and "usage: motionforge" in capsys.readouterr().err
    assert main(["paint"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown command 'paint'")


def write(path: Path, content: str | bytes) -> str:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


BAD_INPUTS = {
    "missing image": (["image=nowhere/photo.jpg"], "image file not found: nowhere/photo.jpg"),
    "unreadable image": (["image={tmp}/fake.png"], "fake.png"),
    "a track with one point": (["adapters.trajectory.paths=[[[100,120]]]"], "has 1 point; a track needs at least 2 points"),
    "a track file that is not JSON": (["adapters.trajectory.file={tmp}/tracks.json"], "is not valid JSON"),
    "a track file with the wrong nesting": (["adapters.trajectory.file={tmp}/nested.json"], "must be a list of [x, y] number pairs"),
    "num_frames below 2": (["num_frames=1"], "num_frames=1 is too small: a video needs at least 2 frames"),
    "an unknown adapter": (["adapters=[trajectroy]"], "there is no adapters option 'trajectroy' (did you mean 'trajectory'?)"),
    "a misspelt parameter": (["adapters.trajectory.pathz=1"], "has no key 'pathz' (did you mean adapters.trajectory.paths?)"),
    "a misspelt parameter, added": (["+adapters.trajectory.pathz=1"], "the trajectory adapter has no key 'pathz'"),
    "a misspelt key of another sampler": (["sampler=phased", "sampler.gama=0.5"], "did you mean sampler.gamma?"),
    "a key of an adapter not listed": (["adapters.brush.boxes=[[0,0,9,9]]"], "add it: adapters=[trajectory,brush]"),
    "a value of the wrong type": (["fps=fast"], "bad value in override fps=fast"),
    "a size that is not a multiple of 8": (["height=100"], "height=100 must be a positive multiple of 8; try height=104"),
    "a brush mask that is missing": (["adapters=[brush]", "adapters.brush.mask=nowhere.png"], "brush mask not found: nowhere.png"),
    "a brush mask that is not a picture": (["adapters=[brush]", "adapters.brush.mask={tmp}/fake.png"], "fake.png is not a readable image"),
    "a camera with no move": (["adapters=[camera]"], "the camera adapter has no move"),
    "both strength keys": (
        ["adapters=[trajectory,motion_strength]", "adapters.motion_strength.value=2", "adapters.motion_strength.scale=2"],
        "both are set",
    ),
    "a landmark file of the wrong shape": (["adapters=[landmark]", "adapters.landmark.file={tmp}/flat.npy"], "but must be [T, K, 2]"),
    "a flow file with NaN": (["adapters=[dense_flow]", "adapters.dense_flow.file={tmp}/nan.npy"], "NaN"),
    "a driving video that is not a video": (["adapters=[dense_flow]", "adapters.dense_flow.video={tmp}/tracks.json"], "tracks.json"),
    "an unknown sampler": (["backbone=animatediff_tiny", "sampler=phazed"], "there is no sampler option 'phazed' (did you mean 'phased'?)"),
    "a phase split out of range": (["backbone=animatediff_tiny", "sampler=phased", "sampler.gamma=2"], "sampler.gamma=2.0 must be between 0 and 1"),
    "a stride that skips frames": (
        ["backbone=animatediff_tiny", "sampler=periodic_overlap", "sampler.stride=40"],
        "sampler.stride=40 must be between 1 and the window of 16, or frames would fall between windows",
    ),
    "a window beyond the motion modules' positional table": (
        ["backbone=animatediff_tiny", "sampler=phased", "sampler.window=40", "num_frames=48", "height=64", "width=64"],
        "sampler.window=40 is more frames than this backbone takes in one call: at most 32",
    ),
    "an unknown step rule": (["backbone=animatediff_tiny", "sampler.step=heun"], "sampler.step=heun is not a step rule"),
    "a clip longer than the single window can take": (
        ["backbone=animatediff_tiny", "num_frames=40", "height=64", "width=64"],
        "or use sampler=periodic_overlap or sampler=phased for a longer clip",
    ),
    "negative previews": (["output.previews=-1"], "output.previews=-1 must be 0 (off) or a number of steps between previews"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, capsys, case) -> None:
    write(tmp_path / "fake.png", "this is not a picture")
    write(tmp_path / "tracks.json", "[[[1, 2], [3, 4]]")
    write(tmp_path / "nested.json", "[[1, 2, 3], [[4, 5], [6, 7]]]")
    np.save(tmp_path / "flat.npy", np.zeros((5, 68)))
    np.save(tmp_path / "nan.npy", np.full((3, 2, 8, 8), np.nan))
    overrides, message = BAD_INPUTS[case]
    overrides = [o.format(tmp=tmp_path) for o in overrides]
    run = tmp_path / "run"
    status = main(["animate", "num_frames=3", "progress=false", *overrides, f"hydra.run.dir={run}"])
    err = capsys.readouterr().err
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert "Traceback" not in err
    assert not run.exists()


def test_bad_input_in_a_real_process_prints_no_traceback(tmp_path) -> None:
    result = motionforge("animate", "image=missing.jpg", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: image file not found: missing.jpg")
    assert not (tmp_path / "run").exists()


def test_debug_mode_keeps_the_traceback(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MOTIONFORGE_DEBUG", "1")
    with pytest.raises(InputError):
        main(["animate", "image=missing.jpg", f"hydra.run.dir={tmp_path / 'run'}"])


def test_python_dash_m_runs_the_command() -> None:
    result = motionforge("--version", env={**os.environ})
    assert result.returncode == 0 and result.stdout.startswith("motionforge ")


def _released_cmp(path: Path, **changes) -> Path:
    """A CMP file in the released layout (``module.`` keys, no num_batches_tracked), its tensors stride-0 views."""
    import torch

    from motionforge.modules.cmp import expected_shapes

    state = {f"module.{k}": torch.zeros(()).expand(v) for k, v in expected_shapes().items() if "num_batches" not in k}
    state.update({f"module.{k}": torch.zeros(shape) for k, shape in changes.items()})
    torch.save({"step": 42000, "state_dict": state, "optimizer": {}}, path)
    return path


def test_weights_check_names_the_module_and_says_every_tensor_matches(tmp_path, capsys) -> None:
    good = _released_cmp(tmp_path / "ckpt_iter_42000.pth.tar")
    assert main(["weights", "check", str(good)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("ckpt_iter_42000.pth.tar: CMP, MOFA-Video's sparse-to-dense flow network — all ")
    assert out.endswith("tensors match (num_batches_tracked absent, as released)")
    assert main(["weights", "check", str(good), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["kind"] == "cmp" and record["matches"] is True


def test_weights_check_gives_the_first_mismatch_and_status_1(tmp_path, capsys) -> None:
    import torch
    from safetensors.torch import save_file

    bad = _released_cmp(tmp_path / "bad.pth.tar", **{"image_encoder.conv5.weight": (256, 1024, 1, 1)})
    assert main(["weights", "check", str(bad)]) == 1
    assert "image_encoder.conv5.weight has shape [256, 1024, 1, 1], expected [256, 2048, 1, 1]" in capsys.readouterr().out
    save_file({"unet.weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    assert main(["weights", "check", str(tmp_path / "other.safetensors")]) == 1
    assert "no module motionforge knows; the closest is CMP" in capsys.readouterr().out


def test_weights_check_of_a_missing_or_unreadable_file_is_one_sentence_and_status_2(tmp_path, capsys) -> None:
    assert main(["weights", "check", str(tmp_path / "missing.pth.tar")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {tmp_path / 'missing.pth.tar'} does not exist; give the path of a weights file or folder to check"
    )
    (tmp_path / "broken.pth.tar").write_bytes(b"not a torch file")
    assert main(["weights", "check", str(tmp_path / "broken.pth.tar")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not a readable torch file" in err and "\n" not in err
