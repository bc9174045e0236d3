"""The sampler cost benchmark runs each sampler in its own process and reads the cost from the manifest."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "samplers.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("samplers_suite", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_run_reads_its_cost_from_the_manifest(suite) -> None:
    row = suite.run("animatediff_tiny", "phased", 24, 5, 64, 8, "cpu")
    # 24 frames in windows of 16: window 1 runs 5 steps, window 2 redoes the last one (M = ⌊0.8 · 5⌋ = 4)
    assert (row["denoiser_calls"], row["frame_evaluations"]) == (6, 6 * 16)
    assert row["rss_mb"] > 0 and row["render_s"] > 0 and row["cuda_mb"] is None


def test_the_summary_compares_calls_and_memory_growth(suite) -> None:
    rows = [
        {
            "sampler": "periodic_overlap",
            "frames": 16,
            "denoiser_calls": 25,
            "frame_evaluations": 400,
            "render_s": 1.0,
            "rss_mb": 1000.0,
            "cuda_mb": None,
        },
        {
            "sampler": "periodic_overlap",
            "frames": 128,
            "denoiser_calls": 375,
            "frame_evaluations": 6000,
            "render_s": 9.0,
            "rss_mb": 1100.0,
            "cuda_mb": None,
        },
        {
            "sampler": "phased",
            "frames": 16,
            "denoiser_calls": 25,
            "frame_evaluations": 400,
            "render_s": 1.0,
            "rss_mb": 1000.0,
            "cuda_mb": None,
        },
        {
            "sampler": "phased",
            "frames": 128,
            "denoiser_calls": 60,
            "frame_evaluations": 960,
            "render_s": 2.0,
            "rss_mb": 1050.0,
            "cuda_mb": None,
        },
    ]
    assert suite.summary(rows) == [
        "denoiser calls at 128 frames, phased / periodic_overlap: 0.160 (goal: at most 0.2)",
        "peak RSS of periodic_overlap, 128 frames / 16: 1.100 (goal: at most 1.5)",
        "peak RSS of phased, 128 frames / 16: 1.050 (goal: at most 1.5)",
    ]
    assert suite.table(rows).splitlines()[2] == "| periodic_overlap | 16 | 25 | 400 | 1.00 | 1000 | – |"
