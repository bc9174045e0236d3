"""Plugin settings in the page: each registered Config dataclass field as a typed spec, a Gradio widget, and a checked value.

Fields are read from the registry (built-ins and installed plugins alike). A field's type picks its widget:
bool → checkbox, int / float → number, str → text (or a dropdown when its comment lists the choices as
``a | b | c``), anything else → text read as YAML (numbers, lists of numbers, true/false, null).
A string that names a file or folder is refused unless it lies inside a folder the studio was started with.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from motionforge.core.errors import InputError
from motionforge.core.registry import get_registry

_FIELD_LINE = re.compile(r"^\s*(\w+)\s*:[^=#]*=[^#]*#\s*(.+)$")
_CHOICE = re.compile(r"^([A-Za-z0-9_.+-]+)(?:\s*\(.*\))?$")


@dataclass(frozen=True)
class FieldSpec:
    """One settable field of a plugin's Config: its override key, widget kind, default, help and choices."""

    key: str  # the override key: backbone.fill, sampler.window, adapters.brush.feather
    name: str
    kind: str  # bool | int | float | str | any
    default: Any
    optional: bool  # None is allowed
    info: str = ""  # the field's trailing comment
    choices: tuple[str, ...] = ()  # for str fields whose comment lists them


def _comments(cls: type) -> dict[str, str]:
    """Each field's trailing comment in the class's source (empty when the source cannot be read)."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in map(_FIELD_LINE.match, lines) if m}


def _choices(comment: str, default: Any) -> tuple[str, ...]:
    """The choices a comment lists as 'a (…) | b (…) | c', when the default is one of them; else ()."""
    head = comment.split(";")[0].split(":")[-1] if "|" in comment else ""
    parts = [p.strip() for p in head.split("|")] if head else []
    names = [m.group(1) for m in map(_CHOICE.match, parts) if m]
    return tuple(names) if len(names) == len(parts) >= 2 and default in names else ()


def _kind(annotation: Any) -> tuple[str, bool]:
    """The widget kind of a type annotation and whether it allows None."""
    args = typing.get_args(annotation)
    optional = type(None) in args
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else Any
    for kind in (bool, int, float, str):
        if annotation is kind:
            return kind.__name__, optional
    return "any", True


def field_specs(kind: str, name: str, prefix: str) -> list[FieldSpec]:
    """The fields of a registered plugin's Config (kind 'adapter', 'backbone' or 'sampler'), keyed under prefix."""
    config = get_registry().get(kind, name).cls.Config
    hints = typing.get_type_hints(config)
    comments = _comments(config)
    defaults = config()
    specs = []
    for f in dataclasses.fields(config):
        if f.name == "name" or not f.init:
            continue
        widget, optional = _kind(hints.get(f.name, Any))
        default = getattr(defaults, f.name)
        info = comments.get(f.name, "")
        choices = _choices(info, default) if widget == "str" else ()
        specs.append(FieldSpec(f"{prefix}.{f.name}", f.name, widget, default, optional or default is None, info, choices))
    return specs


def shown(spec: FieldSpec) -> Any:
    """The widget's starting value for a field's default (text widgets show None as empty, other values as YAML)."""
    if spec.kind in ("bool", "int", "float"):
        return spec.default
    if spec.kind == "str":
        return "" if spec.default is None else spec.default
    return (
        "" if spec.default is None else yaml.safe_dump(spec.default, default_flow_style=True).strip().removesuffix("...").strip()
    )


def _plain(value: Any) -> bool:
    """True for the values a YAML field may take from the page: numbers, booleans, null and (nested) lists of them."""
    if value is None or isinstance(value, (bool, int, float)):
        return not isinstance(value, float) or math.isfinite(value)
    return isinstance(value, list) and all(_plain(v) for v in value)


def read_value(spec: FieldSpec, raw: Any, allowed: list[Path]) -> Any:
    """The value a widget holds, as the config takes it; one sentence for a value the field cannot take."""
    if spec.kind == "bool":
        return bool(raw)
    if spec.kind in ("int", "float"):
        if raw is None or raw == "":
            if spec.optional:
                return None
            raise InputError(f"{spec.key} needs a number; type one in")
        number = float(raw)
        if not math.isfinite(number):
            raise InputError(f"{spec.key}={raw} is not a finite number; give a finite value")
        if spec.kind == "int":
            if not number.is_integer():
                raise InputError(f"{spec.key}={raw} must be a whole number")
            return int(number)
        return number
    text = "" if raw is None else str(raw).strip()
    if text == "" and spec.optional:
        return None
    if spec.kind == "any":
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed = text
        if not _plain(parsed):
            parsed = text
        if not isinstance(parsed, str):
            return parsed
        text = parsed
    check_path(spec.key, text, allowed)
    return text


def check_text(key: str, text: str) -> None:
    """Refuse a string from the page that asks the config to interpolate (${…} would read other keys or the environment)."""
    if "${" in text:
        raise InputError(
            f"{key}={text} asks for an interpolation (${{…}}), which the studio does not take from the page; type the value itself"
        )


def check_path(key: str, text: str, allowed: list[Path]) -> None:
    """Refuse a string that names a file or folder outside the allowed folders, or that asks Hydra to interpolate."""
    check_text(key, text)
    looks = any(sep in text for sep in ("/", "\\")) or text.startswith(("~", ".")) or (text and os.path.exists(text))
    if not looks:
        return
    target = Path(os.path.expanduser(text)).resolve()
    if any(target == folder or folder in target.parents for folder in allowed):
        return
    raise InputError(
        f"{key}={text} names a file on the server outside the studio's folders; upload the file in the page, "
        "or start the studio with --allow FOLDER for a folder of models it may read"
    )


def is_default(spec: FieldSpec, value: Any) -> bool:
    """True when value is the field's default, so that the run needs no override for it."""
    return value == spec.default and type(value) is type(spec.default)
