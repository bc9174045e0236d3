"""The engine: config → context → hints → plan → backbone (→ sampler) → video → files on disk."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import logging
import math
import platform
import resource
import sys
import time
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from einops import rearrange
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from motionforge import io
from motionforge.core import places, runfolders
from motionforge.core.config import (
    RunSettings,
    check_outputs_fit,
    check_plugin_keys,
    check_run,
    compose_config,
    config_dict,
    typed_config,
)
from motionforge.core.errors import PluginError, ResourceError
from motionforge.core.faults import blamed, memory_message
from motionforge.core.memory import (
    MemoryEstimate,
    RunShape,
    backbone_memory,
    check_memory,
    estimate_run,
    hint_memory,
    out_of_memory,
)
from motionforge.core.places import user_path
from motionforge.core.registry import (
    DEFAULT_PLUGINS,
    Registry,
    config_node,
    get_registry,
    list_plugins,
    motionforge_version,
    plugin_label,
)
from motionforge.core.types import (
    MotionContext,
    MotionHint,
    MotionPlan,
    Prepared,
    RenderingBackbone,
    RenderRequest,
    SparsePoints,
    StepCallback,
    Video,
)
from motionforge.core.watch import CountingDenoiser, StepWatcher
from motionforge.motion.fuse import DensifySettings, SparseDensifier, fuse, magnitude

log = logging.getLogger(__name__)

SAMPLE_NAME = "astronaut"


def sample_dir() -> Path:
    """The folder of the bundled sample: image.jpg, tracks.json and SOURCE.md."""
    return Path(str(resources.files("motionforge.assets").joinpath("samples", SAMPLE_NAME)))


def sample_controls() -> dict[str, tuple[tuple[str, ...], dict[str, Any]]]:
    """Controls the bundled sample brings: per adapter, its input keys and the values used when all are unset."""
    return {"trajectory": (("paths", "file"), {"file": str(sample_dir() / "tracks.json")})}


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Record the wall time of a stage in seconds (added up when a stage is timed in parts)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - start, 4)


def load_image(settings: RunSettings) -> tuple[Image.Image, str, tuple[int, int]]:
    """Read the input image and choose the working frame: the picture, its label, and the working (W, H)."""
    path = settings.image if settings.image is not None else str(sample_dir() / "image.jpg")
    image = io.read_image(path)
    width, height = io.working_size(image.size, settings.height, settings.width)
    return image, (path if settings.image is not None else f"sample:{SAMPLE_NAME}"), (width, height)


def make_context(
    settings: RunSettings, loaded: tuple[Image.Image, str, tuple[int, int]] | None = None
) -> tuple[MotionContext, str]:
    """Fit the input image onto the working frame and describe the run to the adapters; also returns the image's label."""
    image, label, (width, height) = loaded if loaded is not None else load_image(settings)
    pixels, box = io.fit_image(image, (width, height), settings.resize)  # [3, H, W]
    context = MotionContext(
        height=height,
        width=width,
        num_frames=settings.num_frames,
        image=pixels.to(settings.device),
        source_size=(image.size[0], image.size[1]),
        device=settings.device,
        source_box=box,
    )
    return context, label


def estimate_memory(registry: Registry, cfg: DictConfig, shape: RunShape) -> MemoryEstimate:
    """What this run will need at its peak: the adapters' hints, the plan, and the largest stage (the backbone's own figure)."""
    entry = registry.get("backbone", cfg.backbone.name)
    config = typed_config("backbone", entry.name, config_node("backbone", entry.cls), cfg.backbone)
    with blamed([entry]):
        parts = backbone_memory(entry.cls(), config, shape, entry.name)
    hints = {name: hint_memory(registry.get("adapter", name).cls) for name in cfg.adapters}
    return estimate_run(
        shape,
        hints,
        parts,
        flow_video=bool(cfg.output.save and cfg.output.flow),
        gif=bool(cfg.output.save and cfg.output.gif),
        whole_plan=bool(getattr(entry.cls, "reads_whole_plan", True)),
        convert=not getattr(entry.cls, "draws_uint8", False),
        densifier=densifier_memory(cfg.motion, shape),
    )


def densifier_memory(motion: DictConfig, shape: RunShape) -> dict[str, int]:
    """The bytes the configured densifier holds by part: none for the Gaussian one (its fields are the plan's), CMP's own."""
    if motion.densifier != "cmp":
        return {}
    from motionforge.modules import cmp

    config = cmp.TINY_CONFIG if motion.cmp_checkpoint == cmp.TINY else cmp.FULL_CONFIG
    return cmp.densifier_memory(config, shape.num_frames, shape.height, shape.width)


def make_densifier(motion: DictConfig, device: torch.device) -> SparseDensifier | None:
    """The learned densifier the config asks for, its network loaded on the device, or None for the Gaussian densifier."""
    if motion.densifier != "cmp":
        return None
    from motionforge.modules.cmp import cmp_densifier

    return cmp_densifier(str(motion.cmp_checkpoint), device)


# A flow that moves pixels further than this many times the frame's longer side is refused as nonsense.
MAX_DISPLACEMENT_SIDES = 100.0


def _check_values(what: str, value: torch.Tensor, fix: str, low: float | None = None, high: float | None = None) -> None:
    """Refuse a tensor with NaN or infinite entries, or entries outside [low, high], in one sentence naming it."""
    finite = torch.isfinite(value)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise PluginError(f"{what} has {bad} NaN or infinite value{'s' if bad > 1 else ''} of {value.numel()}; {fix}")
    if low is not None and high is not None and value.numel():
        lowest, highest = float(value.amin()), float(value.amax())
        if lowest < low - 1e-4 or highest > high + 1e-4:
            raise PluginError(f"{what} has values from {lowest:g} to {highest:g}, outside [{low:g}, {high:g}]; {fix}")


def _check_flow(what: str, flow: torch.Tensor, context: MotionContext, fix: str) -> None:
    """Refuse a flow that is not finite or moves pixels absurdly far (more than 100× the frame's longer side)."""
    _check_values(what, flow, fix)
    if flow.numel():
        furthest = float(magnitude(flow).amax())
        limit = MAX_DISPLACEMENT_SIDES * max(context.height, context.width)
        if furthest > limit:
            raise PluginError(
                f"{what} moves pixels by up to {furthest:.3g} px, more than {MAX_DISPLACEMENT_SIDES:g} times the "
                f"{max(context.height, context.width)}-pixel frame; {fix}"
            )


def _check_points(name: str, points: Any, context: MotionContext, fix: str) -> None:
    """Refuse sparse samples of the wrong shape, off the frame, or not finite, in one sentence."""
    if not isinstance(points, SparsePoints):
        raise PluginError(f"adapter {name!r} returned points of type {type(points).__name__}, not SparsePoints")
    count = len(points)
    shapes = {"positions": (count, 2), "flow": (count, context.num_frames, 2), "weight": (count, context.num_frames)}
    for part, shape in shapes.items():
        value = getattr(points, part)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise PluginError(f"adapter {name!r} returned points whose {part} has shape {got}; expected {list(shape)}")
        _check_values(f"the points' {part} of adapter {name!r}", value, fix)
    x, y = points.positions[:, 0], points.positions[:, 1]
    if bool(((x < 0) | (x > context.width - 1) | (y < 0) | (y > context.height - 1)).any()):
        raise PluginError(f"adapter {name!r} returned points off the {context.width}x{context.height} frame; {fix}")
    _check_values(f"the points' weight of adapter {name!r}", points.weight, fix, 0.0, 1.0)
    limit = MAX_DISPLACEMENT_SIDES * max(context.height, context.width)
    if count and float(points.flow.abs().amax()) > limit:
        raise PluginError(f"adapter {name!r} moves points by more than {MAX_DISPLACEMENT_SIDES:g} times the frame; {fix}")


def check_hint(name: str, hint: Any, context: MotionContext, plugin: str | None = None) -> MotionHint:
    """Check that an adapter returned a well-formed MotionHint for this context (finite, in range); ``plugin`` is its plugin."""
    if not isinstance(hint, MotionHint):
        raise PluginError(f"adapter {name!r} returned {type(hint).__name__}, not a MotionHint")
    size = (context.height, context.width)
    expected = {
        "flow": ((context.num_frames, 2, *size),),
        "mask": ((context.num_frames, 1, *size), (1, 1, *size)),
        "region": ((1, 1, *size),),
    }
    for field_name, shapes in expected.items():
        value = getattr(hint, field_name)
        if value is not None and (not isinstance(value, torch.Tensor) or tuple(value.shape) not in shapes):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise PluginError(
                f"adapter {name!r} returned a {field_name} of shape {got}; expected " + " or ".join(str(list(s)) for s in shapes)
            )
    if hint.mask is not None and hint.flow is None:
        raise PluginError(f"adapter {name!r} returned a mask without a flow")
    fix = f"check the values given to adapters.{name}"
    if plugin is not None and plugin not in DEFAULT_PLUGINS:
        fix += f" (if they are sensible, {plugin_label(plugin)} has a bug)"
    if hint.flow is not None:
        _check_flow(f"the flow of adapter {name!r}", hint.flow, context, fix)
    if hint.points is not None:
        _check_points(name, hint.points, context, fix)
    for field_name in ("mask", "region"):
        value = getattr(hint, field_name)
        if value is not None:
            _check_values(f"the {field_name} of adapter {name!r}", value, fix, 0.0, 1.0)
    for field_name in ("weight", "scale", "strength"):
        value = getattr(hint, field_name)
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise PluginError(f"adapter {name!r} returned {field_name}={value!r}; it must be a finite number, zero or more")
    return hint


def check_plan(plan: MotionPlan, context: MotionContext) -> None:
    """Check the fused plan: a finite flow within reach, a region in [0, 1]; warn when the controls give no motion at all."""
    sources = ", ".join(plan.sources) or "none"
    fix = f"check the values of the controls (adapters: {sources}), e.g. a huge zoom, scale or strength"
    furthest, bad, total = 0.0, 0, 0
    for layer in plan.layers:  # a few frames at a time: a long clip's flow is never held whole here
        for _, chunk in layer.field.chunks():
            finite = torch.isfinite(chunk)
            bad, total = bad + int((~finite).sum()), total + chunk.numel()
            if chunk.numel() and bool(finite.all()):
                furthest = max(furthest, float(magnitude(chunk).amax()))
    if bad:
        raise PluginError(f"the fused motion plan has {bad} NaN or infinite value{'s' if bad > 1 else ''} of {total}; {fix}")
    limit = MAX_DISPLACEMENT_SIDES * max(context.height, context.width)
    if furthest > limit:
        raise PluginError(
            f"the fused motion plan moves pixels by up to {furthest:.3g} px, more than {MAX_DISPLACEMENT_SIDES:g} times the "
            f"{max(context.height, context.width)}-pixel frame; {fix}"
        )
    plan.stats["max_displacement"] = round(furthest, 4)
    if plan.region is not None:
        _check_values("the plan's region", plan.region, fix, 0.0, 1.0)
    if plan.strength is not None and not math.isfinite(plan.strength):
        raise PluginError(f"the plan's motion strength is {plan.strength}; {fix}")
    free = plan.free is not None and bool((plan.free >= 0.5).any())
    if plan.sources and not free and furthest == 0.0:
        log.warning(
            "the controls (%s) give no motion: the clip will be still; check their values (and motion.threshold=%s)",
            sources,
            plan.stats.get("threshold", "R"),
        )


def adapter_inputs(registry: Registry, cfg: DictConfig, settings: RunSettings) -> RunSettings:
    """The run's image and prompt, taken from adapters that bring their own (``inputs``) where the config leaves them unset."""
    for name, node in cfg.adapters.items():
        entry = registry.get("adapter", name)
        if not callable(getattr(entry.cls, "inputs", None)):
            continue
        config = typed_config("adapter", name, entry.cls.Config, node)
        with blamed([entry]):
            found = entry.cls().inputs(config)
        if settings.image is None and found.get("image"):
            settings = dataclasses.replace(settings, image=found["image"])
        if not settings.prompt and found.get("prompt"):
            settings = dataclasses.replace(settings, prompt=found["prompt"])
    return settings


def build_hints(
    registry: Registry, cfg: DictConfig, context: MotionContext, use_sample: bool
) -> tuple[dict[str, MotionHint], dict[str, Any]]:
    """Run every configured adapter, in order; return their hints and their typed configs by name."""
    hints: dict[str, MotionHint] = {}
    configs: dict[str, Any] = {}
    sample = sample_controls() if use_sample else {}
    for name, node in cfg.adapters.items():
        entry = registry.get("adapter", name)
        config = typed_config("adapter", name, entry.cls.Config, node)
        inputs, values = sample.get(name, ((), {}))
        if inputs and all(getattr(config, key) is None for key in inputs):
            config = dataclasses.replace(config, **values)
        configs[name] = config
        with blamed([entry]), np.errstate(all="ignore"):  # overflow from absurd values is refused below, in one sentence
            hint = entry.cls().build(config, context)
        hints[name] = check_hint(name, hint, context, entry.plugin)
    return hints, configs


def to_uint8(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float frames [F, 3, H, W] in [0, 1] → uint8 frames [F, H, W, 3]; uint8 frames [F, H, W, 3] pass as they are."""
    if isinstance(frames, np.ndarray):
        return frames
    quantised = frames.detach().float().mul(255).round_().clamp_(0, 255).to(torch.uint8).cpu()  # = round(255·clamp(x, 0, 1))
    return rearrange(quantised, "f c h w -> f h w c").numpy()


def render(
    registry: Registry,
    cfg: DictConfig,
    request: RenderRequest,
    record: dict[str, Any],
    callback: StepCallback | None = None,
    previews: dict[str, np.ndarray] | None = None,
) -> torch.Tensor | np.ndarray:
    """Render the clip with the configured backbone (and sampler, for diffusion backbones).

    The frames are float [F, 3, H, W] in [0, 1], or uint8 [F, H, W, 3] from a rendering backbone that draws in 8 bits.

    ``callback`` is called after every denoiser call; the step previews (``output.previews``) go into ``previews``.
    """
    entry = registry.get("backbone", cfg.backbone.name)
    config = typed_config("backbone", entry.name, config_node("backbone", entry.cls), cfg.backbone)
    backbone = entry.cls()
    record["backbone"] = config_dict(config)
    if isinstance(backbone, RenderingBackbone):
        frames = backbone.render(config, request)
        record["notes"] = list(request.notes)
    else:
        sampler_entry = registry.get("sampler", cfg.sampler.name)
        # the sampler's Config checks itself here, before the backbone loads its weights
        sampler_config = typed_config("sampler", sampler_entry.name, config_node("sampler", sampler_entry.cls), cfg.sampler)
        record["sampler"] = config_dict(sampler_config)
        prepared = backbone.prepare(config, request)
        if not isinstance(prepared, Prepared):
            raise PluginError(f"backbone {entry.name!r} returned {type(prepared).__name__} from prepare, not a Prepared")
        record["notes"], record["steering"] = [*request.notes, *prepared.notes], list(prepared.steering)
        counter = CountingDenoiser(prepared.sampler_input.denoiser)
        problem = dataclasses.replace(prepared.sampler_input, denoiser=counter)
        watcher = StepWatcher(
            lambda x0: prepared.decode(x0, 0.0), cfg.output.previews, request.progress, callback, sampler_entry.name
        )
        try:
            latents = sampler_entry.cls().sample(sampler_config, problem, callback=watcher)
        finally:
            watcher.close()
        record["denoiser_calls"], record["frame_evaluations"] = counter.calls, counter.frame_evaluations
        if previews is not None:
            previews.update(watcher.previews)
        frames = prepared.decode(latents)
    context = request.context
    expected = (context.num_frames, 3, context.height, context.width)
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8:
        expected = (context.num_frames, context.height, context.width, 3)
    if not isinstance(frames, (torch.Tensor, np.ndarray)) or tuple(frames.shape) != expected:
        got = tuple(frames.shape) if isinstance(frames, (torch.Tensor, np.ndarray)) else type(frames).__name__
        raise PluginError(
            f"backbone {entry.name!r} returned frames of shape {got}; expected float {[context.num_frames, 3, context.height, context.width]} "
            f"or uint8 {[context.num_frames, context.height, context.width, 3]}"
        )
    return frames


def _peak_memory(device: torch.device) -> dict[str, float | None]:
    """Peak resident memory of this process and, on CUDA, peak allocated GPU memory, in MB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
    cuda = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"rss_mb": round(rss_mb, 1), "cuda_allocated_mb": None if cuda is None else round(cuda, 1)}


def _versions() -> dict[str, str]:
    """Versions of Python and the main libraries, for the manifest."""
    versions = {"python": platform.python_version(), "motionforge": motionforge_version()}
    for dist in ("torch", "diffusers", "transformers", "hydra-core", "numpy"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def run_directory(cfg: DictConfig) -> Path:
    """Where a run writes: the job's folder under `motionforge animate` (output.dir when given), else output.dir, else a new
    outputs/<date>/<time> (inside `motionforge bench`, the bench's folder)."""
    job_dir, app = runfolders.STATE.job_dir, runfolders.STATE.app
    if job_dir is not None and (app == "animate" or not cfg.output.dir):
        return job_dir
    if cfg.output.dir:
        return user_path(cfg.output.dir)
    now = _dt.datetime.now()
    base = Path("outputs") / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S")
    candidate, suffix = base, 1
    while candidate.exists():
        candidate, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    return candidate


def write_outputs(video: Video, cfg: DictConfig, run_dir: Path, timings: dict[str, float]) -> list[Path]:
    """Write the run's files under temporary names and rename them into place when all are written."""
    output, frames, plan = cfg.output, video.frames, video.plan
    existed = run_dir.exists()
    names: list[str] = []
    try:
        with io.AtomicOutputs(run_dir) as out:

            def target(name: str) -> Path:
                names.append(name)
                return out.path(name)

            with _timed(timings, "write"):
                if output.mp4:
                    io.write_mp4(target(f"{output.name}.mp4"), frames, video.fps, crf=output.crf)
                if output.gif:
                    io.write_gif(target(f"{output.name}.gif"), frames, video.fps)
                if output.frames:
                    io.write_png_frames(target("frames"), frames)
                if output.flow and plan is not None:
                    io.write_flow_mp4(target("flow.mp4"), plan.field, video.fps, crf=output.crf)
                if video.previews:
                    folder = target("previews")
                    for name, strip in sorted(video.previews.items()):
                        Image.fromarray(strip).save(folder / name)
                if output.hint and plan is not None:
                    region = None if plan.region is None else plan.region[0, 0]
                    Image.fromarray(io.draw_hint(frames[0], plan.tracks, region)).save(target("hint.png"))
                if not _under_hydra():  # the CLI's Hydra job writes its own .hydra/ folder
                    target("config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
            video.metadata["outputs"] = names + ["manifest.json"]
            video.metadata["timings"]["total"] = round(sum(v for k, v in timings.items() if k != "total"), 4)
            io.write_json(target("manifest.json"), video.metadata)
    except BaseException:
        if not existed and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise
    return [run_dir / name for name in names]


def _under_hydra() -> bool:
    """True inside a job of the command line, where Hydra writes its own .hydra/ folder."""
    return runfolders.STATE.job_dir is not None


def animate(cfg: DictConfig | None = None, *, callback: StepCallback | None = None) -> Video:
    """Animate the configured image under the configured controls and return the Video (saved when output.save).

    ``callback``, for diffusion backbones, is called after every denoiser call with the step's
    state (see :data:`motionforge.core.types.StepCallback`).

    >>> from motionforge import compose_config, animate
    >>> video = animate(compose_config(["num_frames=8", "output.save=false"]))
    """
    cfg = compose_config() if cfg is None else cfg
    started = _dt.datetime.now().astimezone()
    timings: dict[str, float] = {}
    settings = check_run(cfg)
    check_plugin_keys(cfg)
    registry = get_registry()
    settings = adapter_inputs(registry, cfg, settings)
    run_dir = run_directory(cfg) if cfg.output.save else None
    made = places.prepare_folder(run_dir, "output.dir" if cfg.output.dir else None) if run_dir else []
    try:
        video = _animate(registry, cfg, settings, started, timings, callback)
        if run_dir is not None:
            with places.writing(run_dir):
                write_outputs(video, cfg, run_dir, timings)
            video.metadata["run_dir"] = str(run_dir)
    except BaseException:
        places.remove_folders(made)
        raise
    return video


def _animate(
    registry: Registry,
    cfg: DictConfig,
    settings: RunSettings,
    started: _dt.datetime,
    timings: dict[str, float],
    callback: StepCallback | None,
) -> Video:
    """The run itself, once its settings and its folder are checked: image → memory check → hints → plan → frames."""
    if settings.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(settings.device)
    record: dict[str, Any] = {"sampler": None, "denoiser_calls": 0, "frame_evaluations": 0, "notes": [], "steering": []}
    backbone = registry.get("backbone", cfg.backbone.name)
    renders = callable(getattr(backbone.cls, "render", None))
    stages = [backbone] + ([] if renders else [registry.get("sampler", cfg.sampler.name)])
    with torch.no_grad():
        with _timed(timings, "image"):
            loaded = load_image(settings)
            width, height = loaded[2]
            estimate = estimate_memory(registry, cfg, RunShape(settings.num_frames, height, width, settings.device))
            check_memory(estimate, bool(cfg.memory.insist))  # before the picture is fitted: that is the first large allocation
            check_outputs_fit(cfg, width, height)
        try:
            with _timed(timings, "image"):
                context, image_label = make_context(settings, loaded)
            with _timed(timings, "adapters"):
                hints, adapter_configs = build_hints(registry, cfg, context, use_sample=settings.image is None)
            with _timed(timings, "plan"):
                densify = DensifySettings(cfg.motion.sigma, cfg.motion.threshold, cfg.motion.normalize, cfg.motion.feather)
                plan: MotionPlan = fuse(hints, context, densify, make_densifier(cfg.motion, context.device))
                check_plan(plan, context)
            request = RenderRequest(
                context, plan, settings.prompt, settings.fps, settings.steps, settings.seed, settings.progress
            )
            with _timed(timings, "render"), blamed(stages, estimate.device_bytes()):
                previews: dict[str, np.ndarray] = {}
                frames = to_uint8(render(registry, cfg, request, record, callback, previews))
        except Exception as exc:
            if out_of_memory(exc):
                raise ResourceError(memory_message("this run", exc, estimate.device_bytes())) from exc
            raise
    log.info("rendered %d frames at %dx%d with backbone %s", len(frames), context.width, context.height, cfg.backbone.name)
    metadata = {
        "started": started.isoformat(timespec="seconds"),
        "image": image_label,
        "source_size": list(context.source_size),
        "size": [context.width, context.height],
        "num_frames": settings.num_frames,
        "fps": settings.fps,
        "seed": settings.seed,
        "steps": settings.steps,
        "prompt": settings.prompt,
        "device": str(settings.device),
        **record,
        "adapters": {name: config_dict(config) for name, config in adapter_configs.items()},
        "plan": {
            "sources": plan.sources,
            "strength": plan.strength,
            "motion_strength": plan.stats.get("motion_strength"),
            "contributions": plan.stats.get("contributions"),
            "free_pixels": None if plan.free is None else int((plan.free >= 0.5).sum()),
            "max_displacement": plan.stats.get("max_displacement"),
            "tracks": 0 if plan.tracks is None else int(plan.tracks.shape[0]),
        },
        "timings": timings,
        "peak_memory": {**_peak_memory(settings.device), **estimate.as_record()},
        "versions": _versions(),
        "plugins": [{"name": p["name"], "version": p["version"]} for p in list_plugins()],
    }
    return Video(frames=frames, fps=settings.fps, metadata=metadata, plan=plan, previews=previews)
