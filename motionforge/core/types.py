"""The typed values that flow between the stages: context → hints → plan → backbone → sampler → video.

Shapes use F frames, H×W working pixels, N tracks; flows are displacements in pixels, x then y,
from frame 0 to frame i (frame 0 is zero). Pixel coordinates are (x, y) with the origin at the
centre of the top-left pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch

from motionforge.core.flowfield import FlowField


@dataclass(frozen=True)
class MotionContext:
    """What an adapter is told about the run: working size, frame count, the input image, the device.

    ``source_box`` is the rectangle of the original image, in its pixel edges ``(x0, y0, x1, y1)``,
    that was resized onto the working frame (the whole image, or a centred crop of it); use
    :meth:`to_working` to map coordinates a user gave on the original image.
    """

    height: int
    width: int
    num_frames: int
    image: torch.Tensor  # [3, H, W] float in [0, 1], at working size
    source_size: tuple[int, int]  # (W, H) of the original image
    device: torch.device = torch.device("cpu")
    source_box: tuple[float, float, float, float] | None = None

    def to_working(self, points: np.ndarray) -> np.ndarray:
        """Map (x, y) pixel coordinates on the original image to working-frame pixels; [..., 2] → [..., 2]."""
        x0, y0, x1, y1 = self.source_box or (0.0, 0.0, float(self.source_size[0]), float(self.source_size[1]))
        points = np.asarray(points, dtype=np.float64)
        scale = np.array([self.width / (x1 - x0), self.height / (y1 - y0)])
        return (points + 0.5 - np.array([x0, y0])) * scale - 0.5

    def frame_times(self) -> np.ndarray:
        """The normalised time of each frame, 0 for the first and 1 for the last; [F]."""
        return np.linspace(0.0, 1.0, self.num_frames)


@dataclass
class SparsePoints:
    """Sparse motion samples: where they sit, their flow per frame, and how much each counts per frame."""

    positions: torch.Tensor  # [N, 2] (x, y) working pixels
    flow: torch.Tensor  # [N, F, 2] f_{0→i} of each sample
    weight: torch.Tensor  # [N, F]

    def __len__(self) -> int:
        """Number of samples."""
        return int(self.positions.shape[0])

    def select(self, keep: torch.Tensor) -> SparsePoints:
        """The samples a boolean [N] selects."""
        return SparsePoints(self.positions[keep], self.flow[keep], self.weight[keep])

    def to(self, device: torch.device) -> SparsePoints:
        """The samples on a device."""
        return SparsePoints(self.positions.to(device), self.flow.to(device), self.weight.to(device))

    def raster(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples as a sparse flow map at their pixels (rounded), samples on one pixel averaged: flow [F, 2, H, W], mask [1, 1, H, W].

        The layout a dense MotionHint gives (``flow`` with ``mask``), and the input of learned
        densifiers that read a map of sparse motion.
        """
        num_frames = self.flow.shape[1]
        xs, ys = self.positions.round().long().unbind(dim=1)  # [N] each
        index = ys * width + xs  # [N] flat pixel
        summed = torch.zeros(height * width, num_frames, 2, dtype=self.flow.dtype, device=self.flow.device)
        summed.index_add_(0, index, self.flow)  # [H*W, F, 2]
        count = torch.zeros(height * width, dtype=self.flow.dtype, device=self.flow.device).index_add_(
            0, index, torch.ones_like(index, dtype=self.flow.dtype)
        )  # [H*W]
        flow = (summed / count.clamp(min=1)[:, None, None]).permute(1, 2, 0).reshape(num_frames, 2, height, width)
        return flow.contiguous(), (count > 0).to(self.flow.dtype).view(1, 1, height, width)

    @staticmethod
    def cat(parts: list[SparsePoints]) -> SparsePoints:
        """Concatenate several sets of samples."""
        return SparsePoints(
            torch.cat([p.positions for p in parts]),
            torch.cat([p.flow for p in parts]),
            torch.cat([p.weight for p in parts]),
        )


@dataclass
class MotionHint:
    """What one adapter says about the motion; any field may be None and the adapter fills what it knows.

    - ``flow`` [F, 2, H, W]: displacement f_{0→i} in pixels where it is given.
    - ``mask`` [F or 1, 1, H, W] in [0, 1]: where ``flow`` is given; None means dense (everywhere).
    - ``region`` [1, 1, H, W] in [0, 1]: where motion is allowed; None means everywhere.
    - ``strength``: a global motion strength M_s asked for (pixels per frame at working size): the
      fused flow is rescaled to it, last; or None.
    - ``scale``: a factor the fused flow is multiplied by, last (before ``strength``); or None.
    - ``weight``: how much this hint counts when hints are fused (dense flows are multiplied by it;
      sparse samples that meet on one pixel are averaged with it).
    - ``tracks`` [N, F, 2]: the (x, y) working-pixel position of each sparse track at every frame,
      kept for drawing the hint image and for measuring how well the output follows it.
    - ``camera``: the flow is a camera move: it adds to the object motion after the region has
      restricted that, so it moves the whole frame.
    - ``blend``: pixels over which the region's motion blends into the motion around it, for a
      region that is part of a larger surface (a face, which hair and neck follow); 0 (the default)
      makes the region a cut-out that moves over what surrounds it (a brushed object).
    - ``points``: a sparse hint's samples given directly (:class:`SparsePoints`, positions in
      working pixels), instead of ``flow`` and ``mask``: what the built-in trajectories and
      landmarks give, since a dense [F, 2, H, W] for a few points wastes memory on long clips.

    How hints combine is documented in :func:`motionforge.motion.fuse.fuse`.
    """

    flow: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    region: torch.Tensor | None = None
    strength: float | None = None
    weight: float = 1.0
    tracks: torch.Tensor | None = None
    scale: float | None = None
    camera: bool = False
    blend: float = 0.0
    points: SparsePoints | None = None

    @property
    def is_sparse(self) -> bool:
        """True when the hint gives samples to densify: ``points``, or a flow only where ``mask`` is set."""
        return self.points is not None or (self.flow is not None and self.mask is not None)


@dataclass
class MotionLayer:
    """A part of the picture that moves as one: how much of each frame-0 pixel it holds, and its own smooth flow.

    ``field`` is defined over the whole frame (it is not cut at the layer's edge), so a backbone can
    move the layer's content, edge included, without stretching it; ``alpha`` is 1 on the layer's
    pixels and fades to 0 just outside them. The background layer has ``alpha`` None: it holds
    every pixel that no layer in front of it covers.
    """

    name: str  # "background", "region 1", "region 2", …
    field: FlowField  # f_{0→i} of this layer's content, [F, 2, H, W], read a few frames at a time
    alpha: torch.Tensor | None = None  # [1, 1, H, W] in [0, 1] at frame 0; None for the background

    @property
    def flow(self) -> torch.Tensor:
        """The layer's flow for the whole clip as one tensor [F, 2, H, W] (computed on each read)."""
        return self.field.tensor()

    @property
    def core(self) -> torch.Tensor | None:
        """The pixels wholly in this layer at frame 0 (alpha 1): bool [1, 1, H, W], or None for the background."""
        return None if self.alpha is None else self.alpha >= 1.0


class _Materialised:
    """``MotionPlan.flow``: given as a tensor or a FlowField, and a tensor from the first time it is read."""

    def __set_name__(self, owner: type, name: str) -> None:
        """Keep the value under a private name."""
        self.slot = "_" + name

    def __get__(self, plan: Any, owner: type | None = None) -> torch.Tensor:
        """The flow tensor [F, 2, H, W], computed from the plan's field once."""
        if plan is None:
            raise AttributeError("flow")  # a required field: no default
        value = plan.__dict__[self.slot]
        if isinstance(value, FlowField):
            value = plan.__dict__[self.slot] = value.tensor()
        return value

    def __set__(self, plan: Any, value: torch.Tensor | FlowField) -> None:
        """Store a tensor or a field as given."""
        plan.__dict__[self.slot] = value


@dataclass(repr=False)
class MotionPlan:
    """The fused motion a backbone sees: a dense flow for every frame, the allowed region and strength.

    ``flow`` [F, 2, H, W] is the plan's flow f_{0→i}; ``field`` the same as a :class:`FlowField`,
    read a few frames at a time (a plan from fusion holds only the field, and makes ``flow`` the
    first time it is read: on long clips, code that draws frame by frame reads ``field``).
    ``hints`` keeps every adapter's hint by adapter name (learned backbones use the sparse ones);
    ``sources`` lists the adapters that contributed, in the order they ran. ``free`` marks the part
    of the region where no control gives motion: "animate freely here" for diffusion backbones.
    ``layers`` are the parts that move apart, back to front (the background first): ``flow`` is
    their composite, each layer's flow where its alpha is 1, blended across its fading edge.
    ``stats`` records what fusion measured: M_s before and after strength, and each adapter's
    contribution (mean displacement, pixels covered).
    """

    flow: torch.Tensor = _Materialised()  # [F, 2, H, W]
    region: torch.Tensor | None = None  # [1, 1, H, W]
    strength: float | None = None
    hints: dict[str, MotionHint] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    free: torch.Tensor | None = None  # [1, 1, H, W]
    stats: dict[str, Any] = field(default_factory=dict)
    layers: list[MotionLayer] = field(default_factory=list)

    def __post_init__(self) -> None:
        """A plan built from a flow alone has one layer: the whole picture moving with that flow."""
        if not self.layers:
            self.layers = [MotionLayer("background", self.field)]

    @property
    def field(self) -> FlowField:
        """The plan's flow as a field, read a few frames at a time."""
        value = self.__dict__["_flow"]
        return value if isinstance(value, FlowField) else FlowField.of(value)

    @property
    def num_frames(self) -> int:
        """Number of frames the plan covers."""
        return self.field.num_frames

    @property
    def tracks(self) -> torch.Tensor | None:
        """All sparse tracks of all hints, [N, F, 2] in working pixels, or None when there are none."""
        found = [h.tracks for h in self.hints.values() if h.tracks is not None and len(h.tracks)]
        return torch.cat(found) if found else None

    def __repr__(self) -> str:
        """A short description (the flow is not computed for it)."""
        return f"MotionPlan({self.field!r}, layers={[layer.name for layer in self.layers]}, sources={self.sources})"


@dataclass
class Video:
    """A rendered clip: uint8 frames [F, H, W, 3], its frame rate, and what produced it."""

    frames: np.ndarray
    fps: float
    metadata: dict[str, Any] = field(default_factory=dict)
    plan: MotionPlan | None = None
    previews: dict[str, np.ndarray] = field(default_factory=dict)  # previews/<name>.png: uint8 strips of a step's x0 estimate

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    def to_pil(self) -> list:
        """The frames as a list of PIL images."""
        from PIL import Image

        return [Image.fromarray(frame) for frame in self.frames]


@runtime_checkable
class Denoiser(Protocol):
    """A backbone's denoiser in sigma space (k-diffusion style): returns its estimate of the clean latents."""

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [B, Fw, C, h, w] noisy latents of a window, sigma a scalar tensor, frames [Fw] absolute frame indices → x0, same shape as x."""
        ...


class Stepper(Protocol):
    """One trajectory's step rule: latents x at sigma and their x0 estimate → the latents at sigma_next."""

    def __call__(self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """Step x [B, F, C, h, w] from sigma to sigma_next (the next sigma of the schedule it was made for)."""
        ...

    def fork(self) -> Stepper:
        """A stepper for another trajectory that goes on from this one's place in the schedule, with its memory."""
        ...


@dataclass(frozen=True)
class FrameLimit:
    """The most frames a backbone's model takes in one call, and what sets that limit (for the error a longer call gets)."""

    frames: int
    reason: str  # e.g. "the motion adapter's positional table (motion_max_seq_length)"


@dataclass
class RenderRequest:
    """Everything a backbone is given for one run, besides its own config."""

    context: MotionContext
    plan: MotionPlan
    prompt: str = ""
    fps: float = 8.0
    steps: int = 25
    seed: int = 0
    progress: bool = False
    notes: list[str] = field(default_factory=list)  # what a rendering backbone wants the manifest to say (diffusion: Prepared.notes)


@dataclass
class SamplerInput:
    """What a diffusion backbone hands a sampler: a denoiser, a sigma schedule, the initial latents and its own step rule.

    ``latents`` [B, F, C, h, w] are already scaled to ``sigmas[0]``; ``sigmas`` [T+1] descend to the
    backbone's final sigma (0, or DDIM's small final sigma: the decode knows it); a step may keep its
    sigma (PNDM's second step), which only ``stepper`` makes use of. ``stepper`` makes a fresh
    instance of the backbone's own step rule (its checkpoint's diffusers scheduler) for one
    trajectory; samplers use it unless a sigma-space rule is asked for, or the backbone has none.
    ``window`` is the number of frames per denoiser call the model was trained on (longer calls run,
    with a warning); ``frame_limit`` the most it can take at all (None: no limit); ``generator``
    the run's seeded CPU generator, for samplers that draw noise.
    """

    denoiser: Denoiser
    sigmas: torch.Tensor
    latents: torch.Tensor
    window: int
    generator: torch.Generator | None = None
    stepper: Callable[[], Stepper] | None = None
    frame_limit: FrameLimit | None = None


class Decode(Protocol):
    """A backbone's decoder bound to one run's loaded models and schedule."""

    def __call__(self, latents: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """Latents [1, F, C, h, w] at sigma (None: the schedule's final sigma; 0 for x0 estimates) → frames [F, 3, H, W] in [0, 1]."""
        ...


@dataclass
class Prepared:
    """What a diffusion backbone's ``prepare`` returns: the sampler's input, a decoder bound to the run, and what it says.

    ``decode`` reuses the models and schedule ``prepare`` loaded and built (it never loads again);
    ``notes`` are what the manifest should say (random weights, an unfollowed plan); ``steering``
    lists what used the motion plan (latent_init, region, …), for the log and the manifest.
    """

    sampler_input: SamplerInput
    decode: Decode
    notes: list[str] = field(default_factory=list)
    steering: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One denoiser call of a sampler, as its callback sees it.

    ``i`` is the step's index in the schedule (0 … T−1), ``sigma`` and ``sigma_next`` its sigmas,
    ``x`` the latents [B, Fw, C, h, w] of ``frames`` (absolute indices [Fw]) before the step and
    ``denoised`` their x0 estimate; ``call`` counts the callbacks of this run (1, 2, …) up to
    ``total``; ``window`` is the window's index for samplers that step windows one at a time.
    """

    i: int
    sigma: torch.Tensor
    sigma_next: torch.Tensor
    x: torch.Tensor
    denoised: torch.Tensor
    frames: torch.Tensor
    call: int
    total: int
    window: int | None = None


StepCallback = Callable[[Step], None]
"""Called by a sampler after every denoiser call with the :class:`Step`; the engine uses it for the
progress bar and the step previews (``output.previews``)."""


class Adapter(Protocol):
    """A control: turns its config and the run's context into a MotionHint."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def build(self, config: Any, context: MotionContext) -> MotionHint:
        """Build this control's hint for the run."""
        ...


@runtime_checkable
class RenderingBackbone(Protocol):
    """A backbone that renders frames directly from the plan, with no sampler."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def render(self, config: Any, request: RenderRequest) -> torch.Tensor:
        """Render the clip: float frames [F, 3, H, W] in [0, 1]."""
        ...


@runtime_checkable
class DiffusionBackbone(Protocol):
    """A backbone that prepares a denoiser, a schedule and a bound decoder for a sampler."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def prepare(self, config: Any, request: RenderRequest) -> Prepared:
        """Load weights, encode the image and prompt, and return the sampler's input with a decoder bound to the run."""
        ...


class Sampler(Protocol):
    """A sampler: drives a denoiser over the whole clip in sigma space (its Config checks itself when it is made)."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def sample(self, config: Any, problem: SamplerInput, *, callback: StepCallback | None = None) -> torch.Tensor:
        """Return the denoised latents [B, F, C, h, w], calling ``callback`` after every denoiser call."""
        ...


def protocol_methods(protocol: type) -> tuple[str, ...]:
    """The methods a Protocol declares (what a registered class must have to be one)."""
    return tuple(name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_"))
