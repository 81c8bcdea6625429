"""Categorical emotion metrics (accuracy = WAR, UAR, macro/weighted F1, confusion matrix) and sentiment sets.

Labels are compared after lexicon normalisation (`category_of`): any spelling, synonym or dataset code of an
emotion becomes one of the project's categories; a word the lexicon does not know stays itself (lower-cased),
so datasets with other label sets still score. A missing prediction (None) is always wrong and is no class.
All scores come from one confusion-count matrix, so resampling (bootstrap) recomputes them cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from affect_mllm.lexicon import SENTIMENT_THRESHOLD, to_category, valence_arousal


def category_of(word: str | None) -> str | None:
    """Normalise one label word: its project category, else the cleaned word, None when empty.

    Args:
        word: a label word, a dataset code or None.

    Returns:
        One of the project categories, the stripped lower-cased word when the lexicon does not know it, or None.

    Example:
        >>> category_of(" Joyful"), category_of("HAP"), category_of("Stoked?!"), category_of("  ")
        ('happy', 'happy', 'stoked?!', None)
    """
    if word is None:
        return None
    text = str(word).strip().lower()
    return (to_category(text) or text) if text else None


def first_category(words: Sequence[str]) -> str | None:
    """The category of the first word the lexicon places in a category, else of the first word at all.

    Args:
        words: a prediction's emotion words, most salient first.

    Returns:
        A category (or unknown word), or None when there are no words.

    Example:
        >>> first_category(["meh", "Furious", "sad"]), first_category([])
        ('angry', None)
    """
    for word in words:
        category = to_category(word)
        if category is not None:
            return category
    return category_of(words[0]) if words else None


def _encode(gold: Sequence[str], pred: Sequence[str | None]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sorted class list and integer codes; a None prediction gets code K (one extra column, never a class)."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} labels but pred has {len(pred)}")
    if any(g is None for g in gold):
        raise ValueError("gold labels must not be None (drop unlabelled samples first)")
    labels = sorted(set(gold) | {p for p in pred if p is not None})
    index = {label: i for i, label in enumerate(labels)}
    gold_codes = np.array([index[g] for g in gold], dtype=np.int64)
    pred_codes = np.array([len(labels) if p is None else index[p] for p in pred], dtype=np.int64)
    return labels, gold_codes, pred_codes


def _counts(gold_codes: np.ndarray, pred_codes: np.ndarray, n_labels: int) -> np.ndarray:
    """Confusion counts, rows = gold class, columns = predicted class plus a last column for 'no prediction'."""
    flat = np.bincount(gold_codes * (n_labels + 1) + pred_codes, minlength=n_labels * (n_labels + 1))
    return flat.reshape(n_labels, n_labels + 1)


def scores_from_counts(counts: np.ndarray) -> dict:
    """Accuracy, WAR, UAR and F1s from a confusion-count matrix (K x K+1, last column = no prediction).

    F1 per class is 2TP / (2TP + FP + FN) (scikit-learn's zero_division=0). Macro F1 averages over the classes
    that occur in the gold or the predictions of these counts; weighted F1 weights by gold support. UAR
    averages recall over the classes present in the gold.

    Args:
        counts: integer confusion counts.

    Returns:
        {"accuracy", "war", "uar", "macro_f1", "weighted_f1", "per_class_f1" (array), "support" (array)}.
    """
    k = counts.shape[0]
    support = counts.sum(axis=1)
    n = int(support.sum())
    tp = np.diag(counts[:, :k]).astype(float)
    fp = counts[:, :k].sum(axis=0) - tp
    fn = support - tp
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    present = support > 0
    seen = present | (counts[:, :k].sum(axis=0) > 0)  # a class of the label list absent from a resample is no class
    accuracy = float(tp.sum() / n) if n else float("nan")
    return {
        "accuracy": accuracy,
        "war": accuracy,  # weighted average recall = sum_c (n_c / n) * TP_c / n_c = accuracy
        "uar": float(np.mean(tp[present] / support[present])) if n else float("nan"),
        "macro_f1": float(np.mean(f1[seen])) if seen.any() else float("nan"),
        "weighted_f1": float(np.sum(f1 * support) / n) if n else float("nan"),
        "per_class_f1": f1,
        "support": support,
    }


def categorical_scores(gold: Sequence[str], pred: Sequence[str | None]) -> dict:
    """Accuracy (= WAR), UAR, macro and weighted F1, per-class F1 and the confusion matrix.

    Args:
        gold: normalised gold labels (see `category_of`), one per sample.
        pred: normalised predictions, None where a sample has none.

    Returns:
        {"n", "accuracy", "war", "uar", "macro_f1", "weighted_f1", "per_class": {label: {"f1", "support"}},
        "confusion_matrix": {"labels", "columns", "matrix"}}; the matrix has an extra "(none)" column only
        when some prediction is missing. Scores are NaN for an empty corpus.

    Example:
        >>> s = categorical_scores(["happy", "happy", "sad", "angry"], ["happy", "sad", "sad", None])
        >>> s["accuracy"], s["uar"], round(s["macro_f1"], 4)  # UAR = (1/2 + 1 + 0) / 3
        (0.5, 0.5, 0.4444)
    """
    labels, gold_codes, pred_codes = _encode(gold, pred)
    counts = _counts(gold_codes, pred_codes, len(labels))
    scores = scores_from_counts(counts)
    with_none = bool(counts[:, -1].sum())
    matrix = counts if with_none else counts[:, :-1]
    return {
        "n": len(gold),
        **{key: scores[key] for key in ("accuracy", "war", "uar", "macro_f1", "weighted_f1")},
        "per_class": {label: {"f1": float(scores["per_class_f1"][i]), "support": int(scores["support"][i])}
                      for i, label in enumerate(labels)},
        "confusion_matrix": {"labels": labels, "columns": labels + (["(none)"] if with_none else []),
                             "matrix": matrix.tolist()},
    }


def categorical_statistic(gold: Sequence[str], pred: Sequence[str | None], key: str):
    """A function of resampled indices -> one categorical score, for `bootstrap_ci`.

    Args:
        gold: normalised gold labels.
        pred: normalised predictions (None allowed).
        key: "accuracy", "war", "uar", "macro_f1" or "weighted_f1".

    Returns:
        statistic(indices) -> float.
    """
    labels, gold_codes, pred_codes = _encode(gold, pred)

    def statistic(indices: np.ndarray) -> float:
        return scores_from_counts(_counts(gold_codes[indices], pred_codes[indices], len(labels)))[key]

    return statistic


def label_polarity(words: Sequence[str]) -> int:
    """Sentiment of a label set from the lexicon's valence: +1, -1 or 0.

    The mean valence of the words the lexicon knows is compared with +-SENTIMENT_THRESHOLD; a set with no known
    word is neutral (0), as MER-UniBench scores an unmappable answer.

    Args:
        words: emotion words.

    Returns:
        +1 (positive), -1 (negative) or 0 (neutral).

    Example:
        >>> label_polarity(["happy", "relieved"]), label_polarity(["Furious"]), label_polarity(["qwerty"])
        (1, -1, 0)
    """
    valences = [pair[0] for pair in (valence_arousal(word) for word in words) if pair is not None]
    if not valences:
        return 0
    mean = float(np.mean(valences))
    if mean >= SENTIMENT_THRESHOLD:
        return 1
    return -1 if mean <= -SENTIMENT_THRESHOLD else 0


def sentiment_scores(gold_values: Sequence[float], pred_polarity: Sequence[int]) -> dict:
    """MER-UniBench sentiment scoring: drop gold 0, then binary (> 0) weighted F1 and accuracy.

    A neutral prediction (0) therefore counts as "not positive", as in the reference.

    Args:
        gold_values: gold sentiment scores or valences (sign is what matters).
        pred_polarity: predicted polarity, +1 / -1 / 0.

    Returns:
        {"weighted_f1", "accuracy", "n", "n_dropped"}; NaN scores when every gold value is 0.

    Example:
        >>> s = sentiment_scores([0.8, -0.4, 0.0, -1.2], [1, 0, 1, -1])  # the third is dropped
        >>> s["accuracy"], s["n"], s["n_dropped"]
        (1.0, 3, 1)
    """
    gold_positive, pred_positive = sentiment_binary(gold_values, pred_polarity)
    scores = categorical_scores(gold_positive, pred_positive)
    return {"weighted_f1": scores["weighted_f1"], "accuracy": scores["accuracy"], "n": len(gold_positive),
            "n_dropped": len(gold_values) - len(gold_positive)}


def sentiment_binary(gold_values: Sequence[float], pred_polarity: Sequence[int]) -> tuple[list[str], list[str]]:
    """The binary labels MER-UniBench scores: samples with gold 0 dropped, then 'positive'/'other' on both sides.

    Args:
        gold_values: gold sentiment scores.
        pred_polarity: predicted polarity.

    Returns:
        (gold labels, predicted labels), aligned.
    """
    if len(gold_values) != len(pred_polarity):
        raise ValueError(f"gold has {len(gold_values)} values but pred has {len(pred_polarity)}")
    kept = [(g, p) for g, p in zip(gold_values, pred_polarity, strict=True) if g != 0]
    return ([("positive" if g > 0 else "other") for g, _ in kept],
            [("positive" if p > 0 else "other") for _, p in kept])
