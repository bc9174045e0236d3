"""Time the kernels (splat, warp, temporal_attention) per backend at the sizes the diffusion backbones use.

The `kernels` suite of `motionforge bench`, and a script of its own:

    python benchmarks/kernels.py                      # on a CUDA machine: reference vs triton vs xformers
    python benchmarks/kernels.py --save               # also write benchmarks/results/kernels-<device>.md and .json
    python benchmarks/kernels.py --device cpu --scale 0.25 --backends reference   # the reference on a CPU, smaller

For each case it prints the median time in microseconds, the achieved bandwidth on the ideal bytes
(read every input once, write the output once), the fraction of the device's bandwidth floor
(ideal bytes / peak bandwidth, over the measured time) and the speed-up over the reference. The
sizes are those of notes/kernels.md: SD1.5 + AnimateDiff at 512² (latents 64×64, 32×32, 16×16) with
16 frames and classifier-free guidance, and SVD at 576×1024 (latents 72×128) with 14 and 25 frames.
Without a CUDA device (and without --device cpu) it says it is skipping the GPU timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from motionforge.core.errors import KernelError
from motionforge.kernels import splat, temporal_attention, warp
from motionforge.kernels.dispatch import IMPLEMENTATIONS

RESULTS = Path("benchmarks") / "results"  # relative to where it runs: the repository root
# Peak memory bandwidth in bytes/s by device name fragment (vendor specifications); others are measured with a copy.
PEAK_BANDWIDTH = {"H200": 4.8e12, "H100 SXM": 3.35e12, "H100 PCIe": 2.0e12, "H100": 3.35e12, "A100": 2.0e12, "L40S": 0.864e12}


@dataclass(frozen=True)
class Case:
    """One benchmark case: an operation and the sizes it runs at."""

    op: str  # splat | warp | temporal_attention
    name: str
    sizes: dict[str, int]


@dataclass
class Result:
    """The timing of one case on one backend."""

    op: str
    case: str
    backend: str
    microseconds: float | None
    gb_per_s: float | None
    floor_fraction: float | None
    speedup: float | None
    note: str = ""


def cases() -> list[Case]:
    """The cases of notes/kernels.md §2: per-call sizes of the motion-augmented attention and its warps."""
    cfg = 2  # classifier-free guidance doubles the batch
    return [
        Case("temporal_attention", "SD1.5 L0 64x64 d40 F16", dict(S=cfg * 64 * 64, heads=8, L=16, N=15, d=40)),
        Case("temporal_attention", "SD1.5 L1 32x32 d80 F16", dict(S=cfg * 32 * 32, heads=8, L=16, N=15, d=80)),
        Case("temporal_attention", "SD1.5 L2 16x16 d160 F16", dict(S=cfg * 16 * 16, heads=8, L=16, N=15, d=160)),
        Case("temporal_attention", "SVD L0 72x128 d64 F14", dict(S=cfg * 72 * 128, heads=5, L=14, N=13, d=64)),
        Case("temporal_attention", "SVD-XT L0 72x128 d64 F25", dict(S=cfg * 72 * 128, heads=5, L=25, N=24, d=64)),
        Case("splat", "SD1.5 L0 64x64 C320 N15x2", dict(C=320, H=64, W=64, flows=cfg * 15)),
        Case("splat", "SD1.5 L1 32x32 C640 N15x2", dict(C=640, H=32, W=32, flows=cfg * 15)),
        Case("splat", "Motion-I2V 40x64 C320 N15x2", dict(C=320, H=40, W=64, flows=cfg * 15)),
        Case("splat", "SVD 72x128 C320 N24x2", dict(C=320, H=72, W=128, flows=cfg * 24)),
        Case("warp", "SD1.5 L0 64x64 C320 N15x2", dict(C=320, H=64, W=64, flows=cfg * 15)),
        Case("warp", "SVD 72x128 C320 N24x2", dict(C=320, H=72, W=128, flows=cfg * 24)),
    ]


def scaled(case: Case, scale: float) -> Case:
    """The case with its spatial sizes (S, or H and W) multiplied by scale, for quick runs on small machines."""
    sizes = dict(case.sizes)
    if "S" in sizes:
        sizes["S"] = max(1, round(sizes["S"] * scale))
    else:
        sizes["H"], sizes["W"] = max(2, round(sizes["H"] * scale**0.5)), max(2, round(sizes["W"] * scale**0.5))
    return Case(case.op, case.name if scale == 1 else f"{case.name} x{scale:g}", sizes)


def inputs(case: Case, device: torch.device, dtype: torch.dtype) -> tuple[Callable[[str], torch.Tensor], int]:
    """A function running the case on a backend, and the case's ideal bytes (inputs read once, output written once)."""
    size = torch.finfo(dtype).bits // 8
    generator = torch.Generator(device="cpu").manual_seed(0)
    s = case.sizes
    if case.op == "temporal_attention":

        def rand(*shape: int) -> torch.Tensor:
            # [S, L, heads, d] viewed as [S, heads, L, d]: the layout a Linear output gives SDPA
            return torch.randn(shape[0], shape[2], shape[1], shape[3], generator=generator).to(device, dtype).transpose(1, 2)

        q, k, v = (rand(s["S"], s["heads"], s["L"], s["d"]) for _ in range(3))
        k_extra, v_extra = (rand(s["S"], s["heads"], s["N"], s["d"]) for _ in range(2))
        elements = s["S"] * s["heads"] * s["d"] * (4 * s["L"] + 2 * s["N"])  # read q, k, v, k', v'; write out
        return (lambda backend: temporal_attention(q, k, v, k_extra, v_extra, backend=backend)), elements * size
    x = torch.randn(1, s["C"], s["H"], s["W"], generator=generator).to(device, dtype)  # [1, C, H, W] reference features
    flow = (torch.randn(s["flows"], 2, s["H"], s["W"], generator=generator) * 3).to(device)  # [N, 2, H, W] float32
    pixels = s["H"] * s["W"]
    ideal = s["C"] * pixels * size + flow.numel() * 4 + s["flows"] * s["C"] * pixels * size
    if case.op == "splat":
        return (lambda backend: splat(x, flow, "avg", backend=backend)), ideal
    return (lambda backend: warp(x, flow, "border", backend=backend)), ideal


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(run: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of run() over repeats, after warmup calls (Triton compiles on the first)."""
    with torch.no_grad():
        for _ in range(warmup):
            run()
        _synchronize(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            _synchronize(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bandwidth(device: torch.device) -> tuple[float, str]:
    """The device's peak memory bandwidth in bytes/s and where the number comes from."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for fragment, bandwidth in PEAK_BANDWIDTH.items():
            if fragment in name:
                return bandwidth, f"{name} specification"
    buffer = torch.empty(1 << 28, dtype=torch.uint8, device=device)  # 256 MiB
    seconds = median_seconds(lambda: buffer.clone(), device, repeats=5, warmup=1)
    return 2 * buffer.numel() / seconds, "measured copy"


def run_suite(device: torch.device, dtype: torch.dtype, backends: list[str], scale: float, repeats: int) -> list[Result]:
    """Time every case on every backend; a backend that cannot run here is reported with its reason."""
    bandwidth, _ = peak_bandwidth(device)
    results = []
    for case in (scaled(c, scale) for c in cases()):
        run, ideal_bytes = inputs(case, device, dtype)
        reference_seconds = None
        for backend in (b for b in backends if b in IMPLEMENTATIONS[case.op]):
            try:
                seconds = median_seconds(lambda: run(backend), device, repeats, warmup=2)
            except KernelError as exc:
                results.append(Result(case.op, case.name, backend, None, None, None, None, str(exc)))
                continue
            if backend == "reference":
                reference_seconds = seconds
            floor = ideal_bytes / bandwidth
            results.append(
                Result(
                    case.op,
                    case.name,
                    backend,
                    round(seconds * 1e6, 1),
                    round(ideal_bytes / seconds / 1e9, 1),
                    round(floor / seconds, 3),
                    None if reference_seconds is None else round(reference_seconds / seconds, 2),
                )
            )
    return results


def table(results: list[Result]) -> str:
    """The results as a markdown table."""
    lines = [
        "| op | case | backend | µs | GB/s (ideal bytes) | of floor | speed-up vs reference |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.microseconds is None:
            lines.append(f"| {r.op} | {r.case} | {r.backend} | — | — | — | skipped: cannot run here |")
        else:
            speedup = "" if r.speedup is None else f"{r.speedup:g}×"
            lines.append(
                f"| {r.op} | {r.case} | {r.backend} | {r.microseconds:g} | {r.gb_per_s:g} | {r.floor_fraction:.0%} | {speedup} |"
            )
    return "\n".join(lines)


def device_label(device: torch.device) -> str:
    """A readable name for the device the suite ran on."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"


def main(argv: list[str] | None = None) -> int:
    """Run the kernel suite from the command line; print the table (and save it with --save)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else None, help="cuda (default when present) or cpu"
    )
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--backends", default="reference,triton,xformers", help="comma list, the reference first")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the spatial sizes (e.g. 0.25 on a CPU)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/kernels-<device>.md and .json")
    args = parser.parse_args(argv)
    if args.device is None:
        print("kernels: no CUDA device here: skipping the GPU timings (pass --device cpu to time the backends that run on a CPU)")
        return 0
    device = torch.device(args.device)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if backends[0] != "reference":
        backends.insert(0, "reference")
    results = run_suite(device, getattr(torch, args.dtype), backends, args.scale, args.repeats)
    bandwidth, source = peak_bandwidth(device)
    peak = f"peak bandwidth {bandwidth / 1e9:.0f} GB/s ({source})"
    header = f"Kernels on {device_label(device)}, {args.dtype}, {peak}, torch {torch.__version__}"
    print(header)
    print(table(results))
    for note in dict.fromkeys(r.note for r in results if r.note):
        print(f"skipped: {note}")
    if args.save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        slug = "".join(ch if ch.isalnum() else "-" for ch in device_label(device)).strip("-").lower()
        (RESULTS / f"kernels-{slug}.md").write_text(f"# {header}\n\n{table(results)}\n", encoding="utf-8")
        payload = {
            "device": device_label(device),
            "dtype": args.dtype,
            "peak_bandwidth": bandwidth,
            "results": [asdict(r) for r in results],
        }
        (RESULTS / f"kernels-{slug}.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"saved {RESULTS / f'kernels-{slug}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
