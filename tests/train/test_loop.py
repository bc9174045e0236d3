"""``motionforge train``: seeded, resumable, its loss logged and plotted, bad folders refused in one line, and run by accelerate launch."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from motionforge.cli import main
from motionforge.toy.dataset import write_dataset
from motionforge.toy.world import WorldSettings

SMALL = WorldSettings(size=32, num_frames=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A small toy dataset folder."""
    return write_dataset(tmp_path_factory.mktemp("toy") / "data", SMALL, count=3)


def train_vae(data: Path, out: Path, steps: int, *more: str) -> int:
    """Run `motionforge train model=vae` for a few steps."""
    args = [f"data.folder={data}", f"out={out}", f"model.steps={steps}", "train.checkpoint_every=2", "train.progress=false"]
    return main(["train", "model=vae", "model.batch_size=1", *args, *more])


def weights(out: Path) -> dict:
    """The trained VAE's tensors."""
    return load_file(out / "model" / "diffusion_pytorch_model.safetensors")


def test_a_resumed_run_ends_where_the_uninterrupted_run_ends(data, tmp_path):
    assert train_vae(data, tmp_path / "whole", 4) == 0
    assert train_vae(data, tmp_path / "halves", 2) == 0
    assert train_vae(data, tmp_path / "halves", 4) == 0  # resumes from checkpoints/step-0000002
    whole, halves = weights(tmp_path / "whole"), weights(tmp_path / "halves")
    assert all((whole[name] == halves[name]).all() for name in whole)
    with (tmp_path / "halves" / "loss.csv").open() as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == [0, 1, 2, 3]
    assert (tmp_path / "halves" / "loss.png").stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / "halves" / "checkpoints").iterdir()) == ["step-0000002", "step-0000004"]
    assert (tmp_path / "halves" / "checkpoints" / "step-0000002" / "model" / "config.json").is_file()  # a diffusers folder


def test_checkpoints_of_a_run_are_not_overwritten_unless_resumed(data, tmp_path, capsys):
    assert train_vae(data, tmp_path / "run", 2) == 0
    capsys.readouterr()
    assert train_vae(data, tmp_path / "run", 4, "train.resume=false") == 2
    assert "train.resume=true" in capsys.readouterr().err


@pytest.mark.parametrize(
    "folder, words", [(None, "data.folder is not set"), ("missing", "is not a folder"), ("empty", "not a toy dataset")]
)
def test_a_folder_that_is_not_a_dataset_is_one_line_and_leaves_nothing(tmp_path, capsys, folder, words):
    given = []
    if folder is not None:
        (tmp_path / "empty").mkdir()
        given = [f"data.folder={tmp_path / folder}"]
    assert main(["train", "model=vae", f"out={tmp_path / 'run'}", *given]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not (tmp_path / "run").exists()


def test_an_unknown_model_is_refused_with_the_choices(capsys):
    assert main(["train", "model=gan"]) == 2
    assert "vae" in capsys.readouterr().err


@pytest.mark.skipif(
    shutil.which("accelerate") is None and not (Path(sys.executable).parent / "accelerate").exists(), reason="no accelerate CLI"
)
def test_accelerate_launch_runs_it_on_one_process(data, tmp_path):
    launcher = shutil.which("accelerate") or str(Path(sys.executable).parent / "accelerate")
    command = [
        launcher, "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--cpu", "-m", "motionforge", "train", "model=vae", "model.batch_size=1", "model.steps=2", f"data.folder={data}",
        f"out={tmp_path / 'run'}", "train.progress=false",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "model" / "config.json").is_file()
