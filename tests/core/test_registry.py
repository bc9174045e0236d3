"""The plugin registry: built-ins are plugins, third parties register the same way, names are unique."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pluggy
import pytest

from motionforge import PluginError, animate, compose_config, hookimpl
from motionforge.core import hookspecs
from motionforge.core.registry import (
    DEFAULT_PLUGINS,
    broken_plugins,
    LOAD_PLUGINS_ENV,
    get_registry,
    list_plugins,
    load_entry_points,
    pm,
)
from tests.conftest import WiggleAdapter


def test_builtins_are_registered_through_the_hooks() -> None:
    registry = get_registry()
    assert registry.get("adapter", "trajectory").plugin == "motionforge.adapters.trajectory"
    assert registry.get("backbone", "warp").plugin == "motionforge.backbones.warp"
    assert registry.get("sampler", "single").plugin == "motionforge.samplers.single"
    assert {row["name"] for row in list_plugins()} >= set(DEFAULT_PLUGINS)


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(PluginError, match="no backbone named 'nope'.*warp"):
        get_registry().get("backbone", "nope")


def test_a_plugin_registered_for_one_test_adds_an_adapter(wiggle_plugin) -> None:
    cfg = compose_config(["adapters=[wiggle]", "adapters.wiggle.amplitude=6", "image=" + _sample(), "num_frames=3",
                          "height=64", "width=64", "output.save=false", "progress=false"])
    assert cfg.adapters.wiggle.amplitude == 6
    video = animate(cfg)
    assert video.plan.sources == ["wiggle"]
    assert float(video.plan.flow[-1, 0].mean()) == pytest.approx(6.0)
    row = next(r for r in list_plugins() if r["name"] == "undo-wiggle")
    assert row["adapters"] == ["wiggle"] and row["builtin"] is False


def test_the_adapter_disappears_with_its_plugin(wiggle_plugin) -> None:
    assert "wiggle" in get_registry().adapters
    pm.unregister(name="undo-wiggle")
    try:
        assert "wiggle" not in get_registry().adapters
        with pytest.raises(Exception, match="wiggle"):
            compose_config(["adapters=[wiggle]"])
    finally:
        pm.register(wiggle_plugin, name="undo-wiggle")


def test_a_duplicate_name_skips_the_third_party_plugin_and_keeps_the_builtin(caplog) -> None:
    class Clash:
        __name__ = "Clash"

        @hookimpl
        def register_adapters(self, register) -> None:
            register(type("OtherTrajectory", (WiggleAdapter,), {"name": "trajectory"}))

    pm.register(Clash(), name="clashing-plugin")
    try:
        registry = get_registry()
        assert registry.get("adapter", "trajectory").plugin == "motionforge.adapters.trajectory"
        assert "already registered by plugin 'motionforge.adapters.trajectory'" in broken_plugins()["clashing-plugin"]
        warnings = [r.getMessage() for r in caplog.records if "clashing-plugin" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].startswith("skipped plugin 'clashing-plugin': its adapter 'trajectory'")
        get_registry()
        assert len([r for r in caplog.records if "clashing-plugin" in r.getMessage()]) == 1  # named once
    finally:
        pm.unregister(name="clashing-plugin")
    assert get_registry().get("adapter", "trajectory").plugin == "motionforge.adapters.trajectory"
    assert "clashing-plugin" not in broken_plugins()


@pytest.mark.parametrize(
    "cls, message",
    [
        (type("NoName", (), {"build": lambda self, c, x: None}), "not a class with a 'name'"),
        (type("NoConfig", (), {"name": "noconfig", "build": lambda self, c, x: None}), "needs a 'Config' dataclass"),
        (type("NoBuild", (), {"name": "nobuild", "Config": dataclass(type("C", (), {}))}), "lacks the method"),
    ],
)
def test_a_malformed_class_skips_its_plugin_and_the_rest_works(cls, message, caplog) -> None:
    class Broken:
        __name__ = "Broken"

        @hookimpl
        def register_adapters(self, register) -> None:
            register(WiggleAdapter)
            register(cls)

    pm.register(Broken(), name="broken-plugin")
    try:
        registry = get_registry()
        assert "wiggle" not in registry.adapters and "trajectory" in registry.adapters  # all of the plugin, none of the rest
        assert message in broken_plugins()["broken-plugin"]
        assert any(r.getMessage().startswith("skipped plugin 'broken-plugin': ") for r in caplog.records)
        row = next(r for r in list_plugins() if r["name"] == "broken-plugin")
        assert row["adapters"] == [] and message in row["broken"]
    finally:
        pm.unregister(name="broken-plugin")


def test_a_hook_that_raises_skips_its_plugin() -> None:
    class Raising:
        __name__ = "Raising"

        @hookimpl
        def register_samplers(self, register) -> None:
            raise RuntimeError("no GPU library")

    pm.register(Raising(), name="raising-plugin")
    try:
        assert "single" in get_registry().samplers
        assert broken_plugins()["raising-plugin"] == "its register_samplers hook failed with RuntimeError: no GPU library"
    finally:
        pm.unregister(name="raising-plugin")


# --- entry points ------------------------------------------------------------------------------

def wiggle_module() -> str:
    """The README's example plugin module: the test installs exactly what the README shows."""
    from tests.test_readme import readme_block

    return readme_block("# mf_wiggle.py")


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake installed distribution 'mf-wiggle' 0.3 with a motionforge entry point, on sys.path."""
    site = tmp_path / "site"
    info = site / "mf_wiggle-0.3.dist-info"
    info.mkdir(parents=True)
    (site / "mf_wiggle.py").write_text(wiggle_module())
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mf-wiggle\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[motionforge]\nwiggle = mf_wiggle\n")
    monkeypatch.syspath_prepend(str(site))
    sys.modules.pop("mf_wiggle", None)
    yield site
    sys.modules.pop("mf_wiggle", None)


def _fresh_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


@pytest.mark.parametrize("selection, loaded", [(None, ["wiggle"]), ("", []), ("mf-wiggle", ["wiggle"]), ("MF_Wiggle", ["wiggle"])])
def test_load_plugins_env_selects_entry_points(installed_plugin, monkeypatch, selection, loaded) -> None:
    if selection is None:
        monkeypatch.delenv(LOAD_PLUGINS_ENV, raising=False)
    else:
        monkeypatch.setenv(LOAD_PLUGINS_ENV, selection)
    manager = _fresh_manager()
    assert [n for n in load_entry_points(manager) if n == "wiggle"] == loaded


def test_load_plugins_env_naming_a_missing_distribution_is_an_error(installed_plugin, monkeypatch) -> None:
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "mf-wiggle,mf-nothing")
    with pytest.raises(PluginError, match="mf-nothing"):
        load_entry_points(_fresh_manager())


def test_a_plugin_that_fails_to_import_is_named_once_and_skipped(installed_plugin, monkeypatch, caplog) -> None:
    (installed_plugin / "mf_wiggle.py").write_text("raise ImportError('missing dependency foo')\n")
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "mf-wiggle")
    assert load_entry_points(_fresh_manager()) == []
    reason = broken_plugins()["wiggle"]
    assert reason.startswith("importing it failed with ImportError: missing dependency foo; fix or uninstall it")
    lines = [r.getMessage() for r in caplog.records if "wiggle" in r.getMessage()]
    assert lines == [f"skipped plugin 'wiggle' (mf-wiggle 0.3): {reason}"]


def test_an_installed_plugin_works_from_the_command_line(installed_plugin, tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{installed_plugin}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop(LOAD_PLUGINS_ENV)
    listing = subprocess.run([sys.executable, "-m", "motionforge", "plugins", "--json"], env=env,
                             capture_output=True, text=True, check=True)
    row = next(r for r in json.loads(listing.stdout) if r["name"] == "wiggle")
    assert row == {**row, "distribution": "mf-wiggle", "version": "0.3", "adapters": ["wiggle"], "builtin": False}
    run = subprocess.run(
        [sys.executable, "-m", "motionforge", "animate", "adapters=[trajectory,wiggle]", "adapters.wiggle.amplitude=4",
         "num_frames=3", "height=64", "width=64", "progress=false", f"hydra.run.dir={tmp_path / 'run'}"],
        env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["plan"]["sources"] == ["trajectory", "wiggle"]
    assert manifest["adapters"]["wiggle"] == {"amplitude": 4.0}
    hidden = subprocess.run([sys.executable, "-m", "motionforge", "plugins", "--json"],
                            env={**env, LOAD_PLUGINS_ENV: ""}, capture_output=True, text=True, check=True)
    assert "wiggle" not in {r["name"] for r in json.loads(hidden.stdout)}


def _sample() -> str:
    from motionforge.core.engine import sample_dir

    return str(sample_dir() / "image.jpg")


def test_hook_names_are_documented_in_the_hookspecs() -> None:
    for name in ("register_adapters", "register_backbones", "register_samplers"):
        caller = getattr(pm.hook, name)
        assert caller.spec is not None and caller.spec.argnames == ("register",)
        assert textwrap.dedent(caller.spec.function.__doc__ or "").strip()
