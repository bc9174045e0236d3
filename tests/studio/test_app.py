"""The page's own checks: the run settings it sends and the drag paths it posts are refused in one sentence when wrong."""

from __future__ import annotations

import pytest

from motionforge.core.errors import InputError, PluginError
from motionforge.studio.app import apply_run, read_path
from motionforge.studio.state import Controls

RUN = {"backbone": "warp", "sampler": "single", "extra_adapters": [], "num_frames": 16, "fps": 8, "seed": 0, "steps": 25,
       "prompt": "", "height": 0, "width": 0}  # fmt: skip


def test_the_run_settings_go_into_the_controls_and_a_new_backbone_drops_the_old_ones_settings() -> None:
    controls = Controls(size=(64, 48), settings={"backbone.occlusion": 0.7, "sampler.step": "euler"})
    apply_run(controls, {**RUN, "backbone": "svd_tiny", "num_frames": 14, "height": 64, "prompt": "a rocket"})
    assert (controls.backbone, controls.num_frames, controls.height, controls.width, controls.prompt) == (
        "svd_tiny",
        14,
        64,
        None,
        "a rocket",
    )
    assert controls.settings == {"sampler.step": "euler"}


def test_unknown_plugins_and_interpolations_are_refused() -> None:
    with pytest.raises(PluginError, match="there is no backbone named 'wrap'"):
        apply_run(Controls(size=(64, 48)), {**RUN, "backbone": "wrap"})
    with pytest.raises(InputError, match="interpolation"):
        apply_run(Controls(size=(64, 48)), {**RUN, "prompt": "${oc.env:HOME}"})


def test_a_drag_path_is_a_list_of_finite_points() -> None:
    assert read_path("[[1, 2], [3.5, 4]]") == [(1.0, 2.0), (3.5, 4.0)]
    for bad in ("", "[[1, 2]]", '[[1, "x"], [2, 3]]', "[[1, NaN], [2, 3]]", "{}"):
        with pytest.raises(InputError, match="drag again"):
            read_path(bad)
