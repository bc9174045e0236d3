"""Building CMP at full or tiny size, and loading MOFA-Video's released training checkpoint into it, strictly.

The released file is ``ckpt_iter_42000.pth.tar``, a training checkpoint ``{'step', 'state_dict',
'optimizer'}`` whose keys carry DataParallel's ``module.`` prefix and lack every BatchNorm's
``num_batches_tracked`` (unused in eval). It is read with ``torch.load(weights_only=True)``, which
runs no code from it; a safetensors file of the same state dict (prefix or not) loads too.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

from motionforge.core.errors import InputError
from motionforge.modules import checkpoints
from motionforge.modules.cmp.network import CMP, CMPConfig

KEY = "motion.cmp_checkpoint"
WHAT = "CMP, MOFA-Video's sparse-to-dense flow network"
PREFIX = "module."
TINY = "tiny"  # motion.cmp_checkpoint=tiny: the tiny random network (tests, the bench)
FULL_CONFIG = CMPConfig()
# About 15 thousand parameters, seeded: the same code as the released network, at a size a test runs in milliseconds.
TINY_CONFIG = CMPConfig(width=2, blocks=(1, 1, 1, 1), image_dim=8, sparse_hidden=4, sparse_dim=4, decoder_width=4, size=64)
TINY_SEED = 0


def tolerated(name: str) -> bool:
    """Keys the released file lacks and the network does without: BatchNorm's ``num_batches_tracked``."""
    return name.endswith(".num_batches_tracked")


def expected_shapes(config: CMPConfig = FULL_CONFIG) -> checkpoints.Shapes:
    """The state-dict shapes of a CMP of this config, from a build on the meta device (a copy: callers may change it)."""
    return dict(_shapes_of(config))


@cache
def _shapes_of(config: CMPConfig) -> checkpoints.Shapes:
    """The state-dict shapes of a CMP of this config, built once."""
    return checkpoints.module_shapes(lambda: CMP(config))


def tiny_cmp() -> CMP:
    """The tiny CMP with random weights from seed 0, in eval mode (the same network every time)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = CMP(TINY_CONFIG)
    return model.eval()


def file_shapes(path: Path) -> checkpoints.Shapes | None:
    """A file's tensor shapes in CMP's own names (``module.`` taken off), or None for a folder or a file of no weights suffix."""
    if not path.is_file() or not path.name.endswith(checkpoints.SAFE_SUFFIXES + checkpoints.PICKLE_SUFFIXES):
        return None
    return dict(checkpoints.strip_prefix(checkpoints.read_shapes(path, "file"), PREFIX))


def _config_for(shapes: checkpoints.Shapes) -> CMPConfig:
    """The config whose network a file's shapes are: the tiny one when its stem says so, else the released one."""
    return TINY_CONFIG if shapes.get("image_encoder.conv1.weight") == (TINY_CONFIG.width, 3, 7, 7) else FULL_CONFIG


def load_cmp(value: str, device: torch.device | str = "cpu", key: str = KEY) -> CMP:
    """The CMP a ``motion.cmp_checkpoint`` names, in eval mode on the device: ``tiny``, or a released file, checked key by key.

    A file is strict: every key of the network with its shape, none more, except the
    ``num_batches_tracked`` buffers the release lacks. The first key that does not fit is named.
    A file whose stem is the tiny network's (a test's synthetic checkpoint) is checked against that one.
    """
    if str(value) == TINY:
        return tiny_cmp().to(device)
    path = checkpoints.weights_path(value, key, WHAT)
    shapes = dict(checkpoints.strip_prefix(checkpoints.read_shapes(path, key), PREFIX))
    config = _config_for(shapes)
    checkpoints.check_shapes(shapes, expected_shapes(config), path, key, WHAT, tolerated)
    state = checkpoints.strip_prefix(checkpoints.read_state_dict(path, key), PREFIX)
    model = CMP(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    left = [name for name in missing if not tolerated(name)]
    if left or unexpected:  # the shapes were checked; only a file changed between the two reads gets here
        raise InputError(f"{key}={path} does not hold {WHAT}: {'it lacks ' + left[0] if left else 'it has ' + unexpected[0]}")
    return model.eval().to(device)


WEIGHT_KINDS = [
    checkpoints.WeightKind(name="cmp", what=WHAT, read=file_shapes, expected=expected_shapes, optional=tolerated),
]
