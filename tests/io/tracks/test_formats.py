"""Every track format: written, read back within 0.5 px, detected, and a bad file of each kind refused in one sentence."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import torch

from motionforge import InputError
from motionforge.io.tracks import FORMATS, TrackSet, detect_format, read_tracks, write_tracks

CANVAS = (320.0, 240.0)


def sample(num_tracks: int = 3, frames: int = 6, hidden: bool = True) -> TrackSet:
    """Tracks with fractional coordinates on a 320×240 canvas, one point per frame, some points hidden."""
    rng = np.random.default_rng(0)
    tracks = rng.uniform([0, 0], CANVAS, size=(num_tracks, frames, 2))  # [N, T, 2]
    visible = np.ones((num_tracks, frames), dtype=bool)
    if hidden:
        visible[0, 2:4] = False
    return TrackSet(tracks, visible, CANVAS)


SUFFIX = {"wan_move": "_tracks.npy"}


def round_trip(tmp_path, name: str, tracks: TrackSet) -> TrackSet:
    """Write the set in a format and read it back (the canvas given where the format holds none)."""
    path = tmp_path / f"out{SUFFIX.get(name, FORMATS[name].suffix)}"
    write_tracks(tracks, path, name)
    canvas = None if FORMATS[name].canvas else tracks.canvas
    back, read_as = read_tracks(path, name, canvas=canvas)
    assert read_as == name
    return back


@pytest.mark.parametrize("name", [n for n in FORMATS if n != "spline_editor_normalized"])
def test_every_format_round_trips_within_half_a_pixel(tmp_path, name) -> None:
    tracks = sample(hidden=FORMATS[name].visibility)
    back = round_trip(tmp_path, name, tracks)
    if name == "tora":  # Tora's canvas is 256 × 256: the same points, rescaled
        assert back.canvas == (256.0, 256.0)
        back = back.rescaled(CANVAS)
    assert back.tracks.shape == tracks.tracks.shape
    assert np.abs(back.tracks - tracks.tracks).max() < 0.5
    assert np.abs(back.tracks - tracks.tracks).max() < 0.01  # in fact far closer
    assert (back.visible == tracks.visible).all()
    assert back.canvas == CANVAS


def test_the_normalised_spline_editor_round_trips_one_track(tmp_path) -> None:
    tracks = sample(num_tracks=1, hidden=False)
    back = round_trip(tmp_path, "spline_editor_normalized", tracks)
    assert np.abs(back.tracks - tracks.tracks).max() < 0.01


def test_motionforge_json_keeps_knots_strength_and_visibility(tmp_path) -> None:
    path = tmp_path / "tracks.json"
    path.write_text(
        json.dumps(
            {
                "size": [64, 48],
                "tracks": [{"points": [[1, 2], [3, 4], [5, 6]], "strength": 2, "visible": [True, False, True]}, [[7, 8], [9, 9]]],
            }
        )
    )
    tracks, name = read_tracks(path)
    assert name == "motionforge" and tracks.canvas == (64.0, 48.0)
    assert tracks.lengths.tolist() == [3, 2] and tracks.points(1).tolist() == [[7, 8], [9, 9]]
    assert tracks.strength.tolist() == [2.0, 1.0] and tracks.visibility(0).tolist() == [True, False, True]
    back = round_trip(tmp_path, "motionforge", tracks)
    assert back.lengths.tolist() == [3, 2] and back.strength.tolist() == [2.0, 1.0]
    assert (back.tracks == tracks.tracks).all() and (back.visible == tracks.visible).all()


def test_formats_without_strength_get_it_applied_to_the_points(tmp_path) -> None:
    tracks = TrackSet(np.array([[[10.0, 10.0], [20.0, 10.0]]]), np.ones((1, 2), bool), CANVAS, np.array([0.5]))
    back = round_trip(tmp_path, "wan_move", tracks)
    assert back.tracks[0].tolist() == [[10.0, 10.0], [15.0, 10.0]] and back.strength.tolist() == [1.0]


def test_the_wan_move_layout_on_disk(tmp_path) -> None:
    tracks = sample()
    write_tracks(tracks, tmp_path / "clip_tracks.npy")
    on_disk = np.load(tmp_path / "clip_tracks.npy")
    visibility = np.load(tmp_path / "clip_visibility.npy")
    assert on_disk.shape == (6, 3, 2) and visibility.shape == (6, 3) and visibility.dtype == bool
    assert not visibility[2, 0] and visibility[1, 0]


def test_the_ati_layout_on_disk(tmp_path) -> None:
    write_tracks(sample(), tmp_path / "tracks.pth")
    raw = torch.load(tmp_path / "tracks.pth", weights_only=True)
    with np.load(io.BytesIO(raw)) as archive:
        array = archive["array"]
    assert array.shape == (3, 121, 1, 3)
    assert array[0, 0, 0, 2] == 8 and array[0, 2, 0, 2] == 0 and array[0, 50, 0, 2] == 0  # visible × 8, hidden, padding


def test_an_ati_editor_file_reads_its_121_frames_with_the_padding_hidden(tmp_path) -> None:
    array = np.zeros((1, 121, 1, 3), dtype=np.float32)
    array[0, :3, 0] = [[80, 80, 8], [88, 80, 8], [96, 80, 8]]  # three drawn points at (10, 10), (11, 10), (12, 10)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, array=array)
    torch.save(buffer.getvalue(), tmp_path / "editor.pth")
    tracks, _ = read_tracks(tmp_path / "editor.pth")
    assert tracks.tracks.shape == (1, 121, 2) and tracks.visible[0, :3].all() and not tracks.visible[0, 3:].any()
    assert tracks.tracks[0, 120].tolist() == [12.0, 10.0]  # hidden padding held at the last drawn point


def test_a_spline_editor_single_spline_and_tora_blocks(tmp_path) -> None:
    (tmp_path / "one.json").write_text(json.dumps([{"x": 10, "y": 20}, {"x": 30, "y": 40}]))
    tracks, name = read_tracks(tmp_path / "one.json")
    assert name == "spline_editor" and tracks.tracks.tolist() == [[[10, 20], [30, 40]]] and tracks.canvas is None
    (tmp_path / "tora.txt").write_text("128,128\n130,126\n\n10,10\n10,10\n12,12\n")
    tracks, name = read_tracks(tmp_path / "tora.txt")
    assert name == "tora" and tracks.canvas == (256.0, 256.0) and tracks.lengths.tolist() == [2, 3]


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_written_file_is_detected_as_its_format(tmp_path, name) -> None:
    tracks = sample(num_tracks=1 if name == "spline_editor_normalized" else 3)
    path = tmp_path / f"out{SUFFIX.get(name, FORMATS[name].suffix)}"
    write_tracks(tracks, path, name)
    expected = "motionforge" if name == "point_list" else name  # a bare point list reads as motionforge's own list
    assert detect_format(path) == expected


def _ati(tmp_path, array, **extra):
    """An ATI-style .pth holding this array."""
    buffer = io.BytesIO()
    np.savez(buffer, array=array, **extra)
    path = tmp_path / "bad.pth"
    torch.save(buffer.getvalue(), path)
    return path


def _npy(tmp_path, array, name="bad_tracks.npy"):
    """A .npy file holding this array."""
    path = tmp_path / name
    np.save(path, array)
    return path


def _text(tmp_path, name, text):
    """A text file with this content."""
    path = tmp_path / name
    path.write_text(text)
    return path


NAN_ATI = np.zeros((1, 121, 1, 3), np.float32)
NAN_ATI[0, 5, 0, 0] = np.nan

BAD = {
    # format: [(kind, make file, message)]
    "motionforge": [
        ("shape", lambda p: _text(p, "bad.json", "[[[1, 2, 3], [3, 4]]]"), "must be a list of \\[x, y\\] number pairs"),
        ("nan", lambda p: _text(p, "bad.json", "[[[1, NaN], [3, 4]]]"), "holds NaN or infinite coordinates"),
        ("layout", lambda p: _text(p, "bad.json", '{"track": []}'), "JSON object without 'tracks'"),
    ],
    "point_list": [
        ("shape", lambda p: _text(p, "bad.json", "[[[1, 2]]]"), "has 1 point; a track needs at least 2"),
        ("nan", lambda p: _text(p, "bad.json", "[[[1, Infinity], [3, 4]]]"), "holds NaN or infinite coordinates"),
        ("layout", lambda p: _text(p, "bad.json", '"tracks"'), "must be a list of tracks"),
    ],
    "spline_editor": [
        ("shape", lambda p: _text(p, "bad.json", '[[{"x": 1, "y": 2}], [1, 2]]'), "is not SplineEditor output"),
        ("nan", lambda p: _text(p, "bad.json", '[{"x": NaN, "y": 2}, {"x": 1, "y": 2}]'), "holds 1 NaN or infinite value"),
        ("layout", lambda p: _text(p, "bad.json", '[{"u": 1, "v": 2}]'), "is not SplineEditor output"),
    ],
    "spline_editor_normalized": [
        ("shape", lambda p: _text(p, "bad.json", '[{"x": 0.5}]'), "is not SplineEditor output"),
        ("nan", lambda p: _text(p, "bad.json", '[{"x": NaN, "y": 0.2}, {"x": 0.1, "y": 0.2}]'), "holds 1 NaN"),
        ("layout", lambda p: _text(p, "bad.json", "{}"), "is not SplineEditor output"),
    ],
    "wan_move": [
        ("shape", lambda p: _npy(p, np.zeros((4, 2, 3))), "has shape \\(4, 2, 3\\); it must hold tracks \\(T, N, 2\\)"),
        ("nan", lambda p: _npy(p, np.full((4, 2, 2), np.nan)), "holds 16 NaN or infinite values"),
        ("layout", lambda p: _text(p, "bad_tracks.npy", "not an array"), "is not a readable .npy array"),
    ],
    "ati": [
        ("shape", lambda p: _ati(p, np.zeros((2, 121, 1, 2), np.float32)), "has an array of shape \\(2, 121, 1, 2\\)"),
        ("nan", lambda p: _ati(p, NAN_ATI), "holds 1 NaN or infinite value"),
        ("layout", lambda p: _ati(p, np.zeros((2, 50, 1, 3), np.float32)), "has tracks of 50 frames; ATI's tracks have 121"),
    ],
    "tora": [
        ("shape", lambda p: _text(p, "bad.txt", "1,2\n3,4,5\n"), "line 2 of Tora track file"),
        ("nan", lambda p: _text(p, "bad.txt", "1,2\nnan,4\n"), "holds 1 NaN or infinite value"),
        ("layout", lambda p: _text(p, "bad.txt", "hello world\n"), "line 1 of Tora track file"),
    ],
}


@pytest.mark.parametrize("name, kind, make, message", [(n, k, m, msg) for n, cases in BAD.items() for k, m, msg in cases])
def test_a_bad_file_of_each_kind_is_refused_in_one_sentence_naming_it(tmp_path, name, kind, make, message) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as caught:
        read_tracks(path, name, canvas=CANVAS)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: _text(p, "tracks.csv", "1,2"), "has an unknown suffix '.csv'"),
        (lambda p: _ati(p, np.zeros((1, 121, 1, 3), np.float32)).with_name("missing_visibility.pth"), "track file not found"),
        (lambda p: _text(p, "x.pth", "plain text"), "cannot be read safely"),
    ],
)
def test_unknown_or_unreadable_files(tmp_path, make, message) -> None:
    with pytest.raises(InputError, match=message):
        read_tracks(make(tmp_path))


def test_a_wan_move_visibility_of_another_shape_is_refused(tmp_path) -> None:
    path = _npy(tmp_path, np.zeros((4, 2, 2)), "clip_tracks.npy")
    np.save(tmp_path / "clip_visibility.npy", np.ones((4, 3), bool))
    with pytest.raises(InputError, match="clip_visibility.npy has shape \\(4, 3\\) but its tracks .* have \\(4, 2\\)"):
        read_tracks(path)


def test_the_normalised_variant_needs_the_canvas(tmp_path) -> None:
    path = _text(tmp_path, "n.json", '[{"x": 0.25, "y": 0.5}, {"x": 0.3, "y": 0.5}]')
    assert detect_format(path) == "spline_editor_normalized"
    with pytest.raises(InputError, match="give the canvas size"):
        read_tracks(path)
    tracks, _ = read_tracks(path, canvas=(320, 240))
    assert tracks.tracks[0, 0].tolist() == [180.0, 120.0]  # (1 − n) × mask height, x too


def test_a_failed_write_leaves_nothing(tmp_path) -> None:
    with pytest.raises(InputError, match="holds one track and this set has 3"):
        write_tracks(sample(), tmp_path / "new" / "n.json", "spline_editor_normalized")
    assert not (tmp_path / "new").exists()
    long = TrackSet(np.zeros((1, 130, 2)), np.ones((1, 130), bool), CANVAS)
    with pytest.raises(InputError, match="at most 121 frames"):
        write_tracks(long, tmp_path / "a.pth")
    assert list(tmp_path.iterdir()) == []


def test_a_time_to_move_folder_is_not_a_track_file(tmp_path) -> None:
    (tmp_path / "motion_signal.mp4").write_bytes(b"")
    with pytest.raises(
        InputError,
        match="is a Time-to-Move folder, which holds a dense motion video, not tracks; use adapters=\\[time_to_move\\]",
    ):
        read_tracks(tmp_path)


@pytest.mark.parametrize("name", list(FORMATS))
def test_the_same_tracks_give_the_same_bytes(tmp_path, monkeypatch, name) -> None:
    tracks = sample(num_tracks=1 if name == "spline_editor_normalized" else 3)
    path = tmp_path / f"out{SUFFIX.get(name, FORMATS[name].suffix)}"
    first = [p.read_bytes() for p in write_tracks(tracks, path, name)]
    later = time.time() + 7200
    monkeypatch.setattr(time, "time", lambda: later)  # two hours on: no timestamp may creep into the file
    assert [p.read_bytes() for p in write_tracks(tracks, path, name)] == first
