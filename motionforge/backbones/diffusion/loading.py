"""Loading diffusion weights from local folders: folder checks, the safetensors policy, dtype and device, a per-process cache.

No code path here downloads anything: every ``from_pretrained`` is given a folder that exists and
``local_files_only=True``; a Hugging Face Hub id instead of a folder is an error that says to
download it first. Weights load from safetensors; pickle-based files (``.bin``, ``.pt``, ``.ckpt``)
can run code when loaded and are refused unless the user says they trust them (``allow_pickle``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from motionforge.core.errors import ConfigError, InputError

# A Hub id is "owner/name" with no other slashes; anything that exists on disk is a path instead.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
CACHE_SIZE = 2  # models kept loaded per process (a real SVD or SD1.5 + adapter is several GB)


def local_folder(value: str | None, key: str, what: str, tiny: str | None = None) -> Path:
    """The existing local folder a config key names; a one-sentence error when it is unset, missing or a Hub id."""
    if value is None or not str(value).strip():
        alternative = f", or use backbone={tiny} for a small model with random weights" if tiny else ""
        raise ConfigError(
            f"{key} is not set; pass the local folder of {what} in diffusers format ({key}=/path/to/folder){alternative}"
        )
    path = Path(str(value)).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise InputError(
            f"{key}={value} is a file, not a folder; pass the folder of {what} in diffusers format "
            "(single-file checkpoints are not supported: convert them with diffusers first)"
        )
    refuse_hub_id(value, key, "a folder", "DIR")
    raise InputError(f"{key}={value} does not exist; pass the local folder of {what} in diffusers format")


def local_file(value: str, key: str, what: str, example: str) -> Path:
    """The existing local file a config key names; a one-sentence error when it is missing, a folder or a Hub id."""
    path = Path(str(value)).expanduser()
    if path.is_file():
        return path.resolve()
    if path.is_dir():
        raise InputError(f"{key}={value} is a folder, not a file; pass the file of {what} ({key}=/path/to/{example})")
    refuse_hub_id(value, key, "a file", f"DIR/{example}")
    raise InputError(f"{key}={value} does not exist; pass the local file of {what} ({key}=/path/to/{example})")


def refuse_hub_id(value: str, key: str, kind: str, target: str) -> None:
    """Refuse a missing path that might be a Hugging Face Hub id (motionforge never downloads); nothing for a plain missing path."""
    parent = Path(str(value)).expanduser().parent
    if _HUB_ID.match(str(value)) and not parent.is_dir():
        raise ConfigError(
            f"{key}={value} is not {kind} on this machine (there is no {parent}/ folder here either); motionforge never "
            f"downloads weights: if it is a Hugging Face Hub id, download it first (e.g. huggingface-cli download {value} "
            f"--local-dir DIR) and pass {key}={target}"
        )


def read_config(folder: Path, name: str, key: str) -> dict[str, Any]:
    """A component's JSON config (e.g. unet/config.json) as a dict; a one-sentence error when it is missing or broken."""
    path = folder / name
    if not path.is_file():
        raise InputError(f"{key}: {path} is missing; is the folder a complete diffusers checkpoint?")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{key}: {path} is not a readable JSON file ({exc})") from exc
    if not isinstance(value, dict):
        raise InputError(f"{key}: {path} is not a JSON object")
    return value


def require_components(folder: Path, components: dict[str, str], key: str, what: str) -> None:
    """Check that a pipeline folder holds each component subfolder with its config file (name → config file name)."""
    for name, config_name in components.items():
        if not (folder / name).is_dir():
            listed = ", ".join(components)
            raise InputError(f"{key}={folder} has no {name}/ folder; a diffusers folder of {what} holds {listed}")
        if not (folder / name / config_name).is_file():
            raise InputError(f"{key}={folder} has a {name}/ folder without {config_name}; is the checkpoint complete?")


def check_pipeline(
    folder: Path, key: str, components: dict[str, str], what: str, unet: tuple[str, int | None], advice: str
) -> dict[str, Any]:
    """Check that a folder is a complete pipeline of ``what`` (e.g. "Stable Video Diffusion"); return its UNet's config.

    ``unet`` is the UNet's class name and input channels (None: any); ``advice`` says what to pass instead.
    """
    index = read_config(folder, "model_index.json", key)
    config = read_config(folder / "unet", "config.json", key) if (folder / "unet" / "config.json").is_file() else {}
    found = config.get("_class_name")
    channels = f" with {config.get('in_channels', '?')} input channels" if unet[1] is not None else ""
    if found != unet[0] or (unet[1] is not None and config.get("in_channels", unet[1]) != unet[1]):
        raise InputError(
            f"{key}={folder} holds a {index.get('_class_name', 'an unknown pipeline')} (its UNet is {found or 'missing'}"
            f"{channels}), not {what}; {advice}"
        )
    require_components(folder, components, key, f"a {what} checkpoint")
    return config


def weight_options(component: Path, allow_pickle: bool, key: str) -> dict[str, Any]:
    """from_pretrained keyword arguments for a component folder: safetensors only (unless pickle is allowed), its variant."""
    files = [p.name for p in component.iterdir() if p.is_file()] if component.is_dir() else []
    safe = [f for f in files if f.endswith(SAFE_SUFFIXES)]
    pickled = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
    if not safe and not pickled:
        raise InputError(f"{key}: {component} holds no weights file (*.safetensors); is the checkpoint complete?")
    if not safe and not allow_pickle:
        raise InputError(
            f"{key}: {component} has only pickle-based weights ({', '.join(sorted(pickled))}), which can run code when "
            "loaded; convert them to safetensors or, if you trust the files, pass backbone.allow_pickle=true"
        )
    chosen = safe or pickled
    variant = None
    if not any(_variant_of(f) is None for f in chosen):
        variants = sorted({_variant_of(f) for f in chosen} - {None})
        variant = "fp16" if "fp16" in variants else variants[0]
    return {"use_safetensors": True if safe else None, "variant": variant, "local_files_only": True}


def weights_file(path: Path, allow_pickle: bool, key: str) -> None:
    """Check that a single weights file is safetensors (or pickle-based, when allowed); one sentence when it is not."""
    if path.name.endswith(SAFE_SUFFIXES) or (allow_pickle and path.name.endswith(PICKLE_SUFFIXES)):
        return
    if path.name.endswith(PICKLE_SUFFIXES):
        raise InputError(
            f"{key}={path} is a pickle-based file, which can run code when loaded; convert it to safetensors or, "
            "if you trust the file, pass backbone.allow_pickle=true"
        )
    raise InputError(f"{key}={path} is not a weights file; pass a .safetensors file")


def _variant_of(filename: str) -> str | None:
    """The variant a weights file name carries: 'fp16' in model.fp16.safetensors or model.fp16-00001-of-00002.safetensors."""
    stem = re.sub(r"-\d+-of-\d+$", "", filename.rsplit(".", 1)[0])
    _, dot, tail = stem.rpartition(".")
    return tail if dot else None


def load_component(load: Callable[..., Any], folder: Path, subfolder: str | None, key: str, what: str, **kwargs: Any) -> Any:
    """Call a from_pretrained-style loader on a local folder and turn its failures into one-sentence input errors."""
    where = folder / subfolder if subfolder else folder
    try:
        if subfolder:
            return load(str(folder), subfolder=subfolder, **kwargs)
        return load(str(folder), **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise InputError(f"{key}: could not load {what} from {where} ({reason})") from exc


@dataclass(frozen=True)
class Part:
    """One component of a pipeline folder: its loader (a from_pretrained), what it is (for errors), whether it has weights."""

    load: Callable[..., Any]
    what: str
    weights: bool = True  # tokenizers and image processors have none: no dtype, device or safetensors policy


def load_parts(
    folder: Path, parts: dict[str, Part], allow_pickle: bool, dtype: torch.dtype, device: torch.device, key: str
) -> dict[str, Any]:
    """Load each component subfolder of a pipeline folder (name → part) under the safetensors policy, weights on device in dtype."""
    loaded = {}
    for name, part in parts.items():
        options = {"dtype": dtype, **weight_options(folder / name, allow_pickle, key)} if part.weights else {"local_files_only": True}
        value = load_component(part.load, folder, name, key, part.what, **options)
        loaded[name] = place(value, device, dtype) if part.weights else value
    return loaded


def clip_image_processor_class() -> type:
    """CLIP's image processor class; the PIL-backed one where torchvision is missing (what transformers 5 falls back to, loudly)."""
    import transformers

    if importlib.util.find_spec("torchvision") is None and hasattr(transformers, "CLIPImageProcessorPil"):
        return transformers.CLIPImageProcessorPil
    return transformers.CLIPImageProcessor


def resolve_dtype(name: str, device: torch.device, cuda: torch.dtype = torch.float16) -> torch.dtype:
    """The dtype a config names; 'auto' is ``cuda`` (float16 unless the backbone says otherwise) on CUDA and float32 elsewhere."""
    if name == "auto":
        return cuda if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ConfigError(f"backbone.dtype={name} is not a dtype; choose one of: auto, {', '.join(DTYPES)}")
    return DTYPES[name]


@contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Silence a library logger's warnings for the duration (e.g. diffusers' notice on a cast it makes itself)."""
    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.ERROR)
    try:
        yield
    finally:
        target.setLevel(level)


def place(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """Move a model to device and dtype, in eval mode (casting quietly when no module of it must stay in float32)."""
    model = model.to(device)
    if next(model.parameters()).dtype != dtype:
        if getattr(model, "_keep_in_fp32_modules", None):
            model = model.to(dtype=dtype)
        else:
            torch.nn.Module.to(model, dtype=dtype)
    return model.eval()


@contextmanager
def float32_vae(vae: torch.nn.Module, needed: bool) -> Iterator[torch.nn.Module]:
    """Run a half-precision VAE in float32 for the duration (as diffusers does when its config sets force_upcast)."""
    if not needed:
        yield vae
        return
    dtype = next(vae.parameters()).dtype
    torch.nn.Module.to(vae, dtype=torch.float32)  # the plain cast: diffusers' own warns about modules kept in float32
    try:
        yield vae
    finally:
        torch.nn.Module.to(vae, dtype=dtype)


def needs_upcast(vae: torch.nn.Module) -> bool:
    """True when a float16 VAE asks to encode in float32 (config force_upcast)."""
    return next(vae.parameters()).dtype == torch.float16 and bool(getattr(vae.config, "force_upcast", False))


class ModelCache:
    """Loaded models kept per process, keyed by (folder(s), dtype, device); the least recently used is dropped first."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.entries: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The models stored under key, built (and stored) on first use."""
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        while len(self.entries) >= self.size:
            self.entries.popitem(last=False)
        value = build()
        self.entries[key] = value
        return value

    def clear(self) -> None:
        """Drop every loaded model."""
        self.entries.clear()


MODELS = ModelCache()


def clear_cache() -> None:
    """Forget every model loaded in this process (frees their memory once nothing else holds them)."""
    MODELS.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
