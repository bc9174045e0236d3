"""MOFA-Video's adapters on svd: plain SVD when they add nothing, steered clips end to end, long clips, one-sentence errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from motionforge import ConfigError, animate, compose_config
from motionforge.backbones.diffusion import mofa, tiny
from motionforge.cli import main
from motionforge.modules.mofa import MofaAdapter, MofaSize
from tests.modules.test_mofa import PARENT_DEFAULTS

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
QUIET = ["height=64", "width=64", "progress=false", "output.save=false", "steps=1", "seed=5"]
DRAG = [
    "adapters=[trajectory,brush]",
    f"adapters.trajectory.file={EXAMPLES / 'tracks.json'}",
    f"adapters.brush.mask={EXAMPLES / 'brush.png'}",
]
FACE = [
    "adapters=[landmark,trajectory]",
    f"adapters.landmark.file={EXAMPLES / 'landmarks.npy'}",
    "adapters.landmark.face_region=true",
]


def clip(*overrides: str) -> np.ndarray:
    """The frames of an svd_tiny run: uint8 [F, H, W, 3]."""
    return animate(compose_config(["backbone=svd_tiny", "num_frames=4", *QUIET, *overrides])).frames


@pytest.fixture(scope="module")
def fresh_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly initialised trajectory adapter for the tiny UNet (zero convolutions zero), in the released layout."""
    folder = tmp_path_factory.mktemp("mofa") / "controlnet"
    folder.mkdir()
    adapter = MofaAdapter(MofaSize.for_unet(tiny.tiny_svd_components()["unet"].config), "traj")
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, str(folder / "diffusion_pytorch_model.safetensors"))
    (folder / "config.json").write_text(json.dumps(PARENT_DEFAULTS))  # what MOFA registers: its parent's defaults
    return folder


def test_a_fresh_adapter_and_a_zero_scale_give_plain_svds_frames_exactly(fresh_folder) -> None:
    plain = clip(*DRAG)
    assert np.array_equal(clip(*DRAG, f"backbone.mofa={fresh_folder}"), plain)
    assert np.array_equal(clip(*DRAG, "backbone.mofa=tiny", "backbone.mofa_scale=0"), plain)
    assert not np.array_equal(clip(*DRAG, "backbone.mofa=tiny"), plain)  # the tiny adapter's random zero convs steer


def test_the_trajectory_adapter_from_the_command_line_says_it_ran(tmp_path) -> None:
    run = tmp_path / "run"
    args = ["backbone=svd_tiny", "backbone.mofa=tiny", *DRAG, "num_frames=4", "steps=1", "height=64", "width=64"]
    assert main(["animate", *args, "progress=false", f"hydra.run.dir={run}"]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["steering"][0] == "mofa trajectory adapter (scale 0.6)"
    assert not any("does not follow the motion plan" in note for note in manifest["notes"])


def test_the_hybrid_blends_the_keypoint_adapter_on_the_face_with_the_trajectory_one(tmp_path) -> None:
    run = tmp_path / "run"
    args = ["backbone=svd_tiny", "backbone.mofa=tiny", "backbone.mofa_landmark=tiny", "backbone.mofa_landmark_scale=0.8", *FACE]
    assert (
        main(["animate", *args, "num_frames=4", "steps=1", "height=64", "width=64", "progress=false", f"hydra.run.dir={run}"])
        == 0
    )
    steering = json.loads((run / "manifest.json").read_text())["steering"]
    assert steering[:3] == [
        "mofa trajectory adapter (scale 0.6)",
        "mofa keypoint adapter (scale 0.8)",
        "mofa hybrid blend by the face region",
    ]


def test_the_hybrid_blend_is_face_times_mask_plus_drag_times_the_rest() -> None:
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :32, :] = 1  # the top half is the face
    face, drag = torch.full((3, 2, 4, 4), 2.0), torch.full((3, 2, 4, 4), 5.0)
    blended = mofa.blend(face, drag, mask)
    assert bool((blended[..., :2, :] == 2).all()) and bool((blended[..., 2:, :] == 5).all())


LONG = {
    "periodic_overlap, the hybrid": [
        "sampler=periodic_overlap",
        "sampler.anchor_first_frame=true",
        "sampler.stride=4",
        *FACE[1:],
    ],
    "phased, the trajectory adapter": ["sampler=phased", *DRAG],
}


@pytest.mark.parametrize("sampler", LONG.values(), ids=LONG.keys())
def test_long_clips_run_window_by_window_with_absolute_frames(sampler, monkeypatch) -> None:
    seen = []
    call = mofa.MofaControl.__call__

    def spy(self, sample, timestep, embeddings, time_ids, frames):
        seen.append(frames.tolist())
        return call(self, sample, timestep, embeddings, time_ids, frames)

    monkeypatch.setattr(mofa.MofaControl, "__call__", spy)
    hybrid = ["adapters=[landmark,trajectory]", "backbone.mofa_landmark=tiny"] if "sampler=periodic_overlap" in sampler else []
    frames = clip("backbone.mofa=tiny", *hybrid, *sampler, "num_frames=10", "sampler.window=6")
    assert frames.shape == (10, 64, 64, 3)
    windows = {tuple(window) for window in seen}
    assert len(windows) > 1 and set().union(*windows) == set(range(10))
    if "sampler.anchor_first_frame=true" in sampler:
        assert all(window[0] == 0 for window in windows)  # MOFA's keypoint pipeline: frame 0 in every window


@pytest.mark.parametrize(
    "overrides, message",
    [
        ([*DRAG, "height=48", "backbone.mofa=tiny"], r"multiples of 64 .* 64×48 is not"),
        ([*DRAG, "backbone.mofa=tiny", "backbone.mofa_scale=-1"], r"backbone.mofa_scale=-1.0 must be a number ≥ 0"),
        ([*DRAG, "backbone.mofa_landmark=tiny"], r"backbone.mofa_landmark draws the landmark control's faces: add it"),
        (
            ["backbone.mofa=tiny", "backbone.mofa_landmark=tiny", *FACE[:2]],
            r"blended by the face region: set adapters.landmark.face_region=true",
        ),
    ],
)
def test_bad_adapter_settings_are_one_sentence(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        clip(*overrides)


def test_tiny_is_for_svd_tiny_only(svd_folder) -> None:
    with pytest.raises(ConfigError, match="backbone.mofa=tiny builds a random adapter for svd_tiny only"):
        animate(
            compose_config(["backbone=svd", f"backbone.pretrained={svd_folder}", "backbone.mofa=tiny", "num_frames=4", *QUIET])
        )


def test_the_model_cache_tells_loads_with_an_adapter_apart(fresh_folder) -> None:
    config = compose_config(["backbone=svd_tiny", f"backbone.mofa={fresh_folder}"]).backbone
    assert mofa.cache_extra(config) == (str(fresh_folder.resolve()), None)
    assert mofa.cache_extra(compose_config(["backbone=svd_tiny", "backbone.mofa=tiny"]).backbone) == ("tiny", None)


MOFA_DIR, SVD_XT_DIR = os.environ.get("MOTIONFORGE_MOFA_DIR"), os.environ.get("MOTIONFORGE_SVD_XT_DIR")


@pytest.mark.skipif(
    not (MOFA_DIR and SVD_XT_DIR), reason="set MOTIONFORGE_MOFA_DIR (MOFA-Video-Traj's ckpts/) and MOTIONFORGE_SVD_XT_DIR"
)
def test_the_released_trajectory_adapter_runs_on_svd_xt() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    run = ["backbone=svd", f"backbone.pretrained={SVD_XT_DIR}", f"backbone.mofa={Path(MOFA_DIR) / 'controlnet'}", *DRAG]
    video = animate(
        compose_config(
            [
                *run,
                "num_frames=14",
                "height=256",
                "width=256",
                "steps=2",
                f"device={device}",
                "progress=false",
                "output.save=false",
            ]
        )
    )
    assert video.frames.shape == (14, 256, 256, 3) and video.frames.std() > 1  # a picture, not NaN-black
