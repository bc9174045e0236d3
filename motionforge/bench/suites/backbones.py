"""The `backbones` suite: backbone × sampler × num_frames, each run in its own process; time, cost and peak memory.

The trained motion modules (``suite.modules``) are timed against their plain backbone too (:mod:`.modules`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from motionforge.bench.report import group, line_plot, series
from motionforge.bench.runs import animate_in_process
from motionforge.bench.settings import BenchSettings
from motionforge.bench.suites import modules
from motionforge.core.registry import get_registry

COLUMNS = [
    "backbone", "module", "sampler", "num_frames", "height", "width", "steps", "wall_s", "s_per_frame", "denoiser_calls",
    "frame_evaluations", "peak_rss_mb", "peak_cuda_mb", "skipped",
]  # fmt: skip


def run(suite: DictConfig, settings: BenchSettings) -> list[dict[str, Any]]:
    """Animate every combination once (no controls, so the cost is the backbone's and the sampler's) and keep its manifest's figures."""
    registry = get_registry()
    for backbone in suite.backbones:
        registry.get("backbone", backbone)  # a misspelt name is an error here, not a table of skipped runs
    for sampler in suite.samplers:
        registry.get("sampler", sampler)
    modules.check(suite)
    rows = []
    for backbone in suite.backbones:
        for sampler in suite.samplers:
            for asked in suite.num_frames:
                frames = clip_length(registry.get("backbone", backbone).cls, int(asked))
                overrides = [
                    f"backbone={backbone}", f"sampler={sampler}", f"num_frames={frames}", f"steps={suite.steps}",
                    f"height={suite.height}", f"width={suite.width}", f"seed={settings.seed}", f"device={settings.device_name}",
                    "adapters=[]", *suite.overrides,
                ]  # fmt: skip
                folder = settings.folder / "runs" / f"{backbone}-{sampler}-{frames}" if settings.folder else None
                manifest = animate_in_process(overrides, folder)
                rows.append(row(backbone, sampler, frames, manifest, int(suite.height), int(suite.width), int(suite.steps)))
    measure = lambda *args: row(*args, int(suite.height), int(suite.width), int(suite.steps))
    return rows + modules.run(suite, settings, measure)


def clip_length(backbone: type, frames: int) -> int:
    """The frames a backbone runs for ``frames`` asked: the next 4n+1 for a VAE that compresses time by 4 (Wan), else as asked."""
    factor = int(getattr(backbone, "temporal_compression", 1))
    return frames if factor == 1 else -(-(frames - 1) // factor) * factor + 1


def row(
    backbone: str, sampler: str, frames: int, manifest: dict[str, Any], height: int, width: int, steps: int
) -> dict[str, Any]:
    """One measurement from a run's manifest (or why it was skipped), with the size and steps that tell sweep jobs apart."""
    base: dict[str, Any] = {
        "backbone": backbone, "sampler": sampler, "num_frames": frames, "height": height, "width": width, "steps": steps,
    }  # fmt: skip
    if "skipped" in manifest:
        return {**base, "skipped": manifest["skipped"]}
    render = manifest["timings"]["render"]
    return {
        **base,
        "wall_s": manifest["timings"]["total"],
        "render_s": render,
        "process_s": manifest["process_s"],
        "s_per_frame": round(render / frames, 5),
        "denoiser_calls": manifest["denoiser_calls"],
        "frame_evaluations": manifest["frame_evaluations"],
        "peak_rss_mb": manifest["peak_memory"]["rss_mb"],
        "peak_cuda_mb": manifest["peak_memory"]["cuda_allocated_mb"],
    }


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per backbone: phased's denoiser calls over periodic_overlap's at the longest clip, and each sampler's peak memory growth."""
    lines = []
    done = [r for r in rows if "skipped" not in r and "module" not in r]
    for backbone, mine in group(done, "backbone").items():
        at = {(r["sampler"], r["num_frames"]): r for r in mine}
        longest, shortest = max(r["num_frames"] for r in mine), min(r["num_frames"] for r in mine)
        if ("phased", longest) in at and ("periodic_overlap", longest) in at:
            ratio = at["phased", longest]["denoiser_calls"] / at["periodic_overlap", longest]["denoiser_calls"]
            lines.append(f"{backbone}: denoiser calls at {longest} frames, phased / periodic_overlap = {ratio:.3f} (goal ≤ 0.2)")
        for sampler in ("periodic_overlap", "phased"):
            if (sampler, longest) in at and (sampler, shortest) in at and longest != shortest:
                for key, label in (("peak_rss_mb", "peak RSS"), ("peak_cuda_mb", "peak CUDA memory")):
                    low, high = at[sampler, shortest][key], at[sampler, longest][key]
                    if low and high:
                        lines.append(
                            f"{backbone}, {sampler}: {label} at {longest} frames / {shortest} = {high / low:.3f} (goal ≤ 1.5)"
                        )
    return lines + modules.summary(rows)


def plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Render time against frames, one line per backbone and sampler."""
    done = [r for r in rows if "skipped" not in r and "module" not in r]
    lines = series(done, lambda r: f"{r['backbone']} · {r['sampler']}", "num_frames", "render_s")
    return [line_plot(folder / "time_vs_frames.png", lines, "frames", "render seconds", "Time against frames per sampler")]
