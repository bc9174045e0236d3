"""Atomic outputs: final names only when everything was written, nothing left on error."""

from __future__ import annotations

import pytest

from motionforge.io import AtomicOutputs, write_gif, write_json, write_png_frames
from tests.io.test_video import moving_clip


# ---------------------------------------------------------------- AtomicOutputs


def test_atomic_outputs_commit_only_final_names(tmp_path):
    target = tmp_path / "run" / "out"
    with AtomicOutputs(target) as out:
        write_gif(out.path("animation.gif"), moving_clip(2), fps=10)
        write_json(out.path("manifest.json"), {"ok": True})
        write_png_frames(out.path("frames"), moving_clip(2))
        assert out.path("animation.gif").name == ".animation.partial.gif"
    assert sorted(p.name for p in target.iterdir()) == ["animation.gif", "frames", "manifest.json"]
    assert sorted(p.name for p in (target / "frames").iterdir()) == ["00000.png", "00001.png"]


def test_atomic_outputs_leave_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with AtomicOutputs(tmp_path) as out:
            write_json(out.path("manifest.json"), {})
            write_png_frames(out.path("frames"), moving_clip(1))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_outputs_replace_existing_results(tmp_path):
    (tmp_path / "manifest.json").write_text("old")
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "99999.png").write_text("stale")
    with AtomicOutputs(tmp_path) as out:
        write_json(out.path("manifest.json"), {"new": 1})
        write_png_frames(out.path("frames"), moving_clip(1))
    assert "new" in (tmp_path / "manifest.json").read_text()
    assert [p.name for p in (tmp_path / "frames").iterdir()] == ["00000.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "manifest.json"]
