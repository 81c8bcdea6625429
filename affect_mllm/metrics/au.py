"""Action-unit metrics: per-sample and per-AU F1, intensity MAE and ICC(3,1), and rationale grounding.

One F1 formula serves all of them, F1 = 2TP / (2TP + FP + FN) (0 when nothing is gold or predicted), so the
reward's per-sample F1 and the benchmark's per-AU F1 are the same computation aggregated two ways. AU sets
come from `schema.present_aus` (intensity >= AU_PRESENCE_THRESHOLD); nothing else turns intensities into sets.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from affect_mllm.knowledge import INTENSITY_LETTERS, intensity_letter
from affect_mllm.metrics.agreement import icc_3_1

# A cited AU that is right but whose intensity is not stated earns half the credit of one cited with the right
# letter, so intensity-aware scoring asks for letters without making their absence worse than a wrong guess.
UNSTATED_INTENSITY_CREDIT = 0.5


def f1_from_counts(tp: float, fp: float, fn: float) -> float:
    """F1 = 2TP / (2TP + FP + FN); 0.0 when the denominator is 0.

    Example:
        >>> f1_from_counts(1, 1, 0), f1_from_counts(0, 0, 0)
        (0.6666666666666666, 0.0)
    """
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator > 0 else 0.0


def _level(letter: str) -> int:
    return INTENSITY_LETTERS.index(letter) + 1


def intensity_credit(gold_intensity: float, cited_letter: str | None) -> float:
    """Credit in [0, 1] for a correctly cited AU: 1 - |cited level - gold level| / 4 (FACS levels A-E = 1-5).

    Args:
        gold_intensity: the labelled intensity on the 0-5 scale.
        cited_letter: the letter cited with the AU (e.g. "C" of "AU12C"), or None.

    Returns:
        The credit; UNSTATED_INTENSITY_CREDIT when no letter was cited.

    Example:
        >>> intensity_credit(3.2, "C"), intensity_credit(3.2, "A"), intensity_credit(3.2, None)
        (1.0, 0.5, 0.5)
    """
    if cited_letter is None or cited_letter not in INTENSITY_LETTERS:
        return UNSTATED_INTENSITY_CREDIT
    return 1.0 - abs(_level(cited_letter) - _level(intensity_letter(gold_intensity))) / 4.0


def sample_au_f1(gold: Collection[int], cited: Collection[int], gold_intensity: Mapping[int, float] | None = None,
                 cited_letters: Mapping[int, str] | None = None) -> float:
    """F1 of one sample's cited AUs against its gold AUs, optionally weighting each hit by intensity agreement.

    With `gold_intensity`, each true positive counts `intensity_credit` instead of 1 (precision = sum of
    credits / |cited|, recall = sum of credits / |gold|).

    Args:
        gold: gold AU set.
        cited: cited AU set.
        gold_intensity: AU -> gold intensity (0-5) for intensity-aware scoring, or None.
        cited_letters: AU -> cited FACS letter.

    Returns:
        F1 in [0, 1]; 0.0 when either set is empty.

    Example:
        >>> sample_au_f1({6, 12}, {6, 12, 4})  # TP 2, FP 1, FN 0 -> 4/5
        0.8
        >>> sample_au_f1({12}, {12}, {12: 4.0}, {12: "B"})  # level D vs B: credit 1 - 2/4
        0.5
    """
    gold_set, cited_set = set(gold), set(cited)
    hits = gold_set & cited_set
    if gold_intensity is None:
        tp = float(len(hits))
    else:
        letters = cited_letters or {}
        tp = sum(intensity_credit(gold_intensity[au], letters.get(au)) for au in hits)
    denominator = len(gold_set) + len(cited_set)
    return 2 * tp / denominator if denominator else 0.0


def au_matrix(sets: Sequence[Collection[int]], aus: Sequence[int]) -> np.ndarray:
    """Boolean presence matrix, one row per sample, one column per AU of `aus`."""
    column = {au: j for j, au in enumerate(aus)}
    matrix = np.zeros((len(sets), len(aus)), dtype=bool)
    for i, sample in enumerate(sets):
        for au in sample:
            if au in column:
                matrix[i, column[au]] = True
    return matrix


def per_au_f1_from_matrices(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """F1 per column of two boolean presence matrices (rows = samples)."""
    tp = (gold & pred).sum(axis=0)
    fp = (~gold & pred).sum(axis=0)
    fn = (gold & ~pred).sum(axis=0)
    return np.array([f1_from_counts(*counts) for counts in zip(tp, fp, fn, strict=True)])


def au_f1(gold_sets: Sequence[Collection[int]], pred_sets: Sequence[Collection[int]],
          aus: Sequence[int] | None = None) -> dict:
    """Per-AU F1 over a corpus (each AU a binary detection task over samples) and their mean, as DISFA/BP4D report.

    Args:
        gold_sets: gold AU set per sample.
        pred_sets: predicted AU set per sample, aligned.
        aus: the AUs to score; default: every AU present in some gold set (predicted-only AUs are left out).

    Returns:
        {"per_au": {au: f1}, "mean_f1", "aus", "n"}; mean_f1 is NaN when there is no AU to score.

    Example:
        >>> r = au_f1([{6, 12}, {4}, set()], [{6, 12}, {4, 12}, {12}])
        >>> r["per_au"], round(r["mean_f1"], 4)  # AU12: TP 1, FP 2, FN 0 -> 2/4
        ({4: 1.0, 6: 1.0, 12: 0.5}, 0.8333)
    """
    if len(gold_sets) != len(pred_sets):
        raise ValueError(f"gold has {len(gold_sets)} samples but pred has {len(pred_sets)}")
    columns = sorted(set().union(*map(set, gold_sets))) if aus is None else list(aus)
    f1 = per_au_f1_from_matrices(au_matrix(gold_sets, columns), au_matrix(pred_sets, columns))
    return {"per_au": {au: float(v) for au, v in zip(columns, f1, strict=True)},
            "mean_f1": float(f1.mean()) if len(columns) else float("nan"), "aus": columns, "n": len(gold_sets)}


def intensity_matrix(records: Sequence[Mapping[int, float | None]], aus: Sequence[int]) -> np.ndarray:
    """Intensities per sample and AU; an AU a record does not list (or lists without intensity) counts as 0."""
    matrix = np.zeros((len(records), len(aus)))
    column = {au: j for j, au in enumerate(aus)}
    for i, record in enumerate(records):
        for au, value in record.items():
            if au in column and value is not None:
                matrix[i, column[au]] = value
    return matrix


def intensity_scores(gold: Sequence[Mapping[int, float | None]], pred: Sequence[Mapping[int, float | None]],
                     aus: Sequence[int] | None = None) -> dict:
    """Intensity MAE and ICC(3,1) per AU (0-5 scale; unlisted AUs are 0), and their means over AUs.

    Args:
        gold: AU -> intensity per sample.
        pred: AU -> predicted intensity per sample, aligned.
        aus: AUs to score; default: those with a non-zero gold intensity somewhere.

    Returns:
        {"per_au": {au: {"mae", "icc"}}, "mae", "icc", "aus", "n"}; ICC is NaN where undefined (fewer than 2
        samples or no variance), and the mean ICC averages the defined ones.

    Example:
        >>> r = intensity_scores([{12: 1.0}, {12: 3.0}, {12: 5.0}], [{12: 2.0}, {12: 4.0}, {12: 5.0}])
        >>> round(r["mae"], 4), round(r["icc"], 4)
        (0.6667, 0.9474)
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} samples but pred has {len(pred)}")
    columns = sorted({au for r in gold for au, v in r.items() if v}) if aus is None else list(aus)
    mae, icc = intensity_agreement(intensity_matrix(gold, columns), intensity_matrix(pred, columns))
    defined = icc[np.isfinite(icc)]
    return {"per_au": {au: {"mae": float(mae[j]), "icc": float(icc[j])} for j, au in enumerate(columns)},
            "mae": float(mae.mean()) if len(columns) else float("nan"),
            "icc": float(defined.mean()) if len(defined) else float("nan"), "aus": columns, "n": len(gold)}


def intensity_agreement(gold: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column MAE and ICC(3,1) of two (samples x AUs) intensity matrices (NaN MAE for zero samples)."""
    mae = np.abs(gold - pred).mean(axis=0) if len(gold) else np.full(gold.shape[1], np.nan)
    icc = np.array([icc_3_1(np.stack([gold[:, j], pred[:, j]], axis=1)) for j in range(gold.shape[1])])
    return mae, icc


def grounding(cited_sets: Sequence[Collection[int]], gold_sets: Sequence[Collection[int]]) -> float:
    """Share of the AUs cited in rationales that the labels hold, over all citations (micro average).

    Args:
        cited_sets: AUs cited per rationale.
        gold_sets: gold AU set per sample, aligned.

    Returns:
        |cited & gold| summed / |cited| summed; NaN when nothing is cited.

    Example:
        >>> grounding([{6, 12}, {4, 9}, set()], [{6, 12}, {4}, {1}])  # (2 + 1) / (2 + 2)
        0.75
    """
    grounded, cited = grounding_counts(cited_sets, gold_sets)
    return float(grounded.sum() / cited.sum()) if cited.sum() else float("nan")


def grounding_counts(cited_sets: Sequence[Collection[int]], gold_sets: Sequence[Collection[int]]):
    """Per-sample (grounded, cited) counts behind `grounding`, as two integer arrays."""
    if len(cited_sets) != len(gold_sets):
        raise ValueError(f"{len(cited_sets)} rationales but {len(gold_sets)} gold sets")
    grounded = np.array([len(set(c) & set(g)) for c, g in zip(cited_sets, gold_sets, strict=True)], dtype=float)
    return grounded, np.array([len(set(c)) for c in cited_sets], dtype=float)
