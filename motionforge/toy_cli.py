"""``motionforge toy make DIR``: write a toy dataset (procedural clips with their tracks and masks) for training and benchmarks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from motionforge.core.errors import MotionforgeError
from motionforge.toy.dataset import SPLITS, write_dataset
from motionforge.toy.world import WorldSettings


def parser() -> argparse.ArgumentParser:
    """The ``toy`` command's arguments."""
    parse = argparse.ArgumentParser(
        prog="motionforge toy", description="Write toy datasets: clips of sprites moving along known tracks."
    )
    sub = parse.add_subparsers(dest="action", required=True)
    make = sub.add_parser("make", help="write a dataset folder")
    make.add_argument("folder", help="a new (or empty) folder")
    make.add_argument("--split", choices=list(SPLITS), default="train", help="train, or heldout (disjoint seeds)")
    make.add_argument("--count", type=int, default=256, help="how many clips (default 256)")
    make.add_argument("--start", type=int, default=0, help="the first clip of the split (default 0)")
    make.add_argument("--size", type=int, default=WorldSettings.size, help="frame side in pixels (default 64)")
    make.add_argument("--frames", type=int, default=WorldSettings.num_frames, help="frames per clip (default 8)")
    make.add_argument("--max-sprites", type=int, default=WorldSettings.max_sprites, help="sprites per clip, at most (default 3)")
    make.add_argument("--camera", type=float, default=WorldSettings.camera, help="chance of a camera pan or zoom (default 0.3)")
    return parse


def toy_command(argv: Sequence[str]) -> int:
    """Run ``motionforge toy``; errors the user caused are one line and status 2."""
    args = parser().parse_args(list(argv))
    settings = WorldSettings(
        size=args.size, num_frames=args.frames, max_sprites=args.max_sprites, camera=args.camera
    )  # fmt: skip
    try:
        if not 0 <= args.camera <= 1:
            from motionforge.core.errors import ConfigError

            raise ConfigError(f"--camera {args.camera} must be a chance between 0 and 1")
        root = write_dataset(args.folder, settings, args.split, args.count, args.start)
    except MotionforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{root}: {args.count} {args.split} clips of {args.frames} frames at {args.size}x{args.size}")
    return 0
