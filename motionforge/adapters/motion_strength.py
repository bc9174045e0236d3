"""The global motion strength M_s of Controllable Longer Image Animation (eq. 8) as a control: rescale the whole plan."""

from __future__ import annotations

import math
from dataclasses import dataclass

from motionforge.core.errors import ConfigError
from motionforge.core.hookspecs import hookimpl
from motionforge.core.types import MotionContext, MotionHint


@dataclass
class MotionStrengthConfig:
    """Parameters of the motion_strength adapter: give exactly one of value and scale."""

    value: float | None = None  # target M_s: mean consecutive-frame motion, pixels per frame at the working size
    scale: float | None = None  # multiply the fused motion by this instead


class MotionStrengthAdapter:
    """Asks the fusion to rescale the fused flow, last, to a global motion strength M_s or by a factor."""

    name = "motion_strength"
    Config = MotionStrengthConfig
    memory_per_pixel = 0  # its hint is a number, not a flow per frame

    def build(self, config: MotionStrengthConfig, context: MotionContext) -> MotionHint:
        """A hint with no flow of its own: a target strength or a scale for the whole plan."""
        given = {key: getattr(config, key) for key in ("value", "scale") if getattr(config, key) is not None}
        if len(given) != 1:
            raise ConfigError(
                "the motion_strength adapter needs exactly one of adapters.motion_strength.value (a target M_s in "
                "pixels per frame) or adapters.motion_strength.scale (a factor); "
                + ("both are set" if given else "neither is set")
            )
        key, number = next(iter(given.items()))
        if not (math.isfinite(number) and number >= 0):
            raise ConfigError(f"adapters.motion_strength.{key}={number} must be a finite number, zero or more")
        return MotionHint(strength=float(number)) if key == "value" else MotionHint(scale=float(number))


@hookimpl
def register_adapters(register) -> None:
    """Register the motion_strength adapter."""
    register(MotionStrengthAdapter)
