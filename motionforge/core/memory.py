"""What a run needs in memory, estimated before it starts, and the refusal of a run that cannot fit.

A run holds its controls' hints and the fused plan (a flow per frame) from start to end, and at its
peak one of three stages: the backbone's render, the conversion of the frames to uint8, and the
writing of the outputs. Every figure is frames × height × width × bytes per frame-pixel; the
backbone says what it holds through an optional method or field:

- ``memory_estimate(config, shape) -> dict[str, int]``: the bytes it holds at its peak while
  rendering a clip of ``shape`` (a :class:`RunShape`), by part, its output frames included; or
- ``memory_per_pixel``: a class attribute, bytes per frame-pixel at that peak.

A backbone with neither is assumed to hold its frames twice (and, with a sampler, the latents).
Two more attributes say how it uses the run: ``reads_whole_plan`` (True unless set: it reads
``plan.flow``, the whole clip's flow, rather than the plan's field a few frames at a time) and
``draws_uint8`` (False unless set: its frames are float and are converted to uint8 after). An
adapter's hint is assumed to hold a dense flow (``HINT_BYTES_PER_PIXEL``) unless its class sets
``memory_per_pixel`` (0 for hints of a few sparse samples). The estimate is compared with the free
memory of the run's device (and of the host, for what always lives there); ``memory.insist=true``
runs anyway.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from motionforge.core.errors import PluginError, ResourceError

FLOAT_BYTES = 4
# Bytes per frame-pixel of an adapter's hint: its flow (2 floats), a mask, and what building it leaves behind.
HINT_BYTES_PER_PIXEL = 16
# Bytes per frame-pixel of the colour-wheel flow video written beside the clip: a float copy, the magnitudes, uint8;
# it is written a chunk of frames at a time.
FLOW_VIDEO_BYTES_PER_PIXEL = 15
# Bytes per frame-pixel of the GIF while it is written: each frame in the palette's 8 bits.
GIF_BYTES_PER_PIXEL = 1
# The latents of a diffusion run, per frame-pixel, for backbones that say nothing: 4 channels at 1/8 size, 8 copies.
LATENT_BYTES_PER_PIXEL = 4 * FLOAT_BYTES * 8 / 64


@dataclass(frozen=True)
class RunShape:
    """The size of a run, known before any work: frames, working height and width, and the device."""

    num_frames: int
    height: int
    width: int
    device: torch.device = torch.device("cpu")

    @property
    def frame_pixels(self) -> int:
        """Pixels of one frame: H × W."""
        return self.height * self.width

    @property
    def pixels(self) -> int:
        """Frame-pixels of the clip: F × H × W."""
        return self.num_frames * self.height * self.width


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run adds to the process at its peak, by part and stage.

    ``held`` lives on the run's device from start to end; each stage of ``stages`` adds its device
    parts and its host parts (which stay in host memory even on a GPU) while it runs.
    """

    shape: RunShape
    held: dict[str, int]
    stages: dict[str, dict[str, int]]
    host_stages: dict[str, dict[str, int]] = field(default_factory=dict)

    def _stage_total(self, stage: str, host: bool) -> int:
        """The bytes a stage adds on the device, or in host memory."""
        return sum((self.host_stages if host else self.stages).get(stage, {}).values())

    def _names(self) -> list[str]:
        """Every stage, in order."""
        return list(dict.fromkeys([*self.stages, *self.host_stages]))

    @property
    def on_gpu(self) -> bool:
        """True when the device's memory is not the host's."""
        return self.shape.device.type != "cpu"

    def peak_stage(self) -> str:
        """The stage at which the run needs the most memory."""
        return max(self._names(), key=lambda s: self._stage_total(s, False) + (0 if self.on_gpu else self._stage_total(s, True)))

    def device_bytes(self) -> int:
        """Peak bytes on the run's device (on a CPU: everything)."""
        held = sum(self.held.values())
        if not self.on_gpu:
            return held + max(self._stage_total(s, False) + self._stage_total(s, True) for s in self._names())
        return held + max(self._stage_total(s, False) for s in self._names())

    def host_bytes(self) -> int:
        """Peak bytes in host memory besides the device's (0 on a CPU run, where device_bytes counts them)."""
        if not self.on_gpu:
            return 0
        return max(self._stage_total(s, True) for s in self._names())

    def largest_parts(self, count: int = 2) -> list[tuple[str, int]]:
        """The largest parts at the peak, (name, bytes), largest first."""
        stage = self.peak_stage()
        parts = {**self.held, **self.stages.get(stage, {})}
        if not self.on_gpu:
            parts.update(self.host_stages.get(stage, {}))
        return sorted(parts.items(), key=lambda item: -item[1])[:count]

    def as_record(self) -> dict[str, Any]:
        """The estimate for the manifest, in MB."""
        return {
            "estimated_mb": round(self.device_bytes() / 2**20, 1),
            "estimated_host_mb": round(self.host_bytes() / 2**20, 1) if self.on_gpu else None,
            "peak_stage": self.peak_stage(),
        }


def backbone_memory(backbone: Any, config: Any, shape: RunShape, name: str) -> dict[str, int]:
    """The bytes a backbone holds at its peak while rendering, by part: its own figure, or the default."""
    method = getattr(backbone, "memory_estimate", None)
    if callable(method):
        parts = method(config, shape)
        if not isinstance(parts, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for k, v in parts.items()
        ):
            raise PluginError(
                f"backbone {name!r} returned {parts!r} from memory_estimate; it must be a dict of part names to bytes "
                "(zero or more)"
            )
        return {f"{name}: {k}": int(v) for k, v in parts.items()}
    per_pixel = getattr(backbone, "memory_per_pixel", None)
    if per_pixel is not None:
        if not (isinstance(per_pixel, (int, float)) and math.isfinite(per_pixel) and per_pixel >= 0):
            raise PluginError(f"backbone {name!r} has memory_per_pixel={per_pixel!r}; it must be a number of bytes, zero or more")
        return {f"{name}: what it holds": int(per_pixel * shape.pixels)}
    frames = 2 * 3 * FLOAT_BYTES * shape.pixels  # the frames as float, and once more while they are joined
    if callable(getattr(backbone, "render", None)):
        return {f"{name}: frames": frames}
    return {f"{name}: decoded frames": frames, f"{name}: latents": int(LATENT_BYTES_PER_PIXEL * shape.pixels)}


def estimate_run(
    shape: RunShape,
    hints: dict[str, float],
    backbone: dict[str, int],
    *,
    flow_video: bool,
    gif: bool = False,
    whole_plan: bool = True,
    convert: bool = True,
    densifier: dict[str, int] | None = None,
) -> MemoryEstimate:
    """What a run of this shape adds at its peak: the hints (bytes per frame-pixel by adapter) and the plan throughout, and
    the largest of its stages; ``whole_plan`` when the backbone reads the plan's whole flow, ``convert`` when its frames
    are float; ``densifier``, the bytes a learned densifier holds by part (CMP: its weights, its work, its dense flow),
    counted as held for the whole run."""
    from motionforge.core.flowfield import CHUNK_FRAMES

    pixels = shape.pixels
    held = {f"hint of {name}": int(per_pixel * pixels) for name, per_pixel in hints.items() if per_pixel}
    if whole_plan:
        held["the plan's flow"] = 2 * FLOAT_BYTES * pixels
    held.update(densifier or {})
    frames_float = 3 * FLOAT_BYTES * pixels
    stages = {"render": dict(backbone)}
    host_stages: dict[str, dict[str, int]] = {}
    if convert:
        stages["convert"] = {"frames (float)": frames_float, "frames (scaled copy)": frames_float}
        host_stages["convert"] = {"frames (uint8)": 3 * pixels}
    chunk = min(shape.num_frames, CHUNK_FRAMES) * shape.frame_pixels
    host_stages["write"] = {
        "frames (uint8)": 3 * pixels,
        **({"GIF": GIF_BYTES_PER_PIXEL * pixels} if gif else {}),
        **({"flow video": FLOW_VIDEO_BYTES_PER_PIXEL * chunk} if flow_video else {}),
    }
    return MemoryEstimate(shape, held, stages, host_stages)


def hint_memory(adapter: Any) -> float:
    """Bytes per frame-pixel an adapter's hint holds: its class's ``memory_per_pixel``, or a dense flow's."""
    per_pixel = getattr(adapter, "memory_per_pixel", HINT_BYTES_PER_PIXEL)
    return (
        float(per_pixel)
        if isinstance(per_pixel, (int, float)) and math.isfinite(per_pixel) and per_pixel >= 0
        else HINT_BYTES_PER_PIXEL
    )


# --------------------------------------------------------------------------------------------
# Free memory
# --------------------------------------------------------------------------------------------


def _read_int(path: Path) -> int | None:
    """An integer from a one-line file (cgroup limits), or None when absent or 'max'."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_free() -> int | None:
    """Bytes this process's memory cgroup still allows (reclaimable file cache counted as free), or None without a limit."""
    root = Path("/sys/fs/cgroup")
    for limit_name, usage_name, stat_name, inactive in (
        ("memory.max", "memory.current", "memory.stat", "inactive_file"),  # cgroup v2
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "memory/memory.stat", "total_inactive_file"),  # v1
    ):
        limit, usage = _read_int(root / limit_name), _read_int(root / usage_name)
        if limit is None or usage is None or limit >= 2**60:
            continue
        reclaimable = 0
        try:
            match = re.search(rf"^{inactive} (\d+)$", (root / stat_name).read_text(), flags=re.M)
            reclaimable = int(match.group(1)) if match else 0
        except OSError:
            pass
        return max(0, limit - usage + reclaimable)
    return None


def host_free_bytes() -> int | None:
    """The host memory a run can still take: MemAvailable, bounded by the cgroup's limit; None where neither is known."""
    available = None
    try:
        match = re.search(r"^MemAvailable:\s+(\d+) kB$", Path("/proc/meminfo").read_text(), flags=re.M)
        available = int(match.group(1)) * 1024 if match else None
    except OSError:
        pass
    cgroup = _cgroup_free()
    known = [value for value in (available, cgroup) if value is not None]
    return min(known) if known else None


def device_free_bytes(device: torch.device) -> int | None:
    """Free memory of a GPU (what the driver reports, plus what torch holds cached but unused); None where unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "cpu":
        return host_free_bytes()
    return None


def format_bytes(count: float) -> str:
    """A byte count for people: 512 KiB, 3.4 GiB, 1.2 TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit in ("B", "KiB") or count >= 100 else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_memory(estimate: MemoryEstimate, insist: bool, free: dict[str, int | None] | None = None) -> None:
    """Refuse in one sentence a run whose estimate exceeds the free memory, unless insisting; ``free`` replaces the measured."""
    if insist:
        return
    shape = estimate.shape
    if free is None:
        free = {"device": device_free_bytes(shape.device), "host": host_free_bytes() if estimate.on_gpu else None}
    size = f"{shape.num_frames} frames of {shape.width}×{shape.height}"
    parts = ", ".join(f"{name} {format_bytes(count)}" for name, count in estimate.largest_parts())
    checks = [("device", estimate.device_bytes(), "GPU memory on " + str(shape.device) if estimate.on_gpu else "memory")]
    if estimate.on_gpu:
        checks.append(("host", estimate.host_bytes(), "host memory"))
    for where, need, what in checks:
        available = free.get(where)
        if available is not None and need > available:
            raise ResourceError(
                f"this run needs about {format_bytes(need)} of {what} ({size}; most of it: {parts}) but this machine has "
                f"{format_bytes(available)} free; use fewer frames (num_frames) or a smaller height and width, or pass "
                "memory.insist=true to try anyway"
            )


def out_of_memory(exc: BaseException) -> bool:
    """True for the errors an allocation that failed raises: MemoryError, torch's out-of-memory, the CPU allocator's."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and bool(
        re.search(r"can't allocate memory|out of memory|not enough memory", str(exc), flags=re.I)
    )
