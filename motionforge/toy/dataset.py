"""Toy dataset folders: clips written as PNG frames with their tracks (motionforge's track JSON) and masks beside them.

A folder holds ``toy.json`` (what made it: the world settings, the split and the seeds) and one
sub-folder per clip, named by its seed: ``frames/000.png …``, ``tracks.json`` (each sprite
centre's track with its visibility, readable by ``adapters.trajectory.file``) and ``masks.npz``
(``masks`` [S, F, H, W] bool, ``visible`` [S, F] bool). Splits are disjoint ranges of seeds, so a
held-out clip is never a training clip.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from motionforge.core.errors import InputError
from motionforge.toy.world import ToyClip, WorldSettings, make_clip

MANIFEST = "toy.json"
FORMAT = "motionforge-toy"
VERSION = 1
SPLITS = {"train": 0, "heldout": 1_000_000}  # each split's first seed; a split holds up to a million clips


def split_seeds(split: str, count: int, start: int = 0) -> list[int]:
    """The seeds of a split's clips ``start`` … ``start + count − 1``; one sentence for an unknown split."""
    if split not in SPLITS:
        raise InputError(f"toy split {split!r} is not one of: {', '.join(SPLITS)}")
    if count < 1 or start < 0 or start + count > 1_000_000:
        raise InputError(f"toy count={count} and start={start} must give 1 to 1000000 clips within the split")
    return [SPLITS[split] + start + index for index in range(count)]


def _clip_name(seed: int) -> str:
    """A clip's folder name: its seed, zero-padded."""
    return f"{seed:07d}"


def write_clip(clip: ToyClip, folder: Path) -> None:
    """Write one clip's frames, tracks and masks into a new folder."""
    frames = folder / "frames"
    frames.mkdir(parents=True)
    for index, frame in enumerate(clip.frames):
        Image.fromarray(frame).save(frames / f"{index:03d}.png")
    size = clip.frames.shape[2], clip.frames.shape[1]
    tracks = [
        {"points": [[round(float(x), 4), round(float(y), 4)] for x, y in track], "visible": [bool(v) for v in shown]}
        for track, shown in zip(clip.tracks, clip.visible)
    ]
    (folder / "tracks.json").write_text(json.dumps({"size": list(size), "tracks": tracks}), encoding="utf-8")
    np.savez_compressed(
        folder / "masks.npz",
        masks=clip.masks,
        visible=clip.visible,
        kinds=np.array(clip.kinds),
        colours=clip.colours,
        radii=clip.radii,
        camera=np.array(clip.camera),
    )


def write_dataset(
    root: str | os.PathLike, settings: WorldSettings, split: str = "train", count: int = 256, start: int = 0
) -> Path:
    """Write a split's clips into a new folder ``root`` (atomically: a partial folder is renamed when all are written)."""
    settings.check()
    root = Path(root).expanduser()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InputError(f"{root} already exists and is not an empty folder; pass a new folder for the toy dataset")
    seeds = split_seeds(split, count, start)
    partial = root.with_name(f".{root.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        for seed in seeds:
            write_clip(make_clip(seed, settings), partial / _clip_name(seed))
        manifest = {"format": FORMAT, "version": VERSION, "split": split, "seeds": seeds, "world": dataclasses.asdict(settings)}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if root.exists():
            root.rmdir()
        os.replace(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return root


@dataclasses.dataclass
class ToyDataset:
    """A toy dataset folder, checked when opened; clips are read on demand."""

    root: Path
    split: str
    seeds: list[int]
    world: WorldSettings

    @classmethod
    def open(cls, root: str | os.PathLike, key: str = "data.folder") -> ToyDataset:
        """Open a folder written by :func:`write_dataset`; one sentence when it is not one."""
        root = Path(root).expanduser()
        make = f"make one with `motionforge toy make {root}`"
        if not root.is_dir():
            raise InputError(f"{key}={root} is not a folder; {make}")
        manifest = root / MANIFEST
        if not manifest.is_file():
            raise InputError(f"{key}={root} is not a toy dataset (it has no {MANIFEST}); {make}")
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError("format")
            world = WorldSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["world"].items()})
            seeds = [int(seed) for seed in data["seeds"]]
            split = str(data["split"])
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
            raise InputError(f"{key}={root}: its {MANIFEST} is not a toy dataset's manifest; {make}") from None
        missing = [seed for seed in seeds if not (root / _clip_name(seed) / "masks.npz").is_file()]
        if missing:
            raise InputError(
                f"{key}={root} lacks {len(missing)} of its {len(seeds)} clips (e.g. {_clip_name(missing[0])}); {make}"
            )
        return cls(root, split, seeds, world)

    def __len__(self) -> int:
        """How many clips the folder holds."""
        return len(self.seeds)

    def clip(self, index: int) -> ToyClip:
        """Read clip ``index`` back as a ToyClip (frames from the PNGs, ground truth from tracks.json and masks.npz)."""
        seed = self.seeds[index]
        folder = self.root / _clip_name(seed)
        count = self.world.num_frames
        frames = np.stack([np.asarray(Image.open(folder / "frames" / f"{f:03d}.png").convert("RGB")) for f in range(count)])
        data = json.loads((folder / "tracks.json").read_text(encoding="utf-8"))
        tracks = np.array([track["points"] for track in data["tracks"]], dtype=np.float64).reshape(-1, count, 2)
        with np.load(folder / "masks.npz") as saved:
            return ToyClip(
                seed=seed,
                frames=frames,
                tracks=tracks,
                masks=saved["masks"],
                visible=saved["visible"],
                kinds=[str(kind) for kind in saved["kinds"]],
                colours=saved["colours"],
                radii=saved["radii"],
                camera=bool(saved["camera"]),
            )

    def clips(self, indices: Sequence[int] | None = None) -> Iterator[ToyClip]:
        """The clips, in order (or those at ``indices``)."""
        for index in range(len(self)) if indices is None else indices:
            yield self.clip(index)

    def frames_path(self, index: int, frame: int = 0) -> Path:
        """The PNG of one frame of clip ``index`` (frame 0: the picture a control run starts from)."""
        return self.root / _clip_name(self.seeds[index]) / "frames" / f"{frame:03d}.png"

    def tracks_path(self, index: int) -> Path:
        """The track file of clip ``index``."""
        return self.root / _clip_name(self.seeds[index]) / "tracks.json"
