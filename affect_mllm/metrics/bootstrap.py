"""Seeded percentile bootstrap intervals for corpus-level figures."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEFAULT_RESAMPLES = 1000


def bootstrap_ci(statistic: Callable[[np.ndarray], float], n: int, *, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0, confidence: float = 0.95) -> list[float] | None:
    """Percentile bootstrap interval of a corpus statistic, resampling samples with replacement.

    The same seed gives the same interval (numpy's default_rng). Resamples on which the statistic is not
    finite (e.g. a CCC of a constant resample) are left out.

    Args:
        statistic: maps an array of sample indices (with repeats) to the figure.
        n: number of samples in the corpus.
        n_resamples: number of bootstrap resamples.
        seed: random seed.
        confidence: coverage of the interval, e.g. 0.95.

    Returns:
        [low, high], or None when n or n_resamples is 0 or no resample gave a finite value.

    Example:
        >>> values = np.array([0.0, 1.0, 1.0, 1.0])
        >>> low, high = bootstrap_ci(lambda idx: float(values[idx].mean()), 4, n_resamples=200, seed=1)
        >>> 0.0 <= low <= 0.75 <= high <= 1.0
        True
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    if n <= 0 or n_resamples <= 0:
        return None
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_resamples)], dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]
