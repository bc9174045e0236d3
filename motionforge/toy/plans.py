"""A toy clip's tracks → the motion plan that ``adapters.trajectory`` would build from its track file, with the default motion keys."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from motionforge.adapters.trajectory import TrajectoryAdapter, TrajectoryConfig
from motionforge.core.types import MotionContext, MotionPlan
from motionforge.motion.fuse import DensifySettings, fuse


@lru_cache(maxsize=1)
def default_densify() -> DensifySettings:
    """The densifier settings of the default config (conf/config.yaml's motion keys)."""
    from motionforge.core.config import compose_config

    motion = compose_config([]).motion
    return DensifySettings(motion.sigma, motion.threshold, motion.normalize, motion.feather)


def track_entries(tracks: np.ndarray, visible: np.ndarray) -> list[dict]:
    """Tracks [S, F, 2] and their visibility [S, F] as the trajectory adapter's inline entries."""
    return [{"points": track.tolist(), "visible": shown.tolist()} for track, shown in zip(tracks, visible)]


def track_plan(picture: torch.Tensor, tracks: np.ndarray, visible: np.ndarray) -> MotionPlan:
    """The plan of tracks [S, F, 2] (pixels, one point per frame) on a picture [3, H, W] in [0, 1], fused as ``animate`` fuses it."""
    height, width = picture.shape[-2:]
    context = MotionContext(
        height=height, width=width, num_frames=tracks.shape[1], image=picture, source_size=(width, height)
    )  # fmt: skip
    hint = TrajectoryAdapter().build(TrajectoryConfig(paths=track_entries(tracks, visible)), context)
    return fuse({"trajectory": hint}, context, default_densify())
