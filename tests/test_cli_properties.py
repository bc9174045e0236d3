"""A property of the command line: a bad value composed into any valid command is exit status 2, one line on stderr,
no traceback, and the disk as it was."""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motionforge.cli import main

SMALL = ["num_frames=4", "height=64", "width=64", "progress=false", "output.gif=false", "output.flow=false"]

# Valid commands, by the adapters they list.
BASES: dict[str, list[str]] = {
    "trajectory": [],  # the sample picture with its own tracks
    "camera": ["adapters=[camera]", "adapters.camera.pan=[1,0]"],
    "motion_strength": ["adapters=[trajectory,motion_strength]", "adapters.motion_strength.value=1"],
    "brush": ["adapters=[trajectory,brush]", "adapters.brush.boxes=[[100,100,400,400]]"],
    "none": ["adapters=[]", "output.save=false"],  # writes nothing, so any output.dir is fine here
}


def floats(low: float, high: float) -> st.SearchStrategy[str]:
    """Finite floats in [low, high], written as a user would type them."""
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False).map(repr)


NON_FINITE = st.sampled_from(["nan", "inf", "-inf", "NaN", "+inf"])
WORDS = st.text(alphabet="abxyz {}[],='\"~é()", min_size=1, max_size=8).filter(lambda text: text.strip() and "=" not in text)
NEGATIVE = floats(-1e300, -1e-6)
HUGE = floats(1e12, 1e308)


@dataclass(frozen=True)
class Bad:
    """A key, the bad values it can be given, and the adapter it needs (None: any command)."""

    key: str
    values: st.SearchStrategy[str]
    needs: str | None = None


BAD = [
    Bad("fps", NON_FINITE | floats(240.001, 1e300) | floats(-1e300, 0.0099) | WORDS),
    Bad("num_frames", st.integers(-(10**6), 1).map(str) | st.integers(10**6, 10**9).map(str) | st.just("2.5") | WORDS),
    Bad("height", st.integers(-(10**6), 7).map(str) | st.integers(9, 10**6).filter(lambda v: v % 8).map(str)),
    Bad("width", st.integers(10**5, 10**6).map(lambda v: str(8 * v))),  # frames that cannot fit in memory
    Bad("seed", st.integers(-(10**20), -1).map(str) | st.integers(2**63, 2**80).map(str)),
    Bad("steps", st.integers(-(10**6), 0).map(str)),
    Bad("motion.sigma", NON_FINITE | NEGATIVE | floats(1e5 + 1, 1e300) | floats(1e-300, 0.0099)),
    Bad("motion.threshold", NON_FINITE | NEGATIVE | floats(1.0, 1e300)),
    Bad("output.crf", st.integers(-(10**6), -1).map(str) | st.integers(52, 10**6).map(str)),
    Bad("output.previews", st.integers(-(10**6), -1).map(str)),
    Bad("output.dir", st.sampled_from(["notes.txt/run", "/proc/motionforge/run", "''"])),
    Bad(
        "device",
        st.sampled_from(["mps", "xpu", "meta", "vulkan", "gpu", "cuda:7"] + ([] if torch.cuda.is_available() else ["cuda"])),
    ),
    Bad("image", st.sampled_from(["missing.jpg", "notes.txt", ".", "café.jpg", "~/nowhere.png", "'~/nowhere.png'"])),
    Bad("backbone.occlusion", NON_FINITE | NEGATIVE),
    Bad("backbone.batch_frames", st.integers(-100, 0).map(str)),
    Bad("adapters.trajectory.strength", NON_FINITE | HUGE, "trajectory"),
    Bad(
        "adapters.trajectory.paths",
        st.sampled_from(["[[[1,2]]]", "[[[nan,1],[2,3]]]", "[[1,2,3]]", "[[[1e308,0],[0,0]]]"]),
        "trajectory",
    ),
    Bad("adapters.camera.zoom", NON_FINITE | floats(100.001, 1e308) | floats(-1e308, 0.0) | floats(1e-300, 0.0099), "camera"),
    Bad("adapters.camera.pan", st.sampled_from(["[nan,0]", "[1e308,0]", "[1,2,3]", "x"]), "camera"),
    Bad("adapters.camera.rotate", NON_FINITE, "camera"),
    Bad("adapters.motion_strength.value", NON_FINITE | NEGATIVE | HUGE, "motion_strength"),
    Bad("adapters.brush.feather", NON_FINITE | NEGATIVE, "brush"),
    Bad("adapters.brush.boxes", st.sampled_from(["[[1,2,3]]", "[[nan,0,9,9]]", "[[9,9,0,0]]"]), "brush"),
    Bad("adapters.trajectory.pathz", st.just("1"), "trajectory"),
    Bad("+adapters.camera.zooom", st.just("2"), "camera"),
    Bad("backbone.paddin", st.sampled_from(["zeros", "1"])),
    Bad("motion.sigmaa", st.just("3")),
]


@st.composite
def bad_commands(draw: st.DrawFn) -> list[str]:
    """A valid command with one bad value put into it."""
    bad = draw(st.sampled_from(BAD))
    bases = [bad.needs] if bad.needs else [name for name in BASES if not (bad.key == "output.dir" and name == "none")]
    base = BASES[draw(st.sampled_from(bases))]
    sweep = draw(st.booleans()) and bad.key not in ("output.dir",)
    command = ["animate", *(["-m", "seed=0"] if sweep else []), *SMALL, *base, f"{bad.key}={draw(bad.values)}"]
    return command


def disk(folder: Path) -> list[str]:
    """Everything under a folder, as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=bad_commands())
def test_a_bad_value_in_any_command_is_one_line_exit_2_and_leaves_the_disk_as_it_was(command, capsys, monkeypatch) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "notes.txt").write_text("a file where a folder is expected")
        monkeypatch.chdir(folder)
        monkeypatch.setenv("HOME", str(folder))
        before = disk(folder)
        capsys.readouterr()
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy's overflow warnings would be extra lines on stderr
            status = main(command)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert status == 2, (command, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (command, err)
        assert "Traceback" not in err and "bug in motionforge" not in lines[0], (command, err)
        assert disk(folder) == before, command
        monkeypatch.chdir(os.path.dirname(scratch))


@pytest.mark.parametrize("name", sorted(BASES))
def test_each_base_command_is_valid(name, tmp_path, capsys) -> None:
    assert main(["animate", *SMALL, *BASES[name], "output.dir=run"]) == 0, capsys.readouterr().err
