"""Window layouts and fusion weights of the long-video samplers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from motionforge import ConfigError
from motionforge.samplers.windows import (
    WEIGHTINGS,
    check_window,
    consecutive_windows,
    fusion_weights,
    overlapping_windows,
    phase_step,
    position_weights,
)


def test_128_frames_in_windows_of_16_every_8_make_15_windows_ending_on_the_last_frame() -> None:
    windows = overlapping_windows(128, 16, 8)
    assert len(windows) == 15
    assert [int(w[0]) for w in windows] == list(range(0, 113, 8))
    assert all(len(w) == 16 for w in windows) and int(windows[-1][-1]) == 127


def test_the_last_window_is_shifted_back_to_end_on_the_last_frame() -> None:
    assert [w.tolist()[0] for w in overlapping_windows(20, 8, 5)] == [0, 5, 10, 12]


def test_a_clip_no_longer_than_the_window_is_one_window() -> None:
    assert [w.tolist() for w in overlapping_windows(6, 16, 8)] == [list(range(6))]
    assert [w.tolist() for w in overlapping_windows(6, 16, 8, anchor_first_frame=True)] == [list(range(6))]


def test_anchored_windows_put_frame_0_at_the_head_of_each_as_mofa_does() -> None:
    windows = [w.tolist() for w in overlapping_windows(25, 14, 7, anchor_first_frame=True)]
    assert windows == [list(range(14)), [0, *range(8, 21)], [0, *range(12, 25)]]
    assert all(len(w) == 14 and w[0] == 0 for w in windows)
    assert sorted({f for w in windows for f in w}) == list(range(25))


def test_pyramid_weights_rise_and_fall_as_freenoise_s() -> None:
    assert position_weights(5, "pyramid").tolist() == [1, 2, 3, 2, 1]
    assert position_weights(4, "pyramid").tolist() == [1, 2, 2, 1]
    gaussian = position_weights(9, "gaussian")
    assert int(gaussian.argmax()) == 4 and torch.allclose(gaussian, gaussian.flip(0))


@settings(deadline=None)
@given(
    frames=st.integers(1, 80),
    window=st.integers(2, 24),
    stride_fraction=st.floats(0.05, 1.0),
    weighting=st.sampled_from(WEIGHTINGS),
    anchor=st.booleans(),
)
def test_the_weights_of_each_frame_sum_to_one(frames, window, stride_fraction, weighting, anchor) -> None:
    body = window - 1 if anchor else window
    stride = max(1, round(stride_fraction * body))
    windows = overlapping_windows(frames, window, stride, anchor)
    totals = torch.zeros(frames, dtype=torch.float64)
    for index, weights in zip(windows, fusion_weights(windows, frames, weighting, anchor)):
        assert len(index) <= window and bool((weights >= 0).all())
        totals.index_add_(0, index, weights)
    torch.testing.assert_close(totals, torch.ones(frames, dtype=torch.float64), rtol=0, atol=1e-12)


def test_with_an_anchor_only_the_first_window_speaks_for_frame_0() -> None:
    windows = overlapping_windows(30, 10, 5, anchor_first_frame=True)
    weights = fusion_weights(windows, 30, "pyramid", anchor_first_frame=True)
    assert float(weights[0][0]) == 1.0
    assert all(float(w[0]) == 0.0 for w in weights[1:])


def test_consecutive_windows_tile_the_clip_and_the_last_is_shifted_back() -> None:
    assert [w.tolist()[0] for w in consecutive_windows(128, 16)] == list(range(0, 128, 16))
    assert [w.tolist() for w in consecutive_windows(40, 16)][-1] == list(range(24, 40))
    assert [w.tolist() for w in consecutive_windows(5, 16)] == [list(range(5))]


def test_the_phase_step_is_the_floor_of_gamma_times_steps() -> None:
    assert [phase_step(0.8, 25), phase_step(0.29, 100), phase_step(1.0, 7), phase_step(0.0, 7)] == [20, 29, 7, 0]


def test_a_window_larger_than_the_backbones_is_refused() -> None:
    assert check_window(None, 16) == 16
    with pytest.raises(ConfigError, match="sampler.window=24 is more frames than this backbone's window of 16"):
        check_window(24, 16)
