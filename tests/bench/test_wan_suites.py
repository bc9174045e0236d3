"""Wan in the benchmark suites: its clips rounded to 4n+1 frames."""

from __future__ import annotations

from motionforge.backbones.diffusion.svd import SvdTinyBackbone
from motionforge.backbones.diffusion.wan import WanTinyBackbone
from motionforge.bench.suites.backbones import clip_length


def test_the_backbones_suite_runs_wan_on_the_next_4n_plus_1_frames() -> None:
    assert [clip_length(WanTinyBackbone, frames) for frames in (16, 17, 64, 128)] == [17, 17, 65, 129]
    assert clip_length(SvdTinyBackbone, 16) == 16
