"""Time-to-Move's dual clock on the tiny backbones: SDEdit from the moved picture at t_weak, the moved region held to t_strong."""

from __future__ import annotations

import pytest
import torch

from motionforge import ConfigError
from motionforge.backbones.diffusion import steering
from motionforge.backbones.diffusion.steering import dual_clock, latent_init
from motionforge.motion.fuse import resize_flow
from tests.backbones.diffusion.steering.test_steering import BACKBONES, request, run


def test_the_moved_region_is_where_the_moving_cells_land() -> None:
    flow = torch.zeros(2, 2, 8, 8)
    flow[1, 0, 2:4, 2:4] = 2.0  # a 2×2 patch moves two cells right in frame 1
    region = dual_clock.moved_region(flow)
    assert torch.equal(region[0], torch.zeros(1, 8, 8))  # frame 0 does not move
    assert torch.equal(region[1, 0, 2:4, 4:6], torch.ones(2, 2)) and float(region[1].sum()) == 4.0


@pytest.mark.parametrize("name", BACKBONES)
def test_sampling_starts_at_t_weak_from_the_moved_picture(name) -> None:
    run_request = request(steps=10)
    _, plain = run(name, run_request)
    backbone, config_class, encode = BACKBONES[name]
    problem = backbone().prepare(config_class(dual_clock=True, dual_clock_weak=0.3, dual_clock_strong=0.6), run_request)
    assert problem.steering == ["dual_clock"]
    problem = problem.sampler_input
    assert torch.equal(problem.sigmas, plain.sigmas[3:])  # t_weak = round(0.3 · 10)
    with torch.no_grad():
        ref = encode(backbone().load(config_class(), torch.device("cpu")), run_request.context.image)  # [1, C, h, w]
    warped = latent_init.warp_reference(ref, resize_flow(run_request.plan.flow, 8, 8))  # [F, C, h, w]
    noise = (problem.latents[0] - warped) / problem.sigmas[0]  # [F, C, h, w]: the run's own unit noise
    assert 0.8 < float(noise.std()) < 1.2


@pytest.mark.parametrize("name", BACKBONES)
def test_inside_the_moved_region_x0_is_the_moved_picture_until_t_strong_and_free_after(name) -> None:
    run_request = request(steps=10)
    backbone, config_class, encode = BACKBONES[name]
    guidance = {"max_guidance_scale": 1.0} if name == "svd_tiny" else {"guidance_scale": 1.0}
    keys = dict(dual_clock=True, dual_clock_weak=0.2, dual_clock_strong=0.5, **guidance)
    problem = backbone().prepare(config_class(**keys), run_request).sampler_input
    with torch.no_grad():
        ref = encode(backbone().load(config_class(), torch.device("cpu")), run_request.context.image)
    warped, moved = dual_clock.targets(ref, run_request.plan.flow)  # [F, C, h, w], [F, 1, h, w]
    inside = (moved == 1).expand_as(warped)[None]  # [1, F, C, h, w]
    frames = torch.arange(warped.shape[0])
    x = problem.latents
    for index, sigma in enumerate(problem.sigmas[:-1]):
        x0 = problem.denoiser.denoise(x, sigma[None], frames)
        held = index < 5 - 2  # steps t_weak … t_strong − 1 of the sampled ones
        assert torch.equal(x0[inside], warped[None].to(x0).expand_as(x0)[inside]) == held
    assert bool(inside.any()) and not bool(inside[:, 0].any())  # frame 0 is free (nothing moves there)


def test_off_is_bit_identical_and_on_changes_the_clip() -> None:
    off, _ = run("svd_tiny", request())
    on, _ = run("svd_tiny", request(), dual_clock=True, dual_clock_weak=0.25, dual_clock_strong=0.75)
    untouched, _ = run("svd_tiny", request(), dual_clock=False, dual_clock_weak=0.25, dual_clock_strong=0.75)
    assert torch.equal(off, untouched) and not torch.equal(off, on)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"dual_clock_weak": 0.5, "dual_clock_strong": 0.5}, "0 <= dual_clock_weak < dual_clock_strong <= 1"),
        ({"dual_clock_strong": 1.5}, "0 <= dual_clock_weak < dual_clock_strong <= 1"),
        ({"dual_clock": True, "latent_init": True}, "turn one off"),
    ],
)
def test_bad_dual_clock_keys_are_one_sentence(keys, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        steering.check(BACKBONES["animatediff_tiny"][1](**keys))


@pytest.mark.parametrize("name", ["wan_tiny", "animatediff_tiny"])
def test_the_dual_clock_runs_end_to_end_with_no_extra_denoiser_calls(tmp_path, name) -> None:
    import json

    from motionforge import animate, compose_config

    frames = 17 if name == "wan_tiny" else 8
    keys = [f"backbone={name}", "adapters=[camera]", "adapters.camera.pan=[2,0]", f"num_frames={frames}", "steps=10"]
    keys += ["height=64", "width=64", "progress=false", "backbone.dual_clock=true", f"output.dir={tmp_path}", "output.gif=false"]
    animate(compose_config(keys))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["steering"] == ["dual_clock"] and manifest["denoiser_calls"] == 10 - round(0.06 * 10)
    assert not any("does not follow the motion plan" in note for note in manifest["notes"])
