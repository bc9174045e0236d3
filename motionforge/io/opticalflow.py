"""Motion from a driving video: read its frames onto the working frame, measure DIS optical flow, chain flows.

Frames are fitted to the working frame the way the input image was (:func:`fields.raster_box`,
centre-cropping other aspects), converted to grayscale, and OpenCV's DIS optical flow measures
the displacement from one frame to another. Consecutive flows f_{k→k+1} chain into f_{0→i}, and
flows at integer frames interpolate linearly to fractional frame positions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from motionforge.core.errors import InputError
from motionforge.core.types import MotionContext
from motionforge.motion.fields import Box, raster_box
from motionforge.core.places import user_path

DIS_PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@contextmanager
def single_threaded_opencv() -> Iterator[None]:
    """Run OpenCV on one thread inside the block (so its results do not depend on scheduling), then restore."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _open(path: str | Path) -> cv2.VideoCapture:
    """Open a video with OpenCV, or raise saying why it cannot be read."""
    path = user_path(path)
    if not path.is_file():
        raise InputError(f"video not found: {path}; pass adapters.dense_flow.video=/path/to/video.mp4")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputError(f"OpenCV cannot read video {path}; make sure it is a video file, or convert it to mp4 (H.264) or avi")
    return capture


def count_frames(path: str | Path) -> int:
    """The number of frames OpenCV decodes from a video (counted, not taken from the container's header)."""
    capture = _open(path)
    count = 0
    try:
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return count


def fit_frame(frame: np.ndarray, box: Box, size: tuple[int, int]) -> np.ndarray:
    """Crop a BGR frame [h, w, 3] to the box (pixel edges, rounded), resize to (W, H) by area, grayscale: uint8 [H, W]."""
    x0, y0, x1, y1 = (round(v) for v in box)
    cropped = frame[y0:y1, x0:x1]
    resized = cv2.resize(cropped, size, interpolation=cv2.INTER_AREA)  # [H, W, 3]
    return cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY)


def read_frames(path: str | Path, indices: Sequence[int], context: MotionContext) -> tuple[dict[int, np.ndarray], int]:
    """Decode a video up to the largest index and keep the frames at the indices, fitted: ({index: uint8 [H, W]}, frames decoded).

    The count is the video's length when it ends before the largest index (the caller says what that means).
    """
    wanted = {int(i) for i in indices}
    last = max(wanted)
    capture = _open(path)
    frames: dict[int, np.ndarray] = {}
    box: Box | None = None
    index = 0
    try:
        while index <= last and capture.grab():
            if index in wanted:
                ok, frame = capture.retrieve()  # [h, w, 3] BGR
                if not ok:
                    raise InputError(f"OpenCV cannot decode frame {index} of video {path}; re-encode it as mp4 (H.264) or avi")
                if box is None:
                    box = raster_box((frame.shape[1], frame.shape[0]), context, f"video {path}", crop_other_aspects=True)
                frames[index] = fit_frame(frame, box, (context.width, context.height))
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise InputError(
            f"OpenCV cannot decode any frame of video {path}; make sure it is a video file, or convert it to mp4 (H.264) or avi"
        )
    return frames, index


def check_length(path: str | Path, count: int, start: int, stride: int | None, last: int) -> None:
    """Raise unless a video of ``count`` frames has at least 2, a start before its last, and the frame ``last`` a stride asks for."""
    if count < 2:
        hint = (
            " (a GIF whose frames have no duration reads as one frame; re-save it with one)"
            if Path(path).suffix.lower() == ".gif"
            else ""
        )
        raise InputError(f"video {path} has {count} frame{'s' if count != 1 else ''}; a driving video needs at least 2{hint}")
    if start > count - 2:
        raise InputError(
            f"adapters.dense_flow.start={start} is out of range: video {path} has {count} frames, so start must be 0 to {count - 2}"
        )
    if last >= count:
        raise InputError(
            f"video {path} has {count} frames, but start={start} and stride={stride} ask for frame {last}; lower "
            "adapters.dense_flow.stride or start, or set stride=null to spread the video over the clip"
        )


def dis_flow(source: np.ndarray, target: np.ndarray, preset: str = "medium") -> torch.Tensor:
    """DIS optical flow from one grayscale frame to another, uint8 [H, W] each: displacement [2, H, W] (x, y) in pixels."""
    with single_threaded_opencv():
        flow = cv2.DISOpticalFlow_create(DIS_PRESETS[preset]).calc(source, target, None)  # [H, W, 2]
    return torch.from_numpy(rearrange(flow, "h w c -> c h w").copy())


def chain_flows(consecutive: torch.Tensor) -> torch.Tensor:
    """Chain consecutive flows f_{k→k+1} [T, 2, H, W] into f_{0→i} [T+1, 2, H, W] (frame 0 zero).

    f_{0→i+1}(p) = f_{0→i}(p) + f_{i→i+1}(p + f_{0→i}(p)), the consecutive flow sampled bilinearly,
    with the border repeated where a point has left the frame.
    """
    steps, _, height, width = consecutive.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=consecutive.dtype, device=consecutive.device),
        torch.arange(width, dtype=consecutive.dtype, device=consecutive.device),
        indexing="ij",
    )
    pixels = torch.stack([xs, ys])  # [2, H, W] (x, y) pixel centres
    norm = torch.tensor([max(width - 1, 1), max(height - 1, 1)], dtype=consecutive.dtype, device=consecutive.device)
    total = torch.zeros_like(consecutive[:1])  # [1, 2, H, W]
    chained = [total]
    for k in range(steps):
        where = pixels[None] + total  # [1, 2, H, W] where each frame-0 pixel is at frame k
        grid = rearrange(2.0 * where / norm.view(1, 2, 1, 1) - 1.0, "b c h w -> b h w c")  # [1, H, W, 2]
        step = F.grid_sample(consecutive[k : k + 1], grid, mode="bilinear", padding_mode="border", align_corners=True)
        total = total + step  # [1, 2, H, W]
        chained.append(total)
    return torch.cat(chained)


def interpolate_frames(flows: torch.Tensor, positions: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Flows at integer frames [T, 2, H, W] read at fractional frame positions [F] (linear between neighbours): [F, 2, H, W]."""
    positions = torch.as_tensor(positions, dtype=torch.float64).clamp(0, flows.shape[0] - 1)
    lower = positions.floor().long().clamp(max=flows.shape[0] - 1)  # [F]
    upper = (lower + 1).clamp(max=flows.shape[0] - 1)  # [F]
    alpha = (positions - lower).to(flows.dtype).to(flows.device).view(-1, 1, 1, 1)  # [F, 1, 1, 1]
    lower, upper = lower.to(flows.device), upper.to(flows.device)
    return torch.lerp(flows[lower], flows[upper], alpha)


def resample_in_time(flows: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Spread flows [T, 2, H, W] over num_frames frames by normalised time (linear; first and last exact): [F, 2, H, W]."""
    if flows.shape[0] == num_frames:
        return flows
    positions = np.linspace(0.0, flows.shape[0] - 1, num_frames)
    positions[-1] = flows.shape[0] - 1
    return interpolate_frames(flows, positions)


def video_positions(num_video_frames: int, num_frames: int, start: int, stride: int | None) -> np.ndarray:
    """Which (possibly fractional) video frame each clip frame shows: [F] float positions.

    ``stride`` None spreads the frames from ``start`` to the video's last over the clip; an integer
    takes frames start, start+stride, ….
    """
    if stride is None:
        positions = np.linspace(float(start), float(num_video_frames - 1), num_frames)
        positions[-1] = num_video_frames - 1
        return positions
    return start + stride * np.arange(num_frames, dtype=np.float64)


def video_flow(
    path: str | Path,
    context: MotionContext,
    *,
    start: int = 0,
    stride: int | None = None,
    method: str = "direct",
    preset: str = "medium",
) -> torch.Tensor:
    """The driving video's motion on the working frame, f_{start→frame} for every clip frame: [F, 2, H, W] (CPU).

    ``direct`` measures DIS flow from the start frame to each frame used; ``chained`` measures it
    between consecutive frames used and chains the results (better for large motion). Fractional
    positions (``stride`` None) interpolate linearly between the neighbouring frames' flows.
    """
    count = count_frames(path) if stride is None else None
    if count is not None:
        check_length(path, count, start, stride, start)
    positions = video_positions(count or 0, context.num_frames, start, stride)  # [F]
    used = np.unique(np.concatenate([np.floor(positions), np.ceil(positions)]).astype(np.int64))  # [K] sorted, used[0] = start
    frames, decoded = read_frames(path, used.tolist(), context)
    if count is None:
        check_length(path, decoded, start, stride, int(used[-1]))
    flows = _measure(frames, used, method, preset)  # [K, 2, H, W]
    slot = np.interp(positions, used.astype(np.float64), np.arange(len(used), dtype=np.float64))  # [F] index into used
    return interpolate_frames(flows, slot)


def _measure(frames: dict[int, np.ndarray], used: np.ndarray, method: str, preset: str) -> torch.Tensor:
    """f_{used[0]→k} for every used frame k [K, 2, H, W]: measured directly, or between neighbours and chained."""
    first = frames[int(used[0])]
    if method == "direct":
        fields = [torch.zeros(2, *first.shape)] + [dis_flow(first, frames[int(k)], preset) for k in used[1:]]
        return torch.stack(fields)
    steps = [dis_flow(frames[int(a)], frames[int(b)], preset) for a, b in pairwise(used)]
    return chain_flows(torch.stack(steps))
