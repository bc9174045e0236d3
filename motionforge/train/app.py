"""Run one training task from its Hydra config: the dataset opened and checked, accelerate set up, the loop run."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from motionforge.core.config import resolve_device
from motionforge.core.errors import ConfigError
from motionforge.toy.dataset import ToyDataset
from motionforge.train.data import load_clips
from motionforge.train.loop import LoopSettings, train

log = logging.getLogger(__name__)
TASKS = ("vae", "unet", "adapter")


def task_class(name: str) -> type:
    """The task of a model name; one sentence naming the models otherwise."""
    if name == "vae":
        from motionforge.train.vae import VaeTask

        return VaeTask
    if name == "unet":
        from motionforge.train.unet import UnetTask

        return UnetTask
    if name == "adapter":
        from motionforge.train.adapter import AdapterTask

        return AdapterTask
    raise ConfigError(f"model.name={name} is not a model motionforge trains; choose one of: {', '.join(TASKS)}")


def loop_settings(cfg: DictConfig) -> LoopSettings:
    """The loop's settings from the config's model and train keys."""
    t = cfg.train
    return LoopSettings(
        steps=int(cfg.model.steps), lr=float(cfg.model.lr), warmup=int(t.warmup), grad_clip=float(t.grad_clip),
        checkpoint_every=int(t.checkpoint_every), keep_checkpoints=int(t.keep_checkpoints), seed=int(cfg.seed),
        resume=bool(t.resume), progress=bool(t.progress),
    )  # fmt: skip


def save_dtype(name: str) -> torch.dtype:
    """The dtype the trained weights are saved in; one sentence for another name."""
    if name not in ("float32", "float16", "bfloat16"):
        raise ConfigError(f"train.save_dtype={name} is not one of: float32, float16, bfloat16")
    return getattr(torch, name)


def accelerator_for(device: str) -> object:
    """accelerate's Accelerator on the configured device (``accelerate launch`` sets the processes and their devices)."""
    from accelerate import Accelerator

    chosen = resolve_device(device)
    return Accelerator(cpu=chosen.type == "cpu")


def run_training(cfg: DictConfig, folder: Path) -> Path:
    """Train the configured model on the configured toy dataset in ``folder``; return its model folder."""
    for name in ("accelerate", "accelerate.accelerator", "accelerate.checkpointing"):
        logging.getLogger(name).setLevel(logging.WARNING)  # one line per checkpoint file otherwise
    task_cls = task_class(str(cfg.model.name))
    settings = loop_settings(cfg)
    settings.check()
    if cfg.data.folder is None:
        raise ConfigError("data.folder is not set; pass a toy dataset folder (make one with `motionforge toy make DIR`)")
    dataset = ToyDataset.open(cfg.data.folder)
    accelerator = accelerator_for(str(cfg.device))
    torch.manual_seed(settings.seed)
    clips = load_clips(dataset)
    log.info("train %s on %d clips of %s", cfg.model.name, len(dataset), dataset.root)
    task = task_cls(clips, cfg.model, settings.seed, save_dtype(str(cfg.train.save_dtype)))
    return train(task, settings, folder, accelerator)
