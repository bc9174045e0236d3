"""The engine's observers of a sampler: the denoiser-call counter and the step watcher (previews, the caller's callback)."""

from __future__ import annotations

import torch

from motionforge.core.types import Step
from motionforge.core.watch import CountingDenoiser, StepWatcher, preview_name
from tests.samplers.analytic import Gaussian, noise


def test_the_counter_counts_windows_and_frames() -> None:
    counter = CountingDenoiser(Gaussian(0.3, 0.5))
    counter.denoise(noise((2, 6, 4, 3, 5)), torch.tensor(1.0), torch.arange(6))
    counter.denoise(noise((2, 4, 4, 3, 5)), torch.tensor(1.0), torch.arange(4))
    assert (counter.calls, counter.frame_evaluations) == (2, 20)


def step(i: int, window: int | None = None, frames: int = 12) -> Step:
    x = torch.zeros(1, frames, 4, 2, 2)
    return Step(i, torch.tensor(1.0), torch.tensor(0.5), x, x + 0.5, torch.arange(frames), call=i + 1, total=4, window=window)


def test_previews_decode_the_x0_estimate_of_eight_spaced_frames_every_n_steps() -> None:
    decoded, seen = [], []

    def decode(x0: torch.Tensor) -> torch.Tensor:  # [1, Fp, C, h, w] → [Fp, 3, H, W]
        decoded.append(x0.shape[1])
        return x0[0, :, :3].repeat_interleave(4, -1).repeat_interleave(4, -2)

    watcher = StepWatcher(decode, every=2, then=seen.append)
    for i in range(4):
        watcher(step(i))
    assert sorted(watcher.previews) == ["step002.png", "step004.png"] and decoded == [8, 8]
    assert watcher.previews["step002.png"].shape == (8, 8 * 8, 3) and int(watcher.previews["step002.png"].max()) == 128
    assert [s.i for s in seen] == [0, 1, 2, 3]


def test_a_windows_preview_is_named_after_it() -> None:
    assert preview_name(step(4)) == "step005.png" and preview_name(step(4, window=1)) == "window2_step005.png"
