"""The training loop every task shares: accelerate, seeded batches by step, checkpoints to resume from, the loss logged and plotted.

A task (:class:`Task`) owns its model and its loss; the loop owns the rest. A checkpoint is
accelerate's state (model, optimiser, RNGs: what a resumed run reads) and the model as a diffusers
folder (``checkpoints/step-N/model``: what a sampler reads). Each step's batch and
noise come from a generator seeded by (seed, step, process), never from a running stream, so a run
resumed from a checkpoint takes exactly the steps the uninterrupted run would have taken, and
``accelerate launch`` over several processes gives each its own share.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from motionforge.core.errors import ConfigError, InputError

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
MODEL = "model"
LOSS_CSV = "loss.csv"
LOSS_PLOT = "loss.png"
STATE = "trainer.json"


class Task(Protocol):
    """One model to train: its trainable module (whose forward is the loss), each step's batch, and how to save it."""

    name: str
    module: torch.nn.Module  # forward(**batch) → the loss; what the optimiser trains (frozen parts are not its parameters)

    def batch(self, step: int, generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """Step ``step``'s batch and noise, drawn from ``generator``, on ``device``."""
        ...

    def save(self, module: torch.nn.Module, folder: Path) -> None:
        """Write the trained module (unwrapped) as a diffusers-format folder."""
        ...


@dataclass(frozen=True)
class LoopSettings:
    """How long and how fast to train, and how often to checkpoint."""

    steps: int = 1000
    lr: float = 2e-4
    warmup: int = 50  # steps of linear learning-rate warm-up
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # the gradients' largest norm (0: no clipping)
    checkpoint_every: int = 250  # steps between checkpoints (the last step always writes one)
    keep_checkpoints: int = 2  # how many checkpoints to keep (older ones are removed)
    seed: int = 0
    resume: bool = True  # continue from the output folder's newest checkpoint, if it has one
    progress: bool = True

    def check(self) -> None:
        """Refuse settings that cannot train, one sentence each."""
        if self.steps < 1:
            raise ConfigError(f"train.steps={self.steps} must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"train.lr={self.lr} must be a positive number, e.g. 2e-4")
        if self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ConfigError("train.checkpoint_every and train.keep_checkpoints must be at least 1")


def step_generator(seed: int, step: int, process: int) -> torch.Generator:
    """The generator of one step on one process: the same (seed, step, process) always draws the same batch and noise."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 9_176 + process * 31) % (2**63))


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """The output folder's checkpoints as (step, path), oldest first."""
    found = []
    for path in (folder / CHECKPOINTS).glob("step-*"):
        state = path / STATE
        if path.is_dir() and state.is_file():
            found.append((int(json.loads(state.read_text(encoding="utf-8"))["step"]), path))
    return sorted(found)


def learning_rate(settings: LoopSettings, step: int) -> float:
    """The learning rate of a step: linear warm-up to ``lr``, then constant."""
    return settings.lr * min(1.0, (step + 1) / max(1, settings.warmup))


def _append_losses(path: Path, rows: list[tuple[int, float, float, float]]) -> None:
    """Append (step, loss, lr, seconds) rows to the loss log, with its header when the file is new."""
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["step", "loss", "lr", "seconds"])
        writer.writerows([(s, f"{loss:.6g}", f"{lr:.6g}", f"{t:.3f}") for s, loss, lr, t in rows])


def read_losses(path: Path, before: int | None = None) -> list[tuple[int, float]]:
    """The logged (step, loss) pairs, those before step ``before`` only when given."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        rows = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(handle)]
    return [r for r in rows if before is None or r[0] < before]


def _truncate_losses(path: Path, before: int) -> None:
    """Drop the logged steps from ``before`` on (they are retaken after a resume)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept = [r for r in rows if int(r["step"]) < before]
    path.unlink()
    _append_losses(path, [(int(r["step"]), float(r["loss"]), float(r["lr"]), float(r["seconds"])) for r in kept])


def plot_losses(path: Path, target: Path, title: str) -> Path:
    """Plot the loss log (raw and smoothed) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_losses(path)
    steps = [s for s, _ in rows]
    losses = [loss for _, loss in rows]
    smooth, average = [], None
    for loss in losses:
        average = loss if average is None else 0.97 * average + 0.03 * loss
        smooth.append(average)
    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.plot(steps, losses, color="#bbbbbb", linewidth=0.8, label="loss")
    axes.plot(steps, smooth, color="#c03030", linewidth=1.6, label="smoothed")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_yscale("log")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(target)
    plt.close(figure)
    return target


def train(task: Task, settings: LoopSettings, folder: Path, accelerator: Any) -> Path:
    """Train ``task`` in ``folder`` (resuming from its newest checkpoint when asked) and save the model to folder/model."""
    settings.check()
    folder.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.AdamW(
        [p for p in task.module.parameters() if p.requires_grad], lr=settings.lr, weight_decay=settings.weight_decay
    )
    module, optimizer = accelerator.prepare(task.module, optimizer)
    start = 0
    found = checkpoints(folder)
    if found and settings.resume:
        start, path = found[-1]
        accelerator.load_state(str(path))
        log.info("resuming %s from %s (step %d)", task.name, path, start)
        if accelerator.is_main_process:
            _truncate_losses(folder / LOSS_CSV, start)
    elif found:
        raise InputError(f"{folder} already has checkpoints of a run; pass train.resume=true to continue it, or a new out folder")
    if start >= settings.steps:
        log.info("%s: already trained for %d steps", task.name, start)
    bar = tqdm(
        total=settings.steps,
        initial=start,
        desc=f"train {task.name}",
        disable=not (settings.progress and accelerator.is_main_process),
    )
    pending: list[tuple[int, float, float, float]] = []
    began = time.perf_counter()
    module.train()
    for step in range(start, settings.steps):
        rate = learning_rate(settings, step)
        for group in optimizer.param_groups:
            group["lr"] = rate
        generator = step_generator(settings.seed, step, accelerator.process_index)
        loss = module(**task.batch(step, generator, accelerator.device))
        if not torch.isfinite(loss):
            raise InputError(f"the {task.name} loss became {float(loss)} at step {step}; lower train.lr (it is {settings.lr:g})")
        accelerator.backward(loss)
        if settings.grad_clip > 0:
            accelerator.clip_grad_norm_(module.parameters(), settings.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(accelerator.reduce(loss.detach(), reduction="mean"))
        pending.append((step, value, rate, time.perf_counter() - began))
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}")
        done = step + 1
        if done % settings.checkpoint_every == 0 or done == settings.steps:
            _checkpoint(accelerator, folder, done, settings, pending)
            if accelerator.is_main_process:  # the checkpoint's model as a diffusers folder too, to sample from
                task.save(accelerator.unwrap_model(module), folder / CHECKPOINTS / f"step-{done:07d}" / MODEL)
                module.train()
            pending = []
    bar.close()
    accelerator.wait_for_everyone()
    target = folder / MODEL
    if accelerator.is_main_process:
        partial = folder / f".{MODEL}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        task.save(accelerator.unwrap_model(module), partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        if (folder / LOSS_CSV).exists():
            plot_losses(folder / LOSS_CSV, folder / LOSS_PLOT, f"motionforge train: {task.name}")
    accelerator.wait_for_everyone()
    return target


def _checkpoint(
    accelerator: Any, folder: Path, step: int, settings: LoopSettings, pending: list[tuple[int, float, float, float]]
) -> None:
    """Save the accelerator's state (model, optimiser, RNGs) at ``step``, log the losses since the last one, keep the newest few."""
    path = folder / CHECKPOINTS / f"step-{step:07d}"
    accelerator.save_state(str(path))
    if not accelerator.is_main_process:
        return
    _append_losses(folder / LOSS_CSV, pending)
    (path / STATE).write_text(json.dumps({"step": step, "seed": settings.seed}), encoding="utf-8")
    for _, old in checkpoints(folder)[: -settings.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)
