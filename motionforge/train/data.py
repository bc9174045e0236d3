"""A toy dataset held in memory as tensors, and each step's batch drawn from a step generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from motionforge.toy.dataset import ToyDataset
from motionforge.toy.world import ToyClip


@dataclass
class ClipTensors:
    """Every clip of a dataset as one tensor, with the tracks and centre visibility of each."""

    frames: torch.Tensor  # [N, F, 3, H, W] float in [−1, 1]
    tracks: list[np.ndarray]  # N × [S, F, 2] sprite centres (pixels)
    visible: list[np.ndarray]  # N × [S, F] bool

    @property
    def count(self) -> int:
        """How many clips."""
        return self.frames.shape[0]


def load_clips(dataset: ToyDataset) -> ClipTensors:
    """Read every clip of a dataset into memory."""
    clips: list[ToyClip] = list(dataset.clips())
    frames = torch.from_numpy(np.stack([clip.frames for clip in clips]))  # [N, F, H, W, 3] uint8
    frames = frames.permute(0, 1, 4, 2, 3).float() / 127.5 - 1.0  # [N, F, 3, H, W]
    return ClipTensors(frames, [clip.tracks for clip in clips], [clip.visible for clip in clips])


def batch_indices(count: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``batch_size`` clip indices drawn without replacement (with it when the dataset is smaller): [B]."""
    if batch_size <= count:
        return torch.randperm(count, generator=generator)[:batch_size]
    return torch.randint(count, (batch_size,), generator=generator)
