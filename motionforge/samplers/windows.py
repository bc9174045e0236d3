"""Window layouts over a clip and the per-frame weights that fuse overlapping windows, shared by the long-video samplers."""

from __future__ import annotations

import math

import torch

from motionforge.core.errors import ConfigError

WEIGHTINGS = ("flat", "pyramid", "gaussian")


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


def position_weights(length: int, weighting: str) -> torch.Tensor:
    """Raw weights [length] of the positions of a window: flat (all 1), pyramid (1, 2, … , 2, 1) or gaussian (centred, σ = length/4)."""
    positions = torch.arange(length, dtype=torch.float64)
    if weighting == "flat":
        return torch.ones(length, dtype=torch.float64)
    if weighting == "pyramid":
        return torch.minimum(positions + 1, length - positions)
    if weighting == "gaussian":
        centre, width = (length - 1) / 2, max(length / 4, 0.5)
        return torch.exp(-0.5 * ((positions - centre) / width) ** 2)
    raise ConfigError(f"sampler.weighting={weighting} is not a weighting; choose one of: {', '.join(WEIGHTINGS)}")


def fusion_weights(
    windows: list[torch.Tensor], num_frames: int, weighting: str, anchor_first_frame: bool = False
) -> list[torch.Tensor]:
    """Per-window weights [Fw] (float64) that sum to exactly one over the windows holding each frame.

    With ``anchor_first_frame`` only the first window speaks for frame 0 (its copies at the head
    of the other windows give the model context but do not vote), as in MOFA-Video's code.
    """
    raw = [position_weights(len(frames), weighting) for frames in windows]
    if anchor_first_frame:
        for k in range(1, len(windows)):
            raw[k] = torch.where(windows[k] == 0, 0.0, raw[k])
    totals = torch.zeros(num_frames, dtype=torch.float64)
    for frames, weights in zip(windows, raw):
        totals.index_add_(0, frames, weights)
    return [weights / totals[frames] for frames, weights in zip(windows, raw)]


def check_window(window: int | None, native: int, minimum: int = 1) -> int:
    """The window a long-video sampler uses: the config's, else the backbone's native one; one sentence when it cannot work."""
    if window is None:
        return native
    if window < minimum:
        raise ConfigError(f"sampler.window={window} must be at least {minimum} frames")
    if window > native:
        raise ConfigError(
            f"sampler.window={window} is more frames than this backbone's window of {native}; "
            f"set sampler.window={native} or fewer (or leave it unset)"
        )
    return window


def phase_step(gamma: float, steps: int) -> int:
    """M = ⌊γ·T⌋, the step at which phased inference splits (γ in [0, 1], T steps)."""
    return math.floor(gamma * steps + 1e-9)
