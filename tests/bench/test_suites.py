"""`motionforge bench suite=<name>` end to end on small settings: each suite's measurements, table and plots."""

from __future__ import annotations

import json

import pytest
import torch

from motionforge.bench.suites import kernels as kernels_suite
from motionforge.cli import main


def bench(tmp_path, *overrides: str) -> tuple[list[dict], str]:
    """Run motionforge bench into tmp_path/run: (its measurements, its table)."""
    run = tmp_path / "run"
    assert main(["bench", *overrides, f"hydra.run.dir={run}"]) == 0
    rows = [json.loads(line) for line in (run / "measurements.jsonl").read_text().splitlines()]
    return rows, (run / "table.md").read_text()


def test_preview_measures_frames_per_second(tmp_path) -> None:
    rows, table = bench(
        tmp_path, "suite=preview", "suite.num_frames=4", "suite.height=64", "suite.width=64", "suite.repeats=2",
        "suite.memory_frames=[4,8]",
    )  # fmt: skip
    memory = [r for r in rows if r["scene"] == "memory"]
    assert [r["num_frames"] for r in memory] == [4, 8] and all(r["peak_rss_mb"] > 100 for r in memory)
    assert "peak memory of the default run with every output" in table and "(goal ≤ 1.5×)" in table
    assert sorted(p.name for p in (tmp_path / "run" / "runs").iterdir()) == ["memory-4", "memory-8"]
    rows = [r for r in rows if r["scene"] != "memory"]
    assert [(r["scene"], r["repeat"]) for r in rows] == [("tracks", 0), ("tracks", 1), ("brush", 0), ("brush", 1)]
    assert all(r["fps"] > 0 and r["remap_ms"] > 0 for r in rows)
    for row in rows:  # the cost of a frame in remaps: seconds per frame over the seconds of one remap
        assert row["remaps_per_frame"] == pytest.approx(row["render_s"] / row["num_frames"] / (row["remap_ms"] / 1e3), rel=0.02)
    assert "warp preview, tracks: median" in table and "frames per second rendering 4 frames at 64×64 (goal ≥ 60)" in table
    assert "remaps of a frame per frame" in table and "goal ≤ 15, stretch ≤ 5" in table
    assert "Command: `motionforge bench suite=preview suite.num_frames=4" in table and "hydra.run.dir" not in table
    assert (tmp_path / "run" / "fps.png").is_file()


def test_backbones_runs_every_combination_and_says_which_cannot_run(tmp_path) -> None:
    rows, _ = bench(
        tmp_path, "suite=backbones", "suite.backbones=[animatediff_tiny]", "suite.samplers=[single,phased]", "suite.num_frames=[40]",
        "suite.steps=5", "suite.modules=[]",
    )  # fmt: skip
    by = {(r["sampler"], r["num_frames"]): r for r in rows}
    assert all((r["height"], r["width"], r["steps"]) == (64, 64, 5) for r in rows)  # what tells sweep jobs apart
    assert "set num_frames=32 or fewer" in by["single", 40]["skipped"]  # AnimateDiff's positional table
    assert sorted(p.name for p in (tmp_path / "run" / "runs").iterdir()) == ["animatediff_tiny-phased-40"]  # inside the bench
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    phased = by["phased", 40]
    assert phased["denoiser_calls"] == 5 + 2 * 1 and phased["frame_evaluations"] == 7 * 16 and phased["peak_rss_mb"] > 0
    assert phased["s_per_frame"] == pytest.approx(phased["render_s"] / 40, rel=1e-3)
    assert (tmp_path / "run" / "time_vs_frames.png").is_file()


def test_the_backbones_suite_lists_both_trained_modules() -> None:
    from importlib import resources

    from omegaconf import OmegaConf

    suite = OmegaConf.load(resources.files("motionforge.conf") / "suite" / "backbones.yaml")
    assert [(m.name, m.backbone, list(m.overrides)) for m in suite.modules] == [
        ("mofa", "svd_tiny", ["backbone.mofa=tiny"]),
        ("motion_i2v", "animatediff_tiny", ["backbone.motion_i2v=tiny"]),
    ]


def test_backbones_times_each_trained_module_over_its_plain_backbone(tmp_path) -> None:
    rows, table = bench(
        tmp_path, "suite=backbones", "suite.backbones=[]", "suite.steps=1", "suite.module_frames=4",
        "suite.modules=[{name:motion_i2v,backbone:animatediff_tiny,overrides:['backbone.motion_i2v=tiny']}]",
    )  # fmt: skip
    modules = [r for r in rows if "module" in r]
    assert len(modules) == len(rows)  # the grid of backbones is empty: only the module and its plain backbone ran
    assert [(r["backbone"], r["module"]) for r in modules] == [
        ("animatediff_tiny", "none"),
        ("animatediff_tiny+motion_i2v", "motion_i2v"),
    ]
    assert all(r["num_frames"] == 4 and r["denoiser_calls"] == 1 and r["peak_rss_mb"] > 0 for r in modules)
    assert "animatediff_tiny+motion_i2v over animatediff_tiny at 4 frames (single): render time ×" in table


def test_overhead_pairs_the_engine_with_the_diffusers_pipeline(tmp_path) -> None:
    rows, table = bench(
        tmp_path,
        "suite=overhead",
        "suite.backbones=[animatediff]",
        "suite.repeats=2",
        "suite.steps=2",
        "suite.num_frames.animatediff=8",
    )
    assert [r["pair"] for r in rows] == [0, 1]
    assert all((r["num_frames"], r["height"], r["width"], r["steps"]) == (8, 64, 64, 2) for r in rows)
    assert all(r["ratio"] == pytest.approx(r["engine_s"] / r["pipeline_s"], rel=1e-2) for r in rows)
    assert all(r["max_diff_255"] <= 1 for r in rows)  # the same video: the same work is timed
    assert "animatediff: engine / pipeline median" in table and (tmp_path / "run" / "cost_ratio.png").is_file()


def test_kernels_times_the_reference_on_a_cpu_when_asked(tmp_path) -> None:
    rows, _ = bench(
        tmp_path, "suite=kernels", "device=cpu", "suite.backends=[reference]", "suite.scale=0.002", "suite.repeats=1",
        "suite.dtype=float32",
    )  # fmt: skip
    assert {r["op"] for r in rows} == {"splat", "warp", "temporal_attention"} and all(r["microseconds"] > 0 for r in rows)


def test_a_snapshot_goes_to_benchmarks_results(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    bench(
        tmp_path,
        "suite=preview",
        "suite.num_frames=2",
        "suite.height=32",
        "suite.width=32",
        "suite.repeats=1",
        "snapshot=true",
        "suite.memory_frames=[2,4]",
    )
    assert sorted(p.name for p in (tmp_path / "benchmarks" / "results").iterdir()) == [
        "preview-cpu-fps.png",
        "preview-cpu.jsonl",
        "preview-cpu.md",
    ]


def test_a_sweep_runs_one_job_per_value(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    status = main(
        ["bench", "-m", "suite=preview", "suite.repeats=1,2", "suite.num_frames=2", "suite.height=32", "suite.width=32",
         "suite.memory_frames=[2,4]",
         f"hydra.sweep.dir={sweep}"]
    )  # fmt: skip
    assert status == 0
    counts = [len((sweep / job / "measurements.jsonl").read_text().splitlines()) for job in ("0", "1")]
    assert counts == [2 + 2, 4 + 2]  # one row per repeat of each of the two scenes, and the two memory runs


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["suite=nope"], "there is no suite option 'nope'"),
        (["suite=kernels", "suite.dtype=float8"], "suite.dtype=float8 is not one of: float16, bfloat16, float32"),
        (["suite=kernels", "suite.backends=[triton]"], "must start with reference"),
        (["suite=overhead", "suite.backbones=[warp]"], "the overhead suite compares: animatediff, svd"),
        (["suite=backbones", "suite.backbones=[svd_tiny,animatedif_tiny]"], "there is no backbone named 'animatedif_tiny'"),
        (["suite=backbones", "suite.samplers=[phazed]"], "there is no sampler named 'phazed'"),
        (["suite=backbones", "suite.modules=[{name:x,backbone:nope}]"], "there is no backbone named 'nope'"),
        (["suite=preview", "suite.repeats=0"], "suite.repeats=0 must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, overrides, message) -> None:
    run = tmp_path / "run"
    assert main(["bench", *overrides, f"hydra.run.dir={run}"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not run.exists()


def test_control_measures_adherence_on_the_procedural_cases(tmp_path) -> None:
    rows, table = bench(tmp_path, "suite=control", "suite.size=128", "suite.num_frames=8")
    assert [r["case"] for r in rows] == ["drag_disc", "two_objects", "brushed", "slow_diagonal", "out_of_brush", "crossing"]
    assert all(r["backbone"] == "warp" and r["epe_mean_px"] < 1.0 and r["lost"] == 0 for r in rows)
    assert [r["leakage"] is not None for r in rows] == [False, False, True, False, True, True]
    assert [r["hidden"] for r in rows] == [0, 0, 0, 0, 0, 1]  # the crossing square passes behind the disc
    by_case = {r["case"]: r for r in rows}
    assert by_case["out_of_brush"]["ghost"] == 0.0 and by_case["out_of_brush"]["tear"] < 0.05
    assert by_case["crossing"]["tear"] < 0.05 and all(0 <= r["ghost"] < 0.2 for r in rows)
    assert all(len(r["epe_per_frame_px"]) == 8 and r["temporal_error"] >= 0 for r in rows)
    assert "warp: trajectory end-point error" in table and "(goal ≤ 1 px)" in table and "ghost at most" in table
    assert (tmp_path / "run" / "adherence.png").is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_kernels_without_a_gpu_skip_the_gpu_timings_at_once(tmp_path) -> None:
    rows, table = bench(tmp_path, "suite=kernels")
    assert [r["note"] for r in rows] == [kernels_suite.NO_GPU]
    assert f"- {kernels_suite.NO_GPU}" in table
