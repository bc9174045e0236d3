"""CMP, MOFA-Video's sparse-to-dense flow network: the network, its released checkpoint's loader, and the densifier.

``motion.densifier=cmp motion.cmp_checkpoint=PATH`` turns a plan's sparse samples (tracks,
landmarks) into CMP's dense flow for every backbone; ``motion.cmp_checkpoint=tiny`` is the tiny
random network of the tests and the bench.
"""

from __future__ import annotations

import torch

from motionforge.modules.cmp.densifier import CMPDensifier, densifier_memory
from motionforge.modules.cmp.loading import (
    FULL_CONFIG,
    TINY,
    TINY_CONFIG,
    WEIGHT_KINDS,
    WHAT,
    expected_shapes,
    load_cmp,
    tiny_cmp,
)
from motionforge.modules.cmp.network import CMP, CMPConfig, Fuser


def cmp_densifier(checkpoint: str, device: torch.device | str = "cpu") -> CMPDensifier:
    """The densifier of a ``motion.cmp_checkpoint`` value (a released file, or ``tiny``), its network on the device."""
    return CMPDensifier(load_cmp(checkpoint, device))


__all__ = [
    "CMP",
    "FULL_CONFIG",
    "TINY",
    "TINY_CONFIG",
    "WEIGHT_KINDS",
    "WHAT",
    "CMPConfig",
    "CMPDensifier",
    "Fuser",
    "cmp_densifier",
    "densifier_memory",
    "expected_shapes",
    "load_cmp",
    "tiny_cmp",
]
