"""Composing and checking a run's config: the typed schema, the compose API, one-sentence errors."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import torch
from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, OverrideParseException
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from motionforge.core.errors import ConfigError

CONFIG_MODULE = "motionforge.conf"
CONFIG_NAME = "config"
SCHEMA_NAME = "motionforge_schema"
RESIZE_MODES = ("crop", "stretch")
DENSIFIERS = ("gaussian",)


@dataclass
class MotionSettings:
    """How hints are fused into a plan (the values live in conf/config.yaml)."""

    densifier: str = MISSING
    sigma: float | None = MISSING
    threshold: float = MISSING
    normalize: bool = MISSING
    feather: float = MISSING


@dataclass
class OutputSettings:
    """What a run writes, and where (the values live in conf/config.yaml)."""

    save: bool = MISSING
    dir: str | None = MISSING
    name: str = MISSING
    mp4: bool = MISSING
    gif: bool = MISSING
    frames: bool = MISSING
    flow: bool = MISSING
    hint: bool = MISSING
    crf: int = MISSING
    previews: int = MISSING


@dataclass
class RunSchema:
    """The types of the primary config; conf/config.yaml holds the values."""

    backbone: Any = MISSING
    sampler: Any = MISSING
    adapters: dict[str, Any] = field(default_factory=dict)
    image: str | None = MISSING
    prompt: str = MISSING
    num_frames: int = MISSING
    fps: float = MISSING
    height: int | None = MISSING
    width: int | None = MISSING
    resize: str = MISSING
    seed: int = MISSING
    steps: int = MISSING
    device: str = MISSING
    progress: bool = MISSING
    motion: MotionSettings = field(default_factory=MotionSettings)
    output: OutputSettings = field(default_factory=OutputSettings)


def store_schema() -> None:
    """Put the primary config's schema in Hydra's ConfigStore (conf/config.yaml extends it)."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=RunSchema)


def _first_line(text: str) -> str:
    """The first line of a message, stripped."""
    return str(text).strip().splitlines()[0].strip() if str(text).strip() else ""


def group_options(group: str) -> list[str]:
    """Every option of a config group: registered classes and YAML presets shipped in conf/."""
    options = (
        {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
        if group in ConfigStore.instance().repo
        else set()
    )
    folder = resources.files(CONFIG_MODULE).joinpath(group)
    if folder.is_dir():
        options |= {p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")}
    return sorted(options)


def _suggest(word: str, choices: Sequence[str]) -> str:
    """' (did you mean X?)' when one of the choices is close to word."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _keys_of(cfg_path: str, cfg: DictConfig | None) -> list[str]:
    """The keys that exist beside the last element of a dotted path, for suggestions."""
    if cfg is None:
        return []
    parent = cfg_path.rsplit(".", 1)[0] if "." in cfg_path else ""
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return list(node.keys()) if isinstance(node, DictConfig) else []


def explain_hydra_error(exc: BaseException, defaults: DictConfig | None = None) -> str:
    """Turn Hydra's composition errors into one sentence that says what was wrong and how to fix it."""
    message = _first_line(str(exc))
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, OverrideParseException):
        return (
            f"could not parse an override ({message.rstrip('.')}); check its brackets and commas, "
            "and quote lists in the shell: key='[[1,2],[3,4]]'"
        )
    missing = re.search(r"Could not (?:load|find) '([^/']+)/([^']+)'", str(exc))
    if missing:
        group, option = missing.groups()
        choices = group_options(group)
        return (
            f"there is no {group} option {option!r}{_suggest(option, choices)}; "
            f"choose from: {', '.join(choices) or 'none installed'}"
        )
    override = re.search(r"Could not override '([^']+)'", str(exc))
    if override:
        key = override.group(1)
        leaf = key.rsplit(".", 1)[-1]
        hint = _suggest(leaf, _keys_of(key, defaults))
        return (
            f"unknown config key {key!r}{hint}; list the valid keys with "
            f"`motionforge animate --cfg job`, or add a new key with +{key}=..."
        )
    merging = re.search(r"Error merging override (.+)$", message)
    if merging and cause is not None:
        return f"bad value in override {merging.group(1)}: {_first_line(str(cause))}"
    if cause is not None and _first_line(str(cause)) and _first_line(str(cause)) not in message:
        return f"{message.rstrip('.')}: {_first_line(str(cause))}"
    return message or type(exc).__name__


def _compose(overrides: Sequence[str]) -> DictConfig:
    """Compose with Hydra's compose API; Hydra's own exceptions propagate."""
    from motionforge.core.registry import get_registry

    get_registry()
    store_schema()
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app of ours (motionforge bench): its search path is ours
        return compose(config_name=CONFIG_NAME, overrides=list(overrides))
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose(config_name=CONFIG_NAME, overrides=list(overrides))


def default_config() -> DictConfig | None:
    """The config with no overrides (for suggesting keys in errors), or None if even that fails."""
    try:
        return _compose(())
    except (HydraException, OmegaConfBaseException, ValueError):
        return None


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose the run config from conf/ and the registered plugins, with Hydra override strings applied.

    >>> cfg = compose_config(["num_frames=8", "adapters.trajectory.paths=[[[10,10],[30,10]]]"])
    """
    try:
        return _compose(overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(explain_hydra_error(exc, default_config())) from exc


@dataclass(frozen=True)
class RunSettings:
    """The checked run parameters of a config."""

    image: str | None
    prompt: str
    num_frames: int
    fps: float
    height: int | None
    width: int | None
    resize: str
    seed: int
    steps: int
    device: torch.device
    progress: bool


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present, else CPU; anything else is checked and returned as a torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"device={name!r} is not a device torch knows; use auto, cpu or cuda") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} was asked for but this machine has no usable CUDA GPU; use device=cpu or device=auto")
    return device


def _check_size(key: str, value: int | None) -> None:
    """A working height or width must be a positive multiple of 8 (the VAEs' factor)."""
    if value is None:
        return
    if value < 8 or value % 8:
        nearest = max(8, int(value / 8 + 0.5) * 8)
        raise ConfigError(f"{key}={value} must be a positive multiple of 8; try {key}={nearest}")


def check_run(cfg: DictConfig) -> RunSettings:
    """Check the run parameters of a composed config and return them typed."""
    if cfg.num_frames < 2:
        raise ConfigError(f"num_frames={cfg.num_frames} is too small: a video needs at least 2 frames")
    if not cfg.fps > 0:
        raise ConfigError(f"fps={cfg.fps} must be a positive number of frames per second")
    if cfg.steps < 1:
        raise ConfigError(f"steps={cfg.steps} must be at least 1")
    _check_size("height", cfg.height)
    _check_size("width", cfg.width)
    if cfg.resize not in RESIZE_MODES:
        raise ConfigError(f"resize={cfg.resize} is not a resize mode; choose one of: {', '.join(RESIZE_MODES)}")
    motion = cfg.motion
    if motion.densifier not in DENSIFIERS:
        raise ConfigError(f"motion.densifier={motion.densifier} is unknown; choose one of: {', '.join(DENSIFIERS)}")
    if motion.sigma is not None and not motion.sigma > 0:
        raise ConfigError(f"motion.sigma={motion.sigma} must be a positive number of pixels, or null for the default")
    if motion.threshold < 0:
        raise ConfigError(f"motion.threshold={motion.threshold} must be zero or more")
    if not (motion.feather >= 0 and motion.feather != float("inf")):
        raise ConfigError(f"motion.feather={motion.feather} must be a number of pixels, zero (hard region edges) or more")
    output = cfg.output
    if output.previews < 0:
        raise ConfigError(f"output.previews={output.previews} must be 0 (off) or a number of steps between previews")
    if not 0 <= output.crf <= 51:
        raise ConfigError(f"output.crf={output.crf} must be between 0 (lossless) and 51")
    if not output.name or not re.match(r"^[\w.-]+$", output.name):
        raise ConfigError(f"output.name={output.name!r} must be a plain file name (letters, digits, '.', '-', '_')")
    return RunSettings(
        image=cfg.image,
        prompt=cfg.prompt,
        num_frames=int(cfg.num_frames),
        fps=float(cfg.fps),
        height=cfg.height,
        width=cfg.width,
        resize=cfg.resize,
        seed=int(cfg.seed),
        steps=int(cfg.steps),
        device=resolve_device(cfg.device),
        progress=bool(cfg.progress),
    )


def typed_config(kind: str, name: str, node_cls: type, node: Any) -> Any:
    """A plugin's composed config values as an instance of its Config dataclass (checked against its types)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(node_cls), node if node is not None else {})
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"bad config for {kind} {name!r}: {_first_line(str(exc))}") from exc


def config_dict(config: Any) -> dict[str, Any]:
    """A Config dataclass instance as a plain dict (for the manifest)."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
