"""AnimateDiff with an IP-Adapter: diffusers' frames, the scale, the picture's encoding, warped attention beside it, one-sentence errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from motionforge import ConfigError, InputError, animate, compose_config
from motionforge.backbones.diffusion import ip_adapter, loading
from motionforge.backbones.diffusion.animatediff import AnimateDiffTinyBackbone, AnimateDiffTinyConfig
from motionforge.cli import main
from tests.backbones.diffusion.conftest import read_png_frames
from tests.backbones.diffusion.steering.test_steering import request, run
from tests.backbones.diffusion.test_animatediff import QUIET

FRAMES = 8


def diffusers_frames(sd_folder, adapter_folder, ip_adapter_file, picture, scale: float, **kwargs) -> np.ndarray:
    """AnimateDiffPipeline's frames with its own load_ip_adapter and set_ip_adapter_scale, the picture as ip_adapter_image: uint8 [F, H, W, 3]."""
    from diffusers import AnimateDiffPipeline, MotionAdapter

    pipe = AnimateDiffPipeline.from_pretrained(sd_folder, motion_adapter=MotionAdapter.from_pretrained(adapter_folder))
    pipe.load_ip_adapter(str(ip_adapter_file.parent), subfolder="", weight_name=ip_adapter_file.name, local_files_only=True)
    pipe.set_ip_adapter_scale(scale)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        "a cat walking", num_frames=FRAMES, height=64, width=64, num_inference_steps=3, output_type="np",
        generator=torch.Generator().manual_seed(5), ip_adapter_image=Image.open(picture).convert("RGB"), **kwargs,
    )  # fmt: skip
    return (out.frames[0] * 255).round().astype(np.uint8)


def animatediff(sd_folder, adapter_folder, picture, *keys: str, save: str | None = None) -> np.ndarray:
    """The animatediff backbone's frames for the tiny folders, the picture and extra keys: uint8 [F, H, W, 3]."""
    folders = [f"backbone.pretrained={sd_folder}", f"backbone.motion_adapter={adapter_folder}", f"image={picture}"]
    runs = ["backbone=animatediff", *folders, *keys, "prompt=a cat walking", f"num_frames={FRAMES}", "steps=3", "seed=5"]
    output = ["output.save=false"]
    if save:
        output = [f"output.dir={save}", "output.frames=true", "output.mp4=false", "output.gif=false"]
    return animate(compose_config([*runs, *QUIET, *output])).frames


def picture_tensor(picture) -> torch.Tensor:
    """The 64×64 picture as the run holds it: [3, H, W] float in [0, 1]."""
    return torch.from_numpy(np.array(Image.open(picture).convert("RGB"))).permute(2, 0, 1).float() / 255.0


PARITY = {
    "guidance, scale 1": ({}, 1.0),
    "no guidance, scale 0.6": ({"guidance_scale": 1.0}, 0.6),
}


@pytest.mark.parametrize("params, scale", PARITY.values(), ids=PARITY.keys())
def test_with_an_ip_adapter_the_frames_are_diffusers_frames(
    sd_folder, adapter_folder, ip_adapter_file, picture, tmp_path, params, scale
) -> None:
    expected = diffusers_frames(sd_folder, adapter_folder, ip_adapter_file, picture, scale, **params)
    keys = [f"backbone.ip_adapter={ip_adapter_file}", f"backbone.ip_adapter_scale={scale}", "backbone.selective_noising=false"]
    keys += [f"backbone.{key}={value}" for key, value in params.items()]
    animatediff(sd_folder, adapter_folder, picture, *keys, save="run")
    got = read_png_frames(tmp_path / "run" / "frames")
    assert got.shape == expected.shape == (FRAMES, 64, 64, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # 1/255: float rounding only


def test_scale_0_is_the_run_without_the_ip_adapter_and_scale_1_changes_it(
    sd_folder, adapter_folder, ip_adapter_file, picture
) -> None:
    plain = animatediff(sd_folder, adapter_folder, picture)
    off = animatediff(sd_folder, adapter_folder, picture, f"backbone.ip_adapter={ip_adapter_file}", "backbone.ip_adapter_scale=0")
    on = animatediff(sd_folder, adapter_folder, picture, f"backbone.ip_adapter={ip_adapter_file}")
    assert len(loading.MODELS.entries) == 2  # a UNet with the IP-Adapter is another model; the scale is set per run
    assert np.array_equal(plain, off)
    assert np.abs(plain.astype(int) - on.astype(int)).max() > 10


@pytest.mark.parametrize("hidden_states", [False, True], ids=["image embedding", "hidden states (plus)"])
def test_the_picture_is_encoded_as_diffusers_encodes_it(ip_adapter_file, picture, hidden_states) -> None:
    parts = ip_adapter.load_encoder(ip_adapter_file.parent / "image_encoder", False, torch.float32, torch.device("cpu"))
    with torch.no_grad():
        expected, negative = ip_adapter.pipeline(None, parts).encode_image(Image.open(picture), "cpu", 1, hidden_states)
        embeds = ip_adapter.encode(parts, picture_tensor(picture), hidden_states, guidance=True)
    assert torch.equal(embeds.positive[0], expected) and torch.equal(embeds.negative[0], negative)
    assert embeds.positive.shape == ((1, 1, 50, 32) if hidden_states else (1, 1, 32))  # 7×7 patches + CLS, or the projection
    assert bool(negative.abs().sum() > 0) == hidden_states  # "plus": the zero image's hidden states, else zeros


def test_the_image_embeds_are_laid_out_negative_first_per_latent() -> None:
    embeds = ip_adapter.ImageEmbeds(torch.ones(1, 1, 4), torch.zeros(1, 1, 4))
    (batched,) = embeds.batched(2)
    assert batched.shape == (4, 1, 4) and batched[:2].sum() == 0 and bool((batched[2:] == 1).all())
    (unguided,) = ip_adapter.ImageEmbeds(torch.ones(1, 1, 4), None).batched(3)
    assert unguided.shape == (3, 1, 4)


def test_a_pickle_ip_adapter_loads_only_with_allow_pickle_and_gives_the_same_frames(
    sd_folder, adapter_folder, ip_adapter_file, picture, tmp_path
) -> None:
    weights = tmp_path / "ip-adapter_sd15.bin"
    torch.save(ip_adapter.split(load_file(ip_adapter_file)), weights)  # h94's .bin layout: {"image_proj": …, "ip_adapter": …}
    keys = [f"backbone.ip_adapter={weights}", f"backbone.ip_adapter_image_encoder={ip_adapter_file.parent / 'image_encoder'}"]
    with pytest.raises(InputError, match=r"ip-adapter_sd15.bin is a pickle-based file, .*pass backbone.allow_pickle=true"):
        animatediff(sd_folder, adapter_folder, picture, *keys)
    pickled = animatediff(sd_folder, adapter_folder, picture, *keys, "backbone.allow_pickle=true")
    assert np.array_equal(pickled, animatediff(sd_folder, adapter_folder, picture, f"backbone.ip_adapter={ip_adapter_file}"))


def test_warped_attention_works_beside_the_ip_adapter_and_its_processors_stay() -> None:
    moving = request(frames=4, steps=2)
    unet = AnimateDiffTinyBackbone().load(AnimateDiffTinyConfig(ip_adapter=True), torch.device("cpu")).unet
    before = unet.attn_processors
    assert sum(type(p).__name__ == "IPAdapterAttnProcessor2_0" for p in before.values()) == 6  # the tiny UNet's cross-attention
    off, _ = run("animatediff_tiny", moving, ip_adapter=True)
    on, _ = run("animatediff_tiny", moving, ip_adapter=True, warped_attention=True)
    assert not torch.equal(off, on)
    assert unet.attn_processors == before
    unseen, _ = run("animatediff_tiny", moving, ip_adapter=True, ip_adapter_scale=0.0, warped_attention=True)
    assert not torch.equal(on, unseen)  # the picture's tokens still count with warped attention on
    zero, _ = run("animatediff_tiny", moving, ip_adapter=True, warped_attention=True, warped_attention_strength=0.0)
    assert torch.equal(off, zero)


def beside_encoder(tmp, files, tensors: dict) -> str:
    """Tensors saved as tmp/ip.safetensors, with the tiny IP-Adapter's image encoder beside them."""
    from safetensors.torch import save_file

    shutil.copytree(files.parent / "image_encoder", tmp / "image_encoder")
    save_file(tensors, tmp / "ip.safetensors")
    return str(tmp / "ip.safetensors")


def adapter_for(**config) -> dict:
    """The tiny IP-Adapter's tensors for a UNet like the tiny one with some config changed."""
    from diffusers import UNet2DConditionModel

    from motionforge.backbones.diffusion.tiny import tiny_ip_adapter, tiny_sd_components

    return tiny_ip_adapter(UNet2DConditionModel.from_config({**tiny_sd_components()["unet"].config, **config}))


def faceid(files) -> dict:
    """An IP-Adapter FaceID's key layout: a projection of face embeddings (proj.0, proj.2, norm), no CLIP image projection."""
    face = {
        "image_proj.proj.0.weight": torch.zeros(8, 4),
        "image_proj.proj.2.weight": torch.zeros(8, 8),
        "image_proj.norm.weight": torch.ones(32),
    }
    return {**{k: v for k, v in load_file(files).items() if k.startswith("ip_adapter.")}, **face}


NOT_IP = "image_encoder/model.safetensors"
ERRORS = {
    "a missing file": (
        lambda tmp, files: str(tmp / "nowhere" / "ip.safetensors"),
        InputError,
        r"does not exist; pass the local file of an IP-Adapter",
    ),
    "a Hub id": (
        lambda tmp, files: "h94/IP-Adapter",
        ConfigError,
        r"motionforge never downloads weights: if it is a Hugging Face Hub id, download it first",
    ),
    "a folder": (
        lambda tmp, files: str(files.parent),
        InputError,
        r"is a folder, not a file; pass the file of an IP-Adapter",
    ),
    "no image encoder beside it": (
        lambda tmp, files: str(shutil.copy(files, tmp / "ip.safetensors")),
        InputError,
        r"has no image_encoder/ folder beside it; pass the folder of the CLIP image encoder .*backbone.ip_adapter_image_encoder=",
    ),
    "not an IP-Adapter": (
        lambda tmp, files: beside_encoder(tmp, files, load_file(files.parent / NOT_IP)),
        InputError,
        r"is not an IP-Adapter weights file \(it has no image_proj.\* and ip_adapter.\* tensors\)",
    ),
    "another kind of file": (
        lambda tmp, files: str(files.parent / "image_encoder" / "config.json"),
        InputError,
        r"is not a weights file; pass a .safetensors file",
    ),
    "FaceID": (
        lambda tmp, files: beside_encoder(tmp, files, faceid(files)),
        InputError,
        r"has no image projection that reads a CLIP image embedding \(FaceID adapters read face embeddings",
    ),
    "made for a wider cross-attention (SDXL)": (
        lambda tmp, files: beside_encoder(tmp, files, adapter_for(cross_attention_dim=48)),
        InputError,
        r"does not fit the UNet: its image keys take 48 channels and the UNet's cross-attention takes 32; use an IP-Adapter",
    ),
    "made for more layers": (
        lambda tmp, files: beside_encoder(tmp, files, adapter_for(layers_per_block=3)),
        InputError,
        r"does not fit the UNet: it has image keys for 8 cross-attention layers and the UNet has 6; use an IP-Adapter",
    ),
    "made for wider blocks": (
        lambda tmp, files: beside_encoder(tmp, files, adapter_for(block_out_channels=(64, 128))),
        InputError,
        r"does not fit the UNet: its 1.to_k_ip.weight is \[64, 32\] where the UNet's down_blocks.0.* takes \[32, 32\]",
    ),
}


@pytest.mark.parametrize("weights, error, match", ERRORS.values(), ids=ERRORS.keys())
def test_a_wrong_ip_adapter_is_one_sentence(
    sd_folder, adapter_folder, ip_adapter_file, picture, tmp_path, weights, error, match
) -> None:
    file = weights(tmp_path, ip_adapter_file)
    with pytest.raises(error, match=match):
        animatediff(sd_folder, adapter_folder, picture, f"backbone.ip_adapter={file}")


def test_a_wrong_image_encoder_is_one_sentence(sd_folder, adapter_folder, ip_adapter_file, picture, tmp_path) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    narrow = tmp_path / "narrow"  # 16-wide image embeddings: the adapter's projection takes 32
    narrow_config = CLIPVisionConfig(hidden_size=32, projection_dim=16, num_hidden_layers=1, num_attention_heads=4, patch_size=32)
    CLIPVisionModelWithProjection(narrow_config).save_pretrained(narrow)
    cases = {
        tmp_path
        / "missing": r"ip_adapter_image_encoder=.*missing does not exist; pass the local folder of the CLIP image encoder",
        sd_folder / "text_encoder": r"holds a clip_text_model, not a CLIP vision model",
        narrow: r"the image encoder at .*narrow does not fit the IP-Adapter at .*ip-adapter_sd15.safetensors \(.*\); pass the folder",
    }
    for encoder, match in cases.items():
        keys = [f"backbone.ip_adapter={ip_adapter_file}", f"backbone.ip_adapter_image_encoder={encoder}"]
        with pytest.raises(InputError, match=match):
            animatediff(sd_folder, adapter_folder, picture, *keys)


def test_the_cli_says_it_in_one_line_and_exits_2(sd_folder, adapter_folder, tmp_path, capsys) -> None:
    folders = [f"backbone.pretrained={sd_folder}", f"backbone.motion_adapter={adapter_folder}"]
    status = main(
        [
            "animate",
            "backbone=animatediff",
            *folders,
            "backbone.ip_adapter=h94/IP-Adapter",
            *QUIET,
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1
    assert error[0].startswith(
        "error: backbone.ip_adapter=h94/IP-Adapter is not a file on this machine (there is no h94/ folder here either)"
    )
