"""The run's diffusers scheduler (the checkpoint folder's own, or the one the user names) and the step rule that drives it.

``backbone.scheduler`` null keeps the scheduler the folder ships (its ``scheduler_config.json``
class), as diffusers' pipelines do; a kind below or a diffusers class name puts that class in its
place, built from the folder's config as ``Class.from_config(pipe.scheduler.config, **overrides)``
builds it, with ``backbone.scheduler_config`` as the overrides. :class:`SchedulerStep` is a
:class:`~motionforge.core.types.Stepper` that takes diffusers' own step on the sampler's sigma-space
latents (multistep memory, ancestral and LCM noise, x0 clipping included), so the same folder,
seed and steps give diffusers' video.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from einops import rearrange

from motionforge.backbones.diffusion.schedules import Schedule
from motionforge.core.errors import ConfigError
from motionforge.core.types import Stepper

# kind → (diffusers class, settings the kind implies on top of the folder's config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_2m_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "lcm": ("LCMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}
CLASSES = tuple(sorted({name for name, _ in SCHEDULERS.values()}))


def scheduler_class(choice: str | None, own: str | None) -> tuple[type, dict[str, Any]]:
    """The diffusers class ``backbone.scheduler`` names (a kind, a class, None: the folder's own) and the kind's settings."""
    import diffusers

    name, preset = SCHEDULERS.get(choice, (choice, {})) if choice is not None else (own, {})
    if name not in CLASSES:
        what = f"backbone.scheduler={choice}" if choice is not None else f"the checkpoint's scheduler {name or '(unnamed)'}"
        raise ConfigError(
            f"{what} is not a scheduler motionforge steps as diffusers does; set backbone.scheduler to one of: "
            f"{', '.join(SCHEDULERS)} (or a class: {', '.join(CLASSES)})"
        )
    return getattr(diffusers, name), preset


def make_scheduler(config: Mapping[str, Any], choice: str | None, overrides: Mapping[str, Any], steps: int) -> Any:
    """The run's scheduler from the folder's scheduler config, its timesteps set for ``steps``; one sentence when it cannot run."""
    cls, preset = scheduler_class(choice, config.get("_class_name"))
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise ConfigError(
            f"backbone.scheduler_config.{unknown[0]} is not a setting of {cls.__name__}; "
            f"its settings: {', '.join(sorted(accepted))}"
        )
    settings = {key: value for key, value in config.items() if not key.startswith("_")}
    scheduler = cls.from_config({**settings, **preset, **dict(overrides)})
    if cls.__name__ == "PNDMScheduler" and not scheduler.config.skip_prk_steps:
        raise ConfigError(
            "PNDMScheduler's Runge-Kutta warm-up (skip_prk_steps=false) is not supported; "
            "set +backbone.scheduler_config.skip_prk_steps=true, as Stable Diffusion's folders do"
        )
    if steps > scheduler.config.num_train_timesteps:
        raise ConfigError(f"steps={steps} is more than the model's {scheduler.config.num_train_timesteps} training timesteps")
    try:
        scheduler.set_timesteps(steps)
    except ValueError as exc:
        raise ConfigError(f"{cls.__name__} cannot run steps={steps}: {' '.join(str(exc).split())}") from exc
    return scheduler


def begin_at(scheduler: Any, step: int) -> int:
    """Start a scheduler at its inference step ``step`` (img2img's begin index); the index of that step in its timesteps.

    PNDM's second call redoes its first (the two outputs averaged), so its list repeats its second
    timestep; a late start keeps that pattern for the steps left rather than slicing it apart.
    """
    if step == 0:
        return 0
    if type(scheduler).__name__ == "PNDMScheduler":
        left = torch.unique_consecutive(scheduler.timesteps)[step:]
        scheduler.timesteps = torch.cat([left[:2], left[1:]])
        return 0
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(step)
    return step


class SchedulerStep:
    """A Stepper that drives a diffusers scheduler: the sampler's x0 estimate becomes the ε the scheduler reads, then it steps.

    ``schedule`` is the scheduler's own sigma-space view (:func:`~motionforge.backbones.diffusion.schedules.schedule_of`);
    the scheduler reads ε = (x_r − x0)/σ_r with x_r the sample at its label's noise level σ_r, so it
    recovers the model output exactly (up to rounding) and diffusers' update follows; a rectified-flow
    scheduler reads the velocity v = ε − x0 instead (its own prediction type). ``layout`` is
    an einops pattern from the sampler's [B, F, C, h, w] to the pipeline's tensors (their shape is
    what the scheduler's noise is drawn in); ``generator`` is the run's, as diffusers passes it.
    """

    def __init__(self, scheduler: Any, schedule: Schedule, generator: torch.Generator | None, layout: str | None) -> None:
        self.scheduler = scheduler  # timesteps set, begun at schedule.start; predicts epsilon
        self.schedule = schedule
        self.layout = layout
        self.index = 0  # the next step of the schedule
        takes = inspect.signature(scheduler.step).parameters
        self.extra = {"generator": generator} if "generator" in takes and generator is not None else {}

    def _arranged(self, tensor: torch.Tensor, back: bool = False) -> torch.Tensor:
        """A sampler tensor in the pipeline's layout (or back)."""
        if self.layout is None:
            return tensor
        left, right = self.layout.split("->")
        return rearrange(tensor, f"{right} -> {left}" if back else self.layout)

    def __call__(self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """Step x [B, F, C, h, w] at sigma (the schedule's next step) with the scheduler, to sigma_next."""
        step, schedule = self.index, self.schedule
        if step >= len(schedule.timesteps) or not math.isclose(float(sigma), float(schedule.sigmas[step]), rel_tol=1e-6):
            raise RuntimeError(f"the scheduler's stepper is at its step {step}, not at sigma {float(sigma):g}")
        read_at = float(schedule.label_sigmas[step])
        sample = schedule.to_sample(x, float(sigma))
        x_read = x if read_at == float(sigma) else sample * (read_at**2 + 1) ** 0.5
        epsilon = (x_read - denoised) / read_at  # the ε the model output stands for
        output = epsilon - denoised if schedule.flow else epsilon  # a flow scheduler reads the velocity ε − x0
        timestep = self.scheduler.timesteps[schedule.start + step]
        arranged = self._arranged(sample)
        if hasattr(self.scheduler, "scale_model_input"):
            self.scheduler.scale_model_input(arranged, timestep)  # diffusers' order of calls (Euler checks it)
        out = self.scheduler.step(self._arranged(output), timestep, arranged, return_dict=False, **self.extra)[0]
        self.index += 1
        return schedule.from_sample(self._arranged(out, back=True), float(sigma_next))

    def fork(self) -> SchedulerStep:
        """A stepper that goes on from here with a copy of the scheduler's state (its step and multistep history)."""
        twin = copy.copy(self)
        twin.scheduler = copy.deepcopy(self.scheduler)
        return twin


def scheduler_steps(
    scheduler: Any,
    schedule: Schedule,
    generator: torch.Generator | None,
    layout: str | None = None,
) -> Callable[[], Stepper]:
    """A factory of fresh :class:`SchedulerStep` s for one run: copies of the scheduler (timesteps, begin index) that read ε."""
    driven = copy.deepcopy(scheduler)
    if not schedule.flow:  # a flow scheduler keeps its own prediction type and reads the velocity
        driven.register_to_config(prediction_type="epsilon")
    return lambda: SchedulerStep(copy.deepcopy(driven), schedule, generator, layout)
