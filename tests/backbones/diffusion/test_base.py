"""What the diffusion backbones share: a decoder bound to the run, the model cache, the offload order as data."""

from __future__ import annotations

import torch

from motionforge import Prepared, animate, compose_config
from motionforge.backbones.diffusion import loading
from motionforge.backbones.diffusion import base
from motionforge.backbones.diffusion.animatediff import AnimateDiffTinyBackbone, AnimateDiffTinyConfig
from motionforge.backbones.diffusion.svd import SvdTinyBackbone, SvdTinyConfig
from tests.backbones.diffusion.steering.test_steering import request

QUIET = ["adapters=[]", "height=64", "width=64", "progress=false", "output.save=false"]


def counted(backbone_class, monkeypatch) -> list:
    """Count the model builds of a tiny backbone."""
    builds, factory = [], backbone_class.models_factory
    monkeypatch.setattr(backbone_class, "models_factory", staticmethod(lambda *args: builds.append(1) or factory(*args)))
    return builds


def test_prepare_returns_a_decoder_bound_to_its_models_that_never_loads_again(monkeypatch) -> None:
    builds = counted(AnimateDiffTinyBackbone, monkeypatch)
    prepared = AnimateDiffTinyBackbone().prepare(AnimateDiffTinyConfig(guidance_scale=1.0), request(frames=4))
    assert isinstance(prepared, Prepared) and builds == [1]
    loading.clear_cache()  # the decoder holds its models: nothing is loaded for it
    frames = prepared.decode(prepared.sampler_input.latents)
    assert frames.shape == (4, 3, 64, 64) and builds == [1]


def test_a_run_with_previews_asks_the_model_cache_once(monkeypatch) -> None:
    asked, get = [], loading.MODELS.get
    monkeypatch.setattr(loading.MODELS, "get", lambda key, build: asked.append(key) or get(key, build))
    video = animate(compose_config(["backbone=svd_tiny", "num_frames=4", "steps=2", "output.previews=1", *QUIET]))
    assert len(asked) == 1 and sorted(video.previews) == ["step001.png", "step002.png"]  # previews and the clip: its decoder


def test_previews_decode_x0_estimates_at_sigma_zero_and_the_clip_at_the_final_sigma() -> None:
    prepared = AnimateDiffTinyBackbone().prepare(AnimateDiffTinyConfig(guidance_scale=1.0), request(frames=2))
    final = float(prepared.sampler_input.sigmas[-1])
    latents = torch.randn(1, 2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert 0 < final < 0.05  # DDIM's final sigma: the sampled latents are x = z·√(σ²+1)
    assert torch.equal(prepared.decode(latents * (final**2 + 1) ** 0.5), prepared.decode(latents, 0.0))


def test_the_cache_key_tells_loads_apart() -> None:
    backbone = SvdTinyBackbone()
    first = backbone.load(SvdTinyConfig(), torch.device("cpu"))
    assert backbone.load(SvdTinyConfig(motion_bucket_id=3), torch.device("cpu")) is first  # conditioning is not in the key
    assert backbone.load(SvdTinyConfig(dtype="bfloat16"), torch.device("cpu")) is not first
    assert len(loading.MODELS.entries) == 2


def test_the_offload_order_is_declared_data_and_models_a_run_lacks_are_left_out(monkeypatch) -> None:
    chained = []
    monkeypatch.setattr(base.runtime, "offload", lambda models, device: chained.append([type(m).__name__ for m in models]))
    for ip in (False, True):
        models = AnimateDiffTinyBackbone.models_factory(AnimateDiffTinyConfig(ip_adapter=ip), torch.float32, torch.device("cpu"))
        base.offloaded(models, AnimateDiffTinyBackbone.offload_order, torch.device("cpu"))
    assert chained == [
        ["CLIPTextModel", "UNetMotionModel", "AutoencoderKL"],
        ["CLIPTextModel", "CLIPVisionModelWithProjection", "UNetMotionModel", "AutoencoderKL"],
    ]
    assert SvdTinyBackbone.offload_order == ("image_encoder", "mofa", "mofa_landmark", "unet", "vae")  # diffusers', with MOFA
    models = SvdTinyBackbone.models_factory(SvdTinyConfig(mofa="tiny"), torch.float32, torch.device("cpu"))
    base.offloaded(models, SvdTinyBackbone.offload_order, torch.device("cpu"))
    assert chained[-1] == ["CLIPVisionModelWithProjection", "MofaAdapter", "UNetSpatioTemporalConditionModel", "AutoencoderKLTemporalDecoder"]  # fmt: skip


def test_the_vae_scale_factor_is_two_to_the_blocks_minus_one() -> None:
    vae = SvdTinyBackbone().load(SvdTinyConfig(), torch.device("cpu")).vae
    assert base.vae_scale_factor(vae) == 8
