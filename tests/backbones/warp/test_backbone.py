"""The warp backbone: the picture moves where the plan says, layers occlude, nothing is left behind, frame 0 is the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motionforge import Video, animate, compose_config
from motionforge.bench.cases import Case, cases, overrides
from motionforge.metrics import object_fidelity
from tests.conftest import red_centroid, textured_square_image

CASES = {case.name: case for case in cases(256)}


def render(tmp_path: Path, image: np.ndarray, *overrides_: str) -> Video:
    path = tmp_path / "input.png"
    Image.fromarray(image).save(path)
    return animate(compose_config([f"image={path}", "output.save=false", "progress=false", *overrides_]))


def render_case(tmp_path: Path, case: Case, *extra: str) -> Video:
    path = tmp_path / f"{case.name}.png"
    Image.fromarray(case.image).save(path)
    return animate(compose_config([*overrides(case, path), "output.save=false", "progress=false", *extra]))


@pytest.mark.parametrize("track", [[[128, 100], [188, 140]], [[128, 100], [150, 60], [190, 70], [200, 120]]])
def test_a_textured_square_lands_where_the_track_asks_in_every_frame(tmp_path, track) -> None:
    image = textured_square_image(size=256, square=16, centre=tuple(track[0]))
    video = render(tmp_path, image, f"adapters.trajectory.paths=[{track}]", "num_frames=12")
    requested = video.plan.tracks[0].numpy()  # [F, 2]
    start = red_centroid(video.frames[0])
    for i, frame in enumerate(video.frames):
        error = np.linalg.norm(red_centroid(frame) - (start + requested[i] - requested[0]))
        assert error < 1.0, f"frame {i}: the square is {error:.2f} px from where the track asks"


@pytest.mark.parametrize(
    "controls", [[], ["adapters=[trajectory,brush]", "adapters.brush.boxes=[[0,0,40,64]]"]], ids=["tracks", "brush"]
)
def test_frame_0_is_the_input_exactly(tmp_path, controls) -> None:
    image = textured_square_image(size=64, square=12, centre=(20, 30))
    video = render(tmp_path, image, "adapters.trajectory.paths=[[[20,30],[50,40]]]", "num_frames=4", *controls)
    assert np.array_equal(video.frames[0], image)
    assert not np.array_equal(video.frames[-1], image)


def test_no_motion_gives_the_input_in_every_frame(tmp_path) -> None:
    image = textured_square_image(size=64, square=12, centre=(30, 30))
    video = render(tmp_path, image, "adapters=[]", "num_frames=5")
    assert all(np.array_equal(frame, image) for frame in video.frames)


def test_the_same_seed_gives_the_same_bytes(tmp_path) -> None:
    first = render_case(tmp_path, CASES["crossing"], "num_frames=6")
    second = render_case(tmp_path, CASES["crossing"], "num_frames=6")
    assert first.frames.tobytes() == second.frames.tobytes()


def test_an_object_dragged_out_of_its_brush_leaves_no_copy_behind(tmp_path) -> None:
    case = CASES["out_of_brush"]  # a disc of radius 12 in a brush of radius 18, dragged 80 px
    video = render_case(tmp_path, case, "num_frames=8")
    fidelity = object_fidelity(video.frames, case.objects[0], video.plan.tracks[0].numpy())
    assert max(fidelity["per_frame_ghost"]) == 0.0  # no object colour anywhere but where the object is
    assert fidelity["tear"] < 0.05
    start = case.objects[0]
    assert np.abs(video.frames[-1][start].astype(int) - case.image[start].astype(int)).mean() > 20  # the start shows ground now


def test_crossing_objects_stay_whole_and_the_faster_passes_in_front(tmp_path) -> None:
    case = CASES["crossing"]  # a disc dragged right past a square dragged down, more slowly
    video = render_case(tmp_path, case, "num_frames=9")
    tracks = video.plan.tracks.numpy()  # [2, F, 2]
    fast, slow = (object_fidelity(video.frames, mask, path) for mask, path in zip(case.objects, tracks))
    assert abs(fast["per_frame_area"][4] - 1) < 0.05  # half way, over the square: the disc is whole
    assert fast["tear"] < 0.05 and slow["tear"] < 0.05  # apart again at the end, both whole
    x, y = np.rint(tracks[0, 4]).astype(int)  # where both are half way
    disc_colour = case.image[case.objects[0]].astype(float).mean(axis=0)
    assert np.abs(video.frames[4][y, x].astype(float) - disc_colour).max() < 60  # the disc is on top there


def test_tracks_inside_a_brush_change_nothing_the_brush_does_not_reach(tmp_path) -> None:
    case = CASES["brushed"]  # a disc dragged inside a brush box
    video = render_case(tmp_path, case, "num_frames=8")
    box = video.plan.region[0, 0].numpy() >= 0.5  # [H, W]
    shift = np.rint((video.plan.tracks[0, -1] - video.plan.tracks[0, 0]).numpy()).astype(int)  # the box moves with the disc
    moved = np.roll(box, (shift[1], shift[0]), axis=(0, 1))
    reach = 4 + 1  # the fade of the box's edge, and a pixel of resampling
    untouched = ~_grow(box | moved, reach)
    assert np.array_equal(video.frames[-1][untouched], case.image[untouched])
    fidelity = object_fidelity(video.frames, case.objects[0], video.plan.tracks[0].numpy())
    assert fidelity["tear"] < 0.05 and fidelity["ghost"] < 0.02


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """A bool mask [H, W] grown by a square of ``pixels`` on every side."""
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)) > 0


def repeated_runs(frame: np.ndarray) -> int:
    """The longest run of identical neighbouring pixels along the frame's left columns: a smear of the edge is a long run."""
    columns = frame[:, :16].astype(int)  # [H, 16, 3]
    same = np.abs(np.diff(columns, axis=1)).max(axis=-1) == 0  # [H, 15]
    longest = 0
    for row in same:
        run = 0
        for equal in row:
            run = run + 1 if equal else 0
            longest = max(longest, run)
    return longest + 1


def test_the_border_an_image_leaves_shows_its_mirror_image_not_a_smear(tmp_path, wiggle_plugin) -> None:
    image = CASES["drag_disc"].image[:64, :64].copy()
    video = render(tmp_path, image, "adapters=[wiggle]", "adapters.wiggle.amplitude=10", "num_frames=3")
    last = video.frames[-1].astype(int)
    np.testing.assert_array_equal(last[:, 10:], image[:, :-10].astype(int))  # everything else shifted 10 px
    np.testing.assert_array_equal(last[:, :10], image[:, 10:0:-1].astype(int))  # the revealed strip mirrors the edge
    assert repeated_runs(video.frames[-1]) < 2 * repeated_runs(image)  # a mirror at most doubles a run the picture has
    smeared = render(
        tmp_path, image, "adapters=[wiggle]", "adapters.wiggle.amplitude=10", "num_frames=3", "backbone.padding=border"
    )
    assert repeated_runs(smeared.frames[-1]) >= 10  # border padding repeats the edge, as it says


def test_zeros_padding_reads_black_outside(tmp_path, wiggle_plugin) -> None:
    image = textured_square_image(size=64, square=12, centre=(30, 30))
    video = render(tmp_path, image, "adapters=[wiggle]", "adapters.wiggle.amplitude=10", "num_frames=3", "backbone.padding=zeros")
    assert video.frames[-1][:, :9].max() == 0


def test_a_brush_with_no_motion_inside_is_kept_still_and_said_once(tmp_path, caplog) -> None:
    image = textured_square_image(size=64, square=12, centre=(30, 30))
    video = render(tmp_path, image, "adapters=[brush]", "adapters.brush.boxes=[[0,0,32,64]]", "num_frames=4")
    assert (video.frames == video.frames[0]).all()
    assert caplog.text.count("marked to animate freely") == 1 and "50.0% of the frame" in caplog.text
    assert video.metadata["plan"]["free_pixels"] == 32 * 64


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("backbone.padding=wrap", "backbone.padding=wrap is not one of: reflect, border, zeros"),
        ("backbone.fill=magic", "backbone.fill=magic is not one of: smooth, inpaint"),
        ("backbone.canvas=gpu", "backbone.canvas=gpu is not one of: auto, opencv, torch"),
        ("backbone.occlusion=-1", "backbone.occlusion=-1.0 must be zero or more"),
    ],
)
def test_a_bad_warp_key_is_one_sentence(tmp_path, override, message) -> None:
    from motionforge.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        render(tmp_path, textured_square_image(size=64, square=12, centre=(30, 30)), "adapters=[]", override, "num_frames=2")
