"""Window layouts over a clip and the per-frame weights that fuse overlapping windows, shared by the long-video samplers."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from motionforge.core.errors import ConfigError
from motionforge.core.types import SamplerInput

log = logging.getLogger(__name__)


def tile(start: int, end: int, length: int, stride: int) -> list[int]:
    """Start indices of windows of ``length`` frames every ``stride`` frames over [start, end), the last shifted back to end on end − 1."""
    if end - start <= length:
        return [start]
    starts = list(range(start, end - length + 1, stride))
    if starts[-1] + length < end:
        starts.append(end - length)
    return starts


def overlapping_windows(num_frames: int, window: int, stride: int, anchor_first_frame: bool = False) -> list[torch.Tensor]:
    """MOFA-Video's periodic windows: absolute frame indices [Fw] of each window, in order.

    With ``anchor_first_frame`` the windows tile frames 1 … F−1 with ``window − 1`` frames each and
    frame 0 is put at the head of every one, as MOFA-Video's released SVD code does.
    """
    if num_frames <= window:
        return [torch.arange(num_frames)]
    if not anchor_first_frame:
        return [torch.arange(s, s + window) for s in tile(0, num_frames, window, stride)]
    body = window - 1
    head = torch.zeros(1, dtype=torch.long)
    return [torch.cat([head, torch.arange(s, s + body)]) for s in tile(1, num_frames, body, stride)]


def consecutive_windows(num_frames: int, window: int) -> list[torch.Tensor]:
    """Windows of ``window`` frames side by side (no overlap), the last shifted back to end on the last frame: [Fw] each."""
    starts = list(range(0, max(num_frames - window, 0) + 1, window))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return [torch.arange(s, min(s + window, num_frames)) for s in starts]


def flat(length: int) -> torch.Tensor:
    """Every position of a window weighs 1: [length] float64."""
    return torch.ones(length, dtype=torch.float64)


def pyramid(length: int) -> torch.Tensor:
    """Weights rising by one from each end of the window: 1, 2, … , 2, 1, [length] float64."""
    positions = torch.arange(length, dtype=torch.float64)
    return torch.minimum(positions + 1, length - positions)


def gaussian(length: int) -> torch.Tensor:
    """A Gaussian centred on the window, σ = length/4: [length] float64."""
    positions = torch.arange(length, dtype=torch.float64)
    centre, width = (length - 1) / 2, max(length / 4, 0.5)
    return torch.exp(-0.5 * ((positions - centre) / width) ** 2)


WEIGHTINGS: dict[str, Callable[[int], torch.Tensor]] = {"flat": flat, "pyramid": pyramid, "gaussian": gaussian}


def fusion_weights(
    windows: list[torch.Tensor], num_frames: int, weighting: str, anchor_first_frame: bool = False
) -> list[torch.Tensor]:
    """Per-window weights [Fw] (float64) that sum to exactly one over the windows holding each frame.

    With ``anchor_first_frame`` only the first window speaks for frame 0 (its copies at the head
    of the other windows give the model context but do not vote), as in MOFA-Video's code.
    """
    raw = [WEIGHTINGS[weighting](len(frames)) for frames in windows]
    if anchor_first_frame:
        for k in range(1, len(windows)):
            raw[k] = torch.where(windows[k] == 0, 0.0, raw[k])
    totals = torch.zeros(num_frames, dtype=torch.float64)
    for frames, weights in zip(windows, raw):
        totals.index_add_(0, frames, weights)
    return [weights / totals[frames] for frames, weights in zip(windows, raw)]


def fit_window(frames: int | None, problem: SamplerInput, key: str = "sampler.window") -> int:
    """The frames per denoiser call a sampler uses (``frames``, else the model's trained window), as diffusers allows them.

    More than the trained window runs with a warning, as diffusers runs SVD img2vid at 25 frames;
    more than the backbone's limit (AnimateDiff's positional table) is an error that names it.
    ``key`` is the setting that asked for ``frames`` (num_frames for the single sampler).
    """
    if frames is None:
        return problem.window
    limit = problem.frame_limit
    if limit is not None and frames > limit.frames:
        advice = f"set {key}={limit.frames} or fewer"
        if key == "num_frames":
            advice += ", or use sampler=periodic_overlap or sampler=phased for a longer clip"
        raise ConfigError(
            f"{key}={frames} is more frames than this backbone takes in one call: at most {limit.frames}, "
            f"set by {limit.reason}; {advice}"
        )
    if frames > problem.window:
        longer = "sampler=periodic_overlap or sampler=phased keep" if key == "num_frames" else "sampler.window=null keeps"
        log.warning(
            "%s=%d is more frames than the %d per call this backbone's model was trained on; it runs, as in diffusers, "
            "but the motion may drift (%s windows of %d)",
            key, frames, problem.window, longer, problem.window,
        )  # fmt: skip
    return frames
