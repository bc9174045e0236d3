"""What a benchmark run writes: JSON lines, a markdown table with its machine, plots, and the committed snapshot."""

from __future__ import annotations

import json

import torch
from PIL import Image

from motionforge.bench.report import bar_plot, line_plot, machine, machine_slug, markdown_table, snapshot, write_report

ROWS = [
    {"sampler": "phased", "frames": 16, "seconds": 1.23456, "skipped": None},
    {"sampler": "single", "frames": 128, "skipped": "too long"},
]


def test_the_table_rounds_numbers_and_marks_missing_values() -> None:
    assert markdown_table(ROWS, ["sampler", "frames", "seconds", "skipped"]).splitlines() == [
        "| sampler | frames | seconds | skipped |",
        "|---|---|---|---|",
        "| phased | 16 | 1.235 | – |",
        "| single | 128 | – | too long |",
    ]


def test_a_report_is_json_lines_and_a_table_that_names_the_machine(tmp_path) -> None:
    info = machine(torch.device("cpu"))
    files = write_report(tmp_path, "backbones", ROWS, ["sampler", "frames"], ["a summary line"], info, "motionforge bench")
    assert [f.name for f in files] == ["measurements.jsonl", "table.md"]
    lines = [json.loads(line) for line in (tmp_path / "measurements.jsonl").read_text().splitlines()]
    assert [line["sampler"] for line in lines] == ["phased", "single"]
    assert all(line["suite"] == "backbones" and line["machine"]["cores"] == info["cores"] for line in lines)
    table = (tmp_path / "table.md").read_text()
    assert f"{info['cores']} cores" in table and "Command: `motionforge bench`" in table and "- a summary line" in table


def test_plots_are_pngs(tmp_path) -> None:
    line_plot(tmp_path / "lines.png", {"a": ([16, 64], [1.0, 3.0])}, "frames", "seconds", "title")
    bar_plot(tmp_path / "bars.png", {"x": [1.0, 2.0], "y": [2.0, 1.0]}, ["one", "two"], "value", "title", line=1.5)
    assert Image.open(tmp_path / "lines.png").size == Image.open(tmp_path / "bars.png").size == (600, 400)


def test_a_snapshot_replaces_the_last_one_of_its_suite_and_machine(tmp_path) -> None:
    run, results = tmp_path / "run", tmp_path / "results"
    info = {**machine(torch.device("cpu")), "gpu": None}
    files = write_report(run, "preview", ROWS, ["sampler"], [], info, "motionforge bench")
    files.append(bar_plot(run / "fps.png", {"fps": [1.0]}, ["run 1"], "fps", "t"))
    results.mkdir()
    (results / "preview-cpu-old.png").write_bytes(b"stale")
    (results / "kernels-cpu.md").write_text("another suite")
    snapshot(files, "preview", info, results)
    assert sorted(p.name for p in results.iterdir()) == [
        "kernels-cpu.md",
        "preview-cpu-fps.png",
        "preview-cpu.jsonl",
        "preview-cpu.md",
    ]
    assert machine_slug({"gpu": "NVIDIA H100 80GB HBM3"}) == "NVIDIA-H100-80GB-HBM3"
