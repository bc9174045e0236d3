"""The toy world's measures: a clip's own frames are intact, a sprite erased or smeared is not, and crossings are not tracked."""

from __future__ import annotations

import numpy as np

from motionforge.toy.measures import intact, integrity, path_region, sprite_region, trackable
from motionforge.toy.world import make_clip


def test_the_clip_itself_and_its_frozen_first_frame_keep_their_sprites():
    for seed in range(20):
        clip = make_clip(1_000_000 + seed)
        assert intact(integrity(clip.frames, clip.frames, clip.colours))
        frozen = np.repeat(clip.frames[:1], len(clip.frames), axis=0)
        assert intact(integrity(frozen, clip.frames, clip.colours))


def test_a_sprite_that_fades_away_is_not_intact():
    clip = next(
        make_clip(seed)
        for seed in range(50)
        if np.isfinite(integrity(make_clip(seed).frames, make_clip(seed).frames, make_clip(seed).colours)[-1, -1])
    )
    faded = clip.frames.copy()
    background = clip.frames[0][~clip.masks[:, 0].any(axis=0)].mean(axis=0)
    faded[-1][clip.masks[-1, -1]] = background.astype(np.uint8)  # the nearest sprite gone from the last frame
    ratios = integrity(faded, clip.frames, clip.colours)
    assert ratios[-1, -1] < 0.2 and not intact(ratios)


def test_the_regions_cover_the_tracks_and_the_sprites():
    clip = make_clip(7)
    region = path_region(clip.tracks, clip.radii, clip.frames.shape[1:3])
    x, y = np.round(clip.tracks[:, -1, :]).astype(int).T
    assert region[y, x].all()
    assert sprite_region(clip.masks)[clip.masks.any(axis=(0, 1))].all()


def test_a_centre_near_a_nearer_sprite_is_not_trackable():
    for seed in range(200):
        clip = make_clip(seed)
        shown = trackable(clip.masks, clip.tracks, clip.visible)
        if (shown != clip.visible).any():
            break
    assert (shown <= clip.visible).all() and (shown != clip.visible).any()
