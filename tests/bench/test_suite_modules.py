"""The backbones suite's trained modules: each run beside its plain backbone, its cost over it in the summary."""

from __future__ import annotations

import json

from motionforge.cli import main


def test_mofa_on_svd_tiny_is_reported_against_plain_svd_tiny(tmp_path) -> None:
    run = tmp_path / "run"
    overrides = [
        "suite=backbones",
        "suite.backbones=[svd_tiny]",
        "suite.samplers=[single]",
        "suite.num_frames=[6]",
        "suite.steps=2",
    ]
    assert main(["bench", *overrides, f"hydra.run.dir={run}"]) == 0
    rows = [json.loads(line) for line in (run / "measurements.jsonl").read_text().splitlines()]
    assert [(r["backbone"], r["module"]) for r in rows] == [("svd_tiny", None), ("svd_tiny", "mofa")]
    assert all(r["denoiser_calls"] == 2 and r["peak_rss_mb"] > 0 for r in rows)
    assert "svd_tiny + mofa, single, 6 frames: render time ×" in (run / "table.md").read_text()
    assert sorted(p.name for p in (run / "runs").iterdir()) == ["svd_tiny+mofa-single-6", "svd_tiny-single-6"]
