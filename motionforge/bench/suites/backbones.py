"""The `backbones` suite: backbone × sampler × num_frames, each run in its own process; time, cost and peak memory.

``suite.modules`` adds trained modules (MOFA-Video's adapter on svd_tiny, …): each one whose backbone
is in ``suite.backbones`` is run on it with the same samplers and frames, and the summary gives its
cost over the plain backbone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from motionforge.bench.report import group, line_plot, series
from motionforge.bench.runs import animate_in_process
from motionforge.bench.settings import BenchSettings
from motionforge.core.registry import get_registry

COLUMNS = [
    "backbone", "module", "sampler", "num_frames", "height", "width", "steps", "wall_s", "s_per_frame", "denoiser_calls",
    "frame_evaluations", "peak_rss_mb", "peak_cuda_mb", "skipped",
]  # fmt: skip


def variants(suite: DictConfig) -> list[tuple[str, str | None, list[str]]]:
    """What is run: (backbone, module or None, its overrides): the backbones plain, then the modules of those backbones."""
    modules = {name: spec for name, spec in dict(suite.get("modules") or {}).items() if spec["backbone"] in suite.backbones}
    plain: list[tuple[str, str | None, list[str]]] = [(str(b), None, []) for b in suite.backbones]
    return plain + [(str(spec["backbone"]), str(name), list(spec.get("overrides") or [])) for name, spec in modules.items()]


def run(suite: DictConfig, settings: BenchSettings) -> list[dict[str, Any]]:
    """Animate every combination once (no controls: the cost is the backbone's and the sampler's); keep its manifest's figures."""
    registry = get_registry()
    chosen = variants(suite)
    for backbone, _, _ in chosen:
        registry.get("backbone", backbone)  # a misspelt name is an error here, not a table of skipped runs
    for sampler in suite.samplers:
        registry.get("sampler", sampler)
    rows = []
    for backbone, module, extra in chosen:
        for sampler in suite.samplers:
            for frames in suite.num_frames:
                overrides = [
                    f"backbone={backbone}", f"sampler={sampler}", f"num_frames={frames}", f"steps={suite.steps}",
                    f"height={suite.height}", f"width={suite.width}", f"seed={settings.seed}", f"device={settings.device_name}",
                    "adapters=[]", *suite.overrides, *extra,
                ]  # fmt: skip
                name = f"{backbone}+{module}" if module else backbone
                folder = settings.folder / "runs" / f"{name}-{sampler}-{frames}" if settings.folder else None
                manifest = animate_in_process(overrides, folder)
                rows.append(row(backbone, sampler, frames, manifest, int(suite.height), int(suite.width), int(suite.steps)))
                rows[-1]["module"] = module
    return rows


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


def module_costs(rows: list[dict[str, Any]]) -> list[str]:
    """Each module's cost over its plain backbone at the same sampler and frames: render time ×, peak memory + MB."""
    done = [r for r in rows if "skipped" not in r]
    plain = {(r["backbone"], r["sampler"], r["num_frames"]): r for r in done if not r.get("module")}
    lines = []
    for r in done:
        base = plain.get((r["backbone"], r["sampler"], r["num_frames"]))
        if not r.get("module") or base is None or not base["render_s"]:
            continue
        memory = [
            f"{label} {r[key] - base[key]:+.0f} MB" for key, label in (("peak_rss_mb", "peak RSS"), ("peak_cuda_mb", "peak CUDA"))
            if r.get(key) is not None and base.get(key) is not None
        ]  # fmt: skip
        ratio = r["render_s"] / base["render_s"]
        where = f"{r['backbone']} + {r['module']}, {r['sampler']}, {r['num_frames']} frames"
        lines.append(f"{where}: render time ×{ratio:.2f}" + "".join(f", {m}" for m in memory) + " over the plain backbone")
    return lines


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per backbone: phased's denoiser calls over periodic_overlap's at the longest clip, each sampler's peak memory growth,
    and each trained module's cost over its plain backbone."""
    lines = []
    done = [r for r in rows if "skipped" not in r and not r.get("module")]
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
    return lines + module_costs(rows)


def plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Render time against frames, one line per backbone and sampler."""
    done = [r for r in rows if "skipped" not in r]
    lines = series(
        done,
        lambda r: f"{r['backbone']}{'+' + r['module'] if r.get('module') else ''} · {r['sampler']}",
        "num_frames",
        "render_s",
    )
    return [line_plot(folder / "time_vs_frames.png", lines, "frames", "render seconds", "Time against frames per sampler")]
