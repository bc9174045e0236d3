"""The kernel benchmark runs: it skips GPU timings without a GPU and times the reference on a CPU when asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from motionforge.bench import kernels

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "kernels.py"


@pytest.fixture(scope="module")
def suite():
    return kernels


def test_the_script_is_the_same_benchmark() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "--backends" in done.stdout


def test_without_a_gpu_it_says_it_skips_the_gpu_timings(suite, capsys, monkeypatch) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert suite.main([]) == 0
    assert "skipping the GPU timings" in capsys.readouterr().out


def test_on_a_cpu_it_times_the_reference_for_every_case(suite, capsys) -> None:
    assert (
        suite.main(["--device", "cpu", "--scale", "0.002", "--repeats", "1", "--dtype", "float32", "--backends", "reference"])
        == 0
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "| reference |" in line]
    assert len(rows) == len(suite.cases())
    assert all(float(row.split("|")[4]) > 0 for row in rows)  # microseconds


def test_the_ideal_bytes_of_attention_count_every_input_once(suite) -> None:
    case = suite.Case("temporal_attention", "tiny", dict(S=3, heads=2, L=4, N=3, d=8))
    _, ideal = suite.inputs(case, torch.device("cpu"), torch.float16)
    assert ideal == 3 * 2 * 8 * (4 * 4 + 2 * 3) * 2
