"""The committed toy models load through the real paths (backbone=svd backbone.pretrained=…, backbone.mofa=…) and sample deterministically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motionforge.core.config import compose_config, hydra_string
from motionforge.core.engine import animate
from motionforge.toy.dataset import ToyDataset, write_dataset
from motionforge.toy.world import WorldSettings

MODELS = Path(__file__).resolve().parents[2] / "models" / "toy"
pytestmark = pytest.mark.skipif(
    not (MODELS / "svd" / "model_index.json").is_file(), reason="the toy models are not committed here"
)


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    """A held-out toy clip's picture and track file."""
    data = ToyDataset.open(write_dataset(tmp_path_factory.mktemp("toy") / "heldout", WorldSettings(), "heldout", count=1))
    return data.frames_path(0), data.tracks_path(0)


def run(clip_files, *more: str) -> np.ndarray:
    """The toy pipeline on the held-out clip's picture and tracks, 4 steps: uint8 frames [8, 64, 64, 3]."""
    picture, tracks = clip_files
    cfg = compose_config(
        [
            f"image={hydra_string(str(picture))}", "adapters=[trajectory]", f"adapters.trajectory.file={hydra_string(str(tracks))}",
            "backbone=svd", f"backbone.pretrained={hydra_string(str(MODELS / 'svd'))}", "num_frames=8", "steps=4",
            "output.save=false", "progress=false", *more,
        ]
    )  # fmt: skip
    return animate(cfg).frames


def test_the_toy_pipeline_samples_the_same_bytes_twice(clip_files):
    first, second = run(clip_files), run(clip_files)
    assert first.shape == (8, 64, 64, 3) and first.tobytes() == second.tobytes()


def test_the_trained_adapter_loads_by_its_key_and_changes_the_clip(clip_files):
    plain = run(clip_files)
    driven = run(clip_files, f"backbone.mofa={hydra_string(str(MODELS / 'mofa'))}", "backbone.mofa_scale=1.0")
    assert (
        driven.tobytes()
        == run(clip_files, f"backbone.mofa={hydra_string(str(MODELS / 'mofa'))}", "backbone.mofa_scale=1.0").tobytes()
    )
    assert np.abs(driven.astype(int) - plain.astype(int)).mean() > 0.5


def test_the_toy_suite_runs_on_them_at_a_small_size(tmp_path):
    from motionforge.cli import main

    overrides = [
        "suite=toy", f"suite.pretrained={MODELS / 'svd'}", f"suite.adapter={MODELS / 'mofa'}", "suite.cases=1", "suite.steps=2",
        "suite.variants=[none,dual_clock,adapter,truth]", "suite.curve_cases=1", "suite.track_counts=[1]", "suite.lengths=[8]",
        f"hydra.run.dir={tmp_path / 'bench'}",
    ]  # fmt: skip
    assert main(["bench", *overrides]) == 0
    table = (tmp_path / "bench" / "table.md").read_text()
    assert "| adapter |" in table and "| truth |" in table and "ordering" in table
    assert (tmp_path / "bench" / "toy_control.png").is_file() and (tmp_path / "bench" / "toy_tracks.png").is_file()
