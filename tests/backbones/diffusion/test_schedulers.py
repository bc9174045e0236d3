"""Every scheduler users pick gives diffusers' output: its step driven from sigma space, AnimateDiff's frames on tiny folders."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)

from motionforge import ConfigError, animate, compose_config
from motionforge.backbones.diffusion.schedulers import begin_at, make_scheduler, scheduler_steps
from motionforge.backbones.diffusion.schedules import KarrasDenoiser, schedule_of
from motionforge.backbones.diffusion.tiny import save_tiny_sd, scheduler_config, tiny_sd_components
from tests.backbones.diffusion.conftest import read_png_frames

TINY_DDIM = scheduler_config(tiny_sd_components()["scheduler"])  # AnimateDiff's DDIM betas, "leading"
# the schedulers users pick, each as a diffusers class and the settings it is saved with over the tiny DDIM config
SCHEDULERS = {
    "ddim leading": (DDIMScheduler, {}),
    "ddim trailing": (DDIMScheduler, {"timestep_spacing": "trailing"}),
    "ddim linspace": (DDIMScheduler, {"timestep_spacing": "linspace"}),  # diffusers' AnimateDiff examples
    "pndm": (PNDMScheduler, {"skip_prk_steps": True}),  # what an SD1.5 folder ships
    "euler": (EulerDiscreteScheduler, {}),
    "euler ancestral": (EulerAncestralDiscreteScheduler, {}),
    "dpm-solver++ 2m": (DPMSolverMultistepScheduler, {}),
    "dpm-solver++ 2m karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    "lcm": (LCMScheduler, {}),
    "unipc": (UniPCMultistepScheduler, {}),
}


def scheduler(name: str):
    cls, settings = SCHEDULERS[name]
    return cls.from_config({**TINY_DDIM, **settings})


class Model:
    """An eps model that is a fixed function of its input and timestep."""

    def __call__(self, z: torch.Tensor, timestep: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sin(3 * z) * 0.5 + 0.1 * float(timestep) / 1000


def diffusers_loop(name: str, steps: int, noise: torch.Tensor, start: int = 0, seed: int = 9) -> torch.Tensor:
    """A diffusers pipeline's loop (img2img's begin index at start): its final sample."""
    own = scheduler(name)
    own.set_timesteps(steps)
    if hasattr(own, "set_begin_index"):
        own.set_begin_index(start)
    extra = {"generator": torch.Generator().manual_seed(seed)} if "generator" in inspect.signature(own.step).parameters else {}
    timesteps = own.timesteps[start:]
    sample = noise * own.init_noise_sigma if start == 0 else own.add_noise(torch.zeros_like(noise), noise, timesteps[:1])
    for t in timesteps:
        sample = own.step(Model()(own.scale_model_input(sample, t), t), t, sample, **extra).prev_sample
    return sample


def our_loop(name: str, steps: int, noise: torch.Tensor, start: int = 0, seed: int = 9, fork_at: int | None = None):
    """The same run in sigma space: the model as a denoiser, diffusers' step as the stepper (forked at a step, if asked)."""
    own = make_scheduler(scheduler(name).config, None, {}, steps)
    schedule = schedule_of(own, begin_at(own, start))
    stepper = scheduler_steps(own, schedule, torch.Generator().manual_seed(seed))()
    denoiser = KarrasDenoiser(Model(), schedule)
    x, sigmas = noise * schedule.init_noise_scale, schedule.sigmas
    if start:
        x = noise * sigmas[0]  # add_noise of a clean zero sample, in sigma space
    forked = None
    for i in range(len(sigmas) - 1):
        if i == fork_at:
            forked = stepper.fork()
        x = stepper(x, denoiser.denoise(x, sigmas[i], None), sigmas[i], sigmas[i + 1])
    return schedule.to_sample(x, schedule.final_sigma), forked, schedule


NOISE = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("steps", [3, 4])
@pytest.mark.parametrize("name", SCHEDULERS)
def test_the_stepper_takes_diffusers_steps_from_sigma_space(name, steps) -> None:
    expected = diffusers_loop(name, steps, NOISE)
    got, _, schedule = our_loop(name, steps, NOISE)
    assert (got - expected).abs().max() <= 1e-5 * expected.abs().max()
    assert bool((schedule.sigmas[1:] <= schedule.sigmas[:-1]).all())  # descending; PNDM keeps one sigma for a step


@pytest.mark.parametrize("name", ["ddim linspace", "euler", "dpm-solver++ 2m karras", "unipc", "lcm"])
def test_a_late_start_is_diffusers_begin_index(name) -> None:
    expected = diffusers_loop(name, 4, NOISE, start=2)
    got, _, schedule = our_loop(name, 4, NOISE, start=2)
    assert schedule.start == 2 and (got - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_pndm_started_late_keeps_its_repeated_timestep_for_the_steps_left() -> None:
    own = make_scheduler(scheduler("pndm").config, None, {}, 4)
    assert own.timesteps.tolist() == [751, 501, 501, 251, 1]
    schedule = schedule_of(own, begin_at(own, 2))
    assert own.timesteps.tolist() == [251, 1, 1] and schedule.timesteps.tolist() == [251, 1, 1]
    assert schedule.sigmas[1] == schedule.sigmas[2]  # the redone step starts where the first landed
    for step, sigma in enumerate(schedule.sigmas[:-1]):  # each step's sigma names its own timestep
        assert float(schedule.label(sigma)[0]) == float(schedule.timesteps[step])


@pytest.mark.parametrize("name", ["pndm", "dpm-solver++ 2m", "unipc", "lcm"])
def test_a_fork_goes_on_with_the_schedulers_state(name) -> None:
    _, forked, schedule = our_loop(name, 4, NOISE, fork_at=2)
    denoiser, sigmas = KarrasDenoiser(Model(), schedule), schedule.sigmas
    x = torch.ones_like(NOISE) * sigmas[2]
    twin = forked.fork()
    for i in (2, 3):  # the run went on past step 2 after the fork: the fork did not
        a = forked(x, denoiser.denoise(x, sigmas[i], None), sigmas[i], sigmas[i + 1])
        b = twin(x, denoiser.denoise(x, sigmas[i], None), sigmas[i], sigmas[i + 1])
        assert forked.index == twin.index == i + 1
        if name != "lcm":  # LCM draws fresh noise from the shared generator at every step
            assert torch.equal(a, b)
        x = a
    with pytest.raises(RuntimeError, match="is at its step 4"):
        forked(x, x, sigmas[3], sigmas[4])


def test_linspace_ddim_lands_each_step_short_of_the_next_timestep_it_evaluates() -> None:
    own = make_scheduler(scheduler("ddim linspace").config, None, {}, 3)
    schedule = schedule_of(own)
    alphas = own.alphas_cumprod
    assert own.timesteps.tolist() == [999, 500, 0]
    # each step lands on t − 1000 // 3; the model is then told the next listed timestep
    landed = [((1 - alphas[t]) / alphas[t]) ** 0.5 for t in (999 - 333, 500 - 333)]
    assert schedule.sigmas[1:3].tolist() == pytest.approx([float(s) for s in landed])
    assert schedule.label_sigmas[1:].tolist() == pytest.approx([float(((1 - alphas[t]) / alphas[t]) ** 0.5) for t in (500, 0)])


# ---- AnimateDiff: the folder's own scheduler, or the one the user names, against AnimateDiffPipeline ----

QUIET = ["adapters=[]", "height=64", "width=64", "progress=false"]
OUTPUTS = ["output.dir=run", "output.frames=true", "output.mp4=false", "output.gif=false"]


@pytest.fixture(scope="session")
def sd_folders(tmp_path_factory):
    """Tiny SD1.5 folders, each saved with one scheduler's config (made on first use)."""
    made = {}

    def folder(name: str):
        if name not in made:
            made[name] = save_tiny_sd(tmp_path_factory.mktemp("sd") / name.replace(" ", "_"), scheduler(name))
        return made[name]

    return folder


def pipeline_frames(folder, adapter_folder, frames: int, steps: int, seed: int, swap=None) -> np.ndarray:
    """AnimateDiffPipeline's frames from the folders (its scheduler swapped as diffusers users swap it): uint8 [F, H, W, 3]."""
    from diffusers import AnimateDiffPipeline, MotionAdapter

    pipe = AnimateDiffPipeline.from_pretrained(folder, motion_adapter=MotionAdapter.from_pretrained(adapter_folder))
    if swap is not None:
        pipe.scheduler = swap(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        "a cat", num_frames=frames, height=64, width=64, num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed), output_type="np",
    )  # fmt: skip
    return (out.frames[0] * 255).round().astype(np.uint8)


def our_frames(folder, adapter_folder, frames: int, steps: int, seed: int, *keys: str) -> np.ndarray:
    """animatediff's frames for the same folders (text-to-video: selective_noising=false): uint8 [F, H, W, 3]."""
    run = [
        "backbone=animatediff", f"backbone.pretrained={folder}", f"backbone.motion_adapter={adapter_folder}",
        "backbone.selective_noising=false", "prompt=a cat", f"num_frames={frames}", f"steps={steps}", f"seed={seed}",
    ]  # fmt: skip
    video = animate(compose_config([*run, *keys, *QUIET, *OUTPUTS]))
    return read_png_frames(Path(video.metadata["run_dir"]) / "frames")


@pytest.mark.parametrize("name", SCHEDULERS)
def test_animatediff_samples_the_folders_own_scheduler_as_diffusers_does(name, sd_folders, adapter_folder, tmp_path) -> None:
    folder = sd_folders(name)
    expected = pipeline_frames(folder, adapter_folder, frames=8, steps=3, seed=5)
    got = our_frames(folder, adapter_folder, 8, 3, 5)
    assert got.shape == expected.shape == (8, 64, 64, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # 1/255: float rounding only


SWAPS = {
    "euler_ancestral": ([], lambda config: EulerAncestralDiscreteScheduler.from_config(config)),
    "dpmpp_2m_karras": ([], lambda config: DPMSolverMultistepScheduler.from_config(config, use_karras_sigmas=True)),
    "UniPCMultistepScheduler": ([], lambda config: UniPCMultistepScheduler.from_config(config)),
    "ddim": (["+backbone.scheduler_config.timestep_spacing=linspace"],
             lambda config: DDIMScheduler.from_config(config, timestep_spacing="linspace")),
}  # fmt: skip


@pytest.mark.parametrize("choice", SWAPS)
def test_the_scheduler_key_swaps_the_scheduler_as_from_config_does(choice, sd_folders, adapter_folder, tmp_path) -> None:
    keys, swap = SWAPS[choice]
    folder = sd_folders("pndm")
    expected = pipeline_frames(folder, adapter_folder, frames=8, steps=3, seed=2, swap=swap)
    got = our_frames(folder, adapter_folder, 8, 3, 2, f"backbone.scheduler={choice}", *keys)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_a_sigma_space_rule_still_runs_on_the_schedulers_sigmas() -> None:
    keys = ["backbone=animatediff_tiny", "num_frames=8", "steps=3", "output.save=false", *QUIET]
    own = animate(compose_config([*keys, "backbone.scheduler=pndm"]))
    euler = animate(compose_config([*keys, "backbone.scheduler=pndm", "sampler.step=euler"]))
    ddim = animate(compose_config([*keys, "backbone.scheduler=ddim"]))
    assert own.metadata["denoiser_calls"] == 4 and euler.metadata["denoiser_calls"] == 3  # PNDM repeats a step for itself
    assert np.abs(euler.frames.astype(int) - ddim.frames.astype(int)).max() <= 1  # Euler on DDIM's sigmas is DDIM
    assert not np.array_equal(own.frames, euler.frames)


SCHEDULER_MISTAKES = {
    "backbone.scheduler=heun": r"backbone.scheduler=heun is not a scheduler motionforge steps as diffusers does; set backbone",
    "+backbone.scheduler_config.timestep_spacng=linspace": r"backbone.scheduler_config.timestep_spacng is not a setting of DDIM",
    "+backbone.scheduler_config.skip_prk_steps=false": r"PNDMScheduler's Runge-Kutta warm-up \(skip_prk_steps=false\)",
    "backbone.scheduler=lcm": r"LCMScheduler cannot run steps=60: .*original_steps",
}


@pytest.mark.parametrize("override, message", SCHEDULER_MISTAKES.items(), ids=SCHEDULER_MISTAKES.keys())
def test_scheduler_mistakes_are_one_sentence(override, message) -> None:
    scheduler_key = ["backbone.scheduler=pndm"] if "prk" in override else []
    keys = ["backbone=animatediff_tiny", *scheduler_key, override, "num_frames=4", "output.save=false", *QUIET]
    steps = ["steps=60"] if "lcm" in override else ["steps=2"]
    with pytest.raises(ConfigError, match=message):
        animate(compose_config([*keys, *steps]))


def test_a_folder_whose_scheduler_cannot_be_stepped_names_the_choices(adapter_folder, tmp_path) -> None:
    from diffusers import LMSDiscreteScheduler

    folder = save_tiny_sd(tmp_path / "lms", LMSDiscreteScheduler.from_config(TINY_DDIM))
    run = ["backbone=animatediff", f"backbone.pretrained={folder}", f"backbone.motion_adapter={adapter_folder}"]
    with pytest.raises(ConfigError, match=r"the checkpoint's scheduler LMSDiscreteScheduler is not a scheduler .*ddim, pndm"):
        animate(compose_config([*run, "num_frames=4", "steps=2", "output.save=false", *QUIET]))
