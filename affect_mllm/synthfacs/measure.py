"""Measure a rendered face's expression geometry from its pixels (mouth, brows, eyes), for tests and checks.

Every pixel is labelled with the nearest colour the face renderer draws for the style (see
:func:`measure_geometry`), so the measures are read from the image, not from the renderer's parameters.
"""

from __future__ import annotations

from dataclasses import fields

import cv2
import numpy as np

from affect_mllm.synthfacs.face import EYE_Y, blend, face_transform
from affect_mllm.synthfacs.nuisance import FaceStyle, Palette, face_palette

_MOUTH_KEYS = (
    "mouth_width",
    "mouth_corner_height",
    "mouth_corner_height_left",
    "mouth_corner_height_right",
    "mouth_opening",
)


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


def _classify(image: np.ndarray, style: FaceStyle) -> tuple[dict[str, np.ndarray], float]:
    """Label every pixel with its nearest candidate colour; return face-unit points per label and the pixel scale.

    Nearest-colour labelling keeps anti-aliased edges with the part they mostly belong to, so thin parts (teeth,
    lids) are still found.
    """
    names, colours = _candidate_colours(style)
    distance = ((image.astype(np.float32)[:, :, None, :] - colours) ** 2).sum(axis=3)
    label = np.array(names)[distance.argmin(axis=2)]
    matrix = face_transform(style, image.shape[0])
    inverse = cv2.invertAffineTransform(matrix)
    points = {}
    for name in set(names):
        rows, cols = np.nonzero(label == name)
        points[name] = np.stack([cols, rows], axis=1).astype(float) @ inverse[:, :2].T + inverse[:, 2]
    return points, float(np.hypot(matrix[0, 0], matrix[1, 0]))


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
    """Mouth width, corner heights (upward from the head centre) and the opening at the middle."""
    window = ((-0.6, 0.6), (0.28, 0.95))
    lips = _inside(np.concatenate([points["lips"], points["lip_line"]]), *window)
    if lips.size == 0:
        return dict.fromkeys(_MOUTH_KEYS, float("nan"))
    x, y = lips[:, 0], lips[:, 1]
    right = -float(y[x < x.min() + 0.025].mean())  # the subject's right corner is on the image left
    left = -float(y[x > x.max() - 0.025].mean())
    middle = lips[np.abs(x) < 0.08]
    return {
        "mouth_width": float(x.max() - x.min()),
        "mouth_corner_height": (left + right) / 2,
        "mouth_corner_height_left": left,
        "mouth_corner_height_right": right,
        "mouth_opening": _largest_gap(middle, unit_px),
    }


def measure_geometry(image: np.ndarray, style: FaceStyle) -> dict[str, float]:
    """Measure the expression geometry of a rendered face from its pixels.

    Every pixel is labelled with the nearest colour the style draws, and features are read inside windows placed
    from the style's head position, so use it on frames without photometric nuisance or head pose (difficulty 0).
    Lengths are in face units (1 = head half-height), heights upward from the head centre. Keys: mouth_width,
    mouth_corner_height (and _left/_right, subject's sides), mouth_opening (largest gap between the lips in a middle
    column; 0 when closed), brow_height (and _left/_right: mean height of brow pixels), eye_opening (tallest
    sclera-iris-pupil column, mean of both eyes; 0 when closed). Not measured: nose wrinkles, folds and the chin,
    which are drawn in the shared crease colour.
    """
    points, unit_px = _classify(image, style)
    result = _mouth_measures(points, unit_px)
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
