"""What every diffusion backbone shares: device and scheduler keys, the model cache, CPU offload, the run's decoder, notes.

A backbone subclasses :class:`DiffusionBase` and declares as data what differs between backbones:
``folders`` (each config key naming a local folder, and what that folder holds), ``offload_order``
(its models in the order they run, as diffusers' ``model_cpu_offload_seq``), ``tiny`` (its tiny
preset, named in the error for an unset folder) and ``cuda_dtype`` (what dtype=auto is on CUDA). A full backbone defines
``load_folders(config, folders, dtype, device)``, its tiny preset sets ``models_factory`` instead
(the models built from config); then each writes ``prepare``, reading top to bottom in stages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from einops import rearrange

from motionforge.backbones.diffusion import loading, runtime, steering
from motionforge.backbones.diffusion.schedulers import begin_at, make_scheduler, scheduler_steps
from motionforge.backbones.diffusion.schedules import Schedule, schedule_of
from motionforge.core.types import Decode, MotionPlan, Stepper

log = logging.getLogger("motionforge.backbones")


@dataclass
class DiffusionParams(runtime.RuntimeParams):
    """The keys every diffusion backbone has besides its conditioning: dtype, the scheduler (and the device keys)."""

    dtype: str = "auto"  # auto (float16 on CUDA, float32 elsewhere) | float32 | float16 | bfloat16
    scheduler: str | None = None  # null: the checkpoint's own; or a kind (ddim, pndm, euler, lcm, …) or a diffusers class
    scheduler_config: dict[str, Any] = field(default_factory=dict)  # settings over the scheduler's config, as from_config's


def vae_scale_factor(vae: Any) -> int:
    """Pixels per latent cell of a VAE (8 for SD and SVD): 2^(blocks − 1)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def offloaded(models: Any, order: tuple[str, ...], device: torch.device) -> Any:
    """The models with accelerate's CPU offload hooks, chained in the order they run (the ones a run lacks left out)."""
    runtime.offload([part for name in order if (part := getattr(models, name, None)) is not None], device)
    return models


def vae_decoder(vae: Any, schedule: Schedule, chunk: int, temporal: bool = False) -> Decode:
    """A decoder bound to a run's VAE and schedule, ``chunk`` frames at a time (SVD's temporal VAE is told how many)."""

    @torch.no_grad()
    def decode(latents: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """Latents [1, F, C, h, w] at sigma (default: the schedule's final one) → frames [F, 3, H, W] in [0, 1]."""
        sample = schedule.to_sample(latents, schedule.final_sigma if sigma is None else sigma)  # the scheduler's final sample
        flat = 1 / vae.config.scaling_factor * rearrange(sample, "b f c h w -> (b f) c h w").to(vae.dtype)  # [F, C, h, w]
        parts = [flat[i : i + chunk] for i in range(0, len(flat), chunk)]
        frames = [vae.decode(part, **({"num_frames": len(part)} if temporal else {})).sample for part in parts]
        return (torch.cat(frames).float() / 2 + 0.5).clamp(0, 1)  # [F, 3, H, W]

    return decode


def plan_note(name: str, plan: MotionPlan, used: list[str]) -> str | None:
    """The note that the clip does not follow the plan, when the plan moves and no control used it (None otherwise)."""
    if used:
        log.info("%s follows the motion plan with: %s", name, ", ".join(used))
        return None
    if not (plan.flow.numel() and bool(plan.flow.abs().amax() > 0)):
        return None
    return (
        f"{name} does not follow the motion plan yet: the controls shape flow.mp4 and hint.png, not the clip "
        "(backbone.latent_init=true starts the frames from the picture moved along it; backbone.warped_attention=true "
        "lets temporal attention see the picture's features moved along it)"
    )


class DiffusionBase:
    """The plumbing of a diffusion backbone; subclasses declare their folders, offload order and tiny preset as data."""

    name: ClassVar[str]
    Config: ClassVar[type]
    folders: ClassVar[dict[str, str]] = {}  # config key → what its local folder holds
    tiny: ClassVar[str | None] = None  # the tiny preset of this backbone
    offload_order: ClassVar[tuple[str, ...]] = ()  # model attributes in the order they run
    models_factory: ClassVar[Callable[[Any, torch.dtype, torch.device], Any] | None] = None  # (config, dtype, device) → models
    cuda_dtype: ClassVar[torch.dtype] = torch.float16  # what dtype=auto is on CUDA (bfloat16 for models trained in it)

    def cache_extra(self, config: Any) -> tuple[Any, ...]:
        """What else besides folders, dtype and device tells apart two loads of this backbone (e.g. an IP-Adapter file)."""
        return ()

    def folder_keys(self, config: Any) -> dict[str, str]:
        """The folder keys this config needs (``folders`` by default; a key another one replaces may be left out)."""
        return self.folders

    def load(self, config: Any, device: torch.device) -> Any:
        """The models on device in the config's dtype, loaded (or built) once per process through the model cache."""
        dtype = loading.resolve_dtype(config.dtype, device, self.cuda_dtype)
        where = runtime.load_device(config, device)
        if self.models_factory is not None:
            key: tuple[Any, ...] = (self.name, *self.cache_extra(config), str(dtype), str(device), config.cpu_offload)
            build = lambda: self.models_factory(config, dtype, where)  # noqa: E731
        else:
            folders = {
                option: loading.local_folder(getattr(config, option), f"backbone.{option}", what, tiny=self.tiny)
                for option, what in self.folder_keys(config).items()
            }
            extra = (*self.cache_extra(config), config.allow_pickle)
            key = (self.name, *map(str, folders.values()), *extra, str(dtype), str(device), config.cpu_offload)
            build = lambda: self.load_folders(config, folders, dtype, where)  # type: ignore[attr-defined]  # noqa: E731
        order = self.offload_order if config.cpu_offload else ()
        return loading.MODELS.get(key, lambda: offloaded(build(), order, device) if order else build())

    def ready(self, config: Any, device: torch.device) -> Any:
        """Check the device keys, then the loaded models with the UNet's attention set as the config asks."""
        runtime.check(config, device)
        models = self.load(config, device)
        runtime.set_unet_attention(models.unet, config)
        return models

    def timesteps(
        self, config: Any, models: Any, steps: int, generator: torch.Generator, layout: str | None = None
    ) -> tuple[Schedule, Callable[[], Stepper]]:
        """The run's schedule in sigma space (from latent_init's start) and its scheduler's step rule."""
        scheduler = make_scheduler(models.scheduler_config, config.scheduler, config.scheduler_config, steps)
        schedule = schedule_of(scheduler, begin_at(scheduler, steering.start_step(config, steps)))
        return schedule, scheduler_steps(scheduler, schedule, generator, layout)

    def notes(self, plan: MotionPlan, used: list[str]) -> list[str]:
        """What the manifest says about the run (random weights, a plan the clip does not follow), each also logged."""
        said = [f"{self.name} has random weights (a tiny model for tests and benchmarks): its frames are noise, not a picture"]
        said = said if self.models_factory is not None else []
        unfollowed = plan_note(self.name, plan, used)
        said += [unfollowed] if unfollowed else []
        for note in said:
            log.warning(note)
        return said
