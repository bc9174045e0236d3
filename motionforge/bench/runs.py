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

from motionforge.core.config import hydra_string
from motionforge.core.errors import MotionforgeError

QUIET = ["progress=false", "output.gif=false", "output.flow=false", "output.hint=false"]


def animate_in_process(overrides: Sequence[str], folder: Path | None = None, quiet: bool = True) -> dict[str, Any]:
    """Run `motionforge animate` with the overrides in a fresh process: its manifest, with ``process_s`` (wall seconds).

    The run writes into ``folder`` (its outputs, manifest and Hydra's files), which the caller keeps
    (a bench's ``runs/<name>``); without one, into a temporary folder removed afterwards. ``quiet``
    leaves out the outputs beside the clip (GIF, flow video, hint image). A run the engine refuses
    (e.g. more frames than the single sampler's window) comes back as ``{"skipped": "<its
    one-sentence error>"}`` and leaves no folder; any other failure raises.
    """
    if folder is None:
        with tempfile.TemporaryDirectory() as scratch:
            return animate_in_process(overrides, Path(scratch) / "run", quiet)
    extra = QUIET if quiet else ["progress=false"]
    command = [sys.executable, "-m", "motionforge", "animate", *overrides, *extra, f"output.dir={hydra_string(str(folder))}"]
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

