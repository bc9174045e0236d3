"""Procedural clips: a smooth textured background, one to three sprites on smooth random tracks, an optional camera move.

Everything is drawn analytically from a seed (``numpy.random.default_rng(seed)``), so a clip is the
same bytes on every machine, at any size and frame count:

- the background is a sum of a few low-frequency sinusoids per channel, evaluated in world
  coordinates, so that a camera pan or zoom moves it exactly;
- a sprite is a disc, a square or a striped blob (its stripes move with it) of a saturated colour,
  antialiased by its distance to the edge; sprites are drawn back to front, the later nearer;
- a sprite's centre follows a quadratic Bézier curve in world coordinates from its start to its
  end, at an eased speed; the camera maps world to screen by a zoom about the frame's centre and a
  pan, both linear in time.

The ground truth is the screen track of every sprite's centre [S, F, 2] (pixel centres, x right,
y down), each sprite's visible mask [S, F, H, W] (its own coverage less the nearer sprites'), and
whether its centre can be seen [S, F] (inside the frame and not covered by a nearer sprite).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("disc", "square", "blob")
PALETTE = np.array(
    [
        (230, 40, 40),
        (40, 200, 60),
        (50, 80, 235),
        (240, 210, 30),
        (220, 50, 220),
        (30, 210, 220),
    ],
    dtype=np.float64,
)  # [6, 3] saturated colours, far from the muted backgrounds and from each other (hue cosines below 0.95)


@dataclass(frozen=True)
class WorldSettings:
    """What a toy clip may contain; sizes are fractions of the frame's side so that any size looks the same."""

    size: int = 64  # the frame's side in pixels (square frames)
    num_frames: int = 8  # frames per clip
    min_sprites: int = 1
    max_sprites: int = 3
    radius: tuple[float, float] = (0.08, 0.14)  # a sprite's radius (half side for squares), fraction of the side
    travel: tuple[float, float] = (0.12, 0.4)  # how far a sprite's centre goes over the clip, fraction of the side
    camera: float = 0.3  # the chance that the camera pans or zooms
    pan: float = 0.12  # the camera's largest pan over the clip, fraction of the side
    zoom: float = 0.12  # its largest zoom change over the clip (1 ± zoom at the last frame)

    def check(self) -> None:
        """Refuse settings that cannot make a clip, in one sentence."""
        from motionforge.core.errors import ConfigError

        if self.size < 16:
            raise ConfigError(f"toy size={self.size} is too small to hold a sprite; use 16 pixels or more (64 by default)")
        if self.num_frames < 2:
            raise ConfigError(f"toy num_frames={self.num_frames} must be 2 or more: a clip moves between frames")
        if not 1 <= self.min_sprites <= self.max_sprites <= len(PALETTE):
            raise ConfigError(f"toy sprites {self.min_sprites}..{self.max_sprites} must satisfy 1 ≤ min ≤ max ≤ {len(PALETTE)}")


@dataclass
class ToyClip:
    """One procedural clip and its ground truth."""

    seed: int
    frames: np.ndarray  # [F, H, W, 3] uint8
    tracks: np.ndarray  # [S, F, 2] float64, each sprite centre's screen position (x, y)
    masks: np.ndarray  # [S, F, H, W] bool, each sprite's visible pixels
    visible: np.ndarray  # [S, F] bool, whether each sprite's centre can be seen
    kinds: list[str]  # each sprite's shape
    colours: np.ndarray  # [S, 3] uint8, each sprite's colour
    radii: np.ndarray  # [S] float, each sprite's radius in pixels at zoom 1
    camera: bool  # whether the camera moves

    @property
    def num_sprites(self) -> int:
        """How many sprites the clip has."""
        return len(self.kinds)


@dataclass
class _Sprite:
    """A sprite's world description: shape, colour, size, and the Bézier control points of its centre."""

    kind: str
    colour: np.ndarray  # [3]
    radius: float
    points: np.ndarray  # [3, 2] start, control, end (world pixels)
    ease: float  # 0: constant speed; 1: smoothstep timing
    stripe: np.ndarray  # [3] stripe direction (cos, sin) and period, for blobs
    wobble: np.ndarray  # [2] the blob outline's amplitude and phase


def _background(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A muted base colour and a few sinusoids per channel: (base [3], amplitudes [K, 3], frequencies [K, 2], phases [K, 3])."""
    base = rng.uniform(85, 175, size=3)  # [3]
    count = 4
    amplitudes = rng.uniform(5, 16, size=(count, 3))  # [K, 3] (muted: no sprite's hue appears in the background)
    angle = rng.uniform(0, 2 * np.pi, size=count)
    cycles = rng.uniform(0.6, 2.5, size=count)  # cycles per frame side
    frequencies = np.stack([np.cos(angle), np.sin(angle)], axis=1) * cycles[:, None]  # [K, 2]
    phases = rng.uniform(0, 2 * np.pi, size=(count, 3))  # [K, 3]
    return base, amplitudes, frequencies, phases


def _draw_background(parts: tuple[np.ndarray, ...], u: np.ndarray, v: np.ndarray, size: int) -> np.ndarray:
    """The background at world coordinates u, v [H, W] (pixels): [H, W, 3] float."""
    base, amplitudes, frequencies, phases = parts
    image = np.broadcast_to(base, (*u.shape, 3)).copy()  # [H, W, 3]
    for amplitude, frequency, phase in zip(amplitudes, frequencies, phases):
        wave = 2 * np.pi * (frequency[0] * u + frequency[1] * v) / size  # [H, W]
        image += amplitude * np.sin(wave[..., None] + phase)  # [H, W, 3]
    return image


def _bezier(points: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A quadratic Bézier curve [3, 2] at times t [F] → [F, 2]."""
    t = t[:, None]
    return (1 - t) ** 2 * points[0] + 2 * (1 - t) * t * points[1] + t**2 * points[2]


def _sprite(rng: np.random.Generator, settings: WorldSettings, colour: np.ndarray) -> _Sprite:
    """A random sprite whose whole track (and body) stays inside the frame at zoom 1."""
    size = settings.size
    radius = rng.uniform(*settings.radius) * size
    margin = radius + 1.0
    for _ in range(100):
        start = rng.uniform(margin, size - 1 - margin, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(*settings.travel) * size
        end = start + length * np.array([np.cos(angle), np.sin(angle)])
        bend = rng.uniform(-0.35, 0.35) * length
        control = (start + end) / 2 + bend * np.array([-np.sin(angle), np.cos(angle)])
        points = np.stack([start, control, end])  # [3, 2]
        path = _bezier(points, np.linspace(0, 1, 33))
        if path.min() >= margin and path.max() <= size - 1 - margin:
            break
    else:  # a sprite that cannot travel stays put (small frames)
        points = np.stack([start, start, start])
    stripe_angle = rng.uniform(0, np.pi)
    stripe = np.array([np.cos(stripe_angle), np.sin(stripe_angle), rng.uniform(0.8, 1.2) * radius])
    return _Sprite(
        kind=str(rng.choice(KINDS)),
        colour=colour,
        radius=radius,
        points=points,
        ease=float(rng.uniform(0, 1)),
        stripe=stripe,
        wobble=np.array([rng.uniform(0.08, 0.18), rng.uniform(0, 2 * np.pi)]),
    )


def _coverage(sprite: _Sprite, x: np.ndarray, y: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    """How much of each pixel (x, y [H, W], screen) the sprite covers, antialiased: [H, W] in [0, 1]."""
    dx, dy = (x - centre[0]) / scale, (y - centre[1]) / scale  # sprite-local, in world pixels
    edge = 0.5 / scale  # half a screen pixel, in world pixels
    if sprite.kind == "square":
        inside_x = np.clip((sprite.radius - np.abs(dx)) / (2 * edge) + 0.5, 0, 1)
        inside_y = np.clip((sprite.radius - np.abs(dy)) / (2 * edge) + 0.5, 0, 1)
        return inside_x * inside_y
    distance = np.hypot(dx, dy)
    radius = sprite.radius
    if sprite.kind == "blob":
        amplitude, phase = sprite.wobble
        radius = sprite.radius * (1 + amplitude * np.sin(3 * np.arctan2(dy, dx) + phase))
    return np.clip((radius - distance) / (2 * edge) + 0.5, 0, 1)


def _paint(sprite: _Sprite, x: np.ndarray, y: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    """The sprite's colour at each pixel [H, W, 3]: flat, or striped in its own frame for blobs."""
    if sprite.kind != "blob":
        return np.broadcast_to(sprite.colour, (*x.shape, 3))
    dx, dy = (x - centre[0]) / scale, (y - centre[1]) / scale
    cos, sin, period = sprite.stripe
    shade = 0.72 + 0.28 * np.sin(2 * np.pi * (dx * cos + dy * sin) / period)  # [H, W]
    return sprite.colour * shade[..., None]


def _camera(rng: np.random.Generator, settings: WorldSettings) -> tuple[bool, np.ndarray, float]:
    """Whether the camera moves, its pan at the last frame [2] (pixels) and its zoom there."""
    if rng.uniform() >= settings.camera:
        return False, np.zeros(2), 1.0
    pan = rng.uniform(-settings.pan, settings.pan, size=2) * settings.size
    zoom = 1.0 + rng.uniform(-settings.zoom, settings.zoom)
    return True, pan, zoom


def make_clip(seed: int, settings: WorldSettings = WorldSettings()) -> ToyClip:
    """The procedural clip of a seed: frames, the sprites' screen tracks, their visible masks and centre visibility."""
    settings.check()
    rng = np.random.default_rng(seed)
    size, count = settings.size, settings.num_frames
    parts = _background(rng)
    sprites_count = int(rng.integers(settings.min_sprites, settings.max_sprites + 1))
    colours = PALETTE[rng.permutation(len(PALETTE))[:sprites_count]]  # [S, 3] distinct
    sprites = [_sprite(rng, settings, colour) for colour in colours]
    moving, pan, zoom = _camera(rng, settings)
    times = np.linspace(0, 1, count)  # [F]
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)  # [H, W] screen pixel centres
    middle = (size - 1) / 2
    frames = np.zeros((count, size, size, 3), dtype=np.uint8)
    tracks = np.zeros((sprites_count, count, 2))
    covers = np.zeros((sprites_count, count, size, size))
    for f, t in enumerate(times):
        scale = 1 + (zoom - 1) * t
        shift = pan * t  # [2]
        u, v = (x - middle - shift[0]) / scale + middle, (y - middle - shift[1]) / scale + middle  # world coords
        image = _draw_background(parts, u, v, size)  # [H, W, 3]
        for s, sprite in enumerate(sprites):
            eased = t + sprite.ease * (t * t * (3 - 2 * t) - t)
            world = _bezier(sprite.points, np.array([eased]))[0]  # [2]
            centre = (world - middle) * scale + middle + shift  # [2] screen
            tracks[s, f] = centre
            alpha = _coverage(sprite, x, y, centre, scale)  # [H, W]
            covers[s, f] = alpha
            image = image * (1 - alpha[..., None]) + _paint(sprite, x, y, centre, scale) * alpha[..., None]
        frames[f] = np.clip(np.round(image), 0, 255).astype(np.uint8)
    solid = covers > 0.5  # [S, F, H, W]
    nearer = np.zeros_like(solid)
    for s in range(sprites_count - 2, -1, -1):
        nearer[s] = nearer[s + 1] | solid[s + 1]
    masks = solid & ~nearer
    visible = np.zeros((sprites_count, count), dtype=bool)
    for s in range(sprites_count):
        for f in range(count):
            cx, cy = np.round(tracks[s, f]).astype(int)
            inside = 0 <= cx < size and 0 <= cy < size
            visible[s, f] = inside and not nearer[s, f, cy, cx]
    return ToyClip(
        seed=seed,
        frames=frames,
        tracks=tracks,
        masks=masks,
        visible=visible,
        kinds=[sprite.kind for sprite in sprites],
        colours=colours.astype(np.uint8),
        radii=np.array([sprite.radius for sprite in sprites]),
        camera=moving,
    )
