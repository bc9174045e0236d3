"""One `motionforge animate` run in its own process, so that its peak memory is its own; its cost read from the manifest."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from motionforge.core.errors import MotionforgeError

QUIET = ["progress=false", "output.gif=false", "output.flow=false", "output.hint=false"]


def animate_in_process(overrides: Sequence[str]) -> dict[str, Any]:
    """Run `motionforge animate` with the overrides in a fresh process: its manifest, with ``process_s`` (wall seconds).

    A run the engine refuses (e.g. more frames than the single sampler's window) comes back as
    ``{"skipped": "<its one-sentence error>"}``; any other failure raises.
    """
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "motionforge", "animate", *overrides, *QUIET, f"output.dir={folder}"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode == 2:
            lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
            return {"skipped": lines[-1].removeprefix("error: ") if lines else done.stderr.strip()[-300:]}
        if done.returncode != 0:
            reason = " ".join(done.stderr.split())[-300:]
            raise MotionforgeError(f"a benchmark run failed (motionforge animate {' '.join(overrides)}): {reason}")
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    return {**manifest, "process_s": round(seconds, 3)}
