"""Who is drawn and how hard the picture is to read: identities, face styles, difficulty levels, backgrounds.

An *identity* fixes what stays with a person (skin, hair, eye and lip colour, proportions); a *style* adds what
changes from clip to clip (position, scale, roll, background, lighting, noise, blur). The generator keeps
train/val/test identities disjoint by passing disjoint identity numbers to :func:`sample_style`.

Difficulty levels. Levels 1 and 4 are the "mild" and "full" nuisance of the first learnability trial
(a tiny model left chance on the first and not on the second); face scale 1 is a head half-height of 0.38 of the
image side, so level 0 (scale 1.15) puts a 98-px-tall head in a 112-px frame:

| level | shift | scale     | roll | background   | shapes | blur share, sigma | gain      | offset | light | noise |
|-------|-------|-----------|------|--------------|--------|-------------------|-----------|--------|-------|-------|
| 0     | 0     | 1.15      | 0    | flat         | 0      | none              | 1         | 0      | 0     | 0     |
| 1     | +-3   | 1.05-1.20 | +-2  | 50% gradient | 0-1    | none              | 0.9-1.1   | +-8    | 0.10  | 2-4   |
| 2     | +-5   | 0.98-1.17 | +-4  | 70% gradient | 0-2    | 10 %, 0.7         | 0.85-1.15 | +-14   | 0.18  | 3-5   |
| 3     | +-6.5 | 0.91-1.14 | +-6  | 85% gradient | 0-3    | 20 %, 0.9         | 0.8-1.2   | +-20   | 0.24  | 3-6   |
| 4     | +-8   | 0.85-1.12 | +-8  | gradient     | 0-5    | 25 %, 1.1         | 0.75-1.25 | +-25   | 0.30  | 4-6   |

Shift, blur sigma and noise sigma are pixels at 112 px (shift and blur scale with the image side; noise is in
0-255 levels); roll in degrees; light is the largest amplitude of the directional gain ramp. Level 4 adds a roll of
up to 8 degrees that the note's probe did not have (the generator's HeadPose adds more motion on top).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.special import ndtri

RGB = tuple[int, int, int]

# Appearance tables: light to dark skin, natural hair, eye and lip colours. Lip colours are saturated reds so
# that lips stay a colour no skin tone or (difficulty-0) background has: measure_geometry finds the mouth by it.
SKIN_TONES: tuple[RGB, ...] = (
    (255, 224, 196),
    (241, 194, 160),
    (224, 172, 130),
    (198, 144, 100),
    (170, 116, 80),
    (141, 94, 64),
    (110, 72, 50),
    (86, 56, 40),
)
HAIR_COLOURS: tuple[RGB, ...] = (
    (25, 22, 22),
    (60, 40, 30),
    (100, 70, 45),
    (130, 60, 35),
    (200, 170, 110),
    (150, 150, 150),
)
IRIS_COLOURS: tuple[RGB, ...] = ((110, 70, 35), (70, 110, 160), (80, 130, 80), (120, 130, 140), (70, 45, 30))
LIP_COLOURS: tuple[RGB, ...] = ((190, 50, 70), (170, 40, 60), (205, 70, 90))
HAIR_STYLES = ("none", "short", "fringe", "long")
HAIR_STYLE_WEIGHTS = (0.15, 0.45, 0.15, 0.25)
BASE_FACE_FRACTION = 0.38  # head half-height as a share of the image side at face scale 1
REFERENCE_SIZE = 112  # image side at which the shift figures of DIFFICULTIES are given
MIN_BACKGROUND_DISTANCE = 90.0  # RGB distance a background colour keeps from skin and lips
_APPEARANCE_SALT = 0x5F0CE  # keeps identity streams apart from other seeded streams


@dataclass(frozen=True)
class Appearance:
    """What stays with one person across clips (colours, hair style, feature proportions in face units)."""

    identity: int
    skin: RGB
    hair: RGB
    brow: RGB
    iris: RGB
    lips: RGB
    hair_style: str
    face_width: float  # head half-width / half-height
    eye_spacing: float  # eye centre distance from the midline
    eye_size: float  # multiplies eye width and lid heights
    mouth_width: float  # multiplies the mouth half-width
    brow_thickness: float
    hairline: float  # y of the hairline at the midline (negative: above the head centre)


@dataclass(frozen=True)
class Palette:
    """Every colour the face renderer draws, derived from an appearance (measure_geometry matches them)."""

    skin: RGB
    shade: RGB  # ears and neck
    crease: RGB  # wrinkles and folds at full strength
    liner: RGB  # eyelid lines
    hair: RGB
    brow: RGB
    iris: RGB
    pupil: RGB
    sclera: RGB
    lips: RGB
    lip_line: RGB
    cavity: RGB
    teeth: RGB
    blush: RGB


@dataclass(frozen=True)
class Shape:
    """A background clutter shape; positions and sizes are shares of the image side."""

    kind: str  # "circle" | "rect" | "triangle"
    centre: tuple[float, float]
    radius: float
    angle_deg: float
    colour: RGB


@dataclass(frozen=True)
class FaceStyle:
    """Everything about a face picture except the expression and the per-frame head motion."""

    appearance: Appearance
    difficulty: int
    face_scale: float  # 1 = head half-height of BASE_FACE_FRACTION of the image side
    centre: tuple[float, float]  # head-centre offset from the image centre, as shares of the image side
    roll_deg: float
    background: tuple[RGB, RGB]  # gradient end colours (equal for a flat background)
    background_angle_deg: float
    shapes: tuple[Shape, ...]
    gain: float
    offset: float
    light_strength: float  # amplitude of the directional gain ramp across the image
    light_angle_deg: float
    noise_sigma: float
    blur_sigma: float  # pixels at REFERENCE_SIZE; scaled with the image side
    noise_seed: int  # seeds pixel noise when render_face gets no rng, so rendering stays deterministic


@dataclass(frozen=True)
class HeadPose:
    """Small per-frame head motion the clip generator animates.

    dx, dy move the head (shares of the image side); roll_deg turns it in the image plane; yaw and pitch
    (about -1..1) slide the inner features sideways/up-down against the head outline, a cheap 3D cue; scale zooms.
    """

    dx: float = 0.0
    dy: float = 0.0
    roll_deg: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class DifficultySpec:
    """Nuisance ranges of one difficulty level (see the module table)."""

    shift_px: float
    scale: tuple[float, float]
    roll_deg: float
    gradient_share: float
    max_shapes: int
    blur_share: float
    blur_sigma: float
    gain: float  # largest |gain - 1|
    offset: float
    light: float
    noise: tuple[float, float]


DIFFICULTIES: tuple[DifficultySpec, ...] = (
    DifficultySpec(0.0, (1.15, 1.15), 0.0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, (0.0, 0.0)),
    DifficultySpec(3.0, (1.05, 1.20), 2.0, 0.5, 1, 0.0, 0.0, 0.10, 8.0, 0.10, (2.0, 4.0)),
    DifficultySpec(5.0, (0.98, 1.17), 4.0, 0.7, 2, 0.1, 0.7, 0.15, 14.0, 0.18, (3.0, 5.0)),
    DifficultySpec(6.5, (0.91, 1.14), 6.0, 0.85, 3, 0.2, 0.9, 0.20, 20.0, 0.24, (3.0, 6.0)),
    DifficultySpec(8.0, (0.85, 1.12), 8.0, 1.0, 5, 0.25, 1.1, 0.25, 25.0, 0.30, (4.0, 6.0)),
)


def _pick(rng: np.random.Generator, table: tuple[RGB, ...]) -> RGB:
    return table[int(rng.integers(len(table)))]


def _mix(a: RGB, b: RGB, share: float) -> RGB:
    """Colour a moved `share` of the way to b."""
    return tuple(int(round(x + (y - x) * share)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _distance(a: RGB, b: RGB) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=float)))


def sample_appearance(identity: int) -> Appearance:
    """The appearance of person `identity`: the same number always gives the same person."""
    rng = np.random.default_rng([int(identity), _APPEARANCE_SALT])
    skin = _pick(rng, SKIN_TONES)
    hair = _pick(rng, HAIR_COLOURS)
    # Brows a shade darker than the hair (a colour of their own, which measure_geometry relies on), darker
    # still for light hair, and always clearly darker than the skin, so they read at 56 px.
    brow = _mix(hair, (20, 15, 15), 0.5 if sum(hair) > 400 else 0.3)
    if _distance(brow, skin) < 70:
        brow = _mix(brow, (10, 8, 8), 0.6)
    style = HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=HAIR_STYLE_WEIGHTS))]
    return Appearance(
        identity=int(identity),
        skin=skin,
        hair=hair,
        brow=brow,
        iris=_pick(rng, IRIS_COLOURS),
        lips=_pick(rng, LIP_COLOURS),
        hair_style=style,
        face_width=float(rng.uniform(0.74, 0.84)),
        eye_spacing=float(rng.uniform(0.30, 0.35)),
        eye_size=float(rng.uniform(0.92, 1.08)),
        mouth_width=float(rng.uniform(0.92, 1.08)),
        brow_thickness=float(rng.uniform(0.040, 0.055)),
        hairline=float(rng.uniform(-0.66, -0.62)),
    )


def face_palette(look: Appearance) -> Palette:
    """The colours drawn for `look`; creases and lid lines are darkened skin, the mouth colours are fixed."""
    skin = look.skin
    return Palette(
        skin=skin,
        shade=_mix(skin, (0, 0, 0), 0.15),
        crease=_mix(skin, (20, 10, 10), 0.45),
        liner=_mix(skin, (20, 10, 10), 0.6),
        hair=look.hair,
        brow=look.brow,
        iris=look.iris,
        pupil=(0, 0, 0),
        sclera=(248, 248, 248),
        lips=look.lips,
        lip_line=_mix(look.lips, (0, 0, 0), 0.4),
        cavity=(70, 18, 28),
        teeth=(225, 230, 238),
        blush=_mix(skin, (230, 80, 90), 0.5),
    )


def _background_colour(rng: np.random.Generator, look: Appearance) -> RGB:
    """A random colour kept away from skin and lips (rejection sampling, deterministic given rng)."""
    colour: RGB = (0, 0, 0)
    for _ in range(50):
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))  # type: ignore[assignment]
        if min(_distance(colour, look.skin), _distance(colour, look.lips)) >= MIN_BACKGROUND_DISTANCE:
            break
    return colour


def _sample_shapes(rng: np.random.Generator, spec: DifficultySpec) -> tuple[Shape, ...]:
    count = int(rng.integers(0, spec.max_shapes + 1))
    return tuple(
        Shape(
            kind=("circle", "rect", "triangle")[int(rng.integers(3))],
            centre=(float(rng.uniform(0, 1)), float(rng.uniform(0, 1))),
            radius=float(rng.uniform(0.06, 0.2)),
            angle_deg=float(rng.uniform(0, 360)),
            colour=tuple(int(v) for v in rng.integers(0, 256, size=3)),  # type: ignore[arg-type]
        )
        for _ in range(count)
    )


def sample_style(rng: np.random.Generator, difficulty: int, identity: int | None = None) -> FaceStyle:
    """Draw a face style at `difficulty` (0..4, see the module table) for `identity` (random when None)."""
    if not 0 <= difficulty < len(DIFFICULTIES):
        raise ValueError(f"difficulty must be 0..{len(DIFFICULTIES) - 1}, got {difficulty}")
    spec = DIFFICULTIES[difficulty]
    look = sample_appearance(int(rng.integers(0, 2**31 - 1)) if identity is None else identity)
    shift = spec.shift_px / REFERENCE_SIZE
    first = _background_colour(rng, look)
    second = _background_colour(rng, look) if rng.random() < spec.gradient_share else first
    blurred = rng.random() < spec.blur_share
    return FaceStyle(
        appearance=look,
        difficulty=difficulty,
        face_scale=float(rng.uniform(*spec.scale)),
        centre=(float(rng.uniform(-shift, shift)), float(rng.uniform(-shift, shift))),
        roll_deg=float(rng.uniform(-spec.roll_deg, spec.roll_deg)),
        background=(first, second),
        background_angle_deg=float(rng.uniform(0, 360)),
        shapes=_sample_shapes(rng, spec),
        gain=float(rng.uniform(1 - spec.gain, 1 + spec.gain)),
        offset=float(rng.uniform(-spec.offset, spec.offset)),
        light_strength=float(rng.uniform(0, spec.light)),
        light_angle_deg=float(rng.uniform(0, 360)),
        noise_sigma=float(rng.uniform(*spec.noise)),
        blur_sigma=float(rng.uniform(0.5, spec.blur_sigma)) if blurred else 0.0,
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


def _ramp(size: int, angle_deg: float, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A (size, size, channels) float32 linear ramp from `low` to `high` along the direction angle_deg."""
    angle = np.deg2rad(angle_deg)
    cos, sin = np.cos(angle), np.sin(angle)
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32) / np.float32(abs(cos) + abs(sin))
    share = (np.float32(cos) * axis[None, :] + np.float32(sin) * axis[:, None] + 1) / 2
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    return low + share[..., None] * (high - low)


def _gaussian_table() -> np.ndarray:
    """Standard-normal quantiles of the 65,536 midpoints of [0, 1]: indexing it with random uint16 draws noise."""
    table = ndtri((np.arange(1 << 16) + 0.5) / (1 << 16)).astype(np.float32)
    table.setflags(write=False)
    return table


_GAUSSIAN_TABLE = _gaussian_table()  # read-only; 5x cheaper than rng.standard_normal for a 112x112x3 frame


def gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard-normal float32 noise of `shape` (quantised to 16 bits), drawn from rng."""
    draws = np.frombuffer(rng.bytes(2 * int(np.prod(shape))), dtype=np.uint16)
    return np.take(_GAUSSIAN_TABLE, draws).reshape(shape)


def _draw_shape(image: np.ndarray, shape: Shape, size: int) -> None:
    centre = np.array(shape.centre) * size
    radius = shape.radius * size
    if shape.kind == "circle":
        cv2.circle(image, (int(centre[0]), int(centre[1])), int(radius), shape.colour, -1, cv2.LINE_AA)
        return
    corners = 4 if shape.kind == "rect" else 3
    angles = np.deg2rad(shape.angle_deg) + np.arange(corners) * 2 * np.pi / corners
    points = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    cv2.fillPoly(image, [np.round(points).astype(np.int32)], shape.colour, cv2.LINE_AA)


def draw_background(style: FaceStyle, size: int) -> np.ndarray:
    """The (size, size, 3) uint8 background: a flat colour or a two-colour gradient, then clutter shapes."""
    first, second = style.background
    if first == second:
        image = np.empty((size, size, 3), np.uint8)
        image[:] = first
    else:
        image = _ramp(size, style.background_angle_deg, np.array(first), np.array(second)).astype(np.uint8)
    for shape in style.shapes:
        _draw_shape(image, shape, size)
    return image


def apply_photometrics(image: np.ndarray, style: FaceStyle, rng: np.random.Generator | None = None) -> np.ndarray:
    """Camera nuisance: directional lighting, gain/offset, blur, then Gaussian pixel noise (from rng)."""
    clean = style.gain == 1.0 and style.offset == 0.0 and style.light_strength == 0.0
    if clean and style.blur_sigma == 0.0 and style.noise_sigma == 0.0:
        return image
    out = image.astype(np.float32)
    gain: float | np.ndarray = style.gain
    if style.light_strength:
        strength = style.light_strength
        gain = style.gain * _ramp(
            image.shape[0], style.light_angle_deg, np.array([1 - strength]), np.array([1 + strength])
        )
    out = out * gain + np.float32(style.offset + 0.5)  # +0.5 rounds on the uint8 cast below
    if style.blur_sigma:
        out = cv2.GaussianBlur(out, (0, 0), style.blur_sigma * image.shape[0] / REFERENCE_SIZE)
    if style.noise_sigma:
        rng = rng if rng is not None else np.random.default_rng(style.noise_seed)
        out += gaussian_noise(rng, out.shape) * np.float32(style.noise_sigma)
    return np.clip(out, 0, 255).astype(np.uint8)
