"""Output places: checked (made and written) before any work, a full disk in one sentence, only what a run made removed."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from motionforge import OutputError
from motionforge.core.places import missing_folders, prepare_folder, remove_folders, user_path, writing


def test_a_folder_is_made_with_its_parents_and_the_made_ones_are_listed(tmp_path) -> None:
    target = tmp_path / "a" / "b" / "c"
    made = prepare_folder(target, "output.dir")
    assert target.is_dir() and made == [tmp_path / "a", tmp_path / "a" / "b", target]
    assert not any(target.iterdir())  # the probe file is gone
    assert prepare_folder(target, "output.dir") == []  # it exists now: nothing made


def test_removing_keeps_folders_that_hold_something_else(tmp_path) -> None:
    made = prepare_folder(tmp_path / "a" / "b", "output.dir")
    (tmp_path / "a" / "keep.txt").write_text("mine")
    remove_folders(made)
    assert not (tmp_path / "a" / "b").exists() and (tmp_path / "a" / "keep.txt").is_file()


def test_a_path_through_a_file_is_one_sentence_and_makes_nothing(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(OutputError, match=r"output.dir=.*notes.txt/run cannot be made: .*notes.txt is a file, not a folder"):
        prepare_folder(tmp_path / "notes.txt" / "run", "output.dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_place_that_cannot_be_written_is_one_sentence(tmp_path) -> None:
    with pytest.raises(OutputError, match=r"output.dir=/proc/motionforge-x cannot be written \(No such file or directory\)"):
        prepare_folder("/proc/motionforge-x", "output.dir")


def test_missing_folders_are_listed_outermost_first(tmp_path) -> None:
    assert missing_folders(tmp_path) == []
    assert missing_folders(tmp_path / "x" / "y") == [tmp_path / "x", tmp_path / "x" / "y"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_no_room_left_is_one_sentence(code) -> None:
    with pytest.raises(OutputError, match=r"no room was left while writing the outputs into run .*; nothing was kept"):
        with writing(Path("run")):
            raise OSError(code, "No room")


def test_a_tilde_is_the_home_folder(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_path("~/pictures/a b.png") == tmp_path / "pictures" / "a b.png"
    assert user_path("plain/path.png") == Path("plain/path.png")
