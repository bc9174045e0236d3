"""Toy dataset folders: written atomically, read back as they were made, and refused in one sentence when they are not one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionforge.cli import main
from motionforge.core.errors import InputError
from motionforge.io.tracks import read_tracks
from motionforge.toy.dataset import ToyDataset, split_seeds, write_dataset
from motionforge.toy.world import WorldSettings, make_clip

SMALL = WorldSettings(size=32, num_frames=4)


def test_a_written_dataset_reads_back_the_clips_its_seeds_make(tmp_path):
    data = ToyDataset.open(write_dataset(tmp_path / "toy", SMALL, "heldout", count=3))
    assert len(data) == 3 and data.split == "heldout" and data.world == SMALL
    clip, made = data.clip(1), make_clip(data.seeds[1], SMALL)
    assert np.array_equal(clip.frames, made.frames) and np.array_equal(clip.masks, made.masks)
    assert np.abs(clip.tracks - made.tracks).max() < 1e-3
    tracks, name = read_tracks(data.tracks_path(1))  # the track file is motionforge's own: animate reads it
    assert name == "motionforge" and tracks.num_tracks == made.num_sprites


def test_held_out_seeds_are_never_training_seeds():
    assert not set(split_seeds("train", 5000)) & set(split_seeds("heldout", 5000))


def test_a_folder_in_use_is_refused_and_nothing_partial_is_left(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match="not an empty folder"):
        write_dataset(tmp_path / "toy", SMALL, count=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


@pytest.mark.parametrize("make", ["missing", "empty", "garbage"])
def test_a_folder_that_is_not_a_toy_dataset_gets_one_sentence(tmp_path, make):
    folder = tmp_path / "data"
    if make != "missing":
        folder.mkdir()
    if make == "garbage":
        (folder / "toy.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InputError, match=r"motionforge toy make"):
        ToyDataset.open(folder)


def test_the_toy_command_writes_a_dataset_and_refuses_a_used_folder(tmp_path, capsys):
    assert main(["toy", "make", str(tmp_path / "toy"), "--count", "2", "--size", "32", "--frames", "3"]) == 0
    assert "2 train clips of 3 frames at 32x32" in capsys.readouterr().out
    assert len(ToyDataset.open(tmp_path / "toy")) == 2
    assert main(["toy", "make", str(tmp_path / "toy")]) == 2
    assert capsys.readouterr().err.strip().startswith("error: ")
