"""The OV-MER emotion-wheel metric (steps 3-5) and its per-sample tables for bootstrap intervals.

Steps 1-2 (parse label strings, map words onto each wheel) are `affect_mllm.wheels`; from the mapped sets:

3. Per wheel, per sample, take the sets G (mapped gold) and P (mapped prediction). A sample with empty G is
   skipped; an empty P scores precision = recall = 0; else precision = |G & P| / |P|, recall = |G & P| / |G|.
4. Per wheel, P_w and R_w are the means over the scored samples and F_w = 2 P_w R_w / (P_w + R_w), 0 when
   P_w + R_w = 0. The F is taken after averaging, so it is not the mean of per-sample F.
5. The reported F, P, R are the plain means over the wheels of F_w, P_w, R_w (`wheel_scores`).

`sample_wheel_f` is the per-sample variant that RL rewards use and `hit_rate` the MER-UniBench score for
one-hot gold labels; both reuse steps 1-3. `wheel_table` / `hit_table` hold each sample's precision and recall
per wheel and re-aggregate any resample with steps 4-5; on the full index set they reproduce `wheel_scores`
(tested to 1e-12).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affect_mllm.wheels import EmotionWheels, Labels, mapped_sets, parse_label_list


def _precision_recall(gold: set[str], pred: set[str]) -> tuple[float, float] | None:
    """Step 3 for one sample: None when the gold set is empty (the sample is skipped)."""
    if not gold:
        return None
    if not pred:
        return 0.0, 0.0
    overlap = len(gold & pred)
    return overlap / len(pred), overlap / len(gold)


def _f_score(precision: float, recall: float) -> float:
    """Harmonic mean, 0 when both are 0 (as MER2026 does; MER2025 divided by zero)."""
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _wheel_result(gold_sets: list[set[str]], pred_sets: list[set[str]]) -> dict:
    """Steps 3-4 for one wheel; a wheel with no scored sample gets F = P = R = 0 and n_samples = 0."""
    pairs = [_precision_recall(gold, pred) for gold, pred in zip(gold_sets, pred_sets, strict=True)]
    scored = [pair for pair in pairs if pair is not None]
    precision = float(np.mean([p for p, _ in scored])) if scored else 0.0
    recall = float(np.mean([r for _, r in scored])) if scored else 0.0
    return {
        "f": _f_score(precision, recall),
        "precision": precision,
        "recall": recall,
        "n_samples": len(scored),
        "n_skipped": len(pairs) - len(scored),
    }


def _parse_corpus(gold: Sequence[Labels], pred: Sequence[Labels]) -> tuple[list[list[str]], list[list[str]]]:
    """Parse both sides of a corpus; they must be sequences of samples of equal length."""
    for side, samples in (("gold", gold), ("pred", pred)):
        if isinstance(samples, str):
            raise TypeError(f"{side} must be a sequence of samples, not one label string")
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} samples but pred has {len(pred)}")
    return [parse_label_list(labels) for labels in gold], [parse_label_list(labels) for labels in pred]


def _check_has_wheels(wheels: EmotionWheels) -> None:
    if not wheels.wheel_map:
        raise ValueError(f"tables {wheels.name!r} have no wheels to score on")


def wheel_scores(gold: Sequence[Labels], pred: Sequence[Labels], wheels: EmotionWheels, level: str = "level1") -> dict:
    """Compute the OV-MER emotion-wheel F, precision and recall of a corpus (steps 1-5 of the module doc).

    A wheel in which no sample's gold maps (including an empty corpus) is scored F = P = R = 0 with
    ``n_samples`` = 0, kept in the mean over wheels and listed in ``empty_wheels``. This is what MER2026
    returns; MER2025 takes the mean of an empty list there and reports NaN.

    Args:
        gold: one label entry per sample (label string, list of words or None).
        pred: the predicted labels, aligned with ``gold``.
        wheels: the lookup tables.
        level: "level1" (the main score) or "level2".

    Returns:
        ``{"f", "precision", "recall", "per_wheel": {wheel: {"f", "precision", "recall", "n_samples",
        "n_skipped"}}, "empty_wheels": [wheel, ...]}``, scores in [0, 1].

    Example:
        >>> toy = EmotionWheels(
        ...     name="toy",
        ...     format_mapping={"sunny": ("sunny",), "stormy": ("stormy",), "misty": ("misty",)},
        ...     raw_mapping={"sunny": ("sunny",), "stormy": ("stormy",), "misty": ("misty",)},
        ...     wheel_map={"w1": {"level1": {"sunny": "fair", "stormy": "foul"}},
        ...                "w2": {"level1": {"sunny": "fair", "stormy": "foul", "misty": "foul"}}},
        ... )
        >>> scores = wheel_scores(["[sunny]", "[stormy]"], ["sunny, misty", ""], toy)
        >>> scores["per_wheel"]["w1"]["precision"], scores["per_wheel"]["w2"]["precision"]
        (0.5, 0.25)
        >>> round(scores["f"], 4)  # w1: P = R = 1/2 -> F = 1/2; w2: P = 1/4, R = 1/2 -> F = 1/3
        0.4167
    """
    _check_has_wheels(wheels)
    gold_words, pred_words = _parse_corpus(gold, pred)
    per_wheel = {
        wheel: _wheel_result(
            mapped_sets(gold_words, wheels, wheel, level), mapped_sets(pred_words, wheels, wheel, level)
        )
        for wheel in wheels.wheel_map
    }
    rows = [[result["f"], result["precision"], result["recall"]] for result in per_wheel.values()]
    f, precision, recall = (float(value) for value in np.mean(rows, axis=0))
    return {
        "f": f,
        "precision": precision,
        "recall": recall,
        "per_wheel": per_wheel,
        "empty_wheels": [wheel for wheel, result in per_wheel.items() if result["n_samples"] == 0],
    }


def sample_wheel_f(gold: Labels, pred: Labels, wheels: EmotionWheels, level: str = "level1") -> float | None:
    """Score one sample: its F on each wheel where its gold maps, averaged over those wheels.

    This is how AffectGPT-R1-style RL rewards score a completion. It differs from `wheel_scores`, which
    averages precision and recall over samples before taking F: the mean of these per-sample values over a
    corpus is not the corpus metric.

    Args:
        gold: the sample's gold labels (label string, list of words or None).
        pred: the sample's predicted labels.
        wheels: the lookup tables.
        level: "level1" or "level2".

    Returns:
        A value in [0, 1], or None when the gold maps onto no wheel (nothing to judge).

    Example:
        >>> toy = EmotionWheels(
        ...     name="toy",
        ...     format_mapping={"sunny": ("sunny",), "stormy": ("stormy",)},
        ...     raw_mapping={"sunny": ("sunny",), "stormy": ("stormy",)},
        ...     wheel_map={"w1": {"level1": {"sunny": "fair", "stormy": "foul"}}},
        ... )
        >>> sample_wheel_f("[sunny]", "[sunny, stormy]", toy)  # P = 1/2, R = 1 -> F = 2/3
        0.6666666666666666
        >>> sample_wheel_f("[foggy]", "[sunny]", toy) is None
        True
    """
    _check_has_wheels(wheels)
    gold_words, pred_words = [parse_label_list(gold)], [parse_label_list(pred)]
    f_per_wheel = []
    for wheel in wheels.wheel_map:
        gold_set = mapped_sets(gold_words, wheels, wheel, level)[0]
        pair = _precision_recall(gold_set, mapped_sets(pred_words, wheels, wheel, level)[0])
        if pair is not None:
            f_per_wheel.append(_f_score(*pair))
    return float(np.mean(f_per_wheel)) if f_per_wheel else None


def hit_rate(gold_onehot: Sequence[Labels], pred: Sequence[Labels], wheels: EmotionWheels) -> dict:
    """MER-UniBench hit rate for one-hot gold labels (MER2023, MER2024, MELD, IEMOCAP), on level1.

    Per wheel, hit_i = 1 when the sample's mapped gold word is among its mapped predicted words; samples whose
    gold maps to nothing are skipped; the hit rate is the mean over samples, then over wheels. A wheel with
    no scored sample gets 0 and is listed in ``empty_wheels`` (the reference would report NaN). The
    reference's secondary "mscore" and its alias step (joy/happy, anger/angry, sad/sadness) are not done
    here; with the official tables each of those pairs already maps to one word on all five wheels.

    Args:
        gold_onehot: one gold emotion word per sample (a word, a one-word label string or list, or None).
        pred: the predicted labels, aligned with ``gold_onehot``.
        wheels: the lookup tables.

    Returns:
        ``{"hit_rate", "per_wheel": {wheel: {"hit_rate", "n_samples", "n_skipped"}}, "empty_wheels"}``.

    Raises:
        ValueError: when a gold entry holds more than one word (the score would no longer be a rate).

    Example:
        >>> toy = EmotionWheels(
        ...     name="toy",
        ...     format_mapping={"sunny": ("sunny",), "stormy": ("stormy",)},
        ...     raw_mapping={"sunny": ("sunny",), "stormy": ("stormy",)},
        ...     wheel_map={"w1": {"level1": {"sunny": "fair", "stormy": "foul"}}},
        ... )
        >>> hit_rate(["sunny", "stormy", "foggy"], ["[sunny, stormy]", "[sunny]", "[sunny]"], toy)["hit_rate"]
        0.5
    """
    _check_has_wheels(wheels)
    gold_words, pred_words = _parse_corpus(gold_onehot, pred)
    for index, words in enumerate(gold_words):
        if len(words) > 1:
            raise ValueError(f"gold_onehot[{index}] holds {len(words)} words {words}; one-hot gold has one")
    per_wheel = {}
    for wheel in wheels.wheel_map:
        gold_sets = mapped_sets(gold_words, wheels, wheel, "level1")
        pred_sets = mapped_sets(pred_words, wheels, wheel, "level1")
        hits = [float(bool(g & p)) for g, p in zip(gold_sets, pred_sets, strict=True) if g]
        per_wheel[wheel] = {
            "hit_rate": float(np.mean(hits)) if hits else 0.0,
            "n_samples": len(hits),
            "n_skipped": len(gold_sets) - len(hits),
        }
    return {
        "hit_rate": float(np.mean([result["hit_rate"] for result in per_wheel.values()])),
        "per_wheel": per_wheel,
        "empty_wheels": [wheel for wheel, result in per_wheel.items() if result["n_samples"] == 0],
    }


@dataclass(frozen=True)
class WheelTable:
    """Per-sample, per-wheel precision and recall, and whether the sample is scored on that wheel."""

    wheels: tuple[str, ...]
    precision: np.ndarray  # n x W
    recall: np.ndarray  # n x W
    scored: np.ndarray  # n x W bool: the sample's gold maps onto the wheel

    def scores(self, indices: np.ndarray) -> dict[str, float]:
        """Steps 4-5 on the rows `indices` (repeats allowed): P_w, R_w averaged over the wheel's scored rows,
        F_w = 2 P_w R_w / (P_w + R_w), then each of F, P, R averaged over wheels (a wheel with no scored row: 0).

        Args:
            indices: sample indices.

        Returns:
            {"f", "precision", "recall"}.
        """
        scored = self.scored[indices]
        counts = scored.sum(axis=0)
        safe = np.maximum(counts, 1)
        precision = np.where(counts > 0, (self.precision[indices] * scored).sum(axis=0) / safe, 0.0)
        recall = np.where(counts > 0, (self.recall[indices] * scored).sum(axis=0) / safe, 0.0)
        total = precision + recall
        f_per_wheel = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
        if not self.wheels:
            return {"f": 0.0, "precision": 0.0, "recall": 0.0}
        return {"f": float(f_per_wheel.mean()), "precision": float(precision.mean()), "recall": float(recall.mean())}


def wheel_table(gold: Sequence[Labels], pred: Sequence[Labels], wheels: EmotionWheels,
                level: str = "level1") -> WheelTable:
    """Score each sample alone with `wheel_scores` and keep its per-wheel precision, recall and scored flag.

    Args:
        gold: gold labels per sample.
        pred: predicted labels per sample, aligned.
        wheels: the lookup tables.
        level: "level1" or "level2".

    Returns:
        The WheelTable.

    Example:
        >>> from affect_mllm.lexicon import project_wheels
        >>> gold, pred = ["[happy]", "[sad]"], ["happy, sad", ""]
        >>> table = wheel_table(gold, pred, project_wheels())
        >>> table.scores(np.arange(2))["f"] == wheel_scores(gold, pred, project_wheels())["f"]
        True
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} samples but pred has {len(pred)}")
    names = tuple(wheels.wheel_map)
    shape = (len(gold), len(names))
    precision, recall, scored = np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=bool)
    for i, (gold_labels, pred_labels) in enumerate(zip(gold, pred, strict=True)):
        per_wheel = wheel_scores([gold_labels], [pred_labels], wheels, level)["per_wheel"]
        for j, name in enumerate(names):
            precision[i, j] = per_wheel[name]["precision"]
            recall[i, j] = per_wheel[name]["recall"]
            scored[i, j] = per_wheel[name]["n_samples"] == 1
    return WheelTable(names, precision, recall, scored)


def hit_table(gold_onehot: Sequence[Labels], pred: Sequence[Labels], wheels: EmotionWheels) -> WheelTable:
    """Per-sample hits of `wheels.hit_rate` (level1), stored as precision = recall = hit.

    `WheelTable.scores(indices)["precision"]` is then the MER-UniBench hit rate of the resample: per wheel the
    mean hit over scored samples, then the mean over wheels.

    Args:
        gold_onehot: one gold word per sample.
        pred: predicted labels per sample, aligned.
        wheels: the lookup tables.

    Returns:
        The WheelTable of hits.
    """
    if len(gold_onehot) != len(pred):
        raise ValueError(f"gold has {len(gold_onehot)} samples but pred has {len(pred)}")
    names = tuple(wheels.wheel_map)
    hits, scored = np.zeros((len(pred), len(names))), np.zeros((len(pred), len(names)), dtype=bool)
    for i, (gold_word, pred_labels) in enumerate(zip(gold_onehot, pred, strict=True)):
        per_wheel = hit_rate([gold_word], [pred_labels], wheels)["per_wheel"]
        for j, name in enumerate(names):
            hits[i, j] = per_wheel[name]["hit_rate"]
            scored[i, j] = per_wheel[name]["n_samples"] == 1
    return WheelTable(names, hits, hits, scored)
