"""The drawn controls as data: clicks edit tracks, pins and the brush; the data becomes control files, overrides and a command."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from PIL import Image

from motionforge.core.config import compose_config
from motionforge.core.errors import InputError
from motionforge.io.tracks import TrackSet, read_tracks, write_tracks
from motionforge.studio.state import Controls, Track, command_line, mask_from_file, tracks_from_file


def test_clicks_draw_a_track_a_pin_and_move_a_point() -> None:
    controls = Controls(size=(100, 80))
    controls.click("track", 10, 20)
    assert controls.complete() == []  # one knot is not a track yet
    controls.click("track", 30, 25)
    controls.click("track", 50, 20)
    controls.end_track()
    controls.click("pin", 70, 60)
    assert [t.points for t in controls.complete()] == [[(10, 20), (30, 25), (50, 20)], [(70, 60), (70, 60)]]
    controls.click("move", 31, 24)  # picks the middle knot
    controls.click("move", 32, 40)
    controls.click("move", 70, 61)  # picks the pin: it moves whole
    controls.click("move", 90, 70)
    assert controls.tracks[0].points[1] == (32, 40) and controls.tracks[1].points == [(90, 70), (90, 70)]


def test_a_click_outside_the_picture_lands_on_its_edge() -> None:
    controls = Controls(size=(100, 80))
    controls.click("pin", -5, 500)
    assert controls.tracks[0].points[0] == (0.0, 79.0)


def test_the_brush_paints_and_erases_discs() -> None:
    controls = Controls(size=(100, 80))
    controls.click("brush", 50, 40, radius=10)
    assert controls.mask[40, 50] and controls.mask[40, 59] and not controls.mask[40, 62]
    controls.click("erase", 50, 40, radius=4)
    assert not controls.mask[40, 50] and controls.mask[40, 57]
    assert controls.adapters() == ["brush"]


def test_an_unknown_mode_is_one_sentence() -> None:
    with pytest.raises(InputError, match="unknown drawing mode 'lasso'"):
        Controls(size=(10, 10)).click("lasso", 1, 1)


def test_the_files_hold_what_was_drawn_and_the_trajectory_adapter_reads_them(tmp_path) -> None:
    controls = Controls(size=(100, 80), tracks=[Track([(10, 20), (40, 30)], strength=1.5), Track([(5, 5), (5, 5)])])
    controls.click("brush", 20, 20, radius=5)
    written = controls.write_files(tmp_path)
    assert [p.name for p in written] == ["tracks.json", "brush.png"]
    tracks, name = read_tracks(tmp_path / "tracks.json")
    assert name == "motionforge" and tracks.canvas == (100, 80)
    assert np.allclose(tracks.points(0), [[10, 20], [40, 30]]) and list(tracks.strength) == [1.5, 1.0]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "brush.png")) > 0, controls.mask)


def test_the_overrides_compose_into_the_run_config(tmp_path) -> None:
    controls = Controls(size=(100, 80), image="photo.png", tracks=[Track([(10, 20), (40, 30)])], motion_scale=0.5)
    controls.camera.pan_x, controls.camera.zoom = -1.5, 1.2
    controls.settings = {"backbone.occlusion": 0.75}
    controls.num_frames, controls.seed = 12, 3
    cfg = compose_config(controls.overrides(tmp_path))
    assert list(cfg.adapters) == ["trajectory", "camera", "motion_strength"]
    assert cfg.image == str(tmp_path / "photo.png") and cfg.adapters.trajectory.file == str(tmp_path / "tracks.json")
    assert list(cfg.adapters.camera.pan) == [-1.5, 0] and cfg.adapters.camera.zoom == 1.2
    assert cfg.adapters.motion_strength.scale == 0.5 and cfg.backbone.occlusion == 0.75
    assert (cfg.num_frames, cfg.seed) == (12, 3)
    preview = controls.overrides(tmp_path, backbone="warp")
    assert "backbone=warp" in preview


def test_the_command_line_quotes_awkward_names_for_the_shell_and_hydra() -> None:
    controls = Controls(
        size=(100, 80), image="my photo's [1].jpg", prompt='a "rocket", lifting off', tracks=[Track([(1, 2), (3, 4)])]
    )
    controls.settings = {"backbone.padding": "true"}  # a string that Hydra would read as a bool unquoted
    line = command_line(controls.overrides(None))
    words = shlex.split(line)
    assert words[:2] == ["motionforge", "animate"]
    cfg = compose_config(words[2:])
    assert cfg.image == "my photo's [1].jpg" and cfg.prompt == 'a "rocket", lifting off'
    assert cfg.backbone.padding == "true"


def test_track_files_of_every_format_load_back_onto_the_picture(tmp_path) -> None:
    drawn = TrackSet(np.array([[[100.0, 120.0], [180.0, 140.0], [220.0, 100.0]]]), np.ones((1, 3), bool), canvas=(512.0, 512.0))
    for suffix in (".json", ".npy", ".pth", ".txt"):
        path = tmp_path / f"drawn{suffix}"
        write_tracks(drawn, path)
        tracks = tracks_from_file(path, (256, 256), path.name)  # the picture is half the canvas
        expected = (drawn.points(0) + 0.5) * 0.5 - 0.5
        points = np.asarray(tracks[0].points)
        if suffix == ".npy":  # Wan-Move's files hold no canvas: the points are the picture's pixels
            expected = drawn.points(0)
        assert np.allclose(points[[0, -1]], expected[[0, -1]], atol=1.5), suffix


def test_a_brush_mask_of_another_size_is_resized_and_an_empty_one_refused(tmp_path) -> None:
    mask = np.zeros((40, 50), np.uint8)
    mask[10:20, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    loaded = mask_from_file(tmp_path / "mask.png", (100, 80), "mask.png")
    assert loaded.shape == (80, 100) and loaded[30, 40] and not loaded[5, 5]
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "empty.png")
    with pytest.raises(InputError, match="marks nothing"):
        mask_from_file(tmp_path / "empty.png", (100, 80), "empty.png")


def test_the_tracks_json_is_the_documented_format() -> None:
    controls = Controls(size=(64, 48), tracks=[Track([(1.234, 2.0), (3.0, 4.0)], strength=2.0), Track([(9.0, 9.0)])])
    assert json.loads(json.dumps(controls.tracks_json())) == {
        "size": [64, 48],
        "tracks": [{"points": [[1.23, 2.0], [3.0, 4.0]], "strength": 2.0}],
    }


def test_a_drag_moves_the_point_it_starts_on_paints_a_stroke_or_draws_a_track() -> None:
    controls = Controls(size=(100, 80), tracks=[Track([(10, 10), (30, 10)])])
    controls.drag("move", [(31, 11), (50, 30), (60, 40)])
    assert controls.tracks[0].points == [(10, 10), (60, 40)]
    controls.drag("brush", [(10, 60), (90, 60)], radius=3)
    assert controls.mask[60, 10:91].all() and not controls.mask[50, 50]
    controls.drag("erase", [(40, 60), (60, 60)], radius=3)
    assert not controls.mask[60, 45:56].any() and controls.mask[60, 20]
    controls.drag("track", [(0, 0), (10, 0), (20, 0), (30, 0), (40, 0), (50, 0), (60, 0), (70, 0), (80, 0)])
    assert controls.tracks[-1].points == [(0, 0), (20, 0), (40, 0), (60, 0), (80, 0)]  # five knots, evenly along it


def test_a_drag_that_starts_off_every_point_is_one_sentence() -> None:
    with pytest.raises(InputError, match="no point within 12 px of where the drag started"):
        Controls(size=(100, 80), tracks=[Track([(10, 10), (30, 10)])]).drag("move", [(80, 70), (90, 70)])


def test_another_kind_of_edit_finishes_the_track_being_drawn() -> None:
    controls = Controls(size=(100, 80))
    controls.click("track", 10, 10)
    controls.click("track", 20, 10)
    controls.click("brush", 50, 50, radius=3)
    controls.click("track", 30, 30)  # a new track, not a third knot
    controls.click("pin", 60, 60)  # and that one-knot track is dropped
    assert [t.points for t in controls.tracks] == [[(10, 10), (20, 10)], [(60, 60), (60, 60)]]
