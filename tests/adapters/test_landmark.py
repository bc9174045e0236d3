"""The landmark adapter: a landmark sequence becomes sparse hints at the face's landmarks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from motionforge import ConfigError, InputError, MotionContext
from motionforge.adapters.landmark import (
    LandmarkAdapter,
    LandmarkConfig,
    fit_similarity,
)
from motionforge.cli import main
from tests.conftest import rastered, red_centroid, textured_square_image

# A small "face": 6 landmarks on a 20-pixel box around (32, 24), in input-image pixels.
FACE = np.array([[22, 14], [42, 14], [42, 34], [22, 34], [32, 20], [32, 30]], float)


def context(width=64, height=48, frames=5, source=None) -> MotionContext:
    """A context for a blank image of the given working size and original size."""
    image = torch.zeros(3, height, width)
    return MotionContext(height, width, frames, image, source or (width, height))


def save(path: Path, array) -> str:
    """Write landmarks as .npy or .json (by the path's extension); return the path."""
    if path.suffix == ".json":
        path.write_text(json.dumps(np.asarray(array).tolist()))
    else:
        np.save(path, np.asarray(array))
    return str(path)


def moving(start: np.ndarray, shift, frames: int) -> np.ndarray:
    """A sequence [T, K, 2] whose frame l is start + l·shift/(T-1)."""
    steps = np.linspace(0.0, 1.0, frames)[:, None, None]  # [T, 1, 1]
    return start[None] + steps * np.asarray(shift, dtype=np.float64)  # [T, K, 2]


def build(tmp_path: Path, sequence, frames=5, ctx=None, name="seq.npy", **config):
    """The hint of the landmark adapter for a sequence written to tmp_path, with its samples also as a flow map and mask."""
    config = LandmarkConfig(file=save(tmp_path / name, sequence), **config)
    ctx = ctx or context(frames=frames)
    return rastered(LandmarkAdapter().build(config, ctx), ctx)


def flow_at(hint, points: np.ndarray) -> torch.Tensor:
    """The hint's flow at each point's pixel: [K, F, 2]."""
    xs, ys = np.rint(points).astype(int).T
    return hint.flow[:, :, ys, xs].permute(2, 0, 1)


def test_an_identity_sequence_gives_zero_flow(tmp_path) -> None:
    hint = build(tmp_path, np.repeat(FACE[None], 4, axis=0))
    assert hint.flow.shape == (5, 2, 48, 64) and hint.mask.shape == (1, 1, 48, 64)
    assert hint.mask.sum() == len(FACE) and hint.region is None
    assert float(hint.flow.abs().max()) == 0.0


def test_a_translation_appears_at_every_landmark_pixel(tmp_path) -> None:
    hint = build(tmp_path, moving(FACE, (8, -4), 5))
    expected = torch.tensor([[8.0 * i / 4, -4.0 * i / 4] for i in range(5)])  # [F, 2]
    for flow in flow_at(hint, FACE):
        torch.testing.assert_close(flow, expected)
    assert float(hint.flow[0].abs().max()) == 0.0
    total = float(expected.abs().sum()) * len(FACE)  # nothing anywhere else
    assert float(hint.flow.abs().sum()) == pytest.approx(total)
    tracks = torch.from_numpy(moving(FACE, (8, -4), 5)).float().transpose(0, 1)
    torch.testing.assert_close(hint.tracks, tracks)


def test_the_sequence_is_resampled_to_the_clip_length(tmp_path) -> None:
    steps = np.array([0.0, 1.0, 4.0, 9.0, 16.0])  # x motion of the 5 frames, uneven
    sequence = FACE[None] + np.stack([steps, np.zeros(5)], axis=1)[:, None]  # [5, K, 2]
    hint = build(tmp_path, sequence, frames=9)
    assert hint.flow.shape[0] == 9 and hint.tracks.shape == (len(FACE), 9, 2)
    expected = [0.0, 0.5, 1.0, 2.5, 4.0, 6.5, 9.0, 12.5, 16.0]  # halfway between frames
    assert flow_at(hint, FACE)[0, :, 0].tolist() == expected
    assert flow_at(hint, FACE)[0, :, 1].abs().max() == 0


def test_strength_multiplies_the_motion(tmp_path) -> None:
    hint = build(tmp_path, moving(FACE, (8, -4), 5), strength=0.5)
    assert flow_at(hint, FACE)[0, -1].tolist() == [4.0, -2.0]
    assert hint.tracks[0, -1].tolist() == [22 + 4.0, 14 - 2.0]


def test_the_motion_sits_at_the_reference_landmarks(tmp_path) -> None:
    # the input face is 5 px right of and 3 px below the sequence's; [1, K, 2] works too
    reference = save(tmp_path / "ref.npy", (FACE + [5, 3])[None])
    hint = build(tmp_path, moving(FACE, (8, -4), 5), reference=reference)
    assert hint.mask[0, 0, 14, 22] == 0 and hint.mask[0, 0, 17, 27] == 1
    assert flow_at(hint, FACE + [5, 3])[:, -1].tolist() == [[8.0, -4.0]] * len(FACE)
    assert hint.tracks[0, 0].tolist() == [27.0, 17.0]
    assert hint.tracks[0, -1].tolist() == [35.0, 13.0]


def test_landmarks_sharing_a_pixel_are_averaged(tmp_path) -> None:
    start = np.array([[10.0, 10.0], [10.2, 9.8], [40.0, 30.0]])  # two on one pixel
    sequence = np.stack([start, start + [[4, 0], [0, 8], [1, 1]]])  # [2, 3, 2]
    hint = build(tmp_path, sequence, frames=2)
    assert hint.mask.sum() == 2 and hint.flow[-1, :, 10, 10].tolist() == [2.0, 4.0]
    assert hint.tracks.shape == (3, 2, 2)


def rotation(angle: float) -> np.ndarray:
    """The 2×2 matrix of a rotation by angle radians."""
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def test_similarity_fit_recovers_a_known_transform() -> None:
    scale, turn, shift = fit_similarity(FACE, 1.7 * FACE @ rotation(0.4).T + [5, -3])
    assert scale == pytest.approx(1.7) and np.allclose(turn, rotation(0.4))
    assert np.allclose(shift, [5, -3])
    # a mirror image is not a similarity: the fit still returns a proper rotation
    mirrored = FACE * [-1, 1]
    assert np.linalg.det(fit_similarity(FACE, mirrored)[1]) == pytest.approx(1.0)


def test_similarity_alignment_drives_a_face_with_another_face(tmp_path) -> None:
    scale, turn, shift = 2.0, rotation(np.pi / 6), np.array([40.0, -20.0])
    other = scale * FACE @ turn.T + shift  # the driving face: bigger, turned, elsewhere
    move = np.array([6.0, 2.0])  # how the driving face moves over the clip
    sequence = moving(other, move, 5)
    reference = save(tmp_path / "ref.json", FACE)
    hint = build(tmp_path, sequence, reference=reference, align="similarity")
    # the driving motion, brought back into the reference face's frame
    expected = torch.tensor(turn.T @ move / scale).float()
    close = {"atol": 1e-4, "rtol": 0}
    for flow in flow_at(hint, FACE):
        torch.testing.assert_close(flow[-1], expected, **close)
        torch.testing.assert_close(flow[2], expected / 2, **close)
    face = torch.from_numpy(FACE).float()  # [K, 2]
    torch.testing.assert_close(hint.tracks[:, 0], face, **close)
    unaligned = build(tmp_path, sequence, reference=reference)
    assert flow_at(unaligned, FACE)[0, -1].tolist() == pytest.approx(move.tolist())


def test_json_and_npy_give_the_same_hint(tmp_path) -> None:
    sequence = moving(FACE, (3.5, 1.25), 4)
    from_npy = build(tmp_path, sequence, name="seq.npy", face_region=True)
    from_json = build(tmp_path, sequence, name="seq.json", face_region=True)
    for field in ("flow", "mask", "region", "tracks"):
        assert torch.equal(getattr(from_npy, field), getattr(from_json, field)), field


def test_landmarks_given_on_a_canvas_of_another_size(tmp_path) -> None:
    sequence = moving(FACE, (8, -4), 5)
    on_canvas = (sequence + 0.5) * 2 - 0.5  # the same landmarks on a 128×96 canvas
    direct = build(tmp_path, sequence)
    rescaled = build(tmp_path, on_canvas, name="canvas.npy", size=[128, 96])
    torch.testing.assert_close(rescaled.tracks, direct.tracks)
    assert torch.equal(rescaled.mask, direct.mask)
    torch.testing.assert_close(rescaled.flow, direct.flow)


def test_landmarks_follow_the_working_size(tmp_path) -> None:
    half = context(width=32, height=24, source=(64, 48))  # working size: half the image
    hint = build(tmp_path, moving(FACE, (8, -4), 5), ctx=half)
    assert hint.flow.shape == (5, 2, 24, 32)
    assert flow_at(hint, (FACE + 0.5) / 2 - 0.5)[1, -1].tolist() == [4.0, -2.0]


def test_face_region_covers_the_dilated_hull(tmp_path) -> None:
    sequence = moving(FACE, (8, -4), 5)
    # a margin of 0.25 × the 20 px face box: about 5 px
    hint = build(tmp_path, sequence, face_region=True, face_margin=0.25)
    region = hint.region[0, 0]
    assert hint.region.shape == (1, 1, 48, 64)
    assert set(region.unique().tolist()) == {0.0, 1.0}
    assert all(region[y, x] == 1 for x, y in FACE.astype(int))
    assert region[14:35, 22:43].min() == 1  # the hull (here the whole box)
    assert region[24, 22 - 4] == 1 and region[24, 22 - 7] == 0  # ~5 px margin, left
    assert region[34 + 4, 32] == 1 and region[34 + 7, 32] == 0  # and below
    assert region[:6].sum() == 0 and region[:, :12].sum() == 0  # nothing far away
    assert region[:, 52:].sum() == 0 and region[44:].sum() == 0
    bare = build(tmp_path, sequence, face_region=True, face_margin=0.0).region
    assert float(bare.sum()) == 21 * 21  # no margin: exactly the hull


def test_landmarks_outside_the_frame_are_dropped_with_a_warning(tmp_path, caplog):
    start = np.concatenate([FACE, [[500.0, 10.0], [-3.0, 20.0]]])
    with caplog.at_level(logging.WARNING):
        hint = build(tmp_path, moving(start, (8, -4), 5))
    assert "dropped 2 of 8 landmarks" in caplog.text
    assert hint.tracks.shape == (len(FACE), 5, 2) and hint.mask.sum() == len(FACE)
    outside = "every reference landmark lies outside the 64x48 working frame"
    with pytest.raises(InputError, match=outside):
        build(tmp_path, moving(FACE + 200, (8, -4), 5))


def _npy_bytes(tmp_path: Path, array) -> bytes:
    """The bytes of a .npy file holding array (object arrays pickled)."""
    np.save(tmp_path / "tmp.npy", array, allow_pickle=True)
    return (tmp_path / "tmp.npy").read_bytes()


GOOD = moving(FACE, (8, -4), 3)


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "seq.txt",
            "1 2",
            "has the unknown extension '.txt'; give a .npy array or a .json list",
        ),
        ("seq.npy", b"not a numpy file", "is not a readable .npy array"),
        (
            "seq.npy",
            lambda tmp: _npy_bytes(tmp, GOOD)[:-10],
            "is not a readable .npy array",
        ),
        (
            "seq.npy",
            lambda tmp: _npy_bytes(tmp, np.array([[1, 2]], dtype=object)),
            "is not a readable .npy array",
        ),
        (
            "seq.npy",
            np.array([[["a", "b"]]] * 2),
            "holds <U1 values; it must be a numeric array",
        ),
        (
            "seq.json",
            "[[[1, 2], [3, 4]]",
            "is not valid JSON \\(Expecting ',' delimiter at line 1",
        ),
        ("seq.json", b"\xff\xfe\x00", "is not a UTF-8 text file"),
        (
            "seq.json",
            '{"frames": []}',
            "holds a JSON dict; it must be a list of frames",
        ),
        (
            "seq.json",
            '[[["a", 2]], [[1, 2]]]',
            'contains "a" where a number or a list is expected',
        ),
        ("seq.json", "[[[1, 2]], [[1, 2], [3, 4]]]", "has lists of different lengths"),
        (
            "seq.npy",
            np.zeros((5, 68)),
            "has shape \\[5, 68\\] but must be \\[T, K, 2\\]",
        ),
        (
            "seq.json",
            [[[1, 2, 3]], [[1, 2, 3]]],
            "has shape \\[2, 1, 3\\] but must be \\[T, K, 2\\]",
        ),
        (
            "seq.npy",
            FACE[None],
            "has only 1 frame; a landmark sequence needs at least 2 frames",
        ),
        ("seq.npy", np.zeros((3, 0, 2)), "is empty \\(shape \\[3, 0, 2\\]\\)"),
        ("seq.json", [], "is empty \\(shape \\[0\\]\\)"),
        (
            "seq.npy",
            np.where(np.arange(3)[:, None, None] == 1, np.nan, GOOD),
            "contains NaN or infinity \\(first at index \\[1, 0, 0\\]\\)",
        ),
        (
            "seq.json",
            "[[[1, 2]], [[Infinity, 2]]]",
            "contains NaN or infinity \\(first at index \\[1, 0, 0\\]\\)",
        ),
    ],
)
def test_bad_sequence_files_give_one_clear_sentence(tmp_path, name, content, message):
    path = tmp_path / name
    content = content(tmp_path) if callable(content) else content
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        save(path, content)
    config = LandmarkConfig(file=str(path))
    with pytest.raises(InputError, match=f"landmark file {path} {message}") as caught:
        LandmarkAdapter().build(config, context())
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "reference, message",
    [
        (
            FACE[:5],
            "reference landmark file .*ref.npy has 5 landmarks but the sequence .*seq.npy has 6 per frame",
        ),
        (
            np.stack([FACE, FACE]),
            "ref.npy has shape \\[2, 6, 2\\] but must be \\[K, 2\\] or \\[1, K, 2\\]",
        ),
        (np.zeros((0, 2)), "ref.npy is empty"),
        (
            FACE * [1, np.inf],
            "ref.npy contains NaN or infinity \\(first at index \\[0, 1\\]\\)",
        ),
    ],
)
def test_bad_reference_files(tmp_path, reference, message) -> None:
    with pytest.raises(InputError, match=message):
        build(tmp_path, GOOD, reference=save(tmp_path / "ref.npy", reference))


@pytest.mark.parametrize(
    "config, error, message",
    [
        (
            {"file": None},
            ConfigError,
            "the landmark adapter has no landmarks: set adapters.landmark.file=",
        ),
        (
            {"align": "affine"},
            ConfigError,
            "adapters.landmark.align='affine' is not one of none, similarity",
        ),
        (
            {"face_margin": -0.1},
            ConfigError,
            "adapters.landmark.face_margin=-0.1 must be a number ≥ 0",
        ),
        (
            {"strength": float("nan")},
            ConfigError,
            "adapters.landmark.strength=nan must be a finite number",
        ),
        (
            {"size": [0, 10]},
            InputError,
            "the canvas size in adapters.landmark.size must be \\[W, H\\]",
        ),
        (
            {"file": "missing.npy"},
            InputError,
            "landmark file not found: missing.npy; pass adapters.landmark.file=",
        ),
        (
            {"reference": "gone.json"},
            InputError,
            "landmark file not found: gone.json; pass adapters.landmark.reference=",
        ),
    ],
)
def test_bad_config_values_name_the_key(tmp_path, config, error, message) -> None:
    config = {"file": save(tmp_path / "seq.npy", GOOD), **config}
    with pytest.raises(error, match=message):
        LandmarkAdapter().build(LandmarkConfig(**config), context())


def test_similarity_needs_distinct_landmarks(tmp_path) -> None:
    reference = save(tmp_path / "r.npy", FACE[:4])
    message = "has all its landmarks on one point; adapters.landmark.align=similarity"
    with pytest.raises(InputError, match=message):
        build(
            tmp_path, np.full((3, 4, 2), 10.0), align="similarity", reference=reference
        )


# --- end to end, through the command line ---

SQUARE_CENTRE = np.array([40.0, 60.0])


def ring(count: int = 12, radius: float = 10.0) -> np.ndarray:
    """Landmarks on a circle around the textured square's centre: [K, 2]."""
    angles = np.linspace(0.0, 2 * np.pi, count, endpoint=False)
    return SQUARE_CENTRE + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def animate(tmp_path: Path, sequence: np.ndarray, run: Path) -> int:
    """Run `motionforge animate` on the textured square driven by landmarks; → exit status."""
    png = tmp_path / "square.png"
    Image.fromarray(textured_square_image(size=128)).save(png)
    npy = save(tmp_path / "landmarks.npy", sequence)
    return main(
        [
            "animate",
            f"image={png}",
            "adapters=[landmark]",
            f"adapters.landmark.file={npy}",
            "num_frames=6",
            "progress=false",
            "output.frames=true",
            "output.gif=false",
            f"hydra.run.dir={run}",
        ]
    )


def test_landmarks_move_the_square_end_to_end(tmp_path) -> None:
    run = tmp_path / "run"
    assert animate(tmp_path, moving(ring(), (12, 6), 6), run) == 0
    paths = sorted((run / "frames").glob("*.png"))
    frames = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    assert len(frames) == 6
    start = red_centroid(frames[0])
    assert np.linalg.norm(start - SQUARE_CENTRE) < 1.0
    for index, frame in enumerate(frames):
        wanted = start + index * np.array([12.0, 6.0]) / 5
        error = np.linalg.norm(red_centroid(frame) - wanted)
        assert error < 1.5, (index, error)


def test_a_bad_landmark_file_fails_end_to_end_with_one_line(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert animate(tmp_path, np.zeros((5, 68)), run) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: landmark file "), lines
    assert "has shape [5, 68] but must be [T, K, 2]" in lines[0]
    assert not run.exists()
