"""``motionforge tracks convert``: every format out and back within 0.5 px, errors in one line; and animating from track files."""

from __future__ import annotations

import itertools
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motionforge.cli import main
from motionforge.io.tracks import FORMATS, read_tracks
from tests.conftest import red_centroid, textured_square_image

TRACKS = {
    "size": [320, 240],
    "tracks": [[[10.25, 20.5], [30.75, 40.125], [50.5, 41.0]], [[100.0, 100.0], [120.5, 90.25], [121.0, 80.0]]],
}
OUT = {"wan_move": "out_tracks.npy", "ati": "out.pth", "tora": "out.txt"}


def source(tmp_path, data=TRACKS):
    """A motionforge track file with these tracks."""
    path = tmp_path / "tracks.json"
    path.write_text(json.dumps(data))
    return path


def one_error(capsys) -> str:
    """The single line the command printed on stderr."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("name", [n for n in FORMATS if n != "spline_editor_normalized"])
def test_convert_to_each_format_and_back_keeps_every_point(tmp_path, capsys, name) -> None:
    middle = tmp_path / OUT.get(name, f"out_{name}.json")
    assert main(["tracks", "convert", str(source(tmp_path)), str(middle), "--to", name]) == 0
    printed = capsys.readouterr().out
    assert f"({name})" in printed and "2 tracks of 3 points" in printed
    back = tmp_path / "back.json"
    again = ["--resize", "320x240"] if name == "tora" else [] if FORMATS[name].canvas else ["--canvas", "320x240"]
    assert main(["tracks", "convert", str(middle), str(back), "--from", name, *again]) == 0
    tracks, _ = read_tracks(back)
    assert tracks.canvas == (320.0, 240.0)
    assert np.abs(tracks.tracks - np.array([t for t in TRACKS["tracks"]])).max() < 0.5


def test_convert_names_what_a_format_cannot_hold(tmp_path, capsys) -> None:
    data = {"size": [320, 240], "tracks": [{"points": [[1, 2], [3, 4]], "visible": [True, False], "strength": 2}]}
    assert main(["tracks", "convert", str(source(tmp_path, data)), str(tmp_path / "s.json"), "--to", "spline_editor"]) == 0
    notes = capsys.readouterr().out
    assert "adapters.trajectory.size=[320,240]" in notes and "1 hidden points are written as seen" in notes
    assert "strength is applied" in notes
    assert json.loads((tmp_path / "s.json").read_text()) == [[{"x": 1.0, "y": 2.0}, {"x": 5.0, "y": 6.0}]]


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.json", "out.json"], "track file not found: missing.json"),
        (["bad.json", "out.json"], "is not valid JSON"),
        (["tracks.json", "out.json", "--to", "spline_editor_normalized"], "holds one track and this set has 2"),
        (["tracks.json", "out.json", "--canvas", "100x"], "--canvas 100x must be WIDTHxHEIGHT"),
        (["tracks.json", "out.json", "--canvas", "640x480"], "says its canvas is 320x240, which --canvas 640x480 contradicts"),
        (["plain_tracks.npy", "out.txt"], "these tracks' canvas is not known; give it with --canvas WxH"),
        (["tracks.json", "out.pth", "--resize", "0x10"], "--resize 0x10 must be two positive sizes"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    source(tmp_path)
    (tmp_path / "bad.json").write_text("[[[1, 2]")
    np.save(tmp_path / "plain_tracks.npy", np.zeros((3, 2, 2), np.float32))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["tracks", "convert", *args]) == 2
    line = one_error(capsys)
    assert line.startswith("error: ") and message in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_output_that_cannot_be_written_is_one_line(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("")
    assert main(["tracks", "convert", str(source(tmp_path)), str(tmp_path / "file" / "out.json")]) == 2
    assert "cannot write" in one_error(capsys) and (tmp_path / "file").is_file()


def test_tracks_needs_a_subcommand(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["tracks"])
    assert stopped.value.code == 2


# ---- animating from track files ----------------------------------------------------------------

QUICK = ["num_frames=5", "height=64", "width=64", "progress=false", "output.frames=true", "output.gif=false", "output.mp4=false"]


def animate(tmp_path, *overrides: str) -> tuple[list[np.ndarray], dict]:
    """Run `motionforge animate` on a picture with a red square at (24, 32); its frames and manifest."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    image = tmp_path / "square.png"
    Image.fromarray(textured_square_image(size=64, square=16, centre=(24, 32))).save(image)
    run = tmp_path / "run"
    assert main(["animate", f"image={image}", *QUICK, f"output.dir={run}", *overrides]) == 0
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((run / "frames").glob("*.png"))]
    return frames, json.loads((run / "manifest.json").read_text())


def test_animate_with_a_spline_editor_file(tmp_path) -> None:
    path = tmp_path / "splines.json"  # drawn on the node's 128×128 mask: the square's point moves 8 px right per frame
    path.write_text(json.dumps([[{"x": 48 + 16 * i, "y": 64} for i in range(5)], [{"x": 110, "y": 110}]]))
    frames, manifest = animate(tmp_path, f"adapters.trajectory.file={path}", "adapters.trajectory.size=[128,128]")
    assert manifest["plan"]["tracks"] == 2
    xs = [red_centroid(frame)[0] for frame in frames]
    assert all(b > a + 3 for a, b in itertools.pairwise(xs)) and xs[-1] - xs[0] > 20  # the square goes right with its point
    inline = [[[23.75 + 8 * i, 31.75] for i in range(5)], [[54.75, 54.75], [54.75, 54.75]]]  # the same tracks on the image
    same, _ = animate(tmp_path / "inline", f"adapters.trajectory.paths={json.dumps(inline).replace(' ', '')}")
    assert all(np.array_equal(a, b) for a, b in zip(frames, same))


def test_animate_with_wan_move_tracks_and_visibility(tmp_path) -> None:
    tracks = np.array([[[24 + 4 * i, 32] for i in range(5)], [[50, 50]] * 5], dtype=np.float32).transpose(1, 0, 2)  # (T, N, 2)
    visibility = np.ones((5, 2), dtype=bool)
    visibility[3:, 0] = False  # the square's point is hidden at the last two frames
    np.save(tmp_path / "move_tracks.npy", tracks)
    np.save(tmp_path / "move_visibility.npy", visibility)
    frames, manifest = animate(tmp_path, f"adapters.trajectory.file={tmp_path / 'move_tracks.npy'}")
    assert manifest["plan"]["tracks"] == 2
    xs = [red_centroid(frame)[0] for frame in frames]
    assert xs[0] < xs[1] < xs[2]  # seen: the square follows its point
    assert abs(xs[3] - xs[0]) < 1 and abs(xs[4] - xs[0]) < 1  # hidden: no motion is asked for it there


# ---- the README's commands --------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def readme_track_commands() -> list[str]:
    """The `motionforge` lines of the README's Track files section, comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("### Track files from other tools")
    section = text[start : text.index("\n## ", start)]  # up to the next section
    lines = [line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL) for line in block.splitlines()]
    return [line.split("#")[0].strip() for line in lines if line.startswith("motionforge ")]


def test_the_readme_track_commands_run_as_shown(tmp_path, monkeypatch, capsys) -> None:
    commands = readme_track_commands()
    assert len(commands) == 4 and sum("tracks convert" in c for c in commands) == 3
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("gallery.png", "*.mp4"))
    monkeypatch.chdir(tmp_path)
    smaller = ["height=128", "width=128", "progress=false", "output.gif=false", "output.flow=false", "output.dir=run"]
    for command in commands:
        extra = smaller if command.startswith("motionforge animate") else []
        assert main([*shlex.split(command)[1:], *extra]) == 0, command
    assert (tmp_path / "shuttle_visibility.npy").is_file() and (tmp_path / "run" / "animation.mp4").is_file()
    back, _ = read_tracks(tmp_path / "shuttle.pth")
    assert back.canvas == (512.0, 512.0) and back.num_tracks == 7
    assert read_tracks(tmp_path / "drag.txt")[0].canvas == (256.0, 256.0)
