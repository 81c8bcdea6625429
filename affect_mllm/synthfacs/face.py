"""Face renderer: a cartoon face whose geometry follows FACS Action Unit intensities (0 absent .. 5 maximal).

Shapes are built in *face units* and mapped to pixels by one affine transform (`face_geometry`, which also holds
the neutral layout and the displacement per AU). Every part of the face has its own drawing function, each
reading the AUs that move it: head, brows, eyes, cheeks and nose here, the mouth in `mouth`.

Laterality follows FACS: "left" is the subject's left, which appears on the image's right. It applies to the
paired features (brows, lids, cheeks, mouth corners, dimples, folds); midline features (nose, lips' opening and
thickness, jaw, chin) take the stronger side.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from affect_mllm.synthfacs.face_geometry import (
    BROW_ARCH,
    BROW_INNER_X,
    BROW_LOWER,
    BROW_OUTER_X,
    BROW_TOGETHER,
    BROW_Y,
    CHEEK_RAISE,
    CHIN_DROP,
    CIRCLE_X,
    CIRCLE_Y,
    EYE_HALF_WIDTH,
    EYE_Y,
    FOREHEAD_LINES_Y,
    INNER_BROW_RAISE,
    IRIS_RADIUS,
    LID_RAISE,
    LID_TIGHTEN,
    LOWER_LID,
    NOSE_RAISE,
    NOSE_Y,
    OUTER_BROW_RAISE,
    PUPIL_RADIUS,
    UPPER_LID,
    Canvas,
    Expression,
    blend,
    crease,
    expression,
    face_transform,
)
from affect_mllm.synthfacs.mouth import draw_chin, draw_lips, draw_mouth_folds, mouth_shape
from affect_mllm.synthfacs.nuisance import (
    Appearance,
    FaceStyle,
    HeadPose,
    Palette,
    apply_photometrics,
    draw_background,
    face_palette,
)

_EYE_T = np.linspace(-1.0, 1.0, 13)
_BROW_T = np.linspace(0.0, 1.0, 7)
_FOREHEAD_MIDDLE = np.linspace(-0.14, 0.14, 5)
_FOREHEAD_SIDE = np.linspace(0.16, 0.38, 5)


def _draw_head(canvas: Canvas, look: Appearance, palette: Palette, expr: Expression) -> None:
    """Long hair behind, neck, ears and the head outline; the chin moves down with the jaw (AU26/AU27)."""
    width = look.face_width
    if look.hair_style == "long":
        canvas.ellipse(0.0, 0.08, width + 0.16, 1.12, palette.hair, feature=False)
    canvas.fill(np.array([-0.36, 0.36, 0.44, -0.44]), np.array([0.5, 0.5, 2.0, 2.0]), palette.shade, feature=False)
    for sign in (-1, 1):
        canvas.ellipse(sign * width * 0.97, -0.04, 0.09, 0.16, palette.shade, feature=False)
    jaw = CHIN_DROP[0] * expr.mid(26) + CHIN_DROP[1] * expr.mid(27) - 0.006 * expr.mid(17)
    xs, ys = width * CIRCLE_X, CIRCLE_Y
    lower = np.clip(ys, 0.0, 1.0)
    canvas.fill(xs * (1 - 0.15 * lower**2), ys * (1 + jaw * (ys > 0)), palette.skin, feature=False)


def _draw_hair_cap(canvas: Canvas, look: Appearance, palette: Palette) -> None:
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


def _brow_line(expr: Expression, look: Appearance, sign: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _draw_brows(canvas: Canvas, expr: Expression, look: Appearance, palette: Palette) -> None:
    """Brows as tapered bands, plus the vertical furrow lines AU4 makes between them."""
    for sign in (-1, 1):
        xs, ys, widths = _brow_line(expr, look, sign)
        canvas.band(xs, ys - widths / 2, ys + widths / 2, palette.brow)
        furrow_x = sign * 0.035
        crease(canvas, palette, (furrow_x, furrow_x * 1.3), (BROW_Y - 0.03, BROW_Y + 0.09), expr.side(sign, 4) / 3)


def _draw_forehead(canvas: Canvas, expr: Expression, palette: Palette) -> None:
    """Horizontal forehead lines: the middle segment from AU1 (inner brow raise), the outer ones from AU2."""
    middle = _FOREHEAD_MIDDLE
    for k, y in enumerate(FOREHEAD_LINES_Y):
        bend = 0.02 * (1 - k * 0.3)
        crease(canvas, palette, middle, y - bend * (1 - (middle / 0.14) ** 2), (expr.mid(1) - 0.5 * k) / 3.0)
        for sign in (-1, 1):
            xs = sign * _FOREHEAD_SIDE
            strength = (expr.side(sign, 2) + 0.3 * expr.side(sign, 1) - 0.5 * k) / 3.0
            crease(canvas, palette, xs, y + 0.03 * ((np.abs(xs) - 0.16) / 0.22) ** 2, strength)


def _lid_curves(expr: Expression, look: Appearance, sign: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _draw_eye(canvas: Canvas, expr: Expression, look: Appearance, palette: Palette, sign: int) -> None:
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
    crease(canvas, palette, xs[2:-2], crease_y[2:-2] - LID_RAISE * expr.side(sign, 5), 0.35)


def _draw_cheek(canvas: Canvas, expr: Expression, look: Appearance, palette: Palette, sign: int) -> None:
    """Cheek colour that AU6 (and AU12) raises, the lower-lid furrow arc and crow's feet of AU6."""
    au6, au12 = expr.side(sign, 6), expr.side(sign, 12)
    blush = 0.12 + 0.07 * au6 + 0.03 * au12
    cheek_y = 0.10 - 0.015 * au6 - 0.005 * au12
    colour = blend(palette.skin, palette.blush, blush)
    canvas.ellipse(sign * look.eye_spacing * 0.95, cheek_y, 0.10 * (1 + 0.04 * au6), 0.065, colour)


def _draw_cheek_lines(canvas: Canvas, expr: Expression, look: Appearance, palette: Palette, sign: int) -> None:
    """AU6 creases drawn over the eye region: an arc under the lower lid and crow's feet at the outer corner."""
    au6 = expr.side(sign, 6)
    if au6 <= 0:
        return
    _, _, lower = _lid_curves(expr, look, sign)
    t = np.linspace(-0.8, 0.9, 7)
    xs = sign * (look.eye_spacing + EYE_HALF_WIDTH * look.eye_size * t)
    crease(canvas, palette, xs, EYE_Y + lower.max() - EYE_Y + 0.035 + 0.03 * t**2, au6 / 3.0)
    corner = sign * (look.eye_spacing + EYE_HALF_WIDTH * look.eye_size + 0.02)
    for dy in (-0.035, 0.0, 0.035):
        crease(canvas, palette, (corner, corner + sign * 0.055), (EYE_Y + dy * 0.4, EYE_Y + dy), au6 / 3.5)


def _draw_nose(canvas: Canvas, expr: Expression, palette: Palette) -> None:
    """Nostrils, wings and tip, raised and flared by AU9 (and a little by AU10), plus AU9's bridge wrinkles."""
    au9, au10 = expr.mid(9), expr.mid(10)
    y = NOSE_Y - NOSE_RAISE * au9 - 0.004 * au10
    flare = 1 + 0.06 * au9
    for sign in (-1, 1):
        canvas.ellipse(sign * 0.045, y, 0.022 * flare, 0.011 * (1 + 0.08 * au9), palette.crease)
        wing_x = sign * np.array([0.045, 0.085 * flare, 0.085 * flare, 0.06])
        crease(canvas, palette, wing_x, y + np.array([-0.06, -0.035, 0.0, 0.02]), 0.5)
    crease(canvas, palette, np.array([-0.03, 0.0, 0.03]), y + np.array([0.018, 0.03, 0.018]), 0.35)
    for k in range(3):
        xs = np.linspace(-0.065, 0.065, 5)
        crease(canvas, palette, xs, EYE_Y + 0.06 + 0.035 * k - 0.02 * (1 - (xs / 0.065) ** 2), au9 / 3.0 - 0.15 * k)


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
    expr = expression(aus, sides, blink)
    look, palette = style.appearance, face_palette(style.appearance)
    head = head or HeadPose()
    feature_shift = (0.06 * head.yaw, 0.05 * head.pitch)  # inner features slide against the outline: fake 3D turn
    canvas = Canvas(draw_background(style, size), face_transform(style, size, head), feature_shift)
    _draw_head(canvas, look, palette, expr)
    for sign in (-1, 1):
        _draw_cheek(canvas, expr, look, palette, sign)
        _draw_eye(canvas, expr, look, palette, sign)
        _draw_cheek_lines(canvas, expr, look, palette, sign)
    _draw_forehead(canvas, expr, palette)
    _draw_hair_cap(canvas, look, palette)
    _draw_brows(canvas, expr, look, palette)
    _draw_nose(canvas, expr, palette)
    mouth = mouth_shape(expr, look)
    draw_mouth_folds(canvas, expr, mouth, palette)
    draw_chin(canvas, expr, mouth, palette)
    draw_lips(canvas, expr, mouth, palette)
    return apply_photometrics(canvas.image, style, rng)
