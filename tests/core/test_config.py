"""Composing the run config: the adapter list, per-adapter parameters, and one-sentence errors."""

from __future__ import annotations

import pytest
import torch

from motionforge import ConfigError, compose_config
from motionforge.core.config import check_run
from motionforge.core.registry import get_registry


def test_defaults() -> None:
    cfg = compose_config()
    assert cfg.backbone.name == "warp"
    assert cfg.sampler.name == "single"
    assert list(cfg.adapters) == ["trajectory"]
    assert (cfg.num_frames, cfg.fps, cfg.image) == (16, 8, None)


@pytest.mark.parametrize(
    "overrides, adapters",
    [
        (["adapters=[]"], []),
        (["adapters=[trajectory]"], ["trajectory"]),
        (["adapters=[wiggle,trajectory]"], ["wiggle", "trajectory"]),
        (["+adapters=[wiggle]"], ["trajectory", "wiggle"]),
    ],
)
def test_choosing_adapters(wiggle_plugin, overrides, adapters) -> None:
    assert list(compose_config(overrides).adapters) == adapters


def test_adapter_parameters_come_from_its_config_dataclass(wiggle_plugin) -> None:
    cfg = compose_config(["adapters=[wiggle]"])
    assert cfg.adapters.wiggle.amplitude == 2.0
    assert compose_config(["adapters=[wiggle]", "adapters.wiggle.amplitude=4"]).adapters.wiggle.amplitude == 4.0


def test_every_adapter_option_nests_under_its_own_name() -> None:
    for name in get_registry().adapters:
        assert list(compose_config([f"adapters=[{name}]"]).adapters) == [name]


def test_inline_tracks_accept_integer_pixels() -> None:
    cfg = compose_config(["adapters.trajectory.paths=[[[100,120],[180,120]]]"])
    assert cfg.adapters.trajectory.paths[0][1][0] == 180


@pytest.mark.parametrize(
    "override, message",
    [
        ("adapters=[trajectroy]", r"there is no adapters option 'trajectroy' \(did you mean 'trajectory'\?\); choose from: .*trajectory"),
        ("backbone=nope", r"there is no backbone option 'nope'; choose from: .*warp"),
        ("adapters.trajectory.pathz=1", r"the trajectory adapter has no key 'pathz' \(did you mean adapters\.trajectory\.paths"),
        ("num_framez=3", r"unknown config key 'num_framez' \(did you mean 'num_frames'\?\)"),
        ("num_frames=abc", r"bad value in override num_frames=abc: Value 'abc' of type 'str' could not be converted to Integer"),
        ("adapters=[trajectory", r"."),
    ],
)
def test_mistakes_give_one_sentence(override, message) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        compose_config([override])
    assert "\n" not in str(caught.value)


def _checked(*overrides: str):
    return check_run(compose_config(list(overrides)))


def test_run_parameters_are_checked() -> None:
    settings = _checked("num_frames=24", "fps=12", "height=384", "width=512")
    assert (settings.num_frames, settings.fps, settings.height, settings.width) == (24, 12.0, 384, 512)
    assert settings.device == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    "override, message",
    [
        ("num_frames=1", "num_frames=1 is too small: a video needs at least 2 frames"),
        ("fps=0", "fps=0.0 must be between 0.01 and 240 frames per second"),
        ("fps=1e9", "fps=1000000000.0 must be between 0.01 and 240 frames per second"),
        ("fps=nan", "fps=nan is not a finite number"),
        ("seed=-1", "seed=-1 must be a whole number from 0 to 2"),
        ("motion.threshold=2", "motion.threshold=2.0 must be at least 0 and below 1"),
        ("motion.sigma=inf", "motion.sigma=inf is not a finite number"),
        ("device=mps", "device=mps is not available on this machine"),
        ("steps=0", "steps=0 must be at least 1"),
        ("motion.sigma=0.001", "motion.sigma=0.001 must be between 0.01 and 100000 pixels"),
        ("height=100", "height=100 must be a positive multiple of 8; try height=104"),
        ("width=-8", "width=-8 must be a positive multiple of 8"),
        ("resize=fill", "resize=fill is not a resize mode; choose one of: crop, stretch"),
        ("motion.sigma=0", "motion.sigma=0.0 must be a positive number"),
        ("motion.densifier=learned", "motion.densifier=learned is unknown"),
        ("output.crf=60", "output.crf=60 must be between 0"),
        ("output.name=../x", "output.name='../x' must be a plain file name"),
        ("device=warp9", "device='warp9' is not a device torch knows"),
    ],
)
def test_bad_run_parameters(override, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _checked(override)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_a_gpu() -> None:
    with pytest.raises(ConfigError, match="no usable CUDA GPU; use device=cpu"):
        _checked("device=cuda")
