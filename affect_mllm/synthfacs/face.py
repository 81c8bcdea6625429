"""Face renderer: a cartoon face whose geometry follows FACS Action Unit intensities (0 absent .. 5 maximal).

Shapes are built in *face units* (origin at the head centre, x to the image right, y down, 1 = head half-height)
and mapped to pixels by one affine transform (style position, scale and roll, plus the head pose). Every part of
the face has its own drawing function; each reads the AUs that move it.

Laterality follows FACS: "left" is the subject's left, which appears on the image's right. It applies to the
paired features (brows, lids, cheeks, mouth corners, dimples, folds); midline features (nose, lips' opening and
thickness, jaw, chin) take the stronger side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike

from affect_mllm.synthfacs.nuisance import (
    BASE_FACE_FRACTION,
    Appearance,
    FaceStyle,
    HeadPose,
    Palette,
    apply_photometrics,
    draw_background,
    face_palette,
)

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

_MOUTH_T = np.linspace(-1.0, 1.0, 17)
_EYE_T = np.linspace(-1.0, 1.0, 13)
_BROW_T = np.linspace(0.0, 1.0, 7)
_CIRCLE = np.linspace(0.0, 2 * np.pi, 33)[:-1]
_COS, _SIN = np.cos(_CIRCLE), np.sin(_CIRCLE)
_FOREHEAD_MIDDLE = np.linspace(-0.14, 0.14, 5)
_FOREHEAD_SIDE = np.linspace(0.16, 0.38, 5)
_SHIFT_BITS = 4  # sub-pixel precision of cv2 drawing


@dataclass(frozen=True)
class _Expression:
    """AU intensities per face side (-1: image left, +1: image right) plus the midline view and the blink."""

    by_side: Mapping[int, Mapping[int, float]]
    blink: float

    def side(self, sign: int, au: int) -> float:
        return self.by_side[sign].get(au, 0.0)

    def mid(self, au: int) -> float:
        return max(self.by_side[-1].get(au, 0.0), self.by_side[1].get(au, 0.0))


def _expression(aus: Mapping[int, float], sides: Mapping[int, str] | None, blink: float) -> _Expression:
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
    return _Expression(by_side, min(1.0, max(0.0, float(blink))))


class _Canvas:
    """An image plus the face-units-to-pixels transform; draws filled polygons and strokes anti-aliased."""

    def __init__(self, image: np.ndarray, matrix: np.ndarray, feature_shift: tuple[float, float]) -> None:
        self.image = image
        self.unit_px = float(np.hypot(matrix[0, 0], matrix[1, 0]))
        scaled = matrix * (1 << _SHIFT_BITS)  # cv2 takes fixed-point coordinates with _SHIFT_BITS fraction bits
        self._x_axis, self._y_axis, self._origin = scaled[:, 0], scaled[:, 1], scaled[:, 2]
        self._feature_origin = self._origin + scaled[:, :2] @ np.asarray(feature_shift)

    def points(self, xs: np.ndarray, ys: np.ndarray, feature: bool) -> np.ndarray:
        origin = self._feature_origin if feature else self._origin
        return np.rint(xs[:, None] * self._x_axis + ys[:, None] * self._y_axis + origin).astype(np.int32)

    def fill(self, xs: np.ndarray, ys: np.ndarray, colour: tuple, feature: bool = True) -> None:
        cv2.fillPoly(self.image, [self.points(xs, ys, feature)], colour, cv2.LINE_AA, _SHIFT_BITS)

    def band(self, xs: np.ndarray, top: np.ndarray, bottom: np.ndarray, colour: tuple) -> None:
        """Fill the region between two curves sampled at the same xs."""
        self.fill(np.concatenate((xs, xs[::-1])), np.concatenate((top, bottom[::-1])), colour)

    def stroke(self, xs: np.ndarray, ys: np.ndarray, colour: tuple, width: float) -> None:
        thickness = max(1, int(round(width * self.unit_px)))
        cv2.polylines(self.image, [self.points(xs, ys, True)], False, colour, thickness, cv2.LINE_AA, _SHIFT_BITS)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, colour: tuple, feature: bool = True) -> None:
        self.fill(cx + rx * _COS, cy + ry * _SIN, colour, feature)


def blend(a: tuple, b: tuple, share: float) -> tuple[float, ...]:
    """Colour a moved `share` (clipped to 0..1) of the way to b."""
    share = min(1.0, max(0.0, share))
    return tuple(x + (y - x) * share for x, y in zip(a, b, strict=True))


def _crease(
    canvas: _Canvas, palette: Palette, xs: ArrayLike, ys: ArrayLike, strength: float, width: float = 0.018
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


def _draw_head(canvas: _Canvas, look: Appearance, palette: Palette, expr: _Expression) -> None:
    """Long hair behind, neck, ears and the head outline; the chin moves down with the jaw (AU26/AU27)."""
    width = look.face_width
    if look.hair_style == "long":
        canvas.ellipse(0.0, 0.08, width + 0.16, 1.12, palette.hair, feature=False)
    canvas.fill(np.array([-0.36, 0.36, 0.44, -0.44]), np.array([0.5, 0.5, 2.0, 2.0]), palette.shade, feature=False)
    for sign in (-1, 1):
        canvas.ellipse(sign * width * 0.97, -0.04, 0.09, 0.16, palette.shade, feature=False)
    jaw = CHIN_DROP[0] * expr.mid(26) + CHIN_DROP[1] * expr.mid(27) - 0.006 * expr.mid(17)
    xs, ys = width * _COS, _SIN
    lower = np.clip(ys, 0.0, 1.0)
    canvas.fill(xs * (1 - 0.15 * lower**2), ys * (1 + jaw * (ys > 0)), palette.skin, feature=False)


def _draw_hair_cap(canvas: _Canvas, look: Appearance, palette: Palette) -> None:
    """Hair over the top of the head down to the hairline (lower for a fringe); nothing when bald."""
    if look.hair_style == "none":
        return
    temple_y = look.hairline + 0.22
    hairline = look.hairline + (0.07 if look.hair_style == "fringe" else 0.0)  # a fringe lowers only the middle
    end = np.arcsin(np.clip(-temple_y / 1.05, -1.0, 1.0))  # angle where the outer arc reaches the temples
    arc = np.linspace(np.pi - end, 2 * np.pi + end, 21)
    outer_x, outer_y = 1.05 * look.face_width * np.cos(arc), 1.05 * np.sin(arc)
    edge_x = np.linspace(outer_x[-1], outer_x[0], 11)
    edge_y = hairline + (temple_y - hairline) * (edge_x / outer_x[0]) ** 2
    canvas.fill(np.concatenate((outer_x, edge_x)), np.concatenate((outer_y, edge_y)), palette.hair, feature=False)


def _brow_line(expr: _Expression, look: Appearance, sign: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brow centre line from inner (t=0) to outer end (t=1) and its thickness, moved by AU1, AU2, AU4, AU9."""
    t = _BROW_T
    au1, au2, au4, au9 = (expr.side(sign, au) for au in (1, 2, 4, 9))
    inner_x = BROW_INNER_X - BROW_TOGETHER * au4
    xs = sign * (inner_x + (BROW_OUTER_X - inner_x) * t)
    arch = max(0.0, BROW_ARCH * (1 + 0.12 * au2 - 0.12 * au4)) * np.sin(np.pi * (0.15 + 0.75 * t))
    lift = INNER_BROW_RAISE * au1 * (1 - 0.7 * t) + OUTER_BROW_RAISE * au2 * (0.3 + 0.7 * t)
    drop = BROW_LOWER * au4 * (2 - t) + 0.005 * au9 * (1 - t)
    ys = BROW_Y - arch - lift + drop
    widths = look.brow_thickness * (1.15 - 0.45 * t) * (1 + 0.04 * au4 * (1 - t))
    return xs, ys, widths


def _draw_brows(canvas: _Canvas, expr: _Expression, look: Appearance, palette: Palette) -> None:
    """Brows as tapered bands, plus the vertical furrow lines AU4 makes between them."""
    for sign in (-1, 1):
        xs, ys, widths = _brow_line(expr, look, sign)
        canvas.band(xs, ys - widths / 2, ys + widths / 2, palette.brow)
        furrow_x = sign * 0.035
        _crease(canvas, palette, (furrow_x, furrow_x * 1.3), (BROW_Y - 0.03, BROW_Y + 0.09), expr.side(sign, 4) / 3)


def _draw_forehead(canvas: _Canvas, expr: _Expression, palette: Palette) -> None:
    """Horizontal forehead lines: the middle segment from AU1 (inner brow raise), the outer ones from AU2."""
    middle = _FOREHEAD_MIDDLE
    for k, y in enumerate(FOREHEAD_LINES_Y):
        bend = 0.02 * (1 - k * 0.3)
        _crease(canvas, palette, middle, y - bend * (1 - (middle / 0.14) ** 2), (expr.mid(1) - 0.5 * k) / 3.0)
        for sign in (-1, 1):
            xs = sign * _FOREHEAD_SIDE
            strength = (expr.side(sign, 2) + 0.3 * expr.side(sign, 1) - 0.5 * k) / 3.0
            _crease(canvas, palette, xs, y + 0.03 * ((np.abs(xs) - 0.16) / 0.22) ** 2, strength)


def _lid_curves(expr: _Expression, look: Appearance, sign: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, upper-lid y and lower-lid y across one eye: AU5 opens, AU6/AU7 narrow, AU43 and blink close."""
    au5, au6, au7 = (expr.side(sign, au) for au in (5, 6, 7))
    upper = max(0.01, UPPER_LID * look.eye_size + LID_RAISE * au5 - 0.006 * au7 - 0.004 * au6)
    lower = max(0.008, LOWER_LID * look.eye_size - LID_TIGHTEN * au7 - CHEEK_RAISE * au6)
    closure = max(expr.blink, expr.side(sign, 43) / 5.0)
    t = _EYE_T
    xs = sign * look.eye_spacing + EYE_HALF_WIDTH * look.eye_size * t
    lower_y = EYE_Y + lower * (1 - t**2)
    open_y = EYE_Y - upper * (1 - t**2) ** 0.7
    return xs, open_y + closure * (lower_y - open_y), lower_y


def _draw_eye(canvas: _Canvas, expr: _Expression, look: Appearance, palette: Palette, sign: int) -> None:
    """Sclera, iris and pupil, clipped by skin-coloured lid covers, then lid lines and the lid crease."""
    xs, upper, lower = _lid_curves(expr, look, sign)
    centre_x = sign * look.eye_spacing
    if np.max(lower - upper) > 0.004:
        canvas.band(xs, upper, lower, palette.sclera)
        canvas.ellipse(centre_x, EYE_Y + 0.006, IRIS_RADIUS, IRIS_RADIUS, palette.iris)
        canvas.ellipse(centre_x, EYE_Y + 0.006, PUPIL_RADIUS, PUPIL_RADIUS, palette.pupil)
        # Skin bands above and below the lids hide the parts of the iris the lids cover.
        top = np.minimum(upper, EYE_Y - IRIS_RADIUS - 0.02)
        bottom = np.maximum(lower, EYE_Y + IRIS_RADIUS + 0.02)
        canvas.band(xs, upper, top, palette.skin)
        canvas.band(xs, lower, bottom, palette.skin)
    canvas.stroke(xs, upper, palette.liner, 0.022)
    tension = 0.45 + 0.1 * expr.side(sign, 7)
    canvas.stroke(xs[1:-1], lower[1:-1], blend(palette.skin, palette.liner, tension), 0.014)
    crease_y = EYE_Y - (UPPER_LID * look.eye_size + 0.03) * (1 - (_EYE_T * 0.9) ** 2) ** 0.7
    _crease(canvas, palette, xs[2:-2], crease_y[2:-2] - LID_RAISE * expr.side(sign, 5), 0.35)


def _draw_cheek(canvas: _Canvas, expr: _Expression, look: Appearance, palette: Palette, sign: int) -> None:
    """Cheek colour that AU6 (and AU12) raises, the lower-lid furrow arc and crow's feet of AU6."""
    au6, au12 = expr.side(sign, 6), expr.side(sign, 12)
    blush = 0.12 + 0.07 * au6 + 0.03 * au12
    cheek_y = 0.10 - 0.015 * au6 - 0.005 * au12
    colour = blend(palette.skin, palette.blush, blush)
    canvas.ellipse(sign * look.eye_spacing * 0.95, cheek_y, 0.10 * (1 + 0.04 * au6), 0.065, colour)


def _draw_cheek_lines(canvas: _Canvas, expr: _Expression, look: Appearance, palette: Palette, sign: int) -> None:
    """AU6 creases drawn over the eye region: an arc under the lower lid and crow's feet at the outer corner."""
    au6 = expr.side(sign, 6)
    if au6 <= 0:
        return
    _, _, lower = _lid_curves(expr, look, sign)
    t = np.linspace(-0.8, 0.9, 7)
    xs = sign * (look.eye_spacing + EYE_HALF_WIDTH * look.eye_size * t)
    _crease(canvas, palette, xs, EYE_Y + lower.max() - EYE_Y + 0.035 + 0.03 * t**2, au6 / 3.0)
    corner = sign * (look.eye_spacing + EYE_HALF_WIDTH * look.eye_size + 0.02)
    for dy in (-0.035, 0.0, 0.035):
        _crease(canvas, palette, (corner, corner + sign * 0.055), (EYE_Y + dy * 0.4, EYE_Y + dy), au6 / 3.5)


def _draw_nose(canvas: _Canvas, expr: _Expression, palette: Palette) -> None:
    """Nostrils, wings and tip, raised and flared by AU9 (and a little by AU10), plus AU9's bridge wrinkles."""
    au9, au10 = expr.mid(9), expr.mid(10)
    y = NOSE_Y - NOSE_RAISE * au9 - 0.004 * au10
    flare = 1 + 0.06 * au9
    for sign in (-1, 1):
        canvas.ellipse(sign * 0.045, y, 0.022 * flare, 0.011 * (1 + 0.08 * au9), palette.crease)
        wing_x = sign * np.array([0.045, 0.085 * flare, 0.085 * flare, 0.06])
        _crease(canvas, palette, wing_x, y + np.array([-0.06, -0.035, 0.0, 0.02]), 0.5)
    _crease(canvas, palette, np.array([-0.03, 0.0, 0.03]), y + np.array([0.018, 0.03, 0.018]), 0.35)
    for k in range(3):
        xs = np.linspace(-0.065, 0.065, 5)
        _crease(canvas, palette, xs, EYE_Y + 0.06 + 0.035 * k - 0.02 * (1 - (xs / 0.065) ** 2), au9 / 3.0 - 0.15 * k)


@dataclass(frozen=True)
class _Mouth:
    """Lip curves across the mouth (index runs from image-left corner to image-right corner)."""

    xs: np.ndarray
    upper_outer: np.ndarray
    upper_inner: np.ndarray
    lower_inner: np.ndarray
    lower_outer: np.ndarray


def _corner(expr: _Expression, look: Appearance, sign: int) -> tuple[float, float]:
    """Half-width and upward lift of one mouth corner: AU12 up and out, AU15 down, AU20 out, AU14 in."""
    au12, au14, au15, au20 = (expr.side(sign, au) for au in (12, 14, 15, 20))
    stretch = MOUTH_STRETCH_WIDTH * au20 + 0.025 * au12 - 0.03 * au14
    narrow = 0.04 * expr.mid(23) + 0.015 * expr.mid(24) + 0.035 * expr.mid(27) + 0.01 * expr.mid(26)
    half_width = MOUTH_HALF_WIDTH * look.mouth_width * (1 + stretch - narrow)
    lift = CORNER_UP * au12 - CORNER_DOWN * au15 - 0.004 * au20 + 0.005 * au14
    return half_width, lift


def _mouth_shape(expr: _Expression, look: Appearance) -> _Mouth:
    """Lip curves: corners per side, opening by AU25/26/27 (flatter with AU20), AU10 lifts the upper lip's middle."""
    t = _MOUTH_T
    corners = np.array([_corner(expr, look, sign) for sign in (-1, 1)])[(t > 0).astype(int)]
    xs = t * corners[:, 0]
    middle = MOUTH_Y - corners[:, 1] * t**2 - CHIN_PUSH * expr.mid(17) * (1 - t**2)
    squeeze = max(0.0, 1 - 0.18 * expr.mid(24) - 0.08 * expr.mid(23))
    opening = LIPS_PART * expr.mid(25) + JAW_DROP * expr.mid(26) + MOUTH_STRETCH_OPEN * expr.mid(27)
    gap = max(0.0, opening * squeeze - 0.006 * expr.mid(17))
    envelope = np.sqrt(np.clip(1 - np.abs(t) ** (2 + 0.8 * expr.mid(20)), 0.0, 1.0))
    lifted = UPPER_LIP_RAISE * (expr.mid(10) + expr.mid(9) / 3) * (1 - t**4)
    upper_inner = middle - 0.35 * gap * envelope - lifted
    lower_inner = middle + 0.65 * gap * envelope
    thin = max(0.3, 1 - 0.1 * expr.mid(23) - 0.15 * expr.mid(24) - 0.05 * expr.mid(27) - 0.06 * expr.mid(20))
    body = (1 - t**2) ** 0.35
    bow = 1 - 0.3 * np.exp(-((t / 0.15) ** 2))  # the cupid's-bow dip of the upper lip
    return _Mouth(
        xs=xs,
        upper_outer=upper_inner - UPPER_LIP * thin * body * bow,
        upper_inner=upper_inner,
        lower_inner=lower_inner,
        lower_outer=lower_inner + LOWER_LIP * thin * (1 + 0.06 * expr.mid(17)) * body,
    )


def _draw_mouth_folds(canvas: _Canvas, expr: _Expression, mouth: _Mouth, palette: Palette) -> None:
    """Folds around the mouth: nasolabial (AU6/9/10/12), dimples (AU14), down-lines (AU15), stretch (AU20)."""
    nose_y = NOSE_Y - NOSE_RAISE * expr.mid(9) - 0.004 * expr.mid(10)
    for sign, end in ((-1, 0), (1, -1)):
        corner_x, corner_y = mouth.xs[end], mouth.upper_inner[end]
        au = {au: expr.side(sign, au) for au in (6, 9, 10, 12, 14, 15, 20)}
        fold = 0.1 + (0.5 * au[6] + 0.8 * au[12] + 0.7 * au[9] + 0.9 * au[10] + 0.3 * au[20] + 0.3 * au[14]) / 4
        fold_x = sign * np.array([0.10, abs(corner_x) * 0.85 + 0.06, abs(corner_x) + 0.06])
        fold_y = (nose_y - 0.02, (nose_y + corner_y) / 2, corner_y + 0.04)
        _crease(canvas, palette, fold_x, fold_y, min(fold, 0.9))
        dimple_x = corner_x + sign * 0.035
        dimple_y = (corner_y - 0.05, corner_y, corner_y + 0.05)
        _crease(canvas, palette, (dimple_x, dimple_x + sign * 0.018, dimple_x), dimple_y, au[14] / 2, 0.022)
        down = ((corner_x + sign * 0.01, corner_x + sign * 0.05), (corner_y + 0.02, corner_y + 0.13))
        _crease(canvas, palette, *down, au[15] / 2.5, 0.022)
        stretch = ((corner_x + sign * 0.025, corner_x + sign * 0.11), (corner_y, corner_y + 0.015))
        _crease(canvas, palette, *stretch, au[20] / 2.5, 0.022)


def _draw_chin(canvas: _Canvas, expr: _Expression, mouth: _Mouth, palette: Palette) -> None:
    """AU17's chin boss fold under the lower lip and AU24's pressed-lip bulges above and below the lips."""
    xs = np.linspace(-0.11, 0.11, 7)
    curve = (xs / 0.11) ** 2
    bottom = mouth.lower_outer.max()
    _crease(canvas, palette, xs, bottom + 0.08 - 0.03 * curve, expr.mid(17) / 3.0)
    _crease(canvas, palette, xs * 1.4, mouth.upper_outer.min() - 0.035 + 0.02 * curve, expr.mid(24) / 2.5, 0.022)
    _crease(canvas, palette, xs * 1.4, bottom + 0.035 - 0.02 * curve, expr.mid(24) / 2.5, 0.022)


def _draw_lips(canvas: _Canvas, expr: _Expression, mouth: _Mouth, palette: Palette) -> None:
    """Mouth cavity and teeth where the lips part, then both lips; a lip line when closed, a rim for AU23."""
    xs, upper, lower = mouth.xs, mouth.upper_inner, mouth.lower_inner
    if np.max(lower - upper) > 0.006:
        canvas.band(xs, upper, lower, palette.cavity)
        inner = slice(2, -2)  # teeth stop short of the corners
        tx, top, bottom = xs[inner], upper[inner], lower[inner]
        upper_teeth = np.minimum(top + UPPER_TEETH, bottom)
        lower_teeth = np.maximum(bottom - LOWER_TEETH * max(0.0, 1 - np.max(lower - upper) / 0.12), upper_teeth)
        canvas.band(tx, top, upper_teeth, palette.teeth)
        canvas.band(tx, lower_teeth, bottom, palette.teeth)
    canvas.band(xs, mouth.upper_outer, upper, palette.lips)
    canvas.band(xs, lower, mouth.lower_outer, palette.lips)
    if np.max(lower - upper) <= 0.006:
        canvas.stroke(xs, (upper + lower) / 2, palette.lip_line, 0.012)
    if expr.mid(23) > 0:
        rim = blend(palette.lips, palette.lip_line, expr.mid(23) / 2.0)
        canvas.stroke(xs, mouth.upper_outer, rim, 0.012)
        canvas.stroke(xs, mouth.lower_outer, rim, 0.012)


def render_face(
    aus: Mapping[int, float],
    style: FaceStyle,
    *,
    sides: Mapping[int, str] | None = None,
    blink: float = 0.0,
    head: HeadPose | None = None,
    size: int = 112,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Draw one face frame.

    Args:
        aus: AU number -> FACS intensity 0..5 (values outside are clipped; unknown AUs are ignored).
        style: who is drawn and the nuisance (see nuisance.py).
        sides: AU number -> "left"/"right" (subject's side) for one-sided AUs, e.g. {12: "left", 14: "left"}.
        blink: 0 open .. 1 closed; closes the lids like AU43.
        head: per-frame head motion; None is the still, frontal head.
        size: image side in pixels.
        rng: source of the pixel noise; None uses the style's noise seed (the same noise on every frame).

    Returns:
        (size, size, 3) uint8 RGB image; the same arguments give the same bytes.
    """
    expr = _expression(aus, sides, blink)
    look, palette = style.appearance, face_palette(style.appearance)
    head = head or HeadPose()
    feature_shift = (0.06 * head.yaw, 0.05 * head.pitch)  # inner features slide against the outline: fake 3D turn
    canvas = _Canvas(draw_background(style, size), face_transform(style, size, head), feature_shift)
    _draw_head(canvas, look, palette, expr)
    for sign in (-1, 1):
        _draw_cheek(canvas, expr, look, palette, sign)
        _draw_eye(canvas, expr, look, palette, sign)
        _draw_cheek_lines(canvas, expr, look, palette, sign)
    _draw_forehead(canvas, expr, palette)
    _draw_hair_cap(canvas, look, palette)
    _draw_brows(canvas, expr, look, palette)
    _draw_nose(canvas, expr, palette)
    mouth = _mouth_shape(expr, look)
    _draw_mouth_folds(canvas, expr, mouth, palette)
    _draw_chin(canvas, expr, mouth, palette)
    _draw_lips(canvas, expr, mouth, palette)
    return apply_photometrics(canvas.image, style, rng)
