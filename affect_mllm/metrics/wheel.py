"""Per-sample decomposition of the OV-MER emotion-wheel metric, so that it can be bootstrapped.

The headline figures come from `wheels.wheel_scores` itself; this table holds each sample's precision and
recall per wheel (from `wheel_scores` on that one sample) and re-aggregates any resample with steps 4-5 of
the protocol. On the full index set it reproduces `wheel_scores` (tested to 1e-12).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affect_mllm.wheels import EmotionWheels, Labels, hit_rate, wheel_scores


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
