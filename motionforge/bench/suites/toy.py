"""The `toy` suite: how closely each kind of control makes a trained toy model's sprites follow their tracks, on held-out clips.

The toy world's trained models (``models/toy``: an SVD-architecture pipeline and MOFA-Video's
trajectory adapter, both trained by ``motionforge train``) animate the first frame of held-out toy
clips (seeds no training clip has) under each variant of control:

- ``none``: no control (the base model's own motion);
- ``latent_init``: the tracks, with SDEdit from the picture warped along the plan (single clock);
- ``region_hold``: that, and a brush along the tracks (each sprite's path, widened by its radius)
  outside which the latents hold the picture;
- ``dual_clock``: Time-to-Move's two clocks on the same plan;
- ``adapter``: the trained trajectory adapter (``backbone.mofa``), the model otherwise free;
- ``adapter_dual_clock``: both;
- ``truth``: the clip's own frames, no model: the floor of the measures themselves.

Per run: the end-point error of the given tracks (the Lucas–Kanade tracker of
:mod:`motionforge.metrics`, on the frames at twice their size: :func:`toy_epe`) against the ground truth, the error of each sprite's colour centroid,
the background leakage (clips with a still camera: motion outside every pixel a sprite covers over
motion inside), and the sprites' integrity (colour mass within 20%, :mod:`motionforge.toy.measures`).
Two curves follow: the error against the number of tracks given (Motion Prompting's) and against
the clip's length (Tora's).
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from omegaconf import DictConfig
from PIL import Image

from motionforge.bench.report import bar_plot, group, line_plot
from motionforge.bench.settings import BenchSettings
from motionforge.core.config import compose_config, hydra_string
from motionforge.core.engine import animate
from motionforge.metrics import brush_leakage, trajectory_epe
from motionforge.toy.dataset import ToyDataset, write_dataset
from motionforge.toy.measures import colour_mass, hue_pixels, intact, integrity, path_region, sprite_region, trackable
from motionforge.toy.world import ToyClip, WorldSettings

COLUMNS = [
    "variant", "case", "frames", "tracks", "epe_mean_px", "epe_max_px", "lost", "centroid_px", "leakage", "intact",
    "integrity_min", "render_s",
]  # fmt: skip
VARIANTS = ("none", "latent_init", "region_hold", "dual_clock", "adapter", "adapter_dual_clock", "truth")
ORDER = ("adapter", "dual_clock", "latent_init", "none")  # the ordering the papers predict, best first
TARGET_EPE = 1.5  # px: the trained adapter's goal
TARGET_INTACT = 0.9  # share of cases where the base model's sprites stay sprites
TRACK_SCALE = 2  # the frames are tracked at twice their size (see toy_epe)


def variant_overrides(variant: str, suite: DictConfig, tracks: Path, brush: Path) -> list[str]:
    """The animate overrides of one control variant: its adapters (the tracks file, the brush) and its backbone keys."""
    adapter = [f"backbone.mofa={hydra_string(str(suite.adapter))}", f"backbone.mofa_scale={suite.adapter_scale}"]
    dual = ["backbone.dual_clock=true", f"backbone.dual_clock_weak={suite.dual_clock_weak}", f"backbone.dual_clock_strong={suite.dual_clock_strong}"]  # fmt: skip
    latent = ["backbone.latent_init=true", f"backbone.init_strength={suite.init_strength}"]
    drag = ["adapters=[trajectory]", f"adapters.trajectory.file={hydra_string(str(tracks))}"]
    if variant == "none":
        return ["adapters=[]"]
    if variant == "latent_init":
        return drag + latent
    if variant == "region_hold":
        return ["adapters=[trajectory,brush]", *drag[1:], f"adapters.brush.mask={hydra_string(str(brush))}", *latent]
    if variant == "dual_clock":
        return drag + dual
    if variant == "adapter":
        return drag + adapter
    if variant == "adapter_dual_clock":
        return drag + adapter + dual
    raise ValueError(f"suite.variants: {variant} is not one of {', '.join(VARIANTS)}")


def given_tracks(clip: ToyClip, count: int | None) -> list[int]:
    """The sprites whose tracks are given: those seen at frame 0, the first ``count`` of them (all when None)."""
    shown = [s for s in range(clip.num_sprites) if clip.visible[s, 0]]
    return shown if count is None else shown[:count]


def write_controls(clip: ToyClip, chosen: list[int], folder: Path) -> tuple[Path, Path, Path]:
    """The clip's picture, the chosen tracks (with their visibility) and the brush along them, as files for animate."""
    folder.mkdir(parents=True, exist_ok=True)
    picture, tracks, brush = folder / "picture.png", folder / "tracks.json", folder / "brush.png"
    Image.fromarray(clip.frames[0]).save(picture)
    entries = [{"points": clip.tracks[s].round(4).tolist(), "visible": clip.visible[s].tolist()} for s in chosen]
    size = [clip.frames.shape[2], clip.frames.shape[1]]
    tracks.write_text(json.dumps({"size": size, "tracks": entries}), encoding="utf-8")
    region = path_region(clip.tracks[chosen], clip.radii[chosen], clip.frames.shape[1:3])
    Image.fromarray((region * 255).astype(np.uint8)).save(brush)
    return picture, tracks, brush


def centroid_error(frames: np.ndarray, clip: ToyClip, chosen: list[int]) -> float:
    """Mean distance (px) between each chosen sprite's colour centroid and its true centre, frames 1… where the truth is steady."""
    errors = []
    for s in chosen:
        real = colour_mass(clip.frames, clip.colours[s])  # [F]
        for f in range(1, len(frames)):
            if real[0] == 0 or abs(real[f] / real[0] - 1) > 0.1:
                continue
            hit = hue_pixels(frames[f], clip.colours[s])  # [H, W]
            if hit.any():
                ys, xs = np.nonzero(hit)
                errors.append(float(np.hypot(xs.mean() - clip.tracks[s, f, 0], ys.mean() - clip.tracks[s, f, 1])))
    return float(np.mean(errors)) if errors else math.nan


def toy_epe(frames: np.ndarray, clip: ToyClip, chosen: list[int]) -> dict[str, Any]:
    """The end-point error of the chosen sprites' tracks, in the clip's pixels, tracked on the frames upsampled ``TRACK_SCALE``×.

    Lucas–Kanade's 21-px window is a third of a 64-px frame; at twice the size it frames a sprite,
    and its error on the clips' own frames falls from about 0.9 px to 0.3 px (the ``truth`` rows).
    A track counts while no nearer sprite comes within 6 px (:func:`motionforge.toy.measures.trackable`).
    """
    scale = TRACK_SCALE
    larger = np.stack([cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) for frame in frames])
    shown = trackable(clip.masks, clip.tracks, clip.visible)[chosen]  # [N, F]
    epe = trajectory_epe(larger, (clip.tracks[chosen] + 0.5) * scale - 0.5, visible=shown)
    return {**epe, "mean": epe["mean"] / scale, "max": epe["max"] / scale}


def measure(variant: str, clip: ToyClip, chosen: list[int], frames: np.ndarray, seconds: float) -> dict[str, Any]:
    """The adherence of one video of a toy clip to the clip's truth."""
    epe = toy_epe(frames, clip, chosen)
    leakage = None
    if not clip.camera:
        leakage = round(brush_leakage(frames, sprite_region(clip.masks)), 4)
    ratios = integrity(frames, clip.frames, clip.colours)
    return {
        "variant": variant,
        "case": clip.seed,
        "frames": len(frames),
        "tracks": len(chosen),
        "epe_mean_px": round(epe["mean"], 4),
        "epe_max_px": round(epe["max"], 4),
        "lost": epe["lost"],
        "centroid_px": round(centroid_error(frames, clip, chosen), 4),
        "leakage": leakage,
        "intact": intact(ratios),
        "integrity_min": round(float(np.nanmin(ratios)), 4) if np.isfinite(ratios).any() else None,
        "render_s": round(seconds, 3),
    }


def animate_case(
    clip: ToyClip, chosen: list[int], variant: str, suite: DictConfig, settings: BenchSettings, folder: Path
) -> dict:
    """Animate one held-out clip's first frame under one variant and measure it (``truth``: measure the clip itself)."""
    if variant == "truth":
        return measure(variant, clip, chosen, clip.frames, 0.0)
    picture, tracks, brush = write_controls(clip, chosen, folder)
    cfg = compose_config(
        [
            f"image={hydra_string(str(picture))}", f"backbone={suite.backbone}", f"backbone.pretrained={hydra_string(str(suite.pretrained))}",
            f"num_frames={len(clip.frames)}", f"steps={suite.steps}", f"seed={settings.seed}", f"device={settings.device_name}",
            "output.save=false", "progress=false", *variant_overrides(variant, suite, tracks, brush), *suite.overrides,
        ]
    )  # fmt: skip
    video = animate(cfg)
    return measure(variant, clip, chosen, video.frames, float(video.metadata["timings"]["render"]))


def held_out(scratch: Path, count: int, num_frames: int) -> ToyDataset:
    """The first ``count`` clips of the held-out split at this length (written into scratch)."""
    folder = scratch / f"heldout-{num_frames}-{count}"
    if folder.exists():
        return ToyDataset.open(folder)
    write_dataset(folder, WorldSettings(num_frames=num_frames), "heldout", count)
    return ToyDataset.open(folder)


def run(suite: DictConfig, settings: BenchSettings) -> list[dict[str, Any]]:
    """The variants on the held-out clips, then the curves over the number of tracks and over the clip's length."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        data = held_out(scratch, int(suite.cases), int(suite.num_frames))
        for clip in data.clips():
            for variant in suite.variants:
                rows.append(
                    {"part": "main", **animate_case(clip, given_tracks(clip, None), variant, suite, settings, scratch / "run")}
                )
        many = [clip for clip in data.clips() if len(given_tracks(clip, None)) >= max(suite.track_counts)]
        for clip in many[: int(suite.curve_cases)]:
            for count in suite.track_counts:
                for variant in suite.curve_variants:
                    row = animate_case(clip, given_tracks(clip, int(count)), variant, suite, settings, scratch / "run")
                    rows.append({"part": "tracks", **row})
        for length in suite.lengths:
            longer = held_out(scratch, int(suite.curve_cases), int(length))
            for clip in longer.clips():
                for variant in suite.curve_variants:
                    row = animate_case(clip, given_tracks(clip, None), variant, suite, settings, scratch / "run")
                    rows.append({"part": "length", **row})
    return rows


def _mean(values: list[Any]) -> float:
    """The mean of the finite values (NaN when none)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.mean(finite) if finite else math.nan


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per variant on the held-out cases: error, centroid error, leakage, integrity; the goals; the predicted ordering."""
    main = [r for r in rows if r.get("part", "main") == "main"]
    lines, means = [], {}
    for variant, mine in group(main, "variant").items():
        epe = _mean([r["epe_mean_px"] for r in mine])
        means[variant] = epe
        share = sum(r["intact"] for r in mine) / len(mine)
        lines.append(
            f"{variant}: end-point error {epe:.3f} px, centroid error {_mean([r['centroid_px'] for r in mine]):.3f} px, "
            f"leakage {_mean([r['leakage'] for r in mine]):.3f}, sprites intact in {share:.0%} of {len(mine)} cases"
        )
    if "adapter" in means:
        met = "met" if means["adapter"] <= TARGET_EPE else "not met"
        lines.append(f"goal: trained adapter end-point error ≤ {TARGET_EPE:g} px: {means['adapter']:.3f} px ({met})")
    if "none" in means:
        share = sum(r["intact"] for r in main if r["variant"] == "none") / max(1, sum(r["variant"] == "none" for r in main))
        met = "met" if share >= TARGET_INTACT else "not met"
        lines.append(f"goal: base model's sprites intact in ≥ {TARGET_INTACT:.0%} of cases: {share:.0%} ({met})")
    present = [v for v in ORDER if v in means]
    if len(present) > 1:
        holds = all(means[a] < means[b] for a, b in itertools.pairwise(present))
        chain = " < ".join(f"{v} {means[v]:.3f}" for v in present)
        lines.append(f"ordering {chain}: {'holds' if holds else 'does not hold'}")
    for part, key, what in (("tracks", "tracks", "tracks given"), ("length", "frames", "frames")):
        for variant, mine in group([r for r in rows if r.get("part") == part], "variant").items():
            points = ", ".join(f"{k}: {_mean([r['epe_mean_px'] for r in g]):.3f}" for k, g in sorted(group(mine, key).items()))
            lines.append(f"{variant}, end-point error (px) by {what}: {points}")
    return lines


def plots(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Error per variant (with the adapter's goal), and the curves over tracks given and over clip length."""
    main = [r for r in rows if r.get("part", "main") == "main"]
    variants = list(dict.fromkeys(r["variant"] for r in main))
    bars = {
        "end-point error": [_mean([r["epe_mean_px"] for r in main if r["variant"] == v]) for v in variants],
        "centroid error": [_mean([r["centroid_px"] for r in main if r["variant"] == v]) for v in variants],
    }
    files = [
        bar_plot(folder / "toy_control.png", bars, variants, "px", "Toy world: control variants (held out)", line=TARGET_EPE)
    ]
    for part, key, xlabel, name in (
        ("tracks", "tracks", "tracks given", "toy_tracks.png"),
        ("length", "frames", "frames", "toy_length.png"),
    ):
        series = {}
        for variant, mine in group([r for r in rows if r.get("part") == part], "variant").items():
            by = sorted(group(mine, key).items())
            series[variant] = ([float(k) for k, _ in by], [_mean([r["epe_mean_px"] for r in g]) for _, g in by])
        if series:
            files.append(line_plot(folder / name, series, xlabel, "end-point error (px)", f"Toy world: error against {xlabel}"))
    return files
