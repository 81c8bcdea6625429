"""Measure a rendered face's expression geometry from its pixels (mouth, brows, eyes, nose, folds), for tests
and checks.

Every pixel is labelled with the nearest colour the face renderer draws for the style (see
:func:`measure_geometry`), so the measures are read from the image, not from the renderer's parameters. Folds
(nose wrinkles, the chin boss) are drawn in the crease colour at a strength that grows with the AU, so they are
measured as an amount of crease colour in a window rather than by label.
"""

from __future__ import annotations

from dataclasses import fields

import cv2
import numpy as np

from affect_mllm.synthfacs.face_geometry import EYE_Y, blend, face_transform
from affect_mllm.synthfacs.nuisance import FaceStyle, Palette, face_palette

_MOUTH_KEYS = (
    "mouth_width",
    "mouth_corner_height",
    "mouth_corner_height_left",
    "mouth_corner_height_right",
    "mouth_opening",
    "upper_lip_height",
    "lip_thickness",
)
# Windows (x range, y range) in face units, placed from the renderer's neutral layout.
_BRIDGE_WINDOW = ((-0.08, 0.08), (-0.09, 0.06))  # between the eyes, above the nose wings: AU9's wrinkles
_CHIN_WINDOW = ((-0.14, 0.14), (0.57, 0.68))  # under the lower lip: AU17's chin-boss fold
_DIMPLE_REACH = (-0.02, 0.09, 0.08)  # beside each measured mouth corner: inward, outward, up and down (AU14)


def _candidate_colours(style: FaceStyle) -> tuple[list[str], np.ndarray]:
    """Names and colours a pixel may be: the palette, the background, and part-strength blends labelled "edge".

    The blends stand for creases drawn at part strength and anti-aliased outlines, which would otherwise be
    taken for whichever feature colour happens to be nearest.
    """
    palette = face_palette(style.appearance)
    names = [field.name for field in fields(Palette)] + ["background", "background"]
    colours = [getattr(palette, field.name) for field in fields(Palette)] + list(style.background)
    partners = (palette.crease, palette.liner, palette.blush, palette.shade, palette.hair, *style.background)
    for partner in partners:
        for share in (0.25, 0.5, 0.75):
            names.append("edge")
            colours.append(blend(palette.skin, partner, share))
    return names, np.array(colours, np.float32)


def _face_points(image: np.ndarray, style: FaceStyle) -> tuple[np.ndarray, float]:
    """Face-unit (x, y) of every pixel, in row-major order, and the pixels per face unit."""
    matrix = face_transform(style, image.shape[0])
    inverse = cv2.invertAffineTransform(matrix)
    rows, cols = np.indices(image.shape[:2])
    pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(float)
    return pixels @ inverse[:, :2].T + inverse[:, 2], float(np.hypot(matrix[0, 0], matrix[1, 0]))


def _classify(image: np.ndarray, style: FaceStyle) -> tuple[dict[str, np.ndarray], float]:
    """Label every pixel with its nearest candidate colour; return face-unit points per label and the pixel scale.

    Nearest-colour labelling keeps anti-aliased edges with the part they mostly belong to, so thin parts (teeth,
    lids) are still found.
    """
    names, colours = _candidate_colours(style)
    distance = ((image.astype(np.float32)[:, :, None, :] - colours) ** 2).sum(axis=3)
    label = np.array(names)[distance.argmin(axis=2)].ravel()
    where, unit_px = _face_points(image, style)
    return {name: where[label == name] for name in set(names)}, unit_px


def _crease_share(image: np.ndarray, style: FaceStyle) -> np.ndarray:
    """Each pixel's share of the way from skin to crease colour (0..1), in row-major order.

    A fold drawn darker or longer adds more; other colours project to little or nothing along that line.
    """
    palette = face_palette(style.appearance)
    skin, crease = np.array(palette.skin, float), np.array(palette.crease, float)
    pixels = image.reshape(-1, 3).astype(float)
    return np.clip((pixels - skin) @ (crease - skin) / float((crease - skin) @ (crease - skin)), 0.0, 1.0)


def _amount(share: np.ndarray, where: np.ndarray, unit_px: float, x_range: tuple[float, float],
            y_range: tuple[float, float]) -> float:
    """Area (face units squared) of full crease colour that the pixels inside the window add up to."""
    x, y = where[:, 0], where[:, 1]
    inside = (x > x_range[0]) & (x < x_range[1]) & (y > y_range[0]) & (y < y_range[1])
    return float(share[inside].sum() / unit_px**2)


def _fold_measures(image: np.ndarray, style: FaceStyle, mouth: dict[str, float]) -> dict[str, float]:
    """Crease amounts: nose bridge (AU9), under the lower lip (AU17), beside the mouth corners (AU14)."""
    share, (where, unit_px) = _crease_share(image, style), _face_points(image, style)
    inward, outward, vertical = _DIMPLE_REACH
    half = mouth["mouth_width"] / 2
    dimple = 0.0
    for sign, name in ((-1, "right"), (1, "left")):  # the subject's right corner is on the image left
        corner_y = -mouth[f"mouth_corner_height_{name}"]
        dimple += _amount(share, where * (sign, 1), unit_px, (half + inward, half + outward),
                          (corner_y - vertical, corner_y + vertical))
    return {"nose_wrinkle": _amount(share, where, unit_px, *_BRIDGE_WINDOW),
            "chin_fold": _amount(share, where, unit_px, *_CHIN_WINDOW), "dimple": dimple}


def _inside(points: np.ndarray, x_range: tuple[float, float], y_range: tuple[float, float]) -> np.ndarray:
    """The points with x and y inside the given open ranges."""
    x, y = points[:, 0], points[:, 1]
    return points[(x > x_range[0]) & (x < x_range[1]) & (y > y_range[0]) & (y < y_range[1])]


def _column_extent(points: np.ndarray, unit_px: float) -> float:
    """Largest vertical extent of the points over one-pixel-wide columns, in face units (0 when no points)."""
    if points.size == 0:
        return 0.0
    columns = np.round(points[:, 0] * unit_px).astype(int)
    order = np.argsort(columns, kind="stable")
    columns, ys = columns[order], points[order, 1]
    starts = np.concatenate(([0], np.nonzero(np.diff(columns))[0] + 1))
    extent = np.maximum.reduceat(ys, starts) - np.minimum.reduceat(ys, starts)
    return float(extent.max() + 1 / unit_px)


def _largest_gap(points: np.ndarray, unit_px: float) -> float:
    """Largest vertical run without points inside one-pixel-wide columns, in face units (0 when none)."""
    if points.size == 0:
        return 0.0
    columns = np.round(points[:, 0] * unit_px).astype(int)
    order = np.lexsort((points[:, 1], columns))
    same_column = np.diff(columns[order]) == 0
    gaps = np.diff(points[order, 1])[same_column]
    skipped_rows = int(np.rint(gaps.max() * unit_px)) - 1 if gaps.size else 0  # rows strictly between the lips
    return max(0, skipped_rows) / unit_px


def _mouth_measures(points: dict[str, np.ndarray], unit_px: float) -> dict[str, float]:
    """Mouth width, corner heights (upward from the head centre), and at the middle: the opening, the height of the
    upper lip's top edge and the lips' thickness (top of the upper to bottom of the lower lip, minus the opening)."""
    window = ((-0.6, 0.6), (0.28, 0.95))
    lips = _inside(np.concatenate([points["lips"], points["lip_line"]]), *window)
    if lips.size == 0:
        return dict.fromkeys(_MOUTH_KEYS, float("nan"))
    x, y = lips[:, 0], lips[:, 1]
    right = -float(y[x < x.min() + 0.025].mean())  # the subject's right corner is on the image left
    left = -float(y[x > x.max() - 0.025].mean())
    middle = lips[np.abs(x) < 0.08]
    opening = _largest_gap(middle, unit_px)
    return {
        "mouth_width": float(x.max() - x.min()),
        "mouth_corner_height": (left + right) / 2,
        "mouth_corner_height_left": left,
        "mouth_corner_height_right": right,
        "mouth_opening": opening,
        "upper_lip_height": -float(middle[:, 1].min()),
        "lip_thickness": _column_extent(middle, unit_px) - opening,
    }


def measure_geometry(image: np.ndarray, style: FaceStyle) -> dict[str, float]:
    """Measure the expression geometry of a rendered face from its pixels.

    Every pixel is labelled with the nearest colour the style draws, and features are read inside windows placed
    from the style's head position, so use it on frames without photometric nuisance or head pose (difficulty 0).
    Lengths are in face units (1 = head half-height), heights upward from the head centre. Keys: mouth_width,
    mouth_corner_height (and _left/_right, subject's sides), mouth_opening (largest gap between the lips in a middle
    column; 0 when closed), upper_lip_height (top edge of the upper lip at the middle; AU10 raises it),
    lip_thickness (both lips at the middle, the opening left out; AU23/AU24 thin them), brow_height (and
    _left/_right: mean height of brow pixels), eye_opening (tallest sclera-iris-pupil column, mean of both eyes; 0
    when closed), nose_wrinkle (crease colour on the nose bridge, in face units squared; AU9 draws it), chin_fold
    (crease colour under the lower lip; AU17) and dimple (crease colour beside both mouth corners; AU14, and the
    nasolabial folds' ends). Not measured: the rest of the nasolabial folds.
    """
    points, unit_px = _classify(image, style)
    result = _mouth_measures(points, unit_px)
    result.update(_fold_measures(image, style, result))
    eyeballs = np.concatenate([points["sclera"], points["iris"], points["pupil"]])
    spacing = style.appearance.eye_spacing
    eyes = []
    for name, sign in (("right", -1), ("left", 1)):
        brow = _inside(points["brow"] * (sign, 1), (0.05, 0.5), (-0.53, -0.17))
        result[f"brow_height_{name}"] = -float(brow[:, 1].mean()) if brow.size else float("nan")
        eye = _inside(eyeballs * (sign, 1), (spacing - 0.22, spacing + 0.22), (EYE_Y - 0.14, EYE_Y + 0.14))
        eyes.append(_column_extent(eye, unit_px))
    result["brow_height"] = (result["brow_height_left"] + result["brow_height_right"]) / 2
    result["eye_opening"] = float(np.mean(eyes))
    return result
