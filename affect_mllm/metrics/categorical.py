"""Categorical emotion metrics (accuracy = WAR, UAR, macro/weighted F1, confusion matrix) and sentiment sets.

Labels are compared after lexicon normalisation (`category_of`): any spelling, synonym or dataset code of an
emotion becomes one of the project's categories; a gold word the lexicon does not know stays itself (lower-cased),
so datasets with other label sets still score. A prediction names a class only through the lexicon or by being
one of the corpus's gold classes (`first_category`): words that map to no class (free text, rationale leaked into
the answer) are wrong and are counted in one `unmapped` column, never as a class named by their text. A missing
prediction (None: no emotion word at all) is wrong too and has its own `(none)` column. Neither column is a
class. All scores come from one confusion-count matrix, so resampling (bootstrap) recomputes them cheaply.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from affect_mllm.lexicon import SENTIMENT_THRESHOLD, to_category, valence_arousal

UNMAPPED = "unmapped"  # the column of predictions whose words name no class
NO_PREDICTION = "(none)"  # the column of samples without any predicted emotion word


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


def first_category(words: Sequence[str], classes: Collection[str] = ()) -> str | None:
    """The class a prediction names: that of its first word the lexicon places in a category or that is (after
    `category_of`) one of `classes`; UNMAPPED when it has words but none names a class.

    Args:
        words: a prediction's emotion words, most salient first.
        classes: the corpus's own classes (normalised gold labels), for datasets whose labels the lexicon lacks.

    Returns:
        A category or one of `classes`, UNMAPPED, or None when there are no words.

    Example:
        >>> first_category(["meh", "Furious", "sad"]), first_category([])
        ('angry', None)
        >>> first_category(["inner brows raised (au4", "au1)"]), first_category(["Stoked"], classes={"stoked"})
        ('unmapped', 'stoked')
    """
    for word in words:
        category = to_category(word)
        if category is None and category_of(word) in classes:
            category = category_of(word)
        if category is not None:
            return category
    return UNMAPPED if words else None


_EXTRA_COLUMNS = (UNMAPPED, NO_PREDICTION)  # after the K classes, in this order


def _encode(gold: Sequence[str], pred: Sequence[str | None]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sorted class list and integer codes; UNMAPPED gets code K and None code K+1 (columns, never classes)."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} labels but pred has {len(pred)}")
    if any(g is None or g == UNMAPPED for g in gold):
        raise ValueError(f"gold labels must not be None or {UNMAPPED!r} (drop unlabelled samples first)")
    labels = sorted(set(gold) | {p for p in pred if p is not None and p != UNMAPPED})
    index = {label: i for i, label in enumerate(labels)} | {UNMAPPED: len(labels), None: len(labels) + 1}
    gold_codes = np.array([index[g] for g in gold], dtype=np.int64)
    pred_codes = np.array([index[p] for p in pred], dtype=np.int64)
    return labels, gold_codes, pred_codes


def _counts(gold_codes: np.ndarray, pred_codes: np.ndarray, n_labels: int) -> np.ndarray:
    """Confusion counts, rows = gold class, columns = predicted class, then 'unmapped', then 'no prediction'."""
    width = n_labels + len(_EXTRA_COLUMNS)
    flat = np.bincount(gold_codes * width + pred_codes, minlength=n_labels * width)
    return flat.reshape(n_labels, width)


def scores_from_counts(counts: np.ndarray) -> dict:
    """Accuracy, WAR, UAR and F1s from a confusion-count matrix (K x K+2: unmapped and no-prediction last).

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
        pred: predicted classes (`first_category`): a class, UNMAPPED, or None where a sample has none.

    Returns:
        {"n", "accuracy", "war", "uar", "macro_f1", "weighted_f1", "per_class": {label: {"f1", "support"}},
        "n_unmapped", "n_no_prediction", "confusion_matrix": {"labels", "columns", "matrix"}}; the matrix has an
        "unmapped" and a "(none)" column only when some prediction falls there. Scores are NaN for an empty corpus.

    Example:
        >>> s = categorical_scores(["happy", "happy", "sad", "angry"], ["happy", "unmapped", "sad", None])
        >>> s["accuracy"], s["uar"], round(s["macro_f1"], 4)  # UAR = (1/2 + 1 + 0) / 3; F1 2/3, 1, 0
        (0.5, 0.5, 0.5556)
        >>> s["confusion_matrix"]["columns"], s["confusion_matrix"]["matrix"][1]  # row happy
        (['angry', 'happy', 'sad', 'unmapped', '(none)'], [0, 1, 0, 1, 0])
    """
    labels, gold_codes, pred_codes = _encode(gold, pred)
    counts = _counts(gold_codes, pred_codes, len(labels))
    scores = scores_from_counts(counts)
    k = len(labels)
    used = [j for j in range(k, counts.shape[1]) if counts[:, j].sum()]
    return {
        "n": len(gold),
        **{key: scores[key] for key in ("accuracy", "war", "uar", "macro_f1", "weighted_f1")},
        "per_class": {label: {"f1": float(scores["per_class_f1"][i]), "support": int(scores["support"][i])}
                      for i, label in enumerate(labels)},
        "n_unmapped": int(counts[:, k].sum()),
        "n_no_prediction": int(counts[:, k + 1].sum()),
        "confusion_matrix": {"labels": labels, "columns": labels + [_EXTRA_COLUMNS[j - k] for j in used],
                             "matrix": counts[:, list(range(k)) + used].tolist()},
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
