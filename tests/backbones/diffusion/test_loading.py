"""Loading from local folders: one-sentence errors, the safetensors policy, dtype, the per-process cache."""

from __future__ import annotations

import shutil

import pytest
import torch

from motionforge import ConfigError, InputError, animate, compose_config
from motionforge.backbones.diffusion import loading, svd
from motionforge.cli import main

RUN = ["adapters=[]", "height=64", "width=64", "num_frames=14", "steps=1", "output.save=false", "progress=false"]


def test_an_unset_folder_says_what_to_pass_and_offers_the_tiny_model() -> None:
    with pytest.raises(ConfigError, match=r"backbone.pretrained is not set; .* or use backbone=svd_tiny"):
        loading.local_folder(None, "backbone.pretrained", "an SVD checkpoint", tiny="svd_tiny")


def test_a_hub_id_is_never_downloaded(tmp_path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"is not a folder on this machine \(there is no stabilityai/ folder here either\); motionforge never downloads "
        r"weights: if it is a Hugging Face Hub id, download it first",
    ):
        loading.local_folder("stabilityai/stable-video-diffusion-img2vid", "backbone.pretrained", "an SVD checkpoint")


def test_a_missing_folder_or_a_file_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        loading.local_folder(str(tmp_path / "nowhere" / "svd"), "backbone.pretrained", "an SVD checkpoint")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(InputError, match="is a file, not a folder; .*single-file checkpoints are not supported"):
        loading.local_folder(str(weights), "backbone.pretrained", "an SVD checkpoint")
    assert loading.local_folder(str(tmp_path), "k", "x") == tmp_path.resolve()


def touch(folder, *names: str):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def test_weights_are_safetensors_unless_pickle_is_allowed(tmp_path) -> None:
    safe = touch(tmp_path / "safe", "config.json", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
    assert loading.weight_options(safe, False, "k") == {"use_safetensors": True, "variant": None, "local_files_only": True}
    pickled = touch(tmp_path / "pickled", "config.json", "diffusion_pytorch_model.bin")
    with pytest.raises(
        InputError, match=r"only pickle-based weights \(diffusion_pytorch_model.bin\), .*backbone.allow_pickle=true"
    ):
        loading.weight_options(pickled, False, "k")
    assert loading.weight_options(pickled, True, "k")["use_safetensors"] is None
    with pytest.raises(InputError, match="holds no weights file"):
        loading.weight_options(touch(tmp_path / "empty", "config.json"), False, "k")


def test_a_folder_with_only_half_precision_files_loads_that_variant(tmp_path) -> None:
    half = touch(tmp_path / "half", "model.fp16.safetensors")
    assert loading.weight_options(half, False, "k")["variant"] == "fp16"
    sharded = touch(tmp_path / "sharded", "model.fp16-00001-of-00002.safetensors", "model.fp16-00002-of-00002.safetensors")
    assert loading.weight_options(sharded, False, "k")["variant"] == "fp16"
    plain = touch(tmp_path / "plain", "model-00001-of-00002.safetensors", "model.fp16.safetensors")
    assert loading.weight_options(plain, False, "k")["variant"] is None


def test_dtype_auto_is_half_on_cuda_and_float_elsewhere() -> None:
    assert loading.resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert loading.resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert loading.resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ConfigError, match="backbone.dtype=half is not a dtype; choose one of: auto, float32"):
        loading.resolve_dtype("half", torch.device("cpu"))


@pytest.mark.parametrize("backbone, frames", [("svd_tiny", 14), ("animatediff_tiny", 16)])
def test_half_precision_encodes_the_picture_in_float32_and_stays_half(backbone, frames) -> None:
    video = animate(compose_config([f"backbone={backbone}", "backbone.dtype=float16", *RUN, f"num_frames={frames}", "steps=2"]))
    assert video.frames.shape == (frames, 64, 64, 3) and video.frames.std() > 0
    (models,) = loading.MODELS.entries.values()
    assert {next(m.parameters()).dtype for m in (models.unet, models.vae)} == {torch.float16}


def test_the_cache_builds_once_per_key_and_drops_the_least_recently_used() -> None:
    cache, built = loading.ModelCache(size=2), []

    def build(name: str):
        return lambda: built.append(name) or name

    assert [cache.get(k, build(k)) for k in ("a", "b", "a", "c", "a", "b")] == ["a", "b", "a", "c", "a", "b"]
    assert built == ["a", "b", "c", "b"]  # "b" was dropped when "c" came, "a" stayed in use


def test_a_backbone_loads_a_folder_once_per_process(svd_folder, monkeypatch) -> None:
    loads = []
    real = svd.SvdBackbone.load_folders
    monkeypatch.setattr(svd.SvdBackbone, "load_folders", lambda self, config, folders, *rest: loads.append(folders["pretrained"])
                        or real(self, config, folders, *rest))  # fmt: skip
    for seed in (0, 1):
        animate(compose_config(["backbone=svd", f"backbone.pretrained={svd_folder}", f"seed={seed}", *RUN]))
    assert loads == [svd_folder.resolve()]


def copy_without(folder, tmp_path, name: str):
    """A copy of a checkpoint folder with one component removed."""
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    shutil.rmtree(copy / name)
    return copy


def test_a_missing_component_names_it(svd_folder, tmp_path) -> None:
    broken = copy_without(svd_folder, tmp_path, "image_encoder")
    with pytest.raises(
        InputError, match=r"has no image_encoder/ folder; a diffusers folder of a Stable Video Diffusion checkpoint holds unet"
    ):
        animate(compose_config(["backbone=svd", f"backbone.pretrained={broken}", *RUN]))


def test_a_folder_that_is_not_a_pipeline_is_refused(tmp_path) -> None:
    with pytest.raises(InputError, match=r"model_index.json is missing; is the folder a complete diffusers checkpoint\?"):
        animate(compose_config(["backbone=svd", f"backbone.pretrained={tmp_path}", *RUN]))


def test_a_folder_of_the_wrong_model_is_refused(sd_folder, svd_folder, adapter_folder) -> None:
    with pytest.raises(
        InputError, match=r"holds a StableDiffusionPipeline \(its UNet is UNet2DConditionModel\), not Stable Video Diffusion"
    ):
        animate(compose_config(["backbone=svd", f"backbone.pretrained={sd_folder}", *RUN]))
    with pytest.raises(
        InputError,
        match=r"holds a StableVideoDiffusionPipeline \(its UNet is UNetSpatioTemporalConditionModel .*not Stable Diffusion 1.5",
    ):
        animate(
            compose_config(
                ["backbone=animatediff", f"backbone.pretrained={svd_folder}", f"backbone.motion_adapter={adapter_folder}", *RUN]
            )
        )
    with pytest.raises(InputError, match=r"holds a UNet2DConditionModel, not a MotionAdapter"):
        animate(
            compose_config(
                [
                    "backbone=animatediff",
                    f"backbone.pretrained={sd_folder}",
                    f"backbone.motion_adapter={sd_folder / 'unet'}",
                    *RUN,
                ]
            )
        )


def test_pickle_weights_load_only_when_allowed(svd_folder, tmp_path) -> None:
    from diffusers import AutoencoderKLTemporalDecoder

    folder = tmp_path / "svd"
    shutil.copytree(svd_folder, folder)
    vae = AutoencoderKLTemporalDecoder.from_pretrained(folder / "vae")
    shutil.rmtree(folder / "vae")
    vae.save_pretrained(folder / "vae", safe_serialization=False)
    with pytest.raises(
        InputError, match=r"vae has only pickle-based weights \(diffusion_pytorch_model.bin\), which can run code"
    ):
        animate(compose_config(["backbone=svd", f"backbone.pretrained={folder}", *RUN]))
    video = animate(compose_config(["backbone=svd", f"backbone.pretrained={folder}", "backbone.allow_pickle=true", *RUN]))
    assert video.frames.shape == (14, 64, 64, 3)


def test_a_broken_weights_file_is_an_input_error(svd_folder, tmp_path) -> None:
    folder = tmp_path / "svd"
    shutil.copytree(svd_folder, folder)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match=r"backbone.pretrained: could not load the UNet from .*unet"):
        animate(compose_config(["backbone=svd", f"backbone.pretrained={folder}", *RUN]))


def test_the_cli_prints_one_line_and_exits_2(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    status = main(
        [
            "animate",
            "backbone=svd",
            "backbone.pretrained=stabilityai/stable-video-diffusion-img2vid",
            *RUN,
            f"hydra.run.dir={run}",
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1
    assert error[0].startswith(
        "error: backbone.pretrained=stabilityai/stable-video-diffusion-img2vid is not a folder on this machine"
    )
    assert not run.exists()
