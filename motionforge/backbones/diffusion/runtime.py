"""The backbones' device keys: which attention backend runs, and model CPU offload on CUDA.

``attention`` picks the kernel backend of the motion-augmented temporal attention and the splats of
``warped_attention`` (``auto``: the kernels' automatic choice; ``sdpa``: the PyTorch reference, the
concatenate + softmax math; ``xformers``; ``triton``) and, for the UNet's own attention layers,
``sdpa`` keeps diffusers' AttnProcessor2_0 and ``xformers`` turns on diffusers' memory-efficient
attention; the Triton backend covers the motion-augmented temporal attention only, so ``triton``
leaves the UNet's own layers on AttnProcessor2_0. ``cpu_offload`` keeps each model on the CPU
until it runs (accelerate's ``cpu_offload_with_hook``, as diffusers' model CPU offload), CUDA only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from motionforge.core.errors import ConfigError
from motionforge.kernels.dispatch import IMPLEMENTATIONS, why_not_runnable

ATTENTION: dict[str, str | None] = {"auto": None, "sdpa": "reference", "xformers": "xformers", "triton": "triton"}


@dataclass
class RuntimeParams:
    """The device keys shared by the diffusion backbones."""

    attention: str = "auto"  # auto | sdpa | xformers | triton: the backend of the attention (see motionforge.backbones.diffusion.runtime)
    cpu_offload: bool = False  # keep each model on the CPU until it runs (CUDA only; needs accelerate)


def check(config: RuntimeParams, device: torch.device) -> None:
    """Check the device keys against the run's device; one sentence per mistake."""
    device = torch.device(device)
    if config.attention not in ATTENTION:
        raise ConfigError(f"backbone.attention={config.attention!r} is not one of {', '.join(ATTENTION)}")
    if config.attention in ("xformers", "triton"):
        reason = why_not_runnable(config.attention, device)
        if reason is not None:
            raise ConfigError(f"backbone.attention={config.attention} cannot run here: {reason}")
    if config.cpu_offload:
        if device.type != "cuda":
            raise ConfigError(f"backbone.cpu_offload=true needs a CUDA device, not {device.type}; set it to false")
        if importlib.util.find_spec("accelerate") is None:
            raise ConfigError(
                "backbone.cpu_offload=true needs accelerate, which is not installed; pip install accelerate (or motionforge[offload])"
            )


def kernel_backend(config: RuntimeParams, op: str) -> str | None:
    """The motionforge.kernels backend= for op under config.attention (None: automatic, also where op has no such backend)."""
    backend = ATTENTION[config.attention]
    return backend if backend in IMPLEMENTATIONS[op] else None


def set_unet_attention(unet: Any, config: RuntimeParams) -> None:
    """Turn diffusers' xformers attention on the UNet's own layers on for attention=xformers, and off again otherwise."""
    wanted = config.attention == "xformers"
    if wanted != getattr(unet, "_motionforge_xformers", False):
        if wanted:
            unet.enable_xformers_memory_efficient_attention()
        else:
            unet.disable_xformers_memory_efficient_attention()
        unet._motionforge_xformers = wanted


def offload(models: Sequence[torch.nn.Module], device: torch.device) -> None:
    """Keep the models on the CPU, each moved to device when it runs and back when the next one in the sequence runs."""
    from accelerate import cpu_offload_with_hook

    hook = None
    for model in models:
        _, hook = cpu_offload_with_hook(model.to("cpu"), device, prev_module_hook=hook)


def warped_backends(config: RuntimeParams) -> tuple[str | None, str | None]:
    """The kernels' backend= of warped_attention's temporal_attention and splat under config.attention."""
    return kernel_backend(config, "temporal_attention"), kernel_backend(config, "splat")


def load_device(config: RuntimeParams, device: torch.device) -> torch.device:
    """Where the models load: the CPU under cpu_offload (they move to device as they run), else device."""
    return torch.device("cpu") if config.cpu_offload else torch.device(device)
