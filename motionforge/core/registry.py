"""The plugin manager and the registry of adapters, backbones and samplers it collects.

Built-ins are plugins like any other: the modules in ``DEFAULT_PLUGINS`` implement the same hooks a
third-party package does through its ``[project.entry-points.motionforge]`` entry point. Every
registered class's ``Config`` dataclass is stored in Hydra's ConfigStore, so ``adapters=[name]`` and
``adapters.name.param=value`` work with no YAML file.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy
from hydra.core.config_store import ConfigStore

from motionforge.core import hookspecs
from motionforge.core.errors import PluginError
from motionforge.core.types import Adapter, DiffusionBackbone, RenderingBackbone, Sampler, protocol_methods

ENTRY_POINT_GROUP = "motionforge"
LOAD_PLUGINS_ENV = "MOTIONFORGE_LOAD_PLUGINS"

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "motionforge.adapters.trajectory",
    "motionforge.adapters.landmark",
    "motionforge.adapters.dense_flow",
    "motionforge.adapters.brush",
    "motionforge.adapters.motion_strength",
    "motionforge.adapters.camera",
    "motionforge.adapters.time_to_move",
    "motionforge.backbones.warp",
    "motionforge.backbones.diffusion.svd",
    "motionforge.backbones.diffusion.animatediff",
    "motionforge.backbones.diffusion.wan",
    "motionforge.samplers.single",
    "motionforge.samplers.periodic_overlap",
    "motionforge.samplers.phased",
)

# kind → (hook name, config group, package of the stored config, the Protocols a class may implement)
KINDS: dict[str, tuple[str, str, str, tuple[type, ...]]] = {
    "adapter": ("register_adapters", "adapters", "adapters.{name}", (Adapter,)),
    "backbone": ("register_backbones", "backbone", "backbone", (RenderingBackbone, DiffusionBackbone)),
    "sampler": ("register_samplers", "sampler", "sampler", (Sampler,)),
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

pm = pluggy.PluginManager(hookspecs.PROJECT)
pm.add_hookspecs(hookspecs)

_state: dict[str, Any] = {"loaded": False, "registry": None, "key": None, "stored": set()}
_distributions: dict[str, tuple[str, str]] = {}  # plugin name → (distribution, version)
_failed_imports: dict[str, str] = {}  # entry-point plugin that failed to import → why
_broken: dict[str, str] = {}  # loaded plugin skipped by the last collection (a failing hook, a bad class) → why
_warned: set[tuple[str, str]] = set()


def _skip(plugin: str, reason: str) -> None:
    """Say once, in one line, that a broken plugin is skipped and why (MOTIONFORGE_DEBUG=1 adds the traceback)."""
    if (plugin, reason) in _warned:
        return
    _warned.add((plugin, reason))
    debug = os.environ.get("MOTIONFORGE_DEBUG", "") not in ("", "0")
    log.warning("skipped %s: %s", plugin_label(plugin), reason, exc_info=debug)


def broken_plugins() -> dict[str, str]:
    """Every plugin skipped as broken, with the one-line reason: failed imports and failed registrations."""
    return {**_failed_imports, **_broken}


def _normalise(name: str) -> str:
    """A distribution name in its canonical form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def motionforge_version() -> str:
    """The installed motionforge version (or 'unknown' when run from a bare source tree)."""
    try:
        return importlib.metadata.version("motionforge")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def load_entry_points(manager: pluggy.PluginManager) -> list[str]:
    """Register the entry-point plugins that ``MOTIONFORGE_LOAD_PLUGINS`` allows; return their names.

    Unset: every installed plugin. Empty: none. A comma list: only those distributions.
    """
    selection = os.environ.get(LOAD_PLUGINS_ENV)
    wanted = None if selection is None else {_normalise(n) for n in selection.split(",") if n.strip()}
    if wanted is not None and not wanted:
        return []
    loaded, seen = [], set()
    for dist in importlib.metadata.distributions():
        entry_points = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        dist_name = dist.metadata["Name"] or "?"
        if not entry_points or (wanted is not None and _normalise(dist_name) not in wanted):
            continue
        seen.add(_normalise(dist_name))
        for ep in entry_points:
            if manager.has_plugin(ep.name) or manager.is_blocked(ep.name):
                continue
            _distributions[ep.name] = (dist_name, dist.version)
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin is skipped; everything else works
                reason = (
                    f"importing it failed with {type(exc).__name__}: {' '.join(str(exc).split())}; "
                    f"fix or uninstall it, or leave it out with {LOAD_PLUGINS_ENV}"
                )
                _failed_imports[ep.name] = reason
                _skip(ep.name, reason)
                continue
            _failed_imports.pop(ep.name, None)
            manager.register(plugin, name=ep.name)
            loaded.append(ep.name)
    if wanted is not None and wanted - seen:
        missing = ", ".join(sorted(wanted - seen))
        raise PluginError(
            f"{LOAD_PLUGINS_ENV} names {missing}, which is not an installed distribution with "
            f"motionforge plugins; check the spelling or install it"
        )
    return loaded


def load_plugins() -> pluggy.PluginManager:
    """Load entry-point plugins (once) and register the built-in plugins; return the plugin manager."""
    if _state["loaded"]:
        return pm
    load_entry_points(pm)
    for module_name in DEFAULT_PLUGINS:
        if not pm.has_plugin(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            pm.unregister(exc.plugin)
            reason = f"it implements a hook motionforge does not have ({exc}); check its name against motionforge.core.hookspecs"
            _failed_imports[name] = reason
            _skip(name, reason)
    _state["loaded"] = True
    return pm


@dataclass(frozen=True)
class Entry:
    """One registered class and the plugin that registered it."""

    kind: str
    name: str
    cls: type
    plugin: str


@dataclass
class Registry:
    """The adapters, backbones and samplers that the loaded plugins registered, by name."""

    adapters: dict[str, Entry] = field(default_factory=dict)
    backbones: dict[str, Entry] = field(default_factory=dict)
    samplers: dict[str, Entry] = field(default_factory=dict)

    def table(self, kind: str) -> dict[str, Entry]:
        """The name → entry table of one kind ('adapter', 'backbone' or 'sampler')."""
        return {"adapter": self.adapters, "backbone": self.backbones, "sampler": self.samplers}[kind]

    def get(self, kind: str, name: str) -> Entry:
        """The entry registered under ``name``; a clear error listing the choices when there is none."""
        table = self.table(kind)
        if name not in table:
            choices = ", ".join(sorted(table)) or "none"
            raise PluginError(f"there is no {kind} named {name!r}; installed {kind}s: {choices}")
        return table[name]

    def provided_by(self, plugin: str) -> dict[str, list[str]]:
        """What one plugin registered: {'adapters': [...], 'backbones': [...], 'samplers': [...]}."""
        return {
            kind + "s": sorted(e.name for e in self.table(kind).values() if e.plugin == plugin)
            for kind in KINDS
        }


def plugin_label(plugin: str) -> str:
    """A plugin's name with its distribution and version, for error messages."""
    if plugin in _distributions:
        dist, version = _distributions[plugin]
        return f"plugin {plugin!r} ({dist} {version})"
    return f"plugin {plugin!r}"


def _check_class(kind: str, cls: Any, plugin: str) -> str:
    """Validate a class a plugin registered and return its name."""
    methods = [protocol_methods(protocol) for protocol in KINDS[kind][3]]
    name = getattr(cls, "name", None)
    if not isinstance(cls, type) or not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(
            f"{plugin_label(plugin)} registered {cls!r} as a {kind}, but it is not a class with a "
            "'name' made of letters, digits and underscores"
        )
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise PluginError(f"{kind} {name!r} of {plugin_label(plugin)} needs a 'Config' dataclass")
    try:
        config()
    except TypeError as exc:
        raise PluginError(
            f"{kind} {name!r} of {plugin_label(plugin)} has a Config field without a default ({exc})"
        ) from exc
    if kind != "adapter" and any(f.name == "name" for f in dataclasses.fields(config)):
        raise PluginError(f"{kind} {name!r} of {plugin_label(plugin)} may not have a Config field called 'name'")
    if not any(all(callable(getattr(cls, m, None)) for m in group) for group in methods):
        wanted = " or ".join("+".join(group) for group in methods)
        raise PluginError(f"{kind} {name!r} of {plugin_label(plugin)} lacks the method(s) {wanted}")
    return name


@functools.cache
def config_node(kind: str, entry_cls: type) -> type:
    """The dataclass stored in the ConfigStore for a class: its Config, plus a ``name`` field for backbones and samplers."""
    config = entry_cls.Config
    if kind == "adapter":
        return config
    return dataclasses.make_dataclass(
        f"{config.__name__}Node",
        [("name", str, dataclasses.field(default=entry_cls.name))],
        bases=(config,),
    )


def _store_configs(registry: Registry) -> None:
    """Put every registered Config in Hydra's ConfigStore and drop the ones no longer registered."""
    store = ConfigStore.instance()
    stored: set[tuple[str, str]] = set()
    for kind, (_, group, package, _) in KINDS.items():
        for name, entry in registry.table(kind).items():
            store.store(
                group=group,
                name=name,
                node=config_node(kind, entry.cls),
                package=package.format(name=name),
                provider=entry.plugin,
            )
            stored.add((group, name))
    for group, name in _state["stored"] - stored:
        store.repo.get(group, {}).pop(f"{name}.yaml", None)
    _state["stored"] = stored


class _Broken(Exception):
    """A plugin whose registration failed: skip it and collect again."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(reason)
        self.plugin, self.reason = plugin, reason


def _collect_once(manager: pluggy.PluginManager, skipped: dict[str, str]) -> Registry:
    """Call the register hooks of every plugin not skipped, attributing each class to its plugin."""
    registry = Registry()
    for kind, (hook_name, *_rest) in KINDS.items():
        table = registry.table(kind)
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin_name in skipped:
                continue

            def register(
                cls: Any, _plugin: str = impl.plugin_name, _kind: str = kind, _table: dict[str, Entry] = table
            ) -> None:
                name = _check_class(_kind, cls, _plugin)
                if name in _table and _table[name].cls is not cls:
                    other = _table[name].plugin
                    builtin_first = _plugin in DEFAULT_PLUGINS and other not in DEFAULT_PLUGINS
                    blamed, kept = (other, _plugin) if builtin_first else (_plugin, other)
                    raise _Broken(
                        blamed,
                        f"its {_kind} {name!r} is already registered by {plugin_label(kept)}; uninstall one of them or "
                        f"leave one out with {LOAD_PLUGINS_ENV}",
                    )
                _table[name] = Entry(_kind, name, cls, _plugin)

            arguments: dict[str, Callable[[Any], None]] = {"register": register}
            try:
                impl.function(**{arg: arguments[arg] for arg in impl.argnames})
            except _Broken:
                raise
            except PluginError as exc:
                raise _Broken(impl.plugin_name, str(exc)) from exc
            except Exception as exc:
                reason = f"its {hook_name} hook failed with {type(exc).__name__}: {' '.join(str(exc).split())}"
                raise _Broken(impl.plugin_name, reason) from exc
    return registry


def _collect(manager: pluggy.PluginManager) -> Registry:
    """Collect every plugin's classes; a plugin whose registration fails is named once, skipped, and the rest collected."""
    skipped: dict[str, str] = {}
    while True:
        try:
            registry = _collect_once(manager, skipped)
            break
        except _Broken as broken:
            skipped[broken.plugin] = broken.reason
            _skip(broken.plugin, broken.reason)
    _broken.clear()
    _broken.update(skipped)
    return registry


def get_registry() -> Registry:
    """The registry of everything the loaded plugins provide (rebuilt when plugins are added or removed)."""
    manager = load_plugins()
    key = tuple(manager.list_name_plugin())  # the plugins themselves: an id could be reused by a new one
    if _state["registry"] is None or _state["key"] != key:
        registry = _collect(manager)
        _store_configs(registry)
        _state["registry"], _state["key"] = registry, key
    return _state["registry"]


def list_plugins() -> list[dict[str, Any]]:
    """Every plugin: its name, version, whether it is built in, its hooks, what it registered, and why it is broken (or None)."""
    registry = get_registry()
    broken = broken_plugins()
    rows = []
    names = [name for name, _ in pm.list_name_plugin()] + [name for name in _failed_imports if not pm.has_plugin(name)]
    for name in names:
        plugin = pm.get_plugin(name)
        builtin = name in DEFAULT_PLUGINS
        dist, version = _distributions.get(name, ("motionforge" if builtin else "", motionforge_version() if builtin else ""))
        hooks = (pm.get_hookcallers(plugin) or []) if plugin is not None else []
        rows.append(
            {
                "name": name,
                "distribution": dist,
                "version": version,
                "builtin": builtin,
                "hooks": sorted(caller.name for caller in hooks),
                **registry.provided_by(name),
                "broken": broken.get(name),
            }
        )
    return sorted(rows, key=lambda row: (not row["builtin"], row["name"]))
