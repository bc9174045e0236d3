"""The README's Python examples run as shown."""

from __future__ import annotations

import re
from pathlib import Path

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
