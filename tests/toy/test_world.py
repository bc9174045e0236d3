"""The toy world's clips: deterministic by seed, and their ground truth (tracks, masks, visibility) agrees with their frames."""

from __future__ import annotations

import numpy as np
import pytest

from motionforge.core.errors import ConfigError
from motionforge.toy.measures import sprite_region
from motionforge.toy.world import PALETTE, WorldSettings, make_clip


def test_the_same_seed_gives_the_same_bytes_and_another_seed_another_clip():
    first, again, other = make_clip(3), make_clip(3), make_clip(4)
    assert first.frames.tobytes() == again.frames.tobytes()
    assert np.array_equal(first.tracks, again.tracks)
    assert first.frames.tobytes() != other.frames.tobytes()


@pytest.mark.parametrize("seed", range(12))
def test_a_solid_sprite_has_its_colour_at_its_track_wherever_its_centre_is_seen(seed):
    clip = make_clip(seed)
    for s, kind in enumerate(clip.kinds):
        if kind == "blob":  # striped: its centre is shaded
            continue
        for f in range(clip.frames.shape[0]):
            if not clip.visible[s, f]:
                continue
            x, y = np.round(clip.tracks[s, f]).astype(int)
            assert clip.masks[s, f, y, x]
            assert np.abs(clip.frames[f, y, x].astype(int) - clip.colours[s].astype(int)).max() <= 1


@pytest.mark.parametrize("seed", range(12))
def test_masks_are_disjoint_and_lie_where_the_frames_show_the_sprites_colour(seed):
    clip = make_clip(seed)
    assert clip.masks.sum(axis=0).max() <= 1  # a pixel belongs to one sprite at most: the nearest
    for s, kind in enumerate(clip.kinds):
        if kind == "blob":
            continue
        inside = clip.frames[clip.masks[s]].astype(int)  # [n, 3] pixels under its mask
        close = np.abs(inside - clip.colours[s].astype(int)).max(axis=1) <= 40  # the edge is antialiased
        assert close.mean() > 0.8


def test_a_nearer_sprite_hides_the_centre_of_one_it_passes_over():
    hidden = [(seed, s, f) for seed in range(200) for clip in [make_clip(seed)] for s, f in zip(*np.nonzero(~clip.visible))]
    assert hidden, "some clip must have a crossing"
    seed, s, f = hidden[0]
    clip = make_clip(seed)
    x, y = np.round(clip.tracks[s, f]).astype(int)
    assert not clip.masks[s, f, y, x] and clip.masks[s + 1 :, f, y, x].any()


def test_sprites_move_along_their_tracks_and_a_camera_moves_the_background():
    still = next(make_clip(seed) for seed in range(50) if not make_clip(seed).camera)
    moving = next(make_clip(seed) for seed in range(50) if make_clip(seed).camera)
    assert np.linalg.norm(still.tracks[:, -1] - still.tracks[:, 0], axis=-1).max() > 3
    background = ~sprite_region(still.masks, margin=2)  # never near a sprite (its antialiased edge included)
    assert np.array_equal(still.frames[0][background], still.frames[-1][background])
    uncovered = ~sprite_region(moving.masks, margin=2)
    assert np.abs(moving.frames[0][uncovered].astype(int) - moving.frames[-1][uncovered].astype(int)).mean() > 1


def test_any_size_and_frame_count_and_distinct_colours():
    clip = make_clip(5, WorldSettings(size=96, num_frames=13, min_sprites=3, max_sprites=3))
    assert clip.frames.shape == (13, 96, 96, 3) and clip.tracks.shape == (3, 13, 2) and clip.masks.shape == (3, 13, 96, 96)
    assert len({tuple(c) for c in clip.colours}) == 3 and all(
        tuple(c) in {tuple(p) for p in PALETTE.astype(np.uint8)} for c in clip.colours
    )


@pytest.mark.parametrize(
    "settings, words",
    [(WorldSettings(size=8), "too small"), (WorldSettings(num_frames=1), "2 or more"), (WorldSettings(max_sprites=9), "≤ 6")],
)
def test_settings_that_cannot_make_a_clip_are_refused_in_one_sentence(settings, words):
    with pytest.raises(ConfigError, match=words):
        make_clip(0, settings)
