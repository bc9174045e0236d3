"""The engine as a library: config in, Video out, files written atomically, same seed same bytes."""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from motionforge import (
    ConfigError,
    InputError,
    MotionHint,
    OutputError,
    PluginError,
    Prepared,
    SamplerInput,
    Video,
    animate,
    compose_config,
    hookimpl,
)
from motionforge import io
from motionforge.core import engine
from motionforge.core.registry import pm

SMALL = ["num_frames=4", "height=64", "width=64", "progress=false"]


def test_animate_returns_the_video_and_writes_nothing_when_asked(tmp_path) -> None:
    video = animate(compose_config([*SMALL, "output.save=false"]))
    assert isinstance(video, Video)
    assert video.frames.shape == (4, 64, 64, 3) and video.frames.dtype == np.uint8
    assert video.fps == 8.0 and video.size == (64, 64) and video.num_frames == 4
    assert video.metadata["image"] == "sample:astronaut" and video.metadata["plan"]["tracks"] == 4
    assert not any(tmp_path.iterdir())


def test_a_run_folder_holds_the_videos_the_hint_and_the_manifest(tmp_path) -> None:
    video = animate(compose_config([*SMALL, "output.dir=run", "output.frames=true"]))
    run = tmp_path / "run"
    assert video.metadata["run_dir"] == "run"
    names = {p.name for p in run.iterdir()}
    assert names == {"animation.mp4", "animation.gif", "flow.mp4", "hint.png", "frames", "config.yaml", "manifest.json"}
    assert sorted(p.name for p in (run / "frames").iterdir()) == [f"{i:05d}.png" for i in range(4)]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backbone"]["name"] == "warp" and manifest["sampler"] is None
    assert manifest["denoiser_calls"] == 0 and manifest["seed"] == 0 and manifest["size"] == [64, 64]
    assert set(manifest["timings"]) >= {"image", "adapters", "plan", "render", "write", "total"}
    assert manifest["peak_memory"]["rss_mb"] > 0
    assert set(manifest["outputs"]) == names
    assert "num_frames: 4" in (run / "config.yaml").read_text()


def test_a_default_run_folder_is_made_under_outputs(tmp_path) -> None:
    first = animate(compose_config(SMALL)).metadata["run_dir"]
    second = animate(compose_config(SMALL)).metadata["run_dir"]
    assert first.startswith("outputs") and first != second
    assert (tmp_path / first / "animation.mp4").is_file() and (tmp_path / second / "animation.mp4").is_file()


def test_same_config_same_bytes(tmp_path) -> None:
    for name in ("a", "b"):
        animate(compose_config([*SMALL, f"output.dir={name}"]))
    for output in ("animation.mp4", "animation.gif", "flow.mp4", "hint.png"):
        assert (tmp_path / "a" / output).read_bytes() == (tmp_path / "b" / output).read_bytes(), output


def test_the_sample_tracks_give_way_to_the_users(tmp_path) -> None:
    video = animate(compose_config([*SMALL, "output.save=false", "adapters.trajectory.paths=[[[10,10],[20,10]]]"]))
    assert video.plan.tracks.shape[0] == 1


def test_a_users_image_needs_its_own_tracks(small_image) -> None:
    with pytest.raises(ConfigError, match="the trajectory adapter has no tracks"):
        animate(compose_config([f"image={small_image}", "output.save=false"]))


def test_a_users_image_is_fitted_to_the_working_size(small_image) -> None:
    video = animate(compose_config([f"image={small_image}", "adapters=[]", "output.save=false", "num_frames=2"]))
    assert video.size == (64, 48)
    video = animate(compose_config([f"image={small_image}", "adapters=[]", "output.save=false", "num_frames=2", "width=32"]))
    assert video.size == (32, 24)


def test_a_missing_image_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="image file not found"):
        animate(compose_config(["image=nowhere.jpg", *SMALL]))
    assert not any(tmp_path.iterdir())


def test_a_failure_while_writing_leaves_nothing(tmp_path, monkeypatch) -> None:
    def broken_gif(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(io, "write_gif", broken_gif)
    with pytest.raises(OutputError, match=r"could not write the outputs into run/deeper \(Input/output error\); nothing was"):
        animate(compose_config([*SMALL, "output.dir=run/deeper"]))
    assert not any(tmp_path.iterdir())


def test_a_disk_that_fills_up_is_one_sentence_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "write_png_frames", full_disk)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "older.txt").write_text("kept")
    with pytest.raises(OutputError, match=r"no room was left while writing the outputs into .*run \(No space left on device\)"):
        animate(compose_config([*SMALL, "output.dir=run", "output.frames=true"]))
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["older.txt"]


# --- plugins that break the contract ------------------------------------------------------------


@dataclass
class NoConfig:
    """No parameters."""


class WrongShapeAdapter:
    """Returns a flow of the wrong size."""

    name = "wrongshape"
    Config = NoConfig

    def build(self, config, context):
        return MotionHint(flow=torch.zeros(context.num_frames, 2, 3, 3))


class Misbehaving:
    __name__ = "Misbehaving"

    @hookimpl
    def register_adapters(self, register):
        register(WrongShapeAdapter)


def test_a_malformed_hint_names_its_adapter() -> None:
    pm.register(Misbehaving(), name="misbehaving")
    try:
        with pytest.raises(PluginError, match=r"adapter 'wrongshape' returned a flow of shape \(4, 2, 3, 3\); expected \[4, 2, 64, 64\]"):
            animate(compose_config([*SMALL, "adapters=[wrongshape]", "output.save=false"]))
    finally:
        pm.unregister(name="misbehaving")


# --- a diffusion backbone through the sampler ---------------------------------------------------


@dataclass
class OracleConfig:
    """Parameters of the oracle backbone."""

    noise_scale: float = 1.0


class OracleDenoiser:
    """Knows the clean clip: the warp backbone's frames, in 'latents' that are just pixels."""

    def __init__(self, clean: torch.Tensor) -> None:
        self.clean = clean  # [1, F, 3, H, W]

    def denoise(self, x, sigma, frames):
        return self.clean[:, frames]


class OracleBackbone:
    """A diffusion backbone whose denoiser knows the answer; latents are pixels."""

    name = "oracle"
    Config = OracleConfig

    def prepare(self, config, request) -> Prepared:
        from motionforge.backbones.warp import WarpBackbone, WarpConfig

        clean = WarpBackbone().render(WarpConfig(), request)[None]  # [1, F, 3, H, W]
        generator = torch.Generator().manual_seed(request.seed)
        sigmas = torch.cat([torch.linspace(10.0, 0.1, request.steps), torch.zeros(1)])
        latents = torch.randn(clean.shape, generator=generator) * sigmas[0] * config.noise_scale
        problem = SamplerInput(OracleDenoiser(clean), sigmas, latents, window=16, generator=generator)
        return Prepared(problem, decode=lambda latents, sigma=None: latents[0], notes=["an oracle"])


class OraclePlugin:
    __name__ = "OraclePlugin"

    @hookimpl
    def register_backbones(self, register):
        register(OracleBackbone)


def test_a_diffusion_backbone_runs_through_the_sampler_and_is_counted(tmp_path) -> None:
    pm.register(OraclePlugin(), name="oracle-plugin")
    try:
        warp = animate(compose_config([*SMALL, "output.save=false"]))
        video = animate(compose_config([*SMALL, "backbone=oracle", "steps=5", "output.dir=run"]))
    finally:
        pm.unregister(name="oracle-plugin")
    assert np.array_equal(video.frames, warp.frames)  # Euler's last step lands on the denoiser's answer
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["backbone"] == {"name": "oracle", "noise_scale": 1.0}
    assert manifest["sampler"] == {"name": "single", "step": None}  # no scheduler of its own: Euler
    assert (manifest["denoiser_calls"], manifest["frame_evaluations"]) == (5, 20)
    assert manifest["notes"] == ["an oracle"] and manifest["steering"] == []


def test_sample_files_ship_with_the_package() -> None:
    folder = engine.sample_dir()
    assert {p.name for p in folder.iterdir()} >= {"image.jpg", "tracks.json", "SOURCE.md"}
    assert Path(engine.sample_controls()["trajectory"][1]["file"]).is_file()
