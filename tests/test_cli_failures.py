"""Nothing a user does takes the machine down, leaves a traceback, or writes a broken file.

One test (or a few) per class of mistake, through the command line: the exit status, the one line
on stderr, no traceback, and what is left on disk.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from motionforge import MotionHint, PluginError, hookimpl
from motionforge.cli import main
from motionforge import io
from motionforge.core.engine import sample_dir
from motionforge.core.registry import LOAD_PLUGINS_ENV, pm

SMALL = ["num_frames=4", "height=64", "width=64", "progress=false", "output.gif=false"]


def one_error(capsys, status: int, expected: int = 2) -> str:
    """The one line a failed command printed on stderr (checked: its status, one line, no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == expected, err
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def left(folder: Path) -> list[str]:
    """Everything under a folder, as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def picture(path: Path) -> str:
    """A copy of the bundled sample picture at path (parents made); its path as a string."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sample_dir() / "image.jpg", path)
    return str(path)


# --- plugins, as a third party ships them -------------------------------------------------------

BAD_PLUGIN = textwrap.dedent(
    """
    import os, signal
    from dataclasses import dataclass
    import torch
    import motionforge

    @dataclass
    class BadConfig:
        mode: str = "raise"

    class Bad:
        name = "bad"
        Config = BadConfig

        def build(self, config, context):
            if config.mode == "nan":
                flow = torch.zeros(context.num_frames, 2, context.height, context.width)
                flow[1:] = float("nan")
                return motionforge.MotionHint(flow=flow)
            if config.mode == "interrupt":
                os.kill(os.getpid(), signal.SIGINT)
                return motionforge.MotionHint()
            return 1 / 0

    @motionforge.hookimpl
    def register_adapters(register):
        register(Bad)
    """
)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder of installed distributions: mf-broken (raises on import) and mf-bad (an adapter that misbehaves on demand)."""
    folder = tmp_path.parent / f"{tmp_path.name}-site"
    for dist, module, source in (
        ("mf_broken", "mf_broken", "raise ImportError('no module named foo')\n"),
        ("mf_bad", "mf_bad", BAD_PLUGIN),
    ):
        info = folder / f"{dist}-0.1.dist-info"
        info.mkdir(parents=True)
        (folder / f"{module}.py").write_text(source)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[motionforge]\n{module.removeprefix('mf_')} = {module}\n")
    return folder


def run_python(
    code: str, site: Path | None = None, limit_file_bytes: int | None = None, **env: str
) -> subprocess.CompletedProcess:
    """Run Python code in a fresh process (plugins from site, all entry points loaded), as a user's shell would."""
    environment = {key: value for key, value in os.environ.items() if key != LOAD_PLUGINS_ENV} | env
    if site is not None:
        environment["PYTHONPATH"] = f"{site}{os.pathsep}{environment.get('PYTHONPATH', '')}"

    def prepare() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as in a terminal, even when the test runner ignores it
        if limit_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, preexec_fn=prepare)


def cli(*args: str) -> str:
    """Python code running `motionforge <args>` and exiting with its status."""
    return f"import sys; from motionforge.cli import main; sys.exit(main({list(args)!r}))"


# --- sizes that exhaust memory ------------------------------------------------------------------


def test_a_size_that_cannot_fit_is_refused_before_any_work(tmp_path, capsys) -> None:
    line = one_error(capsys, main(["animate", "height=100000", "width=100000", "progress=false"]))
    assert line.startswith("error: this run needs about ") and " TiB of memory (16 frames of 100000×100000; most of it: " in line
    assert "free; use fewer frames (num_frames) or a smaller height and width, or pass memory.insist=true" in line
    line = one_error(capsys, main(["animate", "num_frames=200000", "progress=false"]))
    assert "(200000 frames of 512×512;" in line
    assert left(tmp_path) == []


# --- output places ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "place, message",
    [
        ("notes.txt/run", "cannot be made: notes.txt is a file, not a folder; choose a folder in a place you can write"),
        ("/proc/motionforge/run", "output.dir=/proc/motionforge/run cannot be written (No such file or directory)"),
    ],
)
def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path, capsys, place, message) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    line = one_error(capsys, main(["animate", *SMALL, f"output.dir={place}"]))
    assert line.startswith("error: output.dir=") and message in line
    assert left(tmp_path) == ["notes.txt"]


def test_a_disk_that_fills_mid_write_is_one_sentence_and_leaves_nothing(tmp_path) -> None:
    done = run_python(cli("animate", "num_frames=8", "height=128", "width=128", "progress=false", "output.dir=run"),
                      limit_file_bytes=24_000)  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: no room was left while writing the outputs into ") and "(File too large)" in lines[0]
    assert not (tmp_path / "run").exists()


# --- plugins that break -------------------------------------------------------------------------


def test_a_plugin_that_fails_to_import_is_named_once_and_everything_else_works(tmp_path, site) -> None:
    code = textwrap.dedent(
        f"""
        import contextlib, io, json
        from motionforge.cli import main
        statuses, listing = [], io.StringIO()
        statuses.append(main({["animate", *SMALL, "output.dir=run"]!r}))
        statuses.append(main(["animate", "--cfg", "job"]))
        with contextlib.redirect_stdout(listing):
            statuses.append(main(["plugins", "--json"]))
        statuses.append(main(["bench", "suite=kernels", "device=cpu", "suite.backends=[reference]", "suite.scale=0.001",
                              "suite.repeats=1", "suite.dtype=float32", "hydra.run.dir=bench"]))
        print(json.dumps({{"statuses": statuses, "plugins": json.loads(listing.getvalue())}}))
        """
    )
    done = run_python(code, site, MOTIONFORGE_LOAD_PLUGINS="mf-broken")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["statuses"] == [0, 0, 0, 0], done.stderr
    warning = (
        "skipped plugin 'broken' (mf-broken 0.1): importing it failed with ImportError: no module named foo; "
        "fix or uninstall it, or leave it out with MOTIONFORGE_LOAD_PLUGINS"
    )
    assert [line for line in done.stderr.splitlines() if line.strip()] == [warning]  # once, in one line
    broken = next(row for row in result["plugins"] if row["name"] == "broken")
    assert broken["broken"] == warning.split(": ", 1)[1] and broken["adapters"] == []
    assert (tmp_path / "run" / "animation.mp4").is_file() and (tmp_path / "bench" / "table.md").is_file()


def test_the_plugins_table_lists_a_broken_plugin(site) -> None:
    done = run_python(cli("plugins"), site, MOTIONFORGE_LOAD_PLUGINS="mf-broken")
    row = next(line for line in done.stdout.splitlines() if line.startswith("broken "))
    assert done.returncode == 0 and row.split()[:3] == ["broken", "0.1", "-"] and "broken: importing it failed" in row


@dataclass
class BadConfig:
    """How the in-test plugin's adapter misbehaves."""

    mode: str = "raise"


class BadAdapter:
    """An adapter with a bug, or one that returns NaN."""

    name = "bad"
    Config = BadConfig

    def build(self, config: BadConfig, context) -> MotionHint:
        if config.mode == "nan":
            return MotionHint(flow=torch.full((context.num_frames, 2, context.height, context.width), float("nan")))
        return {}["a key the author forgot"]


class BadPlugin:
    __name__ = "BadPlugin"

    @hookimpl
    def register_adapters(self, register) -> None:
        register(BadAdapter)


@pytest.fixture
def bad_plugin() -> Iterator[None]:
    """The misbehaving adapter, registered for one test."""
    pm.register(BadPlugin(), name="bad-plugin")
    try:
        yield
    finally:
        pm.unregister(name="bad-plugin")


def test_an_exception_in_a_plugins_build_is_that_plugins_fault(tmp_path, capsys, bad_plugin, monkeypatch) -> None:
    line = one_error(capsys, main(["animate", *SMALL, "adapters=[trajectory,bad]"]))
    assert line == (
        "error: adapter 'bad' of plugin 'bad-plugin' failed with KeyError: 'a key the author forgot'; this is a fault of "
        "that plugin, not of your command: report it to its authors or leave the adapter out "
        "(MOTIONFORGE_DEBUG=1 shows the traceback)"
    )
    assert left(tmp_path) == []
    monkeypatch.setenv("MOTIONFORGE_DEBUG", "1")
    with pytest.raises(PluginError) as caught:
        main(["animate", *SMALL, "adapters=[trajectory,bad]"])
    assert isinstance(caught.value.__cause__, KeyError)  # the plugin's own traceback, behind the debug switch


# --- numbers that are not numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["adapters=[camera]", "adapters.camera.zoom=1e308"], "adapters.camera.zoom=1e+308 must be between 0.01 and 100"),
        (["adapters=[camera]", "adapters.camera.pan=[1e308,0]"], "the flow of adapter 'camera' has "),
        (["adapters=[camera]", "adapters.camera.rotate=inf"], "adapters.camera.rotate=inf is not a finite number"),
        (["adapters=[trajectory,bad]", "adapters.bad.mode=nan"], "the flow of adapter 'bad' has 32768 NaN or infinite values"),
        (["adapters.trajectory.strength=1e308"], "check the values given to adapters.trajectory"),
        (["adapters=[trajectory,motion_strength]", "adapters.motion_strength.scale=1e308"], "the fused motion plan has "),
        (["motion.threshold=2"], "motion.threshold=2.0 must be at least 0 and below 1"),
        (["motion.sigma=nan"], "motion.sigma=nan is not a finite number"),
        (["fps=1e9"], "fps=1000000000.0 must be between 0.01 and 240 frames per second"),
        (["fps=-inf"], "fps=-inf is not a finite number"),
        (["seed=99999999999999999999"], "seed=99999999999999999999 must be a whole number from 0 to 2**63-1"),
        (["backbone.occlusion=nan"], "backbone.occlusion=nan is not a finite number"),
    ],
)
def test_a_value_that_is_not_a_number_or_out_of_range_is_named(tmp_path, capsys, bad_plugin, overrides, message) -> None:
    line = one_error(capsys, main(["animate", *SMALL, *overrides]))
    assert line.startswith("error: ") and message in line
    assert left(tmp_path) == []


def test_the_manifest_is_strict_json(tmp_path, capsys) -> None:
    assert main(["animate", *SMALL, "output.dir=run"]) == 0

    def refuse(constant: str) -> None:
        raise AssertionError(f"bare {constant} in manifest.json")

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(), parse_constant=refuse)
    assert manifest["peak_memory"]["estimated_mb"] > 0
    io.write_json(tmp_path / "odd.json", {"nan": float("nan"), "inf": np.float32("inf"), "ok": [1.5, torch.tensor(2.0)]})
    assert json.loads((tmp_path / "odd.json").read_text(), parse_constant=refuse) == {"inf": None, "nan": None, "ok": [1.5, 2.0]}


# --- files where the user did not ask for them --------------------------------------------------


def test_output_dir_is_the_run_folder_hydras_files_included(tmp_path, capsys) -> None:
    assert main(["animate", *SMALL, "output.dir=mine"]) == 0
    assert capsys.readouterr().out.strip().endswith(str(tmp_path / "mine"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    assert {".hydra", "animate.log", "animation.mp4", "manifest.json"} <= {p.name for p in (tmp_path / "mine").iterdir()}


def test_a_sweep_with_output_dir_puts_each_job_in_it(tmp_path) -> None:
    assert main(["animate", "-m", "seed=0,1", *SMALL, "output.dir=sweep"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    assert all((tmp_path / "sweep" / job / "animation.mp4").is_file() for job in ("0", "1"))


def test_an_error_leaves_no_folder_it_made_and_keeps_the_ones_it_found(tmp_path, capsys) -> None:
    one_error(capsys, main(["animate", *SMALL, "image=missing.jpg"]))
    assert left(tmp_path) == []  # no outputs/<date>/ left behind
    (tmp_path / "outputs" / "older").mkdir(parents=True)
    one_error(capsys, main(["animate", *SMALL, "image=missing.jpg"]))
    assert left(tmp_path) == ["outputs", "outputs/older"]


def test_a_failing_sweep_job_is_named_and_the_jobs_before_it_stay(tmp_path, capsys) -> None:
    line = one_error(
        capsys, main(["animate", "-m", "num_frames=4,1", "height=64", "width=64", "progress=false", "hydra.sweep.dir=sweep"])
    )
    assert line == (
        "error: sweep job 1 (num_frames=1 height=64 width=64 progress=False) failed: num_frames=1 is too small: a video needs "
        "at least 2 frames; job 0 is complete in sweep"
    )
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["0", "multirun.yaml"]
    assert (tmp_path / "sweep" / "0" / "animation.mp4").is_file()


# --- paths as people type them ------------------------------------------------------------------


def test_a_path_with_spaces_works_as_typed(tmp_path, capsys) -> None:
    image = picture(tmp_path / "my pictures" / "a photo.jpg")
    assert main(["animate", *SMALL, f"image={image}", "adapters.trajectory.paths=[[[100,120],[180,120]]]", "output.dir=run"]) == 0


@pytest.mark.parametrize("typed", ["café.jpg", "~/photo.jpg", "photo (1).jpg"])
def test_a_path_hydra_cannot_read_unquoted_gets_the_exact_quoting(tmp_path, capsys, monkeypatch, typed) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    picture(tmp_path / typed.replace("~/", ""))
    line = one_error(capsys, main(["animate", *SMALL, f"image={typed}"]))
    assert line.startswith("error: Hydra cannot read the value of image unquoted (it has ")
    suggestion = line.rsplit("inside the shell's quotes: ", 1)[1]
    assert suggestion == f"\"image='{typed}'\""
    (quoted,) = shlex.split(suggestion)  # what the shell hands us when the suggestion is pasted
    tracks = "adapters.trajectory.paths=[[[100,120],[180,120]]]"
    assert main(["animate", *SMALL, quoted, tracks, "output.dir=run"]) == 0, capsys.readouterr().err


# --- messages that mislead ----------------------------------------------------------------------


def test_a_missing_local_folder_is_called_a_missing_path(tmp_path, capsys) -> None:
    (tmp_path / "models").mkdir()
    line = one_error(capsys, main(["animate", *SMALL, "backbone=svd", "backbone.pretrained=models/svd", "adapters=[]"]))
    assert line.startswith("error: backbone.pretrained=models/svd does not exist; pass the local folder of")
    (tmp_path / "models").rmdir()
    line = one_error(capsys, main(["animate", *SMALL, "backbone=svd", "backbone.pretrained=models/svd", "adapters=[]"]))
    assert line.startswith(
        "error: backbone.pretrained=models/svd is not a folder on this machine (there is no models/ folder here"
    )


@pytest.mark.parametrize("prefix", ["", "+"])
def test_an_unknown_key_of_any_plugin_gets_the_nearest_valid_key(tmp_path, capsys, wiggle_plugin, prefix) -> None:
    line = one_error(capsys, main(["animate", *SMALL, "adapters=[wiggle]", f"{prefix}adapters.wiggle.amplitud=3"]))
    assert (
        line
        == "error: the wiggle adapter has no key 'amplitud' (did you mean adapters.wiggle.amplitude?); its keys are: amplitude"
    )
    line = one_error(capsys, main(["animate", *SMALL, f"{prefix}adapters.trajectory.pathz=1"]))
    assert "the trajectory adapter has no key 'pathz' (did you mean adapters.trajectory.paths?)" in line
    line = one_error(capsys, main(["animate", *SMALL, "backbone=animatediff_tiny", f"{prefix}backbone.guidance=2"]))
    assert "the animatediff_tiny backbone has no key 'guidance' (did you mean backbone.guidance_scale?)" in line
    assert left(tmp_path) == []


# --- interruptions ------------------------------------------------------------------------------


def test_ctrl_c_is_one_line_exit_130_and_nothing_partial(tmp_path, site) -> None:
    done = run_python(cli("animate", *SMALL, "adapters=[trajectory,bad]", "adapters.bad.mode=interrupt"), site,
                      MOTIONFORGE_LOAD_PLUGINS="mf-bad")  # fmt: skip
    assert done.returncode == 130 and done.stderr.strip() == "interrupted (Ctrl-C); nothing of this run was kept", done.stderr
    assert left(tmp_path) == []


def test_ctrl_c_while_writing_keeps_nothing_of_the_run(tmp_path, capsys, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "write_gif", interrupted)
    status = main(["animate", "num_frames=4", "height=64", "width=64", "progress=false", "output.dir=run"])
    assert one_error(capsys, status, 130) == "interrupted (Ctrl-C); nothing of this run was kept"
    assert left(tmp_path) == []


# --- the rest -----------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["mps", "xpu", "meta"])
def test_a_device_that_is_not_there_is_one_sentence(tmp_path, capsys, device) -> None:
    line = one_error(capsys, main(["animate", *SMALL, f"device={device}"]))
    assert line == f"error: device={device} is not available on this machine; use device=auto, device=cpu or device=cuda"
    assert left(tmp_path) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("backbone.scheduler_config.beta_end=0.02", "needs a leading +: +backbone.scheduler_config.beta_end=0.02"),
        ("backbone.scheduler_config={beta_end:0.02}", "each with a leading +: +backbone.scheduler_config.NAME=VALUE"),
    ],
)
def test_an_entry_of_a_settings_dict_without_a_plus_gets_the_override_that_works(tmp_path, capsys, override, message) -> None:
    line = one_error(capsys, main(["animate", *SMALL, "backbone=animatediff_tiny", "steps=1", override]))
    assert message in line
    fixed = "+backbone.scheduler_config.beta_end=0.02"
    assert main(["animate", *SMALL, "backbone=animatediff_tiny", "steps=1", "output.save=false", fixed]) == 0
