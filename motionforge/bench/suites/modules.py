"""The trained motion modules in the `backbones` suite: each on its backbone, against the plain backbone at the same settings."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from motionforge.bench.runs import animate_in_process
from motionforge.bench.settings import BenchSettings
from motionforge.core.errors import ConfigError
from motionforge.core.registry import get_registry

SAMPLER = "single"  # one window: the module's cost, not a sampler's


def check(suite: DictConfig) -> None:
    """Each module entry names itself, a known backbone and its overrides; one sentence when not."""
    registry = get_registry()
    for entry in suite.get("modules") or []:
        if not entry.get("name") or not entry.get("backbone"):
            raise ConfigError(f"suite.modules entry {dict(entry)} needs a name and a backbone (and overrides)")
        registry.get("backbone", entry.backbone)


def run(suite: DictConfig, settings: BenchSettings, measure: Any) -> list[dict[str, Any]]:
    """For each module: the plain backbone and the backbone with the module, once each at suite.module_frames frames."""
    rows = []
    frames = int(suite.get("module_frames", 16))
    for entry in suite.get("modules") or []:
        for label, extra in ((entry.backbone, []), (f"{entry.backbone}+{entry.name}", list(entry.overrides or []))):
            overrides = [
                f"backbone={entry.backbone}", f"sampler={SAMPLER}", f"num_frames={frames}", f"steps={suite.steps}",
                f"height={suite.height}", f"width={suite.width}", f"seed={settings.seed}", f"device={settings.device_name}",
                "adapters=[]", *extra, *suite.overrides,
            ]  # fmt: skip
            folder = settings.folder / "runs" / f"module-{label}-{frames}" if settings.folder else None
            row = measure(entry.backbone, SAMPLER, frames, animate_in_process(overrides, folder))
            rows.append({**row, "backbone": label, "module": entry.name if extra else "none"})
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Each module's cost over its plain backbone: render time and peak memory ratios."""
    lines = []
    done = {(r["backbone"], r.get("module")): r for r in rows if "skipped" not in r and r.get("module") is not None}
    for (label, module), row in done.items():
        plain = done.get((label.split("+")[0], "none"))
        if module == "none" or plain is None:
            continue
        parts = [f"render time ×{row['render_s'] / plain['render_s']:.2f}"]
        for key, what in (("peak_rss_mb", "peak RSS"), ("peak_cuda_mb", "peak CUDA memory")):
            if row.get(key) and plain.get(key):
                parts.append(f"{what} ×{row[key] / plain[key]:.2f} ({row[key] - plain[key]:+.0f} MB)")
        lines.append(f"{label} over {plain['backbone']} at {row['num_frames']} frames ({row['sampler']}): " + ", ".join(parts))
    return lines
