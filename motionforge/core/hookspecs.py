"""The hooks a motionforge plugin implements; built-ins implement the same ones.

A plugin is a module (or object) with functions marked ``@motionforge.hookimpl``; each hook is
called once with a ``register`` callback that the plugin calls for every class it provides.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "motionforge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[type], None]


@hookspec
def register_adapters(register: Register) -> None:
    """Call ``register(AdapterClass)`` for each motion adapter (a control) the plugin provides."""


@hookspec
def register_backbones(register: Register) -> None:
    """Call ``register(BackboneClass)`` for each backbone the plugin provides."""


@hookspec
def register_samplers(register: Register) -> None:
    """Call ``register(SamplerClass)`` for each sampler the plugin provides."""
