"""The settings every benchmark suite shares: the device and the seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BenchSettings:
    """The device the suites run on (and its config spelling) and the seed of every run."""

    device: torch.device
    device_name: str  # as the run config spells it: auto | cpu | cuda | cuda:N
    seed: int = 0
