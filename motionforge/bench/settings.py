"""The settings every benchmark suite shares: the device, the seed, and the bench's folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class BenchSettings:
    """The device the suites run on (and its config spelling), the seed of every run, and where inner runs are kept."""

    device: torch.device
    device_name: str  # as the run config spells it: auto | cpu | cuda | cuda:N
    seed: int = 0
    folder: Path | None = None  # the bench's run folder: suites keep the runs they make under folder/runs/
