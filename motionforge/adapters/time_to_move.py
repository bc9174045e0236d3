"""The time_to_move adapter: a Time-to-Move input folder as the control (its motion signal's flow, inside its mask).

The motion signal video's optical flow from its first frame to each frame becomes a dense hint
(as :mod:`~motionforge.adapters.dense_flow` measures a driving video), and the mask video's first
frame the region where that motion applies. When the run leaves ``image`` unset, the folder's
``first_frame.png`` is the picture; when it leaves ``prompt`` empty, ``prompt.txt`` is the prompt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from motionforge.core.errors import ConfigError, InputError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import MotionContext, MotionHint
from motionforge.io.opticalflow import DIS_PRESETS, read_frames, video_flow
from motionforge.io.time_to_move import read_folder

log = logging.getLogger(__name__)

METHODS = ("direct", "chained")


@dataclass
class TimeToMoveConfig:
    """Parameters of the time_to_move adapter."""

    folder: str | None = None  # a Time-to-Move folder: first_frame.png, mask.mp4, motion_signal.mp4, prompt.txt
    method: str = "direct"  # the signal's flow: direct (frame 0 → each frame) | chained (between consecutive frames)
    preset: str = "medium"  # DIS optical flow preset: ultrafast | fast | medium


def _check(config: TimeToMoveConfig) -> None:
    """Raise a ConfigError for a config without a folder or with an unknown option."""
    if config.folder is None:
        raise ConfigError(
            "the time_to_move adapter needs its folder: set adapters.time_to_move.folder=path/to/example "
            "(holding first_frame.png, mask.mp4, motion_signal.mp4 and prompt.txt)"
        )
    for key, allowed in (("method", METHODS), ("preset", tuple(DIS_PRESETS))):
        if getattr(config, key) not in allowed:
            raise ConfigError(f"adapters.time_to_move.{key}={getattr(config, key)} is not one of: {', '.join(allowed)}")


class TimeToMoveAdapter:
    """Time-to-Move's crude animation as the plan: its motion signal's flow, held to its mask."""

    name = "time_to_move"
    Config = TimeToMoveConfig

    def inputs(self, config: TimeToMoveConfig) -> dict[str, str]:
        """The picture and prompt the folder brings, for a run that leaves ``image`` or ``prompt`` unset."""
        _check(config)
        example = read_folder(config.folder)
        return {"image": str(example.first_frame), "prompt": example.prompt}

    def build(self, config: TimeToMoveConfig, context: MotionContext) -> MotionHint:
        """Measure the motion signal's flow over the clip and take the mask's first frame as the region."""
        _check(config)
        example = read_folder(config.folder)
        flow = video_flow(example.motion_signal, context, method=config.method, preset=config.preset)  # [F, 2, H, W]
        frames, _ = read_frames(example.mask, [0], context)
        region = torch.from_numpy(frames[0] >= 128).float()[None, None]  # [1, 1, H, W]: the moving part at frame 0
        if not bool(region.any()):
            raise InputError(
                f"the first frame of mask.mp4 in Time-to-Move folder {config.folder} is all black; nothing would move"
            )
        log.info("time_to_move: %d frames of motion, mask %.1f%% of the frame", context.num_frames, 100 * float(region.mean()))
        return MotionHint(flow=flow.to(context.device, torch.float32).contiguous(), region=region.to(context.device))


@hookimpl
def register_adapters(register) -> None:
    """Register the time_to_move adapter."""
    register(TimeToMoveAdapter)
