"""The README's Python examples run as shown."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from motionforge.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    """Every ```python block of the README, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def readme_block(first_line: str) -> str:
    """The README's python block that starts with the given line."""
    return next(block for block in python_blocks() if block.startswith(first_line))


def test_the_python_api_example_runs(capsys) -> None:
    exec(readme_block("from motionforge import compose_config, animate"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "(8, 512, 512, 3) 8.0"
    assert printed[1] == "torch.Size([8, 2, 512, 512])"


def control_commands() -> list[str]:
    """Every `motionforge animate` line of the README's Controls section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Controls") : text.index("## Configuration is Hydra")]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("motionforge animate")]


def test_the_controls_section_shows_every_control() -> None:
    commands = " ".join(control_commands())
    for name in ("trajectory", "landmark", "brush", "dense_flow", "motion_strength", "camera"):
        assert f"adapters.{name}." in commands, name
    assert sum(command.count(",") >= 1 for command in control_commands()) >= 4  # combinations


@pytest.mark.parametrize("command", control_commands())
def test_each_control_command_runs_from_the_repository_root(command, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(README.parent)
    smaller = ["num_frames=4", "height=128", "width=128", "progress=false", "output.gif=false", "output.flow=false"]
    run = tmp_path / "run"
    assert main([*shlex.split(command)[1:], *smaller, f"hydra.run.dir={run}"]) == 0
    assert (run / "animation.mp4").is_file() and (run / "manifest.json").is_file()


def backbone_commands() -> list[str]:
    """The tiny-model `motionforge animate` lines of the README's Diffusion backbones section (the others need checkpoints)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Diffusion backbones") : text.index("## Controls")]
    lines = [line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL) for line in block.splitlines()]
    return [line for line in lines if line.startswith("motionforge animate") and "_tiny" in line]


@pytest.mark.parametrize("command", backbone_commands())
def test_each_tiny_backbone_command_runs(command, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(README.parent)  # some use the files in examples/
    run = tmp_path / "run"
    assert main([*shlex.split(command)[1:], "progress=false", "output.gif=false", f"hydra.run.dir={run}"]) == 0
    assert (run / "animation.mp4").is_file()


def module_commands() -> list[str]:
    """The `motionforge animate` lines of the README's Trained modules section that need no file (the tiny modules)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Trained modules") : text.index("## Controls")]
    lines = [line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL) for line in block.splitlines()]
    return [line for line in lines if line.startswith("motionforge animate") and "=tiny" in line]


@pytest.mark.parametrize("command", module_commands())
def test_each_tiny_module_command_runs(command, tmp_path) -> None:
    run = tmp_path / "run"
    assert main([*shlex.split(command)[1:], "progress=false", "output.gif=false", f"hydra.run.dir={run}"]) == 0
    assert (run / "animation.mp4").is_file()


def bench_commands() -> list[str]:
    """The `motionforge bench` lines of the README's Benchmarks section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Benchmarks") : text.index("## Status")]
    lines = [line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL) for line in block.splitlines()]
    return [line.split("#")[0].strip() for line in lines if line.startswith("motionforge bench")]


# The README's bench commands at a test's size: fewer frames and repeats (the commands run as shown otherwise).
SMALLER_BENCH = {"suite=preview": ["suite.num_frames=8", "suite.repeats=1", "suite.memory_frames=[4,8]"]}


@pytest.mark.parametrize("command", bench_commands())
def test_each_bench_command_runs(command, tmp_path) -> None:
    run = tmp_path / "run"
    smaller = [extra for suite, extras in SMALLER_BENCH.items() if suite in command for extra in extras]
    assert main([*shlex.split(command)[1:], *smaller, f"hydra.run.dir={run}"]) == 0
    assert (run / "table.md").is_file() and (run / "measurements.jsonl").is_file()


def console_examples() -> list[tuple[str, str]]:
    """Every `$ motionforge …` line of the README's console blocks, with the line the README says it prints."""
    blocks = re.findall(r"```console\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    pairs = []
    for block in blocks:
        lines = block.splitlines()
        pairs += [(command[2:], shown) for command, shown in zip(lines, lines[1:]) if command.startswith("$ motionforge ")]
    return pairs


def test_the_readme_shows_what_goes_wrong() -> None:
    shown = " ".join(command for command, _ in console_examples())
    for example in ("image=café.jpg", "height=100000", "pathz", "-m ", "motion.threshold=2"):
        assert example in shown, example


@pytest.mark.parametrize("command, shown", console_examples())
def test_each_console_example_prints_what_the_readme_shows(command, shown, tmp_path, capsys) -> None:
    status = main(shlex.split(command)[1:])
    printed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]  # progress bars aside
    assert status == 2 and len(printed) == 1, printed
    pattern = ".*".join(re.escape(part) for part in shown.split("…"))  # … stands for the figures of this machine
    assert re.fullmatch(pattern, printed[0]), printed[0]
