"""Composing and checking a run's config: the typed schema, the compose API, one-sentence errors."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import shlex
from collections.abc import Callable, Sequence
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
from motionforge.core.runfolders import register_resolver

CONFIG_MODULE = "motionforge.conf"
CONFIG_NAME = "config"
SCHEMA_NAME = "motionforge_schema"
RESIZE_MODES = ("crop", "stretch")
DENSIFIERS = ("gaussian", "cmp")
FPS_RANGE = (0.01, 240.0)  # frames per second the MP4 and GIF writers keep faithfully
MAX_SEED = 2**63 - 1
SIGMA_RANGE = (0.01, 1e5)  # pixels: narrower is one pixel's own weight, wider is flat over any frame
# Where each kind of plugin's config sits in the run config.
PLUGIN_NODES = {"adapter": "adapters.{name}", "backbone": "backbone", "sampler": "sampler"}

register_resolver()


@dataclass
class MotionSettings:
    """How hints are fused into a plan (the values live in conf/config.yaml)."""

    densifier: str = MISSING
    sigma: float | None = MISSING
    threshold: float = MISSING
    normalize: bool = MISSING
    feather: float = MISSING
    cmp_checkpoint: str | None = MISSING


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
class MemorySettings:
    """The memory check before a run (the values live in conf/config.yaml)."""

    insist: bool = MISSING


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
    memory: MemorySettings = field(default_factory=MemorySettings)


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


def _override_key(text: str) -> str:
    """The key of an override string: '+adapters.x.k=1' → 'adapters.x.k'."""
    return text.split("=", 1)[0].strip().lstrip("+~")


# Characters Hydra reads in an unquoted value (its lexer's ID, number and UNQUOTED_CHAR classes, ':' and blanks).
_UNQUOTED = re.compile(r"[A-Za-z0-9_/\\\-+.$%*@?|: \t]")


def hydra_string(value: str) -> str:
    """A string as a quoted Hydra value: in single quotes, with quotes (and backslashes before them or at the end) escaped."""
    escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value)
    return "'" + escaped.replace("'", "\\'") + "'"


def hydra_quoted(key: str, value: str) -> str:
    """An override with its value quoted for Hydra, and the whole quoted for a POSIX shell: "key='value'"."""
    override = f'{key}="{value}"' if "'" in value and '"' not in value else f"{key}={hydra_string(value)}"
    if re.search(r'["$`\\!]', override):
        return shlex.quote(override)
    return f'"{override}"'


def _unparsable(overrides: Sequence[str]) -> str | None:
    """The first override Hydra's grammar rejects, or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for text in overrides:
        if "=" not in text or text.startswith("-"):
            continue
        try:
            parser.parse_override(text)
        except (HydraException, OmegaConfBaseException, ValueError):
            return text
    return None


def _explain_unparsable(text: str, message: str) -> str:
    """One sentence on an override Hydra cannot read: how to quote it (paths) or check its brackets (lists)."""
    key, _, value = text.partition("=")
    if value.strip().startswith(("[", "{")) or not value:
        return (
            f"could not parse the override {text} ({message.rstrip('.')}); check its brackets and commas, "
            "and quote lists in the shell: key='[[1,2],[3,4]]'"
        )
    odd = sorted({ch for ch in value if not _UNQUOTED.fullmatch(ch)})
    shown = " ".join(repr(ch) for ch in odd) if odd else "its spelling"
    return (
        f"Hydra cannot read the value of {_override_key(key)} unquoted (it has {shown}); quote the value for Hydra, "
        f"inside the shell's quotes: {hydra_quoted(key, value)}"
    )


def _plugin_label(kind: str, name: str) -> str:
    """'the trajectory adapter', 'the warp backbone'."""
    return f"the {name} {kind}"


def unknown_key_message(kind: str, name: str, key: str, valid: Sequence[str]) -> str:
    """One sentence for a key a plugin's config does not have, with the nearest valid key (whatever plugin defined it)."""
    prefix = PLUGIN_NODES[kind].format(name=name)
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, list(valid), n=1)
    hint = f" (did you mean {prefix}.{close[0]}?)" if close else ""
    return f"{_plugin_label(kind, name)} has no key {leaf!r}{hint}; its keys are: {', '.join(valid) or 'none'}"


def _node_keys(node: Any) -> list[str]:
    """The keys of a config node, the 'name' tag of backbones and samplers left out."""
    return [str(k) for k in node.keys() if k != "name"] if isinstance(node, DictConfig) else []


def _explain_dict_entry(key: str, given: str | None) -> str:
    """One sentence on an override that adds an entry to a free-form settings dict (e.g. scheduler_config) without a +."""
    parts = key.split(".")
    if len(parts) >= 3:
        value = given.split("=", 1)[1] if given and "=" in given else "VALUE"
        return f"{key} adds an entry to the settings dict {'.'.join(parts[:2])}, which needs a leading +: +{key}={value}"
    return f"{key} is a settings dict whose entries are set one at a time, each with a leading +: +{key}.NAME=VALUE"


def _explain_unknown_key(key: str, cfg: DictConfig | None, app: str, given: str | None = None) -> str:
    """One sentence on an override of a key the composed config does not have, suggesting the nearest valid key."""
    parts = key.split(".")
    if cfg is not None and parts[0] == "adapters" and len(parts) >= 3:
        name = parts[1]
        node = cfg.adapters.get(name) if isinstance(cfg.get("adapters"), DictConfig) else None
        if node is None:
            from motionforge.core.registry import get_registry

            listed = list(cfg.adapters.keys()) if isinstance(cfg.get("adapters"), DictConfig) else []
            if name in get_registry().adapters:
                return (
                    f"{key} sets a key of the {name} adapter, which is not in the adapters list; add it: "
                    f"adapters=[{','.join([*listed, name])}]"
                )
            choices = sorted(get_registry().adapters)
            return f"there is no adapter {name!r}{_suggest(name, choices)}; installed adapters: {', '.join(choices)}"
        return unknown_key_message("adapter", name, key, _node_keys(node))
    if cfg is not None and parts[0] in ("backbone", "sampler") and len(parts) >= 2 and isinstance(cfg.get(parts[0]), DictConfig):
        node = cfg[parts[0]]
        if parts[1] in node and isinstance(node[parts[1]], DictConfig):  # a free-form settings dict, e.g. scheduler_config
            return _explain_dict_entry(key, given)
        return unknown_key_message(parts[0], str(node.get("name", "?")), key, _node_keys(node))
    parent = ".".join(parts[:-1])
    node = (OmegaConf.select(cfg, parent) if parent else cfg) if cfg is not None else None
    hint = _suggest(parts[-1], list(node.keys()) if isinstance(node, DictConfig) else [])
    return f"unknown config key {key!r}{hint}; list the valid keys with `motionforge {app} --cfg job`"


def explain_hydra_error(
    exc: BaseException,
    overrides: Sequence[str] = (),
    compose_without: Callable[[Sequence[str]], DictConfig | None] | None = None,
    app: str = "animate",
) -> str:
    """Turn Hydra's composition errors into one sentence that says what was wrong and how to fix it.

    ``compose_without`` composes the config from the other overrides, so that "did you mean" sees
    the adapters, backbone and sampler the command chose.
    """
    message = _first_line(str(exc))
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, OverrideParseException):
        culprit = _unparsable(overrides)
        if culprit:
            return _explain_unparsable(culprit, message)
        return (
            f"could not parse an override ({message.rstrip('.')}); check its brackets and commas, "
            "and quote lists in the shell: key='[[1,2],[3,4]]'"
        )
    ambiguous = re.search(r"Ambiguous value for argument '([^=']+)=(.*)'", message)
    if ambiguous:
        key, value = ambiguous.groups()
        return (
            f"the value of {key} has a comma, which Hydra reads as a list or a sweep; for one value, quote it for Hydra "
            f"inside the shell's quotes: {hydra_quoted(key, value)} (a list is {key}=[a,b]; a sweep needs -m)"
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
        others = [o for o in overrides if "=" in o and not o.startswith("-") and _override_key(o) != key]
        cfg = compose_without(others) if compose_without is not None else None
        given = next((o.lstrip("+~") for o in overrides if "=" in o and _override_key(o) == key), None)
        return _explain_unknown_key(key, cfg, app, given)
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


def default_config(overrides: Sequence[str] = ()) -> DictConfig | None:
    """The config with these overrides (none: the defaults), for suggesting keys in errors; None if that fails too."""
    try:
        return _compose(overrides)
    except (HydraException, OmegaConfBaseException, ValueError):
        return None


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose the run config from conf/ and the registered plugins, with Hydra override strings applied.

    >>> cfg = compose_config(["num_frames=8", "adapters.trajectory.paths=[[[10,10],[30,10]]]"])
    """
    try:
        return _compose(overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(explain_hydra_error(exc, overrides, default_config)) from exc


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
    """'auto' → CUDA when present, else CPU; anything else is checked (present on this machine) and returned as a torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"device={name!r} is not a device torch knows; use auto, cpu or cuda") from exc
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={name} was asked for but this machine has no usable CUDA GPU; use device=cpu or device=auto"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device={name} is not here: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
        return device
    backend = getattr(torch, device.type, None) or getattr(torch.backends, device.type, None)
    available = getattr(backend, "is_available", None)
    try:
        present = bool(available()) if callable(available) else False
    except Exception:  # a backend torch was built without can raise on the question itself
        present = False
    if not present:
        raise ConfigError(f"device={name} is not available on this machine; use device=auto, device=cpu or device=cuda")
    return device


def _check_size(key: str, value: int | None) -> None:
    """A working height or width must be a positive multiple of 8 (the VAEs' factor)."""
    if value is None:
        return
    if value < 8 or value % 8:
        nearest = max(8, int(value / 8 + 0.5) * 8)
        raise ConfigError(f"{key}={value} must be a positive multiple of 8; try {key}={nearest}")


def _finite(key: str, value: Any, hint: str) -> float:
    """A number the user gave, checked finite (NaN and inf are refused in one sentence)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key}={value} is not a finite number; {hint}")
    return float(value)


# The largest side, in pixels, that libx264 encodes.
MP4_MAX_SIDE = 16384


def check_outputs_fit(cfg: DictConfig, width: int, height: int) -> None:
    """Refuse a working size the run's MP4 outputs cannot hold, in one sentence."""
    if not (cfg.output.save and (cfg.output.mp4 or cfg.output.flow)):
        return
    for key, value in (("height", height), ("width", width)):
        if value > MP4_MAX_SIDE:
            raise ConfigError(
                f"{key}={value} is more than the {MP4_MAX_SIDE} pixels a side an H.264 MP4 can hold; give a smaller {key}, "
                "or write no MP4 (output.mp4=false output.flow=false)"
            )


def check_run(cfg: DictConfig) -> RunSettings:
    """Check the run parameters of a composed config and return them typed."""
    if cfg.num_frames < 2:
        raise ConfigError(f"num_frames={cfg.num_frames} is too small: a video needs at least 2 frames")
    low, high = FPS_RANGE
    fps = _finite("fps", cfg.fps, f"give a frame rate between {low:g} and {high:g}, e.g. fps=8")
    if not low <= fps <= high:
        raise ConfigError(
            f"fps={cfg.fps} must be between {low:g} and {high:g} frames per second (what MP4 and GIF files keep); e.g. fps=8"
        )
    if cfg.steps < 1:
        raise ConfigError(f"steps={cfg.steps} must be at least 1")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"seed={cfg.seed} must be a whole number from 0 to 2**63-1")
    _check_size("height", cfg.height)
    _check_size("width", cfg.width)
    if cfg.resize not in RESIZE_MODES:
        raise ConfigError(f"resize={cfg.resize} is not a resize mode; choose one of: {', '.join(RESIZE_MODES)}")
    motion = cfg.motion
    if motion.densifier not in DENSIFIERS:
        raise ConfigError(f"motion.densifier={motion.densifier} is unknown; choose one of: {', '.join(DENSIFIERS)}")
    check_cmp_checkpoint(motion.densifier, motion.cmp_checkpoint)
    if motion.sigma is not None:
        sigma = _finite("motion.sigma", motion.sigma, "give a width in pixels, or null")
        if not sigma > 0:
            raise ConfigError(f"motion.sigma={motion.sigma} must be a positive number of pixels, or null for the default")
        if not SIGMA_RANGE[0] <= sigma <= SIGMA_RANGE[1]:
            raise ConfigError(
                f"motion.sigma={motion.sigma:g} must be between {SIGMA_RANGE[0]:g} and {SIGMA_RANGE[1]:g} pixels "
                "(the Gaussian's width), or null for the default"
            )
    threshold = _finite("motion.threshold", motion.threshold, "give R between 0 and 1, e.g. motion.threshold=0.05")
    if not 0 <= threshold < 1:
        raise ConfigError(
            f"motion.threshold={motion.threshold} must be at least 0 and below 1: a track weighs 1 at its own point and "
            "less around it, so R of 1 or more leaves every pixel still; e.g. motion.threshold=0.05"
        )
    feather = _finite("motion.feather", motion.feather, "give a width in pixels, e.g. motion.feather=4")
    if feather < 0:
        raise ConfigError(f"motion.feather={motion.feather} must be a number of pixels, zero (hard region edges) or more")
    output = cfg.output
    if output.previews < 0:
        raise ConfigError(f"output.previews={output.previews} must be 0 (off) or a number of steps between previews")
    if not 0 <= output.crf <= 51:
        raise ConfigError(f"output.crf={output.crf} must be between 0 (lossless) and 51")
    if not output.name or not re.match(r"^[\w.-]+$", output.name):
        raise ConfigError(f"output.name={output.name!r} must be a plain file name (letters, digits, '.', '-', '_')")
    if output.dir is not None and not str(output.dir).strip():
        raise ConfigError("output.dir is empty; give a folder (output.dir=runs/first) or leave it null for a new dated folder")
    return RunSettings(
        image=cfg.image,
        prompt=cfg.prompt,
        num_frames=int(cfg.num_frames),
        fps=fps,
        height=cfg.height,
        width=cfg.width,
        resize=cfg.resize,
        seed=int(cfg.seed),
        steps=int(cfg.steps),
        device=resolve_device(cfg.device),
        progress=bool(cfg.progress),
    )


def check_cmp_checkpoint(densifier: str, checkpoint: str | None) -> None:
    """Refuse, in one sentence, a CMP densifier with no checkpoint, a checkpoint with no CMP densifier, or a path that is no file."""
    if densifier == "cmp" and checkpoint in (None, ""):
        raise ConfigError(
            "motion.densifier=cmp needs motion.cmp_checkpoint: the path of MOFA-Video's CMP file (ckpt_iter_42000.pth.tar), "
            "or motion.cmp_checkpoint=tiny for the tiny random network"
        )
    if densifier != "cmp" and checkpoint not in (None, ""):
        raise ConfigError(
            f"motion.cmp_checkpoint is set but motion.densifier={densifier}; add motion.densifier=cmp to use it, "
            "or drop the checkpoint"
        )
    if densifier == "cmp" and checkpoint != "tiny":
        from motionforge.modules.checkpoints import weights_path

        weights_path(checkpoint, "motion.cmp_checkpoint", "CMP, MOFA-Video's sparse-to-dense flow network")


def check_plugin_keys(cfg: DictConfig) -> None:
    """Refuse a key under an adapter, the backbone or the sampler that its Config does not have (e.g. +adapters.x.typo=1)."""
    from motionforge.core.registry import config_node, get_registry

    registry = get_registry()
    nodes: list[tuple[str, str, Any]] = [("adapter", str(name), node) for name, node in cfg.adapters.items()]
    nodes += [(kind, str(cfg[kind].name), cfg[kind]) for kind in ("backbone", "sampler")]
    for kind, name, node in nodes:
        entry = registry.get(kind, name)
        valid = [f.name for f in dataclasses.fields(config_node(kind, entry.cls)) if f.name != "name"]
        for key in node.keys() if isinstance(node, DictConfig) else []:
            if key != "name" and key not in valid:
                raise ConfigError(unknown_key_message(kind, name, f"{PLUGIN_NODES[kind].format(name=name)}.{key}", valid))


def _non_finite(value: Any, path: str) -> tuple[str, Any] | None:
    """The first NaN or infinite float inside a config value (dataclasses, lists, dicts), as (dotted path, value)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        children = [(f"{path}.{f.name}", getattr(value, f.name)) for f in dataclasses.fields(value)]
    elif isinstance(value, dict):
        children = [(f"{path}.{k}", v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        children = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for child_path, child in children:
        found = _non_finite(child, child_path)
        if found:
            return found
    return None


def typed_config(kind: str, name: str, node_cls: type, node: Any) -> Any:
    """A plugin's composed config values as an instance of its Config dataclass (types checked, NaN and inf refused)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(node_cls), node if node is not None else {})
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"bad config for {kind} {name!r}: {_first_line(str(exc))}") from exc
    found = _non_finite(config, PLUGIN_NODES[kind].format(name=name))
    if found:
        key, value = found
        raise ConfigError(f"{key}={value} is not a finite number; give a number (NaN and infinity mean nothing here)")
    return config


def config_dict(config: Any) -> dict[str, Any]:
    """A Config dataclass instance as a plain dict (for the manifest)."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
