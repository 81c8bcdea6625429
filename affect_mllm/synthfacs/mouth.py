"""The mouth of the face renderer: lip curves moved by the mouth AUs, the folds around the mouth, chin and lips.

Corners move per side (AU12 up and out, AU15 down, AU20 out, AU14 in); the opening (AU25/26/27), AU10's raised
upper lip, AU17's pushed-up lower lip and AU23/AU24's thinned, pressed lips are midline and take the stronger side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affect_mllm.synthfacs.face_geometry import (
    CHIN_PUSH,
    CORNER_DOWN,
    CORNER_UP,
    JAW_DROP,
    LIPS_PART,
    LOWER_LIP,
    LOWER_TEETH,
    MOUTH_HALF_WIDTH,
    MOUTH_STRETCH_OPEN,
    MOUTH_STRETCH_WIDTH,
    MOUTH_Y,
    NOSE_RAISE,
    NOSE_Y,
    UPPER_LIP,
    UPPER_LIP_RAISE,
    UPPER_TEETH,
    Canvas,
    Expression,
    blend,
    crease,
)
from affect_mllm.synthfacs.nuisance import Appearance, Palette

_MOUTH_T = np.linspace(-1.0, 1.0, 17)


@dataclass(frozen=True)
class Mouth:
    """Lip curves across the mouth (index runs from image-left corner to image-right corner)."""

    xs: np.ndarray
    upper_outer: np.ndarray
    upper_inner: np.ndarray
    lower_inner: np.ndarray
    lower_outer: np.ndarray


def _corner(expr: Expression, look: Appearance, sign: int) -> tuple[float, float]:
    """Half-width and upward lift of one mouth corner: AU12 up and out, AU15 down, AU20 out, AU14 in."""
    au12, au14, au15, au20 = (expr.side(sign, au) for au in (12, 14, 15, 20))
    stretch = MOUTH_STRETCH_WIDTH * au20 + 0.025 * au12 - 0.03 * au14
    narrow = 0.04 * expr.mid(23) + 0.015 * expr.mid(24) + 0.035 * expr.mid(27) + 0.01 * expr.mid(26)
    half_width = MOUTH_HALF_WIDTH * look.mouth_width * (1 + stretch - narrow)
    lift = CORNER_UP * au12 - CORNER_DOWN * au15 - 0.004 * au20 + 0.005 * au14
    return half_width, lift


def mouth_shape(expr: Expression, look: Appearance) -> Mouth:
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
    return Mouth(
        xs=xs,
        upper_outer=upper_inner - UPPER_LIP * thin * body * bow,
        upper_inner=upper_inner,
        lower_inner=lower_inner,
        lower_outer=lower_inner + LOWER_LIP * thin * (1 + 0.06 * expr.mid(17)) * body,
    )


def draw_mouth_folds(canvas: Canvas, expr: Expression, mouth: Mouth, palette: Palette) -> None:
    """Folds around the mouth: nasolabial (AU6/9/10/12), dimples (AU14), down-lines (AU15), stretch (AU20)."""
    nose_y = NOSE_Y - NOSE_RAISE * expr.mid(9) - 0.004 * expr.mid(10)
    for sign, end in ((-1, 0), (1, -1)):
        corner_x, corner_y = mouth.xs[end], mouth.upper_inner[end]
        au = {au: expr.side(sign, au) for au in (6, 9, 10, 12, 14, 15, 20)}
        fold = 0.1 + (0.5 * au[6] + 0.8 * au[12] + 0.7 * au[9] + 0.9 * au[10] + 0.3 * au[20] + 0.3 * au[14]) / 4
        fold_x = sign * np.array([0.10, abs(corner_x) * 0.85 + 0.06, abs(corner_x) + 0.06])
        fold_y = (nose_y - 0.02, (nose_y + corner_y) / 2, corner_y + 0.04)
        crease(canvas, palette, fold_x, fold_y, min(fold, 0.9))
        dimple_x = corner_x + sign * 0.035
        dimple_y = (corner_y - 0.05, corner_y, corner_y + 0.05)
        crease(canvas, palette, (dimple_x, dimple_x + sign * 0.018, dimple_x), dimple_y, au[14] / 2, 0.022)
        down = ((corner_x + sign * 0.01, corner_x + sign * 0.05), (corner_y + 0.02, corner_y + 0.13))
        crease(canvas, palette, *down, au[15] / 2.5, 0.022)
        stretch = ((corner_x + sign * 0.025, corner_x + sign * 0.11), (corner_y, corner_y + 0.015))
        crease(canvas, palette, *stretch, au[20] / 2.5, 0.022)


def draw_chin(canvas: Canvas, expr: Expression, mouth: Mouth, palette: Palette) -> None:
    """AU17's chin boss fold under the lower lip and AU24's pressed-lip bulges above and below the lips."""
    xs = np.linspace(-0.11, 0.11, 7)
    curve = (xs / 0.11) ** 2
    bottom = mouth.lower_outer.max()
    crease(canvas, palette, xs, bottom + 0.08 - 0.03 * curve, expr.mid(17) / 3.0)
    crease(canvas, palette, xs * 1.4, mouth.upper_outer.min() - 0.035 + 0.02 * curve, expr.mid(24) / 2.5, 0.022)
    crease(canvas, palette, xs * 1.4, bottom + 0.035 - 0.02 * curve, expr.mid(24) / 2.5, 0.022)


def draw_lips(canvas: Canvas, expr: Expression, mouth: Mouth, palette: Palette) -> None:
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
