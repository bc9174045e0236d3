"""motionforge: animate a still image into a video under explicit motion control.

>>> from motionforge import compose_config, animate
>>> video = animate(compose_config(["num_frames=8", "output.save=false"]))
"""

from motionforge.core.config import compose_config
from motionforge.core.engine import animate
from motionforge.core.flowfield import FlowField
from motionforge.core.errors import (
    ConfigError,
    InputError,
    KernelError,
    MotionforgeError,
    OutputError,
    PluginError,
    ResourceError,
)
from motionforge.core.memory import RunShape
from motionforge.core.hookspecs import hookimpl
from motionforge.core.registry import motionforge_version
from motionforge.core.types import (
    Denoiser,
    MotionContext,
    MotionHint,
    MotionLayer,
    MotionPlan,
    Prepared,
    RenderRequest,
    SamplerInput,
    SparsePoints,
    Step,
    Stepper,
    Video,
)

__version__ = motionforge_version()

__all__ = [
    "ConfigError",
    "FlowField",
    "Denoiser",
    "InputError",
    "KernelError",
    "MotionContext",
    "MotionHint",
    "MotionLayer",
    "MotionPlan",
    "MotionforgeError",
    "OutputError",
    "PluginError",
    "Prepared",
    "ResourceError",
    "RunShape",
    "RenderRequest",
    "SamplerInput",
    "SparsePoints",
    "Step",
    "Stepper",
    "Video",
    "animate",
    "compose_config",
    "hookimpl",
    "__version__",
]
