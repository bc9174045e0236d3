"""A render from the studio and its command line give the same frames; a cancelled render keeps nothing."""

from __future__ import annotations

import shlex
import threading
from pathlib import Path

import pytest

from motionforge.cli import main
from motionforge.studio.render import Cancelled, render
from motionforge.studio.state import Controls, Track

SMALL = {"num_frames": 4, "height": 64, "width": 64}


def small_controls(image: str | None = None) -> Controls:
    """A track and a brushed square on a 64×48 picture (or the sample), a small run."""
    controls = Controls(size=(64, 48) if image else (512, 512), image=image, tracks=[Track([(20, 20), (30, 24)])], **SMALL)
    controls.click("brush", 20, 20, radius=8)
    return controls


def test_the_command_reproduces_the_render_byte_for_byte(tmp_path: Path, small_image: Path, monkeypatch) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "picture.png").write_bytes(small_image.read_bytes())
    made = render(small_controls("picture.png"), files, tmp_path / "render", threading.Event())
    assert sorted(p.name for p in made.take.iterdir()) == [
        "brush.png",
        "command.sh",
        "motionforge-run.zip",
        "picture.png",
        "tracks.json",
    ]
    assert made.video.is_file() and made.hint is not None and made.flow is not None
    monkeypatch.chdir(made.take)
    command = (made.take / "command.sh").read_text().strip()
    assert main([*shlex.split(command)[1:], f"hydra.run.dir={tmp_path / 'cli'}", "progress=false"]) == 0
    ours, theirs = sorted((made.run / "frames").iterdir()), sorted((tmp_path / "cli" / "frames").iterdir())
    assert len(ours) == 4 and [p.read_bytes() for p in ours] == [p.read_bytes() for p in theirs]


def test_a_cancelled_render_keeps_nothing(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled, match="cancelled"):
        render(small_controls(), tmp_path / "files", tmp_path / "render", cancel)
    assert not (tmp_path / "render").exists()


def test_a_diffusion_render_reports_its_progress_stops_when_cancelled_and_its_command_reproduces_it(
    tmp_path: Path, monkeypatch
) -> None:
    controls = Controls(size=(512, 512), backbone="animatediff_tiny", steps=2, num_frames=4, height=32, width=32)
    calls: list[tuple[int, int]] = []
    made = render(
        controls, tmp_path / "files", tmp_path / "render", threading.Event(), lambda done, total: calls.append((done, total))
    )
    assert calls and calls[-1][0] == calls[-1][1]  # every denoiser call reported, up to the total
    monkeypatch.chdir(made.take)
    command = (made.take / "command.sh").read_text().strip()
    assert "backbone=animatediff_tiny" in command and "steps=2" in command
    assert main([*shlex.split(command)[1:], f"hydra.run.dir={tmp_path / 'cli'}", "progress=false"]) == 0
    ours, theirs = sorted((made.run / "frames").iterdir()), sorted((tmp_path / "cli" / "frames").iterdir())
    assert [p.read_bytes() for p in ours] == [p.read_bytes() for p in theirs]

    cancel = threading.Event()
    with pytest.raises(Cancelled):
        render(controls, tmp_path / "files", tmp_path / "again", cancel, lambda done, total: cancel.set())
    assert not (tmp_path / "again").exists()
