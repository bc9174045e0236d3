"""The `control` suite: how closely each backbone's output follows its controls on the built-in procedural cases.

Per case and backbone: the trajectory end-point error, the brush leakage (motion where the plan
asks for none: outside the brush and outside where its content is dragged), the temporal error,
and, for the objects the tracks drag, the ghost (object colour left where the object no longer
is, as a share of its area) and the tear (the change of its area) at the last frame, the worst
object of the case.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image

from motionforge.bench.cases import Case, cases, overrides
from motionforge.bench.report import bar_plot, group
from motionforge.bench.settings import BenchSettings
from motionforge.core.config import compose_config
from motionforge.core.engine import animate
from motionforge.core.types import MotionPlan
from motionforge.kernels import splat
from motionforge.metrics import LK_WINDOW, brush_leakage, object_fidelity, temporal_error, trajectory_epe

COLUMNS = [
    "backbone",
    "case",
    "epe_mean_px",
    "epe_max_px",
    "lost",
    "hidden",
    "leakage",
    "ghost",
    "tear",
    "temporal_error",
    "render_s",
]
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
                rows.append(measure(backbone, case, video))
    return rows


def reached(plan: MotionPlan, margin: int = 2) -> np.ndarray:
    """Where the plan moves the region's content in some frame, outside the region itself: bool [H, W] (``margin`` px wider)."""
    inside = (plan.region >= 0.5).float()  # [1, 1, H, W]
    landed = splat(inside.expand(plan.num_frames, -1, -1, -1), plan.flow, "sum").amax(dim=0)[0] > 0.05  # [H, W]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    grown = cv2.dilate(landed.cpu().numpy().astype(np.uint8), kernel) > 0
    return grown & ~inside[0, 0].cpu().numpy().astype(bool)


def visibility(plan: MotionPlan, margin: int = LK_WINDOW[0] // 2) -> np.ndarray:
    """Where each track's point can be followed: bool [N, F], false where a layer nearer than its own comes within ``margin`` px.

    A tracker matches the window around a point (Lucas–Kanade's is 21 px wide), so a point whose
    window a nearer object covers is as good as hidden.
    """
    tracks = plan.tracks  # [N, F, 2]
    height, width = plan.flow.shape[-2:]
    starts = tracks[:, 0].round().long()  # [N, 2]
    own = torch.zeros(len(tracks), dtype=torch.long)  # [N] the nearest layer each track starts on
    for index, layer in enumerate(plan.layers[1:], start=1):
        on = layer.core[0, 0, starts[:, 1].clamp(0, height - 1), starts[:, 0].clamp(0, width - 1)]  # [N]
        own = torch.where(on, index, own)
    shown = torch.ones(tracks.shape[:2], dtype=torch.bool)  # [N, F]
    where = tracks.round().long()  # [N, F, 2]
    xs, ys = where[..., 0].clamp(0, width - 1), where[..., 1].clamp(0, height - 1)  # [N, F]
    for index, layer in enumerate(plan.layers[1:], start=1):
        core = layer.core.float().expand(plan.num_frames, -1, -1, -1)  # [F, 1, H, W]
        covered = splat(core, layer.flow, "sum")[:, 0] > 0.5  # [F, H, W] the layer's own pixels, moved
        covered = (
            F.max_pool2d(covered[:, None].float(), 2 * margin + 1, stride=1, padding=margin)[:, 0] > 0
        )  # [F, H, W] and near them
        frames = torch.arange(plan.num_frames)
        hidden = covered[frames[None], ys, xs] & (own[:, None] < index)  # [N, F]
        shown &= ~hidden
    return shown.numpy()


def measure(backbone: str, case: Case, video: Any) -> dict[str, Any]:
    """The adherence of one video to its plan: end-point error of its tracks, leakage, ghost and tear, temporal error."""
    tracks = video.plan.tracks.cpu().numpy()  # [N, F, 2]
    with torch.no_grad():
        shown = visibility(video.plan)
    epe = trajectory_epe(video.frames, tracks, visible=shown)
    leakage = None
    if case.brush is not None and video.plan.region is not None:
        with torch.no_grad():
            went = reached(video.plan)
        leakage = round(brush_leakage(video.frames, video.plan.region[0, 0].cpu().numpy(), reached=went), 4)  # region [H, W]
    fidelity = [object_fidelity(video.frames, mask, path) for mask, path in zip(case.objects, tracks)]
    return {
        "backbone": backbone,
        "case": case.name,
        "epe_mean_px": round(epe["mean"], 4),
        "epe_max_px": round(epe["max"], 4),
        "lost": epe["lost"],
        "hidden": epe["hidden"],
        "leakage": leakage,
        "ghost": round(max(f["ghost"] for f in fidelity), 4),
        "tear": round(max(f["tear"] for f in fidelity), 4),
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
        ghost = max(mine, key=lambda r: r["ghost"])
        tear = max(mine, key=lambda r: r["tear"])
        lines.append(
            f"{backbone}: trajectory end-point error {epe:.3f} px on average, {worst:.3f} px at worst{goal}, {lost} points lost"
            f"{leak}, temporal error {statistics.mean(r['temporal_error'] for r in mine):.3f}; "
            f"ghost at most {ghost['ghost']:.3f} ({ghost['case']}), tear at most {tear['tear']:.3f} ({tear['case']})"
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
