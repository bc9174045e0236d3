"""Time the studio's live preview: from an edit (a click that moves a track's knot) to the preview's files written.

python benchmarks/studio_preview.py            # 16 frames at 512×512 on the bundled sample, 10 edits after a warm-up
python benchmarks/studio_preview.py --brush    # the same with the shuttle brushed (a layer over the background plate)

Prints the median and the slowest of the edits, for the clip alone and with its flow, and the thread count.
The page shows the same figure under the preview ("ready … s after the edit"), measured in the server.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from motionforge.studio.draw import overlay
from motionforge.studio.preview import flow_preview, preview
from motionforge.studio.session import close_session, sample_session


def main() -> int:
    """Run the edits and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--brush", action="store_true", help="brush the shuttle first")
    args = parser.parse_args()
    session = sample_session(Path(tempfile.mkdtemp(prefix="studio-bench-")))
    controls = session.controls
    if args.brush:
        for y in range(90, 300, 30):
            controls.click("brush", 410, y, radius=40)
    clip, whole = [], []
    for edit in range(args.edits + 1):  # the first is the warm-up
        start = time.perf_counter()
        controls.click("move", *controls.tracks[0].points[-1])  # pick the shuttle track's last knot ...
        controls.click("move", 422 + edit % 3, 105 - edit % 5)  # ... and move it
        overlay(session.picture, controls)
        made = preview(controls, session.files, session.folder / "previews", f"p{edit}")
        shown = time.perf_counter()
        flow_preview(made)
        done = time.perf_counter()
        if edit:
            clip.append(shown - start)
            whole.append(done - start)
    close_session(session)
    width, height = made.size
    print(
        f"studio preview: {made.num_frames} frames at {width}x{height}, {args.edits} edits, torch threads {torch.get_num_threads()}"
    )
    print(f"  edit -> preview clip written: median {statistics.median(clip):.3f} s, slowest {max(clip):.3f} s")
    print(f"  edit -> clip and flow written: median {statistics.median(whole):.3f} s, slowest {max(whole):.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
