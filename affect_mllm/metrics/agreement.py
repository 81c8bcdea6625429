"""Agreement of continuous ratings: Lin's concordance correlation (valence/arousal) and ICC(3,1) (AU intensity)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ccc(gold: Sequence[float], pred: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient, 2 cov / (var_g + var_p + (mean_g - mean_p)^2), population moments.

    Args:
        gold: gold values.
        pred: predicted values, aligned.

    Returns:
        CCC in [-1, 1]; NaN with fewer than 2 samples or when both sides are the same constant (0 / 0).

    Example:
        >>> ccc([0.1, 0.5, -0.3], [0.1, 0.5, -0.3]), round(ccc([0.0, 1.0], [0.5, 0.5]), 4)
        (1.0, 0.0)
    """
    g, p = np.asarray(gold, dtype=float), np.asarray(pred, dtype=float)
    if g.shape != p.shape:
        raise ValueError(f"gold has {g.shape} values but pred has {p.shape}")
    if g.size < 2:
        return float("nan")
    covariance = np.mean((g - g.mean()) * (p - p.mean()))
    denominator = g.var() + p.var() + (g.mean() - p.mean()) ** 2
    return float(2 * covariance / denominator) if denominator > 0 else float("nan")


def icc_3_1(ratings: np.ndarray) -> float:
    """ICC(3,1) (Shrout & Fleiss: two-way mixed, consistency, single rater) of an (n targets x k raters) array.

    ICC = (MS_rows - MS_error) / (MS_rows + (k - 1) MS_error), from the two-way ANOVA without replication.

    Args:
        ratings: n x k ratings (here k = 2: gold and predicted intensity).

    Returns:
        The ICC; NaN with fewer than 2 targets or raters, or when the denominator is 0 (no variance at all).

    Example:
        >>> round(icc_3_1(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 5.0]])), 4)
        0.9474
    """
    y = np.asarray(ratings, dtype=float)
    n, k = y.shape
    if n < 2 or k < 2:
        return float("nan")
    grand = y.mean()
    ss_rows = k * np.sum((y.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((y.mean(axis=0) - grand) ** 2)
    ss_error = np.sum((y - grand) ** 2) - ss_rows - ss_cols
    ms_rows, ms_error = ss_rows / (n - 1), ss_error / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_error
    return float((ms_rows - ms_error) / denominator) if denominator > 0 else float("nan")
