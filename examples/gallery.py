"""Render the README's control examples into one contact sheet: frames 0, middle and last of each.

    python examples/gallery.py                 # writes examples/gallery.png
    python examples/gallery.py --frames DIR    # also keeps every example's three frames as PNGs in DIR

The commands are read from the README's Controls section, so the sheet always shows what the README
says; each runs in this process at the README's own settings (the sample's size, 16 frames) with
nothing written but the sheet (256 colours, so that the committed file stays small). Same commands,
same seed: the same sheet, byte for byte.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
THUMB = 256  # pixels per frame on the sheet
LINE = 19  # pixels per line of text above each row
WRAP = 96  # characters per line of text
GAP = 4  # pixels between frames


def control_examples(readme: Path = README) -> list[tuple[str, str]]:
    """Every `motionforge animate` line of the README's Controls section, with the comment above it: [(comment, command)]."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## Controls") : text.index("## Configuration is Hydra")]
    examples = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        comment = ""
        for line in block.splitlines():
            if line.startswith("#"):
                comment = line.lstrip("# ").strip()
            elif line.startswith("motionforge animate"):
                examples.append((comment, line))
    return examples


def render(command: str) -> np.ndarray:
    """Run one `motionforge animate` line in this process, writing nothing: frames uint8 [F, H, W, 3]."""
    from motionforge import animate, compose_config

    overrides = shlex.split(command)[2:]
    return animate(compose_config([*overrides, "output.save=false", "progress=false"])).frames


def sheet(rows: list[tuple[str, np.ndarray]]) -> Image.Image:
    """Lay out each example's frames 0, middle and last in a row under its comment."""
    font = ImageFont.load_default(size=15)
    width = 3 * THUMB + 4 * GAP
    labels = [textwrap.wrap(label, WRAP) for label, _ in rows]
    heights = [
        len(lines) * LINE + 8 + THUMB * frames.shape[1] // frames.shape[2] + GAP for lines, (_, frames) in zip(labels, rows)
    ]
    canvas = Image.new("RGB", (width, sum(heights) + GAP), "white")
    draw = ImageDraw.Draw(canvas)
    top = GAP
    for lines, (_, frames), height in zip(labels, rows, heights):
        for number, line in enumerate(lines):
            draw.text((GAP, top + 4 + number * LINE), line, fill="black", font=font)
        below = top + len(lines) * LINE + 8
        picks = (0, (len(frames) - 1) // 2, len(frames) - 1)
        for column, index in enumerate(picks):
            thumb = Image.fromarray(frames[index]).resize((THUMB, THUMB * frames.shape[1] // frames.shape[2]), Image.LANCZOS)
            left = GAP + column * (THUMB + GAP)
            canvas.paste(thumb, (left, below))
            draw.text((left + 4, below + 4), f"frame {index}", fill="white", font=font, stroke_width=2, stroke_fill="black")
        top += height
    return canvas


def main(argv: list[str] | None = None) -> int:
    """Render every example and write the sheet (and, with --frames, each example's frames)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "gallery.png", help="where the sheet goes")
    parser.add_argument("--frames", type=Path, default=None, help="a folder for each example's three frames, full size")
    args = parser.parse_args(argv)
    rows = []
    for number, (comment, command) in enumerate(control_examples(), start=1):
        print(f"[{number}] {command}", file=sys.stderr)
        frames = render(command)
        rows.append((f"{number}. {comment}", frames))
        if args.frames is not None:
            args.frames.mkdir(parents=True, exist_ok=True)
            for index in (0, (len(frames) - 1) // 2, len(frames) - 1):
                Image.fromarray(frames[index]).save(args.frames / f"{number:02d}_frame{index:02d}.png")
    palette = sheet(rows).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)  # a third of the bytes
    palette.save(args.out, optimize=True)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
