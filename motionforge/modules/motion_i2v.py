"""Motion-I2V's trained motion module (stage 2's ``motion_block.bin``) as a diffusers ``MotionAdapter``.

The released file is a state dict in the UNet's namespace with AnimateDiff-v2 names
(``down_blocks.i.motion_modules.j.temporal_transformer.…``: ``attention_blocks.{0,1}``, ``norms.{0,1}``,
``ff_norm``, a ``pos_encoder.pe`` table per attention block): 21 modules, down 2×4 with C = 320, 640,
1280, 1280, up 3×4 with C = 1280, 1280, 640, 320 and the mid block's with C = 1280. Its names map onto
``MotionAdapter``'s as diffusers' own AnimateDiff conversion maps them (``temporal_transformer.``
dropped, ``attention_blocks.k`` → ``attn{k+1}``, ``norms.k`` → ``norm{k+1}``, ``ff_norm`` → ``norm3``);
diffusers keeps one sinusoidal table per block (``pos_embed.pe``, shared by attn1 and attn2), so the
file's two tables, when there, must agree and the first is kept. The file is read without running
code from it (:mod:`motionforge.modules.checkpoints`) and strictly: a missing, extra or mis-shaped
key is one sentence naming it. The attention that makes it Motion-I2V's is
:mod:`motionforge.modules.motion_i2v_attention`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from motionforge.core.errors import InputError
from motionforge.modules import checkpoints
from motionforge.modules.checkpoints import Shapes, WeightKind

KEY = "backbone.motion_i2v"
WHAT = "Motion-I2V's motion module (models/stage2/Motion_Module/motion_block.bin)"
# MotionAdapter's defaults are AnimateDiff-v2's (mm_sd_v15_v2), the structure Motion-I2V's module has
FULL_CONFIG: dict[str, Any] = {
    "block_out_channels": (320, 640, 1280, 1280),
    "motion_layers_per_block": 2,
    "motion_num_attention_heads": 8,
    "motion_norm_num_groups": 32,
    "motion_max_seq_length": 32,
    "use_motion_mid_block": True,
}
# the tiny SD UNet's channels (motionforge.backbones.diffusion.tiny), for tests and the bench
TINY_CONFIG: dict[str, Any] = {
    "block_out_channels": (32, 64),
    "motion_layers_per_block": 2,
    "motion_num_attention_heads": 4,
    "motion_norm_num_groups": 2,
    "motion_max_seq_length": 32,
    "use_motion_mid_block": True,
}
_MODULE = re.compile(
    r"^(?P<head>(?:down_blocks|up_blocks)\.\d+\.motion_modules\.\d+|mid_block\.motion_modules\.\d+)\.(?P<tail>.+)$"
)
# file name part → MotionAdapter's (inside a module, after temporal_transformer.)
_RENAMES = ((".attention_blocks.0.", ".attn1."), (".attention_blocks.1.", ".attn2."), (".norms.0.", ".norm1."), (".norms.1.", ".norm2."), (".ff_norm.", ".norm3."))  # fmt: skip
_FIRST_TABLE = re.compile(r"\.attention_blocks\.0\.pos_encoder\.pe$")
_SECOND_TABLE = re.compile(r"\.attention_blocks\.1\.pos_encoder\.pe$")


def is_table(name: str) -> bool:
    """Whether a key is a sinusoidal positional table (fixed, not trained: a file may leave it out)."""
    return name.endswith(("pos_encoder.pe", "pos_embed.pe"))


def diffusers_name(name: str) -> str | None:
    """The MotionAdapter key of a released key (None for the second attention's duplicate table; other names unchanged)."""
    match = _MODULE.match(name)
    if not match or not match["tail"].startswith("temporal_transformer."):
        return name
    tail = "." + match["tail"].removeprefix("temporal_transformer.")
    if _SECOND_TABLE.search(tail):
        return None
    tail = _FIRST_TABLE.sub(".pos_embed.pe", tail)
    for old, new in _RENAMES:
        tail = tail.replace(old, new)
    return match["head"] + tail


def released_names(name: str) -> list[str]:
    """The released key(s) of a MotionAdapter key: the shared positional table is written once per attention block."""
    match = _MODULE.match(name)
    if not match:
        return [name]
    tail = "." + match["tail"]
    for old, new in _RENAMES:
        tail = tail.replace(new, old)
    head = f"{match['head']}.temporal_transformer"
    if tail.endswith(".pos_embed.pe"):
        block = tail.removesuffix(".pos_embed.pe")
        return [f"{head}{block}.attention_blocks.{k}.pos_encoder.pe" for k in (0, 1)]
    return [head + tail]


def build(config: Mapping[str, Any]) -> torch.nn.Module:
    """A MotionAdapter of a config (FULL_CONFIG, TINY_CONFIG, …) with diffusers' initial weights, on the current device."""
    from diffusers import MotionAdapter

    return MotionAdapter(**config)


def adapter_shapes(config: Mapping[str, Any]) -> Shapes:
    """The MotionAdapter's state-dict shapes for a config, built on the meta device."""
    return checkpoints.module_shapes(lambda: build(config))


def released_shapes(config: Mapping[str, Any]) -> Shapes:
    """The shapes a released motion_block.bin holds for a config, by its keys (the UNet namespace, AnimateDiff-v2 names)."""
    return {released: shape for name, shape in adapter_shapes(config).items() for released in released_names(name)}


def to_released(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A MotionAdapter state dict under the released file's keys (how Motion-I2V's UNet saves its motion modules)."""
    return {released: tensor for name, tensor in state.items() for released in released_names(name)}


def from_released(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """A released state dict under MotionAdapter's keys; the second attention's table must equal the first's."""
    renamed: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        target = diffusers_name(name)
        if target is not None:
            renamed[target] = tensor
    for name, tensor in state.items():
        if diffusers_name(name) is None:
            first = _SECOND_TABLE.sub(".attention_blocks.0.pos_encoder.pe", name)
            kept = renamed.setdefault(diffusers_name(first) or first, tensor)
            if kept.shape != tensor.shape or not torch.allclose(kept.float(), tensor.float(), atol=1e-4):
                raise InputError(
                    f"{KEY}={path} does not hold {WHAT}: {name} differs from {first}, and the module keeps one positional table per block"
                )
    return renamed


def sinusoid(channels: int, length: int) -> torch.Tensor:
    """The sinusoidal table AnimateDiff's modules add (diffusers' SinusoidalPositionalEmbedding): [1, length, channels]."""
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding

    return SinusoidalPositionalEmbedding(channels, max_seq_length=length).pe


def load(value: str | Path, config: Mapping[str, Any] = FULL_CONFIG, key: str = KEY) -> torch.nn.Module:
    """The MotionAdapter of a released motion_block.bin (or a .safetensors of it), checked key for key first, on the CPU.

    The file's keys and shapes must be ``released_shapes(config)``'s exactly (its positional tables
    may be left out: the sinusoid is filled in); one sentence names the first key that does not fit.
    """
    path = checkpoints.weights_path(value, key, WHAT)
    checkpoints.check_shapes(checkpoints.read_shapes(path, key), released_shapes(config), path, key, WHAT, is_table)
    state = from_released(checkpoints.read_state_dict(path, key), path)
    expected = adapter_shapes(config)
    for name, shape in expected.items():
        if name not in state:  # only a table can be missing here: check_shapes refused every other gap
            state[name] = sinusoid(shape[-1], shape[-2])
    with torch.device("meta"):
        adapter = build(config)
    adapter.load_state_dict(state, strict=True, assign=True)
    return adapter.eval()


def tiny(seed: int = 0) -> torch.nn.Module:
    """A tiny Motion-I2V module with random weights for the seed, of the tiny SD UNet's channels (TINY_CONFIG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(TINY_CONFIG).eval()


def save(adapter: torch.nn.Module, path: Path) -> Path:
    """Write a MotionAdapter as a released motion_block.bin (torch pickle) or .safetensors, under the released keys."""
    state = {name: tensor.detach().contiguous() for name, tensor in to_released(adapter.state_dict()).items()}
    if path.name.endswith(checkpoints.SAFE_SUFFIXES):
        from safetensors.torch import save_file

        save_file({name: tensor.clone() for name, tensor in state.items()}, str(path))  # the two tables may share memory
    else:
        torch.save(state, path)
    return path


def read(path: Path) -> Shapes | None:
    """A file's shapes under MotionAdapter's keys when it is in motion_block.bin's layout (None: another kind of file or a folder)."""
    if path.is_dir() or not path.name.endswith(checkpoints.SAFE_SUFFIXES + checkpoints.PICKLE_SUFFIXES):
        return None
    found = checkpoints.read_shapes(path, "file")
    if not any(".motion_modules." in name and ".temporal_transformer." in name for name in found):
        return None
    return {target: shape for name, shape in found.items() if (target := diffusers_name(name)) is not None}


WEIGHT_KINDS = [
    WeightKind(
        name="motion_i2v",
        what="Motion-I2V's motion module (stage 2's motion_block.bin, an AnimateDiff-v2 motion module for SD1.5)",
        read=read,
        expected=lambda: adapter_shapes(FULL_CONFIG),
        optional=is_table,
    )
]
