"""A clip's flow f_{0→i} kept as the parts it is made of, and computed a few frames at a time.

Fusion builds every layer's flow, and the plan's composite flow, out of parts (:class:`Term`):
tracks spread over the frame by spatial weights computed once (each pixel's share of each track),
dense flows an adapter gave (a driving video, a camera move), each scaled and weighted by a spatial
mask. Computing a frame costs a few multiply-adds per pixel, so a backbone that draws frame by frame
(the warp preview) never holds the whole clip's flow: as one tensor, 256 frames at 512×512 take
537 MB per layer. Reading ``MotionPlan.flow`` still gives that tensor, for code that wants it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch

# Frames computed at once when a field is read in chunks.
CHUNK_FRAMES = 8


@dataclass(frozen=True)
class Term:
    """One part of a flow field: tracks spread by spatial weights, or a dense flow; times a scale and a spatial mask.

    ``weights`` [N, H, W] and ``motion`` [N, F, 2] give f(x, i) = Σ_n weights[n, x] · motion[n, i]
    (how much of track n's displacement pixel x takes); ``dense`` [F, 2, H, W] is a flow given as it is.
    ``mask`` [H, W], if any, multiplies the term pixel by pixel, and ``scale`` everywhere.
    """

    weights: torch.Tensor | None = None
    motion: torch.Tensor | None = None
    dense: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    scale: float = 1.0

    def frames(self, start: int, stop: int) -> torch.Tensor:
        """The term's flow at frames start … stop − 1: [n, 2, H, W]."""
        if self.dense is not None:
            out = self.dense[start:stop]  # [n, 2, H, W]
        else:
            count, height, width = self.weights.shape
            motion = self.motion[:, start:stop].reshape(count, -1)  # [N, n*2]
            out = (motion.transpose(0, 1) @ self.weights.reshape(count, -1)).view(-1, 2, height, width)  # [n, 2, H, W]
        if self.mask is not None:
            out = out * self.mask
        return out * self.scale if self.scale != 1.0 else out


class FlowField:
    """f_{0→i} for every frame of a clip, [F, 2, H, W], as a sum of terms read a few frames at a time."""

    def __init__(self, terms: list[Term], num_frames: int, height: int, width: int, device: torch.device) -> None:
        """A field of the given size made of terms (none: no motion anywhere)."""
        self.terms = list(terms)
        self.num_frames, self.height, self.width, self.device = num_frames, height, width, torch.device(device)

    @staticmethod
    def of(flow: torch.Tensor) -> FlowField:
        """A field holding a flow tensor [F, 2, H, W] as it is."""
        frames, _, height, width = flow.shape
        return FlowField([Term(dense=flow)], frames, height, width, flow.device)

    @staticmethod
    def spread(weights: torch.Tensor, motion: torch.Tensor) -> FlowField:
        """A field of tracks spread by spatial weights [N, H, W], each with its displacement per frame [N, F, 2]."""
        count, height, width = weights.shape
        return FlowField([Term(weights=weights, motion=motion)], motion.shape[1], height, width, weights.device)

    def zeros_like(self) -> FlowField:
        """A field of the same size with no motion."""
        return FlowField([], self.num_frames, self.height, self.width, self.device)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(F, 2, H, W)."""
        return (self.num_frames, 2, self.height, self.width)

    def __len__(self) -> int:
        """Number of frames."""
        return self.num_frames

    def frames(self, start: int, stop: int) -> torch.Tensor:
        """The flow at frames start … stop − 1: [n, 2, H, W]."""
        stop = min(stop, self.num_frames)
        out = torch.zeros(max(0, stop - start), 2, self.height, self.width, device=self.device)
        for term in self.terms:
            out += term.frames(start, stop)
        return out

    def __getitem__(self, index: int) -> torch.Tensor:
        """The flow at one frame: [2, H, W]."""
        if index < 0:
            index += self.num_frames
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} of a flow of {self.num_frames} frames")
        return self.frames(index, index + 1)[0]

    def chunks(self, size: int = CHUNK_FRAMES) -> Iterator[tuple[int, torch.Tensor]]:
        """The whole clip a few frames at a time: (first frame, flow [n, 2, H, W])."""
        for start in range(0, self.num_frames, size):
            yield start, self.frames(start, start + size)

    def tensor(self) -> torch.Tensor:
        """The whole clip's flow as one tensor [F, 2, H, W] (a dense field alone is returned as it is, not copied)."""
        if len(self.terms) == 1 and self.terms[0].dense is not None and self.terms[0].mask is None and self.terms[0].scale == 1.0:
            return self.terms[0].dense
        return self.frames(0, self.num_frames)

    def __add__(self, other: FlowField) -> FlowField:
        """The sum of two fields of one size."""
        return FlowField([*self.terms, *other.terms], self.num_frames, self.height, self.width, self.device)

    def scaled(self, factor: float) -> FlowField:
        """The field times a number."""
        return self._with(lambda term: replace(term, scale=term.scale * factor))

    def masked(self, mask: torch.Tensor) -> FlowField:
        """The field times a spatial mask [H, W]."""
        return self._with(lambda term: replace(term, mask=mask if term.mask is None else term.mask * mask))

    def lerp(self, other: FlowField, alpha: torch.Tensor) -> FlowField:
        """This field where alpha [H, W] is 0, the other where it is 1, blended between."""
        return self.masked(1.0 - alpha) + other.masked(alpha)

    def _with(self, change) -> FlowField:
        """The field with every term changed."""
        return FlowField([change(term) for term in self.terms], self.num_frames, self.height, self.width, self.device)

    def max_magnitude(self) -> float:
        """The largest displacement anywhere in the clip, pixels."""
        peak = 0.0
        for _, chunk in self.chunks():
            if chunk.numel():
                peak = max(peak, float(torch.hypot(chunk[:, 0], chunk[:, 1]).amax()))
        return peak

    def motion_strength(self) -> float:
        """The global motion strength M_s (eq. 8): mean magnitude of the consecutive flows, pixels per frame."""
        if self.num_frames < 2:
            return 0.0
        total, previous = 0.0, None
        for _, chunk in self.chunks():
            steps = chunk[1:] - chunk[:-1] if previous is None else torch.cat([chunk[:1] - previous, chunk[1:] - chunk[:-1]])
            if steps.numel():
                total += float(torch.hypot(steps[:, 0], steps[:, 1]).sum(dtype=torch.float64))
            previous = chunk[-1:]
        return total / ((self.num_frames - 1) * self.height * self.width)

    def __repr__(self) -> str:
        """A short description: size and parts."""
        kinds = ", ".join("dense" if t.dense is not None else f"{t.weights.shape[0]} tracks" for t in self.terms) or "still"
        return f"FlowField({self.num_frames} frames of {self.width}×{self.height}: {kinds})"
