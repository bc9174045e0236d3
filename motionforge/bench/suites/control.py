"""The `control` suite: how closely each backbone's output follows its controls on the built-in procedural cases."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from PIL import Image

from motionforge.bench.cases import cases, overrides
from motionforge.bench.report import bar_plot, group
from motionforge.bench.settings import BenchSettings
from motionforge.core.config import compose_config
from motionforge.core.engine import animate
from motionforge.metrics import brush_leakage, temporal_error, trajectory_epe

COLUMNS = ["backbone", "case", "epe_mean_px", "epe_max_px", "lost", "leakage", "temporal_error", "render_s"]
TARGET_EPE = 1.0


def run(suite: DictConfig, settings: BenchSettings) -> list[dict[str, Any]]:
    """Animate every case on every backbone and measure end-point error, leakage (cases with a brush) and temporal error."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for case in cases(int(suite.size)):
            picture = Path(scratch) / f"{case.name}.png"
            Image.fromarray(case.image).save(picture)
            for backbone in suite.backbones:
                cfg = compose_config(
                    [
                        *overrides(case, picture), f"backbone={backbone}", f"num_frames={suite.num_frames}", f"steps={suite.steps}",
                        f"seed={settings.seed}", f"device={settings.device_name}", "output.save=false", "progress=false",
                        *suite.overrides,
                    ]
                )  # fmt: skip
                video = animate(cfg)
                rows.append(measure(backbone, case.name, video, has_brush=case.brush is not None))
    return rows


def measure(backbone: str, case: str, video: Any, has_brush: bool) -> dict[str, Any]:
    """The adherence of one video to its plan: end-point error of its tracks, leakage outside its brush, temporal error."""
    epe = trajectory_epe(video.frames, video.plan.tracks.cpu().numpy())  # tracks [N, F, 2]
    leakage = None
    if has_brush and video.plan.region is not None:
        leakage = round(brush_leakage(video.frames, video.plan.region[0, 0].cpu().numpy()), 4)  # region [H, W]
    return {
        "backbone": backbone,
        "case": case,
        "epe_mean_px": round(epe["mean"], 4),
        "epe_max_px": round(epe["max"], 4),
        "lost": epe["lost"],
        "leakage": leakage,
        "temporal_error": round(temporal_error(video.frames), 4),
        "render_s": video.metadata["timings"]["render"],
        "epe_per_frame_px": [round(e, 4) for e in epe["per_frame"]],
    }


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per backbone: the mean end-point error over the cases (the goal is for warp), the leakage and the temporal error."""
    lines = []
    for backbone, mine in group(rows, "backbone").items():
        epe = statistics.mean(r["epe_mean_px"] for r in mine)
        worst = max(r["epe_max_px"] for r in mine)
        goal = f" (goal ≤ {TARGET_EPE:g} px)" if backbone == "warp" else ""
        leaks = [r["leakage"] for r in mine if r["leakage"] is not None]
        leak = f", brush leakage {statistics.mean(leaks):.3f}" if leaks else ""
        lost = sum(r["lost"] for r in mine)
        lines.append(
            f"{backbone}: trajectory end-point error {epe:.3f} px on average, {worst:.3f} px at worst{goal}, {lost} points lost"
            f"{leak}, temporal error {statistics.mean(r['temporal_error'] for r in mine):.3f}"
        )
    return lines


def plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Mean end-point error per case, one bar per backbone, with the warp goal as a line."""
    names = list(dict.fromkeys(r["case"] for r in rows))
    bars: dict[str, list[float]] = {}
    for backbone in dict.fromkeys(r["backbone"] for r in rows):
        error = {r["case"]: r["epe_mean_px"] for r in rows if r["backbone"] == backbone}
        bars[backbone] = [error.get(name, 0.0) for name in names]
    return [
        bar_plot(
            folder / "adherence.png", bars, names, "trajectory end-point error (px)", "Adherence per backbone", line=TARGET_EPE
        )
    ]
