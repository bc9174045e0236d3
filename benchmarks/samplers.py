"""Cost of the long-video samplers: denoiser calls, frame evaluations, wall time and peak memory at 16 and 128 frames.

    python benchmarks/samplers.py                       # animatediff_tiny, 25 steps, 64×64: both samplers at 16 and 128 frames
    python benchmarks/samplers.py --save                # also write benchmarks/results/samplers-<device>.md and .json
    python benchmarks/samplers.py --backbone svd_tiny --size 128 --steps 10

Every run is a separate `motionforge animate` process, so its peak resident memory (and, on CUDA,
peak allocated GPU memory) is its own; the numbers come from the run's manifest. It then prints
phased's denoiser calls over periodic_overlap's at the longest clip, and each sampler's peak
memory at the longest clip over that at the shortest.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLERS = ("periodic_overlap", "phased")


def run(backbone: str, sampler: str, frames: int, steps: int, size: int, stride: int, device: str) -> dict:
    """One animate process; its manifest's cost figures."""
    with tempfile.TemporaryDirectory() as folder:
        keys = [f"sampler.stride={stride}"] if sampler == "periodic_overlap" else []
        command = [
            sys.executable, "-m", "motionforge", "animate", f"backbone={backbone}", f"sampler={sampler}", *keys,
            f"num_frames={frames}", f"steps={steps}", f"height={size}", f"width={size}", f"device={device}", "adapters=[]",
            "progress=false", "output.gif=false", "output.flow=false", "output.hint=false", f"output.dir={folder}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the run failed: {' '.join(command)}\n{done.stderr.strip()}")
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    return {
        "sampler": sampler,
        "frames": frames,
        "denoiser_calls": manifest["denoiser_calls"],
        "frame_evaluations": manifest["frame_evaluations"],
        "render_s": manifest["timings"]["render"],
        "rss_mb": manifest["peak_memory"]["rss_mb"],
        "cuda_mb": manifest["peak_memory"]["cuda_allocated_mb"],
    }


def table(rows: list[dict]) -> str:
    """The runs as a markdown table."""
    lines = [
        "| sampler | frames | denoiser calls | frame evaluations | render s | peak RSS MB | peak CUDA MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cuda = "–" if r["cuda_mb"] is None else f"{r['cuda_mb']:.0f}"
        lines.append(
            f"| {r['sampler']} | {r['frames']} | {r['denoiser_calls']} | {r['frame_evaluations']} | {r['render_s']:.2f} | {r['rss_mb']:.0f} | {cuda} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict]) -> list[str]:
    """Phased's calls over periodic_overlap's at the longest clip; each sampler's memory growth from the shortest to the longest."""
    longest, shortest = max(r["frames"] for r in rows), min(r["frames"] for r in rows)
    at = {(r["sampler"], r["frames"]): r for r in rows}
    lines = []
    if ("phased", longest) in at and ("periodic_overlap", longest) in at:
        ratio = at["phased", longest]["denoiser_calls"] / at["periodic_overlap", longest]["denoiser_calls"]
        lines.append(f"denoiser calls at {longest} frames, phased / periodic_overlap: {ratio:.3f} (goal: at most 0.2)")
    for sampler in SAMPLERS:
        if (sampler, longest) in at and (sampler, shortest) in at:
            for key, label in (("rss_mb", "peak RSS"), ("cuda_mb", "peak CUDA memory")):
                low, high = at[sampler, shortest][key], at[sampler, longest][key]
                if low and high:
                    lines.append(f"{label} of {sampler}, {longest} frames / {shortest}: {high / low:.3f} (goal: at most 1.5)")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the cost benchmark and print (and optionally save) its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="animatediff_tiny")
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 128])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    rows = [
        run(args.backbone, sampler, frames, args.steps, args.size, args.stride, args.device)
        for sampler in SAMPLERS
        for frames in args.frames
    ]
    text = table(rows)
    lines = summary(rows)
    print(text)
    print("\n".join(lines))
    if args.save:
        import torch

        device = torch.cuda.get_device_name() if args.device != "cpu" and torch.cuda.is_available() else "cpu"
        name = "cpu" if device == "cpu" else device.replace(" ", "-")
        RESULTS.mkdir(exist_ok=True)
        header = (
            f"# Samplers on {args.backbone}, {args.steps} steps, {args.size}×{args.size}, stride {args.stride}\n\n"
            f"Machine: {device}, {platform.machine()}, Python {platform.python_version()}. "
            f"Command: `python benchmarks/samplers.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
        )
        (RESULTS / f"samplers-{name}.md").write_text(
            header + text + "\n\n" + "\n".join(f"- {line}" for line in lines) + "\n", encoding="utf-8"
        )
        (RESULTS / f"samplers-{name}.json").write_text(
            json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
