"""``motionforge tracks convert IN OUT``: rewrite a track file in another format, the canvas size carried."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from motionforge.core.errors import InputError, MotionforgeError
from motionforge.io.tracks import FORMATS, read_tracks, write_tracks
from motionforge.io.tracks.trackset import TrackSet

DESCRIPTION = "Convert point tracks between the formats motionforge reads: " + ", ".join(FORMATS) + "."


def parse_canvas(text: str, option: str = "--canvas") -> tuple[float, float]:
    """'832x480' → (832.0, 480.0), or an InputError naming the option and saying how to write it."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"{option} {text} must be WIDTHxHEIGHT in pixels, e.g. {option} 832x480") from None
    if not (width > 0 and height > 0 and width < float("inf") and height < float("inf")):
        raise InputError(f"{option} {text} must be two positive sizes in pixels, e.g. {option} 832x480")
    return width, height


def convert(
    source: str,
    target: str,
    *,
    source_format: str | None = None,
    target_format: str | None = None,
    canvas: str | None = None,
    resize: str | None = None,
    visibility: str | None = None,
) -> list[str]:
    """Read ``source``, write ``target`` (atomically), and return the lines to print: the files written and what the format dropped."""
    size = parse_canvas(canvas) if canvas is not None else None
    tracks, read_as = read_tracks(source, source_format, canvas=size, visibility=visibility)
    if size is not None and tracks.canvas is not None and tuple(tracks.canvas) != size:
        width, height = tracks.canvas
        raise InputError(f"{source} says its canvas is {width:g}x{height:g}, which --canvas {canvas} contradicts; drop --canvas")
    if resize is not None:
        if tracks.canvas is None:
            raise InputError(f"{source} does not say its canvas, so it cannot be resized; give it with --canvas WxH")
        tracks = tracks.rescaled(parse_canvas(resize, "--resize"))
    written = write_tracks(tracks, target, target_format)
    chosen = target_format or _format_of(target)
    lines = [f"{source} ({read_as}) -> " + ", ".join(str(p) for p in written) + f" ({chosen}): " + _summary(tracks)]
    lines += _dropped(tracks, chosen)
    return lines


def _format_of(target: str) -> str:
    """The format a target's suffix chooses (as write_tracks does)."""
    from motionforge.io.tracks import SUFFIXES

    return SUFFIXES.get(os.path.splitext(target)[1].lower(), "motionforge")


def _summary(tracks: TrackSet) -> str:
    """'3 tracks of 16 points, 2 hidden, canvas 832x480'."""
    hidden = int((~tracks.visible).sum())
    canvas = "canvas not known" if tracks.canvas is None else f"canvas {tracks.canvas[0]:g}x{tracks.canvas[1]:g}"
    return f"{tracks.num_tracks} track{'s' if tracks.num_tracks != 1 else ''} of {tracks.num_points} points, {hidden} hidden, {canvas}"


def _dropped(tracks: TrackSet, name: str) -> list[str]:
    """Notes on what the output format cannot hold of these tracks."""
    form, notes = FORMATS[name], []
    if tracks.canvas is not None and not form.canvas:
        width, height = tracks.canvas
        notes.append(
            f"note: {name} files do not say the canvas; read it back with adapters.trajectory.size=[{width:g},{height:g}]"
        )
    if not form.visibility and not tracks.visible.all():
        notes.append(
            f"note: {name} files hold no visibility; the {int((~tracks.visible).sum())} hidden points are written as seen"
        )
    if not form.strength and not (tracks.strength == 1.0).all():
        notes.append(f"note: {name} files hold no strength; each track's strength is applied to its points")
    return notes


def tracks_command(argv: Sequence[str]) -> int:
    """``motionforge tracks convert IN OUT [--from F] [--to F] [--canvas WxH] [--resize WxH] [--visibility FILE]``; errors: one line, status 2."""
    parser = argparse.ArgumentParser(prog="motionforge tracks", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("convert", help="convert a track file to another format", description=DESCRIPTION)
    command.add_argument("source", metavar="IN", help="the track file to read (format detected from its suffix and content)")
    command.add_argument("target", metavar="OUT", help="the file to write (format from its suffix unless --to names it)")
    command.add_argument(
        "--from", dest="source_format", choices=list(FORMATS), help="the input's format, when detection is ambiguous"
    )
    command.add_argument(
        "--to", dest="target_format", choices=list(FORMATS), help="the output's format (.json files default to motionforge)"
    )
    command.add_argument(
        "--canvas", metavar="WxH", help="the canvas size the input's points are on, for inputs that do not say it"
    )
    command.add_argument("--resize", metavar="WxH", help="write the points rescaled onto a canvas of this size")
    command.add_argument(
        "--visibility", metavar="FILE", help="a Wan-Move visibility .npy other than the tracks' *_visibility.npy"
    )
    args = parser.parse_args(list(argv))
    try:
        lines = convert(
            args.source,
            args.target,
            source_format=args.source_format,
            target_format=args.target_format,
            canvas=args.canvas,
            resize=args.resize,
            visibility=args.visibility,
        )
    except MotionforgeError as exc:
        if os.environ.get("MOTIONFORGE_DEBUG", "") not in ("", "0"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0
