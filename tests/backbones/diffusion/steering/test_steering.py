"""Zero-shot motion control on the tiny backbones: warped latent initialisation, the region hold, the strength map."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from motionforge import ConfigError, animate, compose_config
from motionforge.backbones.diffusion import steering
from motionforge.backbones.diffusion.animatediff import AnimateDiffTinyBackbone, AnimateDiffTinyConfig
from motionforge.backbones.diffusion.steering import reference_latent
from motionforge.backbones.diffusion.svd import SvdTinyBackbone, SvdTinyConfig
from motionforge.core.motion import motion_strength, resize_flow
from motionforge.core.types import MotionContext, MotionPlan, RenderRequest
from motionforge.samplers.single import sample_single
from motionforge.samplers.steps import euler_step

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


# ---- the SVD motion-bucket map ----


def test_the_motion_bucket_map_is_monotone_gives_127_without_a_strength_and_for_the_samples_motion() -> None:
    assert steering.motion_bucket(None, 576, 1024) == 127
    assert steering.motion_bucket(None, 64, 64, default=40) == 40
    assert steering.motion_bucket(2.048, 512, 512) == 127  # the bundled sample's M_s at 512 px
    assert steering.motion_bucket(4.096, 576, 1024) == 127  # the same share of a larger frame
    buckets = [steering.motion_bucket(m, 512, 512) for m in np.linspace(0, 10, 200)]
    assert all(a <= b for a, b in itertools.pairwise(buckets)) and buckets[0] == 1 and buckets[-1] == 255
    assert steering.motion_bucket(1.0, 512, 512) < steering.motion_bucket(3.0, 512, 512)


def added_time_ids(keys: dict, strength: float | None) -> torch.Tensor:
    """The added_time_ids the tiny SVD UNet receives on its first call, [B, 3]."""
    backbone, config = SvdTinyBackbone(), SvdTinyConfig(max_guidance_scale=1.0, **keys)
    problem = backbone.prepare(config, request(strength=strength)).sampler_input
    unet = backbone.load(config, torch.device("cpu")).unet
    seen, forward = [], unet.forward
    unet.forward = lambda *args, **kwargs: seen.append(kwargs["added_time_ids"].clone()) or forward(*args, **kwargs)
    try:
        with torch.no_grad():
            problem.denoiser.denoise(problem.latents, problem.sigmas[0], torch.arange(6))
    finally:
        unet.forward = forward
    return seen[0]


def test_the_chosen_bucket_is_what_the_unet_receives() -> None:
    assert added_time_ids({}, strength=None)[0].tolist() == [6.0, 127.0, pytest.approx(0.02)]
    expected = steering.motion_bucket(0.5, 64, 64)
    assert expected == 248 and added_time_ids({}, strength=0.5)[0, 1].item() == expected
    assert added_time_ids({"motion_bucket_from_strength": False}, strength=0.5)[0, 1].item() == 127
    assert added_time_ids({"motion_bucket_id": 30}, strength=None)[0, 1].item() == 30


def test_the_strength_map_changes_svd_only_when_a_strength_is_asked() -> None:
    on, _ = run("svd_tiny", request(strength=0.5))
    off, _ = run("svd_tiny", request(strength=0.5), motion_bucket_from_strength=False)
    assert not torch.equal(on, off)
    unasked_on, _ = run("svd_tiny", request())
    unasked_off, _ = run("svd_tiny", request(), motion_bucket_from_strength=False)
    assert torch.equal(unasked_on, unasked_off)


def test_animatediff_rescales_the_flow_latent_init_warps_by_to_the_asked_strength() -> None:
    asked = request(strength=motion_strength(pan(6)) * 2)  # the plan's flow moves half as fast as asked
    on, _ = run("animatediff_tiny", asked, latent_init=True, init_strength=0.5)
    off, _ = run("animatediff_tiny", asked, latent_init=True, init_strength=0.5, init_flow_from_strength=False)
    assert not torch.equal(on, off)
    unasked_on, _ = run("animatediff_tiny", request(), latent_init=True, init_strength=0.5)
    unasked_off, _ = run("animatediff_tiny", request(), latent_init=True, init_strength=0.5, init_flow_from_strength=False)
    assert torch.equal(unasked_on, unasked_off)
    assert torch.allclose(steering.flow_at_strength(pan(6), 6.0), pan(6, 6.0))


# ---- latent_init ----


@pytest.mark.parametrize("name", BACKBONES)
def test_latent_init_changes_the_clip_and_init_strength_1_leaves_it_bit_identical(name) -> None:
    off, off_problem = run(name, request())
    at_one, one_problem = run(name, request(), latent_init=True, init_strength=1.0)
    on, _ = run(name, request(), latent_init=True, init_strength=0.5)
    assert torch.equal(off, at_one) and torch.equal(off_problem.latents, one_problem.latents)
    assert not torch.equal(off, on)


@pytest.mark.parametrize("name", BACKBONES)
def test_latent_init_starts_from_the_warped_reference_noised_to_the_start_sigma(name) -> None:
    run_request = request(steps=4)
    _, plain = run(name, run_request)
    backbone, config_class, _ = BACKBONES[name]
    problem = backbone().prepare(config_class(latent_init=True, init_strength=0.5), run_request).sampler_input
    start = round((1 - 0.5) * 4)
    assert start == 2 and torch.equal(problem.sigmas, plain.sigmas[start:])
    if name == "svd_tiny":  # diffusers draws the augmentation noise, then the latents' noise
        generator = torch.Generator().manual_seed(2)
        torch.randn(1, 3, 64, 64, generator=generator)
        noise = torch.randn(1, 6, 4, 8, 8, generator=generator)
    else:
        generator = torch.Generator().manual_seed(2)
        noise = torch.randn(1, 4, 6, 8, 8, generator=generator).permute(0, 2, 1, 3, 4)
    ref = reference(name, run_request)  # [1, 4, 8, 8]
    warped = steering.warp_reference(ref, resize_flow(pan(6), 8, 8))  # [6, 4, 8, 8]
    before_noise = problem.latents - problem.sigmas[0] * noise  # [1, 6, 4, 8, 8]
    assert torch.allclose(before_noise[0], warped, atol=1e-4 * float(problem.sigmas[0]))
    assert torch.equal(warped[0], ref[0])  # frame 0 does not move
    # the pan moves 3/8 latent pixel per frame: frame 4 is the reference shifted right by 1.5 cells
    assert torch.allclose(warped[4, :, :, 3:7], 0.5 * (ref[0, :, :, 1:5] + ref[0, :, :, 2:6]), atol=1e-5)


def test_latent_init_runs_fewer_steps_and_the_manifest_counts_them(tmp_path) -> None:
    base = ["backbone=svd_tiny", "adapters=[camera]", "adapters.camera.pan=[3,0]", "num_frames=6", "steps=4", *QUIET]
    outputs = ["output.mp4=false", "output.gif=false", "output.flow=false", "output.hint=false"]
    calls = {}
    for strength in (1.0, 0.7, 0.5, 0.2):
        folder = tmp_path / f"run{strength}"
        keys = ["backbone.latent_init=true", f"backbone.init_strength={strength}", f"output.dir={folder}"]
        animate(compose_config([*base, *keys, *outputs]))
        manifest = json.loads((folder / "manifest.json").read_text())
        calls[strength] = manifest["denoiser_calls"]
        followed = not any("does not follow the motion plan" in note for note in manifest["notes"])
        assert followed == (strength < 1.0)
    assert calls == {1.0: 4, 0.7: 3, 0.5: 2, 0.2: 1}  # 4 − round((1 − s)·4), at least one step


def test_the_warp_fills_holes_from_the_unwarped_reference() -> None:
    ref = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    flow = torch.zeros(2, 2, 4, 4)
    flow[1, 0] = 1.0  # everything moves one cell right
    warped = steering.warp_reference(ref, flow)
    assert torch.equal(warped[0], ref[0])
    assert torch.allclose(warped[1, 0, :, 1:], ref[0, 0, :, :3], atol=1e-5)  # moved
    assert torch.equal(warped[1, 0, :, 0], ref[0, 0, :, 0])  # nothing lands on column 0: the reference shows


# ---- the region hold ----


@pytest.mark.parametrize("name", BACKBONES)
def test_region_holds_the_outside_at_the_reference_and_strength_0_is_bit_identical(name) -> None:
    brushed = request(region=box())
    free, _ = run(name, brushed, region=False)
    zero, _ = run(name, brushed, region_strength=0.0)
    steps: list = []
    held, problem = run(name, brushed, steps)
    assert torch.equal(free, zero) and not torch.equal(free, held)
    ref = reference(name, brushed)[:, None]  # [1, 1, 4, 8, 8]
    outside = (steering.feathered(box(), 8, 8, 1.0) == 0).expand_as(held)  # [1, F, 4, 8, 8]
    for step in steps:  # every step's x0 is the reference outside
        assert torch.equal(step.denoised[outside], ref.expand_as(held)[outside])
    if name == "svd_tiny":  # Euler's last step lands on σ = 0: the latents end exactly on the reference
        assert float(problem.sigmas[-1]) == 0.0 and torch.equal(held[outside], ref.expand_as(held)[outside])
    else:  # DDIM ends at its final σ_f ≈ 0.03: the reference plus that much of the initial noise
        sigma_f = float(problem.sigmas[-1])
        gap = (held - ref)[outside].abs().max()
        assert 0 < sigma_f < 0.05 and float(gap) <= sigma_f * float(problem.latents.abs().max()) / float(problem.sigmas[0])
    assert float((held - ref)[..., 3:5, 3:5].abs().mean()) > 0.1  # the centre cells, inside the brush, are the model's


def test_an_euler_step_with_x0_at_the_reference_keeps_the_noise_ratio() -> None:
    x = torch.randn(1, 2, 4, 8, 8)
    ref = torch.randn(1, 4, 8, 8)

    class Zero:
        def denoise(self, x, sigma, frames):
            return x * 0

    window = steering.StepWindow.of(torch.tensor([10.0, 4.0, 0.0]), 0.0, 1.0)
    hold = steering.RegionHold(Zero(), ref, torch.ones(1, 1, 8, 8), window)
    denoised = hold.denoise(x, torch.tensor(10.0), torch.arange(2))
    stepped = euler_step(x, denoised, torch.tensor(10.0), torch.tensor(4.0))
    assert torch.allclose(stepped - ref[:, None], 0.4 * (x - ref[:, None]), atol=1e-6)


def test_the_region_hold_acts_only_in_its_step_range() -> None:
    brushed = request(region=box())
    free_steps: list = []
    late_steps: list = []
    run("svd_tiny", brushed, free_steps, region=False)
    run("svd_tiny", brushed, late_steps, region_start=0.5)
    assert torch.equal(free_steps[0].denoised, late_steps[0].denoised)
    assert torch.equal(free_steps[1].denoised, late_steps[1].denoised)
    assert not torch.equal(free_steps[2].denoised, late_steps[2].denoised)
    early: list = []
    run("svd_tiny", brushed, early, region_end=0.5)
    ref = reference("svd_tiny", brushed)[:, None]
    outside = (steering.feathered(box(), 8, 8, 1.0) == 0).expand_as(early[0].denoised)
    assert torch.equal(early[1].denoised[outside], ref.expand_as(early[1].denoised)[outside])
    assert not torch.equal(early[2].denoised[outside], ref.expand_as(early[2].denoised)[outside])


def test_a_step_window_covers_the_sigmas_of_its_fraction_of_the_steps() -> None:
    sigmas = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.0])
    late = steering.StepWindow.of(sigmas, 0.5, 1.0)
    assert [float(s) in late for s in sigmas[:-1]] == [False, False, True, True]
    assert [float(s) in steering.StepWindow.of(sigmas, 0.0, 0.5) for s in sigmas[:-1]] == [True, True, False, False]
    assert not any(float(s) in steering.StepWindow.of(sigmas, 0.4, 0.5) for s in sigmas)  # round(1.6) == round(2): no step


def test_a_window_without_frame_0_is_left_alone_by_selective_noising() -> None:
    class Inner:
        def denoise(self, x, sigma, frames):
            return x * 0.5

    held = steering.SelectiveNoising(Inner(), torch.full((1, 4, 2, 2), 7.0))
    x = torch.ones(1, 3, 4, 2, 2)
    assert torch.equal(held.denoise(x, torch.tensor(2.0), torch.tensor([4, 5, 6])), x * 0.5)
    out = held.denoise(x, torch.tensor(2.0), torch.tensor([0, 1, 2]))
    assert bool((out[:, 0] == 7).all()) and bool((out[:, 1:] == 0.5).all())


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


def test_the_feathered_region_fades_outwards_and_is_exactly_zero_further_out() -> None:
    hard = steering.feathered(box(), 8, 8, 0.0)[0, 0]
    soft = steering.feathered(box(), 8, 8, 1.0)[0, 0]
    wide = steering.feathered(box(), 8, 8, 2.0)[0, 0]
    assert torch.equal(hard[2:6, 2:6], torch.ones(4, 4)) and float(hard.sum()) == 16
    assert torch.equal(soft[2:6, 2:6], torch.ones(4, 4)) and 0 < float(soft[1, 4]) < 1
    assert float(soft[0, 4]) == 0 and float(soft[0, 0]) == 0  # cut at one cell
    assert 0 < float(wide[0, 4]) < float(wide[1, 4]) < 1


def test_the_mechanisms_combine() -> None:
    brushed = request(region=box(), strength=0.5)
    steps: list = []
    held, problem = run("svd_tiny", brushed, steps, latent_init=True, init_strength=0.5)
    assert len(steps) == 2 and len(problem.sigmas) == 3
    ref = reference("svd_tiny", brushed)[:, None]
    outside = (steering.feathered(box(), 8, 8, 1.0) == 0).expand_as(held)
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


def test_a_brush_through_the_config_holds_the_outside_of_the_clip(picture, tmp_path) -> None:
    base = ["backbone=svd_tiny", f"image={picture}", "adapters=[brush]", "adapters.brush.boxes=[[16,16,48,48]]"]
    run_keys = [*base, "num_frames=4", "steps=2", "output.save=false", *QUIET]
    held, zero, free = (
        animate(compose_config([*run_keys, *keys])).frames
        for keys in ([], ["backbone.region_strength=0"], ["backbone.region=false"])
    )
    assert np.array_equal(zero, free) and not np.array_equal(held, free)
