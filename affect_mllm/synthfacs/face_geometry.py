"""Face geometry and drawing primitives shared by the face renderer's parts (face.py, mouth.py).

Shapes are built in *face units* (origin at the head centre, x to the image right, y down, 1 = head half-height)
and mapped to pixels by one affine transform (`face_transform`: style position, scale and roll, plus the head
pose). This module holds the neutral layout, the displacement each AU intensity unit causes, the AU intensities
per face side (`Expression`), the anti-aliased canvas and the skin-fold stroke (`crease`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike

from affect_mllm.synthfacs.nuisance import BASE_FACE_FRACTION, FaceStyle, HeadPose, Palette

# Neutral geometry in face units.
EYE_Y = -0.10
EYE_HALF_WIDTH = 0.17
UPPER_LID = 0.08  # neutral upper-lid height above the eye line at the eye centre
LOWER_LID = 0.055
IRIS_RADIUS = 0.065
PUPIL_RADIUS = 0.022
BROW_Y = -0.33
BROW_INNER_X = 0.10
BROW_OUTER_X = 0.46
BROW_ARCH = 0.035
FOREHEAD_LINES_Y = (-0.52, -0.58)
NOSE_Y = 0.20
MOUTH_Y = 0.48
MOUTH_HALF_WIDTH = 0.25
UPPER_LIP = 0.05
LOWER_LIP = 0.065
UPPER_TEETH = 0.04
LOWER_TEETH = 0.025  # shrinks to nothing as the jaw drops: the lower lip covers them

# Displacement per AU intensity unit (face units); at intensity 5 multiply by 5.
INNER_BROW_RAISE = 0.022  # AU1
OUTER_BROW_RAISE = 0.020  # AU2
BROW_LOWER = 0.009  # AU4, plus as much again at the inner end
BROW_TOGETHER = 0.012  # AU4 pulls the inner ends toward the midline
LID_RAISE = 0.009  # AU5
LID_TIGHTEN = 0.008  # AU7
CHEEK_RAISE = 0.006  # AU6 narrows the eye from below
NOSE_RAISE = 0.008  # AU9
UPPER_LIP_RAISE = 0.012  # AU10 (AU9 drags it a third as much)
CORNER_UP = 0.019  # AU12
CORNER_DOWN = 0.018  # AU15
MOUTH_STRETCH_WIDTH = 0.08  # AU20, relative half-width
LIPS_PART = 0.024  # AU25
JAW_DROP = 0.040  # AU26
MOUTH_STRETCH_OPEN = 0.075  # AU27
CHIN_PUSH = 0.008  # AU17 pushes the lower lip (and the mouth's middle) up
CHIN_DROP = (0.025, 0.045)  # AU26, AU27: how far the chin outline moves down

_CIRCLE = np.linspace(0.0, 2 * np.pi, 33)[:-1]
CIRCLE_X, CIRCLE_Y = np.cos(_CIRCLE), np.sin(_CIRCLE)  # a 32-gon
_SHIFT_BITS = 4  # sub-pixel precision of cv2 drawing


@dataclass(frozen=True)
class Expression:
    """AU intensities per face side (-1: image left, +1: image right) plus the midline view and the blink."""

    by_side: Mapping[int, Mapping[int, float]]
    blink: float

    def side(self, sign: int, au: int) -> float:
        """The AU's intensity on one side (0 when absent)."""
        return self.by_side[sign].get(au, 0.0)

    def mid(self, au: int) -> float:
        """The AU's intensity for a midline feature: the stronger side."""
        return max(self.by_side[-1].get(au, 0.0), self.by_side[1].get(au, 0.0))


def expression(aus: Mapping[int, float], sides: Mapping[int, str] | None, blink: float) -> Expression:
    """Split AUs by side: 'left' (subject's left) is image-right (+1), 'right' is image-left (-1)."""
    sides = sides or {}
    by_side: dict[int, dict[int, float]] = {-1: {}, 1: {}}
    for au, value in aus.items():
        side = sides.get(au, "both")
        if side not in ("both", "left", "right"):
            raise ValueError(f"side of AU{au} must be 'left', 'right' or 'both', got {side!r}")
        for sign, name in ((1, "left"), (-1, "right")):
            if side in ("both", name):
                by_side[sign][int(au)] = min(5.0, max(0.0, float(value)))
    return Expression(by_side, min(1.0, max(0.0, float(blink))))


class Canvas:
    """An image plus the face-units-to-pixels transform; draws filled polygons and strokes anti-aliased."""

    def __init__(self, image: np.ndarray, matrix: np.ndarray, feature_shift: tuple[float, float]) -> None:
        self.image = image
        self.unit_px = float(np.hypot(matrix[0, 0], matrix[1, 0]))
        scaled = matrix * (1 << _SHIFT_BITS)  # cv2 takes fixed-point coordinates with _SHIFT_BITS fraction bits
        self._x_axis, self._y_axis, self._origin = scaled[:, 0], scaled[:, 1], scaled[:, 2]
        self._feature_origin = self._origin + scaled[:, :2] @ np.asarray(feature_shift)

    def points(self, xs: np.ndarray, ys: np.ndarray, feature: bool) -> np.ndarray:
        """Fixed-point pixel coordinates of face-unit points (inner features shifted with the head turn)."""
        origin = self._feature_origin if feature else self._origin
        return np.rint(xs[:, None] * self._x_axis + ys[:, None] * self._y_axis + origin).astype(np.int32)

    def fill(self, xs: np.ndarray, ys: np.ndarray, colour: tuple, feature: bool = True) -> None:
        """Fill the polygon through the points."""
        cv2.fillPoly(self.image, [self.points(xs, ys, feature)], colour, cv2.LINE_AA, _SHIFT_BITS)

    def band(self, xs: np.ndarray, top: np.ndarray, bottom: np.ndarray, colour: tuple) -> None:
        """Fill the region between two curves sampled at the same xs."""
        self.fill(np.concatenate((xs, xs[::-1])), np.concatenate((top, bottom[::-1])), colour)

    def stroke(self, xs: np.ndarray, ys: np.ndarray, colour: tuple, width: float) -> None:
        """Draw the open polyline through the points, `width` face units thick."""
        thickness = max(1, int(round(width * self.unit_px)))
        cv2.polylines(self.image, [self.points(xs, ys, True)], False, colour, thickness, cv2.LINE_AA, _SHIFT_BITS)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, colour: tuple, feature: bool = True) -> None:
        """Fill an axis-aligned ellipse (as a 32-gon)."""
        self.fill(cx + rx * CIRCLE_X, cy + ry * CIRCLE_Y, colour, feature)


def blend(a: tuple, b: tuple, share: float) -> tuple[float, ...]:
    """Colour a moved `share` (clipped to 0..1) of the way to b."""
    share = min(1.0, max(0.0, share))
    return tuple(x + (y - x) * share for x, y in zip(a, b, strict=True))


def crease(
    canvas: Canvas, palette: Palette, xs: ArrayLike, ys: ArrayLike, strength: float, width: float = 0.018
) -> None:
    """A skin fold through the points (xs, ys) whose darkness grows with strength (>= 1: full crease colour)."""
    if strength > 0.02:
        colour = blend(palette.skin, palette.crease, strength)
        canvas.stroke(np.asarray(xs, float), np.asarray(ys, float), colour, width)


def face_transform(style: FaceStyle, size: int, head: HeadPose | None = None) -> np.ndarray:
    """The 2x3 matrix taking face units to pixel coordinates for `style` (and `head`) at `size`."""
    head = head or HeadPose()
    unit = BASE_FACE_FRACTION * style.face_scale * head.scale * size
    angle = np.deg2rad(style.roll_deg + head.roll_deg)
    rotation = unit * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = size * (0.5 + np.array(style.centre) + (head.dx, head.dy))
    return np.hstack([rotation, centre[:, None]])
