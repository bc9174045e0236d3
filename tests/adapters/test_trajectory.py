"""The trajectory adapter: tracks inline or from any track file, on the image or on a canvas of another size, seen or hidden."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from motionforge import ConfigError, InputError, MotionContext
from motionforge.adapters.trajectory import TrajectoryAdapter, TrajectoryConfig
from motionforge.core.types import MotionHint
from motionforge.motion.fuse import DensifySettings, fuse
from tests.conftest import rastered


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
    assert hint.tracks[0, 0].tolist() == pytest.approx([31.5, 23.5]) and hint.tracks[0, -1].tolist() == pytest.approx(
        [63.5, 23.5]
    )


def test_tracks_starting_outside_are_dropped_with_a_warning(caplog) -> None:
    hint = build(paths=[[[10, 20], [30, 20]], [[500, 20], [30, 20]]])
    assert hint.tracks.shape[0] == 1
    assert "dropped track(s) 1" in caplog.text


@pytest.mark.parametrize(
    "config, error, message",
    [
        (
            {"paths": [[[10, 20]]]},
            InputError,
            "track 0 in adapters.trajectory.paths has 1 point; a track needs at least 2 points",
        ),
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


# Visibility: a point hidden, or outside the picture, at some frames asks for no motion there.


MOVER = [[10, 10], [20, 10], [30, 10], [40, 10], [50, 10]]  # one point per frame
OTHER = [[40, 40], [40, 35], [40, 30], [40, 25], [40, 20]]


def plan_flow(tracks, region=None):
    """The fused plan's flow [F, 2, H, W] for these tracks (and a region), Gaussian or partition densifier."""
    ctx = context(frames=5)
    hints = {"trajectory": TrajectoryAdapter().build(TrajectoryConfig(paths=tracks), ctx)}
    if region is not None:
        hints["brush"] = MotionHint(region=region)
    return fuse(hints, ctx, DensifySettings(sigma=12.0)).flow


@pytest.mark.parametrize("densifier", ["gaussian", "partition"])
def test_a_hidden_point_asks_for_no_motion_at_those_frames(densifier) -> None:
    region = None
    if densifier == "partition":  # a brushed region holding both tracks' starts: they move it as one
        region = torch.zeros(1, 1, 48, 64)
        region[..., 5:45, 5:45] = 1.0
    hidden = {"points": MOVER, "visible": [True, True, False, False, True]}
    with_hidden = plan_flow([hidden, OTHER], region)
    without = plan_flow([OTHER], region)
    seen = plan_flow([MOVER, OTHER], region)
    torch.testing.assert_close(with_hidden[2:4], without[2:4])  # frames 2-3: as if the point were not there
    torch.testing.assert_close(with_hidden[4], seen[4])  # frame 4: seen again, it counts again
    assert not torch.allclose(with_hidden[4], without[4])
    assert float(with_hidden[2:4, :, 10, 10].abs().max()) < float(seen[2:4, :, 10, 10].abs().max())


def test_a_point_outside_the_picture_asks_for_no_motion_there() -> None:
    leaving = [[50, 20], [60, 20], [70, 20], [80, 20], [90, 20]]  # outside the 64-pixel-wide frame from frame 2
    hint = build(paths=[leaving])
    assert hint.points.weight[0].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert hint.tracks[0, -1].tolist() == [90.0, 20.0]  # the drawn track keeps its whole path


def test_a_track_hidden_at_frame_0_is_dropped(caplog) -> None:
    hint = build(paths=[{"points": MOVER, "visible": [False, True, True, True, True]}, OTHER])
    assert hint.tracks.shape[0] == 1 and "hidden at frame 0" in caplog.text
    with pytest.raises(InputError, match="hidden at frame 0"):
        build(paths=[{"points": MOVER, "visible": [False, True, True, True, True]}])


def test_visibility_follows_the_points_when_the_clip_has_other_frames() -> None:
    ctx = context(frames=9)  # 5 points over 9 frames: point j at frame 2j
    hint = TrajectoryAdapter().build(TrajectoryConfig(paths=[{"points": MOVER, "visible": [True, True, False, True, True]}]), ctx)
    assert hint.points.weight[0].tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1]  # hidden between a hidden point and its neighbours


def test_wan_move_tracks_with_visibility_from_their_files(tmp_path) -> None:
    np.save(tmp_path / "clip_tracks.npy", np.array([MOVER, OTHER], dtype=np.float32).transpose(1, 0, 2))  # (T, N, 2)
    visibility = np.ones((5, 2), dtype=bool)
    visibility[2:4, 0] = False
    np.save(tmp_path / "clip_visibility.npy", visibility)
    hint = build(file=str(tmp_path / "clip_tracks.npy"))
    assert hint.points.weight.tolist() == [[1, 1, 0, 0, 1], [1, 1, 1, 1, 1]]
    elsewhere = tmp_path / "seen.npy"
    np.save(elsewhere, np.ones((5, 2), dtype=bool))
    assert build(file=str(tmp_path / "clip_tracks.npy"), visibility=str(elsewhere)).points.weight.min() == 1


def test_a_spline_editor_file_on_its_canvas(tmp_path) -> None:
    path = tmp_path / "splines.json"
    path.write_text(json.dumps([[{"x": 20, "y": 40}, {"x": 60, "y": 40}]]))
    hint = build(file=str(path), size=[128, 96])  # drawn on the node's 128×96 mask
    assert hint.tracks[0, 0].tolist() == [9.75, 19.75] and hint.tracks[0, -1].tolist() == [29.75, 19.75]


@pytest.mark.parametrize(
    "config, message",
    [
        ({"paths": [[[1, 2], [3, 4]]], "format": "ati"}, "adapters.trajectory.format describes a track file"),
        ({"file": "x.json", "format": "nosuch"}, "adapters.trajectory.format=nosuch is not a track format"),
    ],
)
def test_format_keys_are_checked(config, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build(**config)


def test_visibility_is_only_for_wan_move(tmp_path) -> None:
    path = tmp_path / "t.json"
    path.write_text("[[[1, 2], [3, 4]]]")
    (tmp_path / "v.npy").write_bytes(b"")
    with pytest.raises(ConfigError, match="visibility is for Wan-Move track files"):
        build(file=str(path), visibility=str(tmp_path / "v.npy"))
