"""Selective noising: frame 0 is the picture's latent wherever a window holds it."""

from __future__ import annotations

import torch

from motionforge.backbones.diffusion.steering import selective_noising


def test_a_window_without_frame_0_is_left_alone_by_selective_noising() -> None:
    class Inner:
        def denoise(self, x, sigma, frames):
            return x * 0.5

    held = selective_noising.SelectiveNoising(Inner(), torch.full((1, 4, 2, 2), 7.0))
    x = torch.ones(1, 3, 4, 2, 2)
    assert torch.equal(held.denoise(x, torch.tensor(2.0), torch.tensor([4, 5, 6])), x * 0.5)
    out = held.denoise(x, torch.tensor(2.0), torch.tensor([0, 1, 2]))
    assert bool((out[:, 0] == 7).all()) and bool((out[:, 1:] == 0.5).all())
