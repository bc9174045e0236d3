"""Window layouts and fusion weights of the long-video samplers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from motionforge import ConfigError, SamplerInput
from motionforge.core.types import FrameLimit
from motionforge.samplers.windows import (
    WEIGHTINGS,
    consecutive_windows,
    fit_window,
    fusion_weights,
    gaussian,
    overlapping_windows,
    pyramid,
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
    assert pyramid(5).tolist() == [1, 2, 3, 2, 1]
    assert pyramid(4).tolist() == [1, 2, 2, 1]
    bell = gaussian(9)
    assert int(bell.argmax()) == 4 and torch.allclose(bell, bell.flip(0))


@settings(deadline=None)
@given(
    frames=st.integers(1, 80),
    window=st.integers(2, 24),
    stride_fraction=st.floats(0.05, 1.0),
    weighting=st.sampled_from(list(WEIGHTINGS)),
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


class Still:
    """A denoiser that answers zero (only the window policy is under test)."""

    def denoise(self, x, sigma, frames):
        return x * 0


def problem(window: int = 16, limit: int | None = None) -> SamplerInput:
    frame_limit = None if limit is None else FrameLimit(limit, "the test's positional table")
    return SamplerInput(Still(), torch.tensor([1.0, 0.0]), torch.zeros(1, 4, 1, 1, 1), window, frame_limit=frame_limit)


def test_the_window_is_the_backbones_unless_asked() -> None:
    assert fit_window(None, problem(16)) == 16 and fit_window(12, problem(16)) == 12


def test_a_window_longer_than_the_trained_one_runs_with_a_warning_as_in_diffusers(caplog) -> None:
    assert fit_window(25, problem(14)) == 25
    assert "sampler.window=25 is more frames than the 14 per call this backbone's model was trained on" in caplog.text
    assert fit_window(25, problem(14), key="num_frames") == 25
    assert "sampler=periodic_overlap or sampler=phased keep windows of 14" in caplog.text


def test_a_window_beyond_the_backbones_limit_is_refused_naming_it() -> None:
    assert fit_window(32, problem(16, limit=32)) == 32
    with pytest.raises(ConfigError, match=r"sampler.window=33 is more frames than this backbone takes in one call: at most 32, set by "
                       r"the test's positional table; set sampler.window=32 or fewer"):  # fmt: skip
        fit_window(33, problem(16, limit=32))
    with pytest.raises(ConfigError, match=r"num_frames=40 .* at most 32.*or use sampler=periodic_overlap or sampler=phased"):
        fit_window(40, problem(16, limit=32), key="num_frames")
