"""The trajectory adapter: tracks inline or from JSON, on the image or on a canvas of another size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import rastered
from motionforge import ConfigError, InputError, MotionContext
from motionforge.adapters.trajectory import TrajectoryAdapter, TrajectoryConfig


def context(width=64, height=48, frames=5, source=None, box=None) -> MotionContext:
    source = source or (width, height)
    return MotionContext(height, width, frames, torch.zeros(3, height, width), source, source_box=box)


def build(frames=5, **config):
    """The trajectory adapter's hint, with its samples also as a flow map and mask."""
    ctx = context(frames=frames)
    return rastered(TrajectoryAdapter().build(TrajectoryConfig(**config), ctx), ctx)


def test_a_track_puts_its_displacements_at_its_start_pixel() -> None:
    hint = build(paths=[[[10, 20], [30, 20]]])
    assert hint.flow.shape == (5, 2, 48, 64) and hint.mask.shape == (1, 1, 48, 64)
    assert hint.mask.sum() == 1 and hint.mask[0, 0, 20, 10] == 1
    assert hint.flow[:, 0, 20, 10].tolist() == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert float(hint.flow.abs().sum()) == pytest.approx(50.0)
    assert hint.tracks.shape == (1, 5, 2) and hint.tracks[0, -1].tolist() == [30.0, 20.0]


def test_three_points_bend_the_path() -> None:
    hint = build(paths=[[[10, 10], [20, 30], [40, 10]]])
    assert hint.tracks[0, 2].tolist() == pytest.approx([20.0, 30.0])  # the middle knot at the middle frame


def test_strength_scales_every_track_or_each_track() -> None:
    assert build(paths=[[[10, 20], [30, 20]]], strength=0.5).flow[-1, 0, 20, 10] == 10.0
    hint = build(paths=[[[10, 20], [30, 20]], [[40, 5], [40, 25]]], strength=[2, -1])
    assert hint.flow[-1, 0, 20, 10] == 40.0 and hint.flow[-1, 1, 5, 40] == -20.0
    file_strength = build(paths=[{"points": [[10, 20], [30, 20]], "strength": 3}])
    assert file_strength.flow[-1, 0, 20, 10] == 60.0


def test_tracks_from_a_file_with_a_canvas_size(tmp_path) -> None:
    path = tmp_path / "tracks.json"
    path.write_text(json.dumps({"tracks": [[[19.5, 39.5], [59.5, 39.5]]], "size": [128, 96]}))
    hint = build(file=str(path))
    assert hint.tracks[0, 0].tolist() == [9.5, 19.5] and hint.tracks[0, -1].tolist() == [29.5, 19.5]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 63), st.floats(0, 47)), min_size=2, max_size=5),
    st.sampled_from([(128, 96), (32, 24), (640, 480), (100, 75)]),
)
def test_canvas_rescaling_is_exact(points, canvas) -> None:
    scale = np.array(canvas) / np.array([64, 48])
    on_canvas = ((np.array(points) + 0.5) * scale - 0.5).tolist()  # the same points drawn on the canvas
    direct = build(paths=[points]).tracks
    rescaled = build(paths=[on_canvas], size=list(canvas)).tracks
    torch.testing.assert_close(rescaled, direct, atol=1e-4, rtol=0)


def test_points_follow_the_crop_of_the_image() -> None:
    cropped = context(width=64, height=48, source=(128, 128), box=(0.0, 16.0, 128.0, 112.0))
    hint = TrajectoryAdapter().build(TrajectoryConfig(paths=[[[63.5, 63.5], [127.5, 63.5]]]), cropped)
    assert hint.tracks[0, 0].tolist() == pytest.approx([31.5, 23.5]) and hint.tracks[0, -1].tolist() == pytest.approx([63.5, 23.5])


def test_tracks_starting_outside_are_dropped_with_a_warning(caplog) -> None:
    hint = build(paths=[[[10, 20], [30, 20]], [[500, 20], [30, 20]]])
    assert hint.tracks.shape[0] == 1
    assert "dropped track(s) 1" in caplog.text


@pytest.mark.parametrize(
    "config, error, message",
    [
        ({"paths": [[[10, 20]]]}, InputError, "track 0 in adapters.trajectory.paths has 1 point; a track needs at least 2 points"),
        ({"paths": [[10, 20], [30, 20]]}, InputError, "holds one track's points, not a list of tracks; wrap it"),
        ({"paths": [[["a", 20], [30, 20]]]}, InputError, "must be a list of \\[x, y\\] number pairs"),
        ({"paths": "[[10,20]]"}, InputError, "must be a list of tracks"),
        ({"paths": [[[10, 20], [30, 20]]], "strength": [1, 2]}, ConfigError, "has 2 values for 1 tracks"),
        ({"paths": [[[500, 20], [30, 20]]]}, InputError, "every track starts outside the 64x48 working frame"),
        ({}, ConfigError, "the trajectory adapter has no tracks"),
        ({"paths": [[[1, 2], [3, 4]]], "file": "t.json"}, ConfigError, "not both"),
        ({"file": "missing.json"}, InputError, "track file not found: missing.json"),
        ({"paths": [[[1, 2], [3, 4]]], "size": [0, 10]}, InputError, "must be \\[W, H\\] with two positive numbers"),
    ],
)
def test_bad_tracks_give_one_clear_sentence(config, error, message) -> None:
    with pytest.raises(error, match=message) as caught:
        build(**config)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[[[1, 2], [3, 4]]", "is not valid JSON \\(Expecting ',' delimiter at line 1"),
        ('{"track": []}', "is a JSON object without 'tracks'"),
        ("[[[1, 2, 3], [3, 4]]]", "must be a list of \\[x, y\\] number pairs"),
        ("{}", "without 'tracks'"),
    ],
)
def test_bad_track_files(tmp_path, text, message) -> None:
    path = tmp_path / "tracks.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        build(file=str(path))


def test_a_binary_track_file(tmp_path) -> None:
    path = tmp_path / "tracks.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        build(file=str(path))
