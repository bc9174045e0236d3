"""Zero-shot motion control on the tiny backbones: warped latent initialisation, the region hold, the strength map."""

from __future__ import annotations

import pytest
import torch

from motionforge import ConfigError, animate, compose_config
from motionforge.backbones.diffusion import steering
from motionforge.backbones.diffusion.animatediff import AnimateDiffTinyBackbone, AnimateDiffTinyConfig
from motionforge.backbones.diffusion.steering import reference_latent, region
from motionforge.backbones.diffusion.svd import SvdTinyBackbone, SvdTinyConfig
from motionforge.core.types import MotionContext, MotionPlan, RenderRequest
from motionforge.samplers.single import sample_single

QUIET = ["height=64", "width=64", "progress=false"]
BACKBONES = {
    "svd_tiny": (SvdTinyBackbone, SvdTinyConfig, reference_latent),
    "animatediff_tiny": (AnimateDiffTinyBackbone, AnimateDiffTinyConfig, reference_latent),
}


def pan(frames: int, speed: float = 3.0) -> torch.Tensor:
    """A flow moving the whole picture right by ``speed`` working pixels per frame: [F, 2, 64, 64]."""
    flow = torch.zeros(frames, 2, 64, 64)
    flow[:, 0] = speed * torch.arange(frames, dtype=torch.float32)[:, None, None]
    return flow


def box() -> torch.Tensor:
    """A brush region: the centre 32×32 of the 64×64 frame, [1, 1, 64, 64]."""
    region = torch.zeros(1, 1, 64, 64)
    region[..., 16:48, 16:48] = 1.0
    return region


def request(frames: int = 6, region: torch.Tensor | None = None, strength: float | None = None, steps: int = 4) -> RenderRequest:
    """A run of a random 64×64 picture with a panning plan."""
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(3))
    context = MotionContext(height=64, width=64, num_frames=frames, image=image, source_size=(64, 64))
    plan = MotionPlan(flow=pan(frames), region=region, strength=strength)
    return RenderRequest(context, plan, steps=steps, seed=2)


def run(name: str, run_request: RenderRequest, steps: list | None = None, **keys) -> tuple[torch.Tensor, object]:
    """Prepare one tiny backbone without guidance and sample it with sigma-space Euler: (final latents [1, F, C, h, w], its input)."""
    backbone, config_class, _ = BACKBONES[name]
    guidance = {"max_guidance_scale": 1.0} if name == "svd_tiny" else {"guidance_scale": 1.0}
    problem = backbone().prepare(config_class(**guidance, **keys), run_request).sampler_input
    callback = steps.append if steps is not None else None
    return sample_single(problem.denoiser, problem.latents, problem.sigmas, callback=callback), problem


def reference(name: str, run_request: RenderRequest) -> torch.Tensor:
    """The backbone's clean reference latent of the request's picture, [1, C, h, w]."""
    backbone, config_class, encode = BACKBONES[name]
    with torch.no_grad():
        return encode(backbone().load(config_class(), torch.device("cpu")), run_request.context.image)


def test_a_step_window_covers_the_sigmas_of_its_fraction_of_the_steps() -> None:
    sigmas = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.0])
    late = steering.StepWindow.of(sigmas, 0.5, 1.0)
    assert [float(s) in late for s in sigmas[:-1]] == [False, False, True, True]
    assert [float(s) in steering.StepWindow.of(sigmas, 0.0, 0.5) for s in sigmas[:-1]] == [True, True, False, False]
    assert not any(float(s) in steering.StepWindow.of(sigmas, 0.4, 0.5) for s in sigmas)  # round(1.6) == round(2): no step


def test_the_steering_used_is_said_in_the_order_the_controls_wrap_the_model() -> None:
    backbone = AnimateDiffTinyBackbone()
    keys = {"latent_init": True, "init_strength": 0.5, "warped_attention": True, "guidance_scale": 1.0}
    prepared = backbone.prepare(AnimateDiffTinyConfig(**keys), request(region=box()))
    assert prepared.steering == ["latent_init", "warped_attention", "region"]
    denoiser, layers = prepared.sampler_input.denoiser, []
    while hasattr(denoiser, "inner") or hasattr(denoiser, "model"):
        layers.append(type(denoiser).__name__)
        denoiser = getattr(denoiser, "inner", None)
    assert layers == ["RegionHold", "SelectiveNoising", "WarpedAttention", "KarrasDenoiser"]


def test_the_mechanisms_combine() -> None:
    brushed = request(region=box(), strength=0.5)
    steps: list = []
    held, problem = run("svd_tiny", brushed, steps, latent_init=True, init_strength=0.5)
    assert len(steps) == 2 and len(problem.sigmas) == 3
    ref = reference("svd_tiny", brushed)[:, None]
    outside = (region.feathered(box(), 8, 8, 1.0) == 0).expand_as(held)
    assert torch.equal(held[outside], ref.expand_as(held)[outside])


# ---- configuration ----

MISTAKES = {
    "init_strength=0": r"backbone.init_strength=0.0 must be in \(0, 1\]",
    "init_strength=1.5": r"backbone.init_strength=1.5 must be in \(0, 1\]",
    "region_strength=-0.1": r"backbone.region_strength=-0.1 must be in \[0, 1\]",
    "region_feather=-1": r"backbone.region_feather=-1.0 must be zero or more",
    "region_start=0.6": r"0 <= region_start < region_end <= 1",
    "region_end=1.2": r"0 <= region_start < region_end <= 1",
}


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("override, message", MISTAKES.items(), ids=MISTAKES.keys())
def test_steering_mistakes_are_one_sentence(name, override, message) -> None:
    keys = [f"backbone={name}", f"backbone.{override}", "backbone.region_end=0.5" if "start" in override else "seed=0"]
    with pytest.raises(ConfigError, match=message):
        animate(compose_config([*keys, "adapters=[]", "num_frames=4", "steps=2", "output.save=false", *QUIET]))
