"""Emotion wheels and the open-vocabulary (OV-MER) emotion-wheel metric computed on them.

Both the official OV-MER tables (loaded from a user-named folder, never shipped) and the project's own
lexicon are turned into one structure, `EmotionWheels`, so one metric implementation serves both.

The metric, step by step, as the reference computes it (MERTools `MER2026_Track2/my_affectgpt/evaluation/
wheel.py`, `toolkit/utils/functions.py::string_to_list`):

1. Parse each label string: strip one leading ``[`` and one trailing ``]``, split on quotes and commas,
   strip the pieces, drop the empty ones, lower-case them (`parse_label_list`).
2. Map each word to one wheel word, per wheel and level ("case3", `map_word`): a word that is not a key of
   ``format_mapping`` is dropped; otherwise gather ``raw_mapping[base]`` for every base form of the word,
   walk these candidates in alphabetical order and take the ancestor, at the chosen level, of the first one
   present in the wheel; when no candidate is in the wheel, the word is dropped.
3. Per wheel, per sample, take the sets G (mapped gold) and P (mapped prediction). A sample with empty G is
   skipped; an empty P scores precision = recall = 0; else precision = |G & P| / |P|, recall = |G & P| / |G|.
4. Per wheel, P_w and R_w are the means over the scored samples and F_w = 2 P_w R_w / (P_w + R_w), 0 when
   P_w + R_w = 0. The F is taken after averaging, so it is not the mean of per-sample F.
5. The reported F, P, R are the plain means over the wheels of F_w, P_w, R_w (`wheel_scores`).

`sample_wheel_f` is the per-sample variant that RL rewards use and `hit_rate` the MER-UniBench score for
one-hot gold labels; both reuse steps 1-3.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

LEVELS = ("level1", "level2")

Labels = str | Sequence[str] | None
"""One sample's labels: a label string such as ``"[happy, relieved]"``, a list of words, or None."""

_LABEL_SEPARATORS = re.compile("['\",]")


@dataclass(frozen=True)
class EmotionWheels:
    """Lookup tables of a set of emotion wheels.

    Attributes:
        name: where the tables come from: "ovmer" (official tables) or "project" (our lexicon).
        format_mapping: surface form (lower-case) -> base words it is a form of (each base maps to itself).
        raw_mapping: base word -> wheel words it is a synonym of (each wheel word maps to itself).
        wheel_map: wheel name -> level ("level1"/"level2") -> wheel word -> its ancestor at that level.
    """

    name: str
    format_mapping: Mapping[str, tuple[str, ...]]
    raw_mapping: Mapping[str, tuple[str, ...]]
    wheel_map: Mapping[str, Mapping[str, Mapping[str, str]]]


def split_label_string(value: Labels) -> list[str]:
    """Split a label string into stripped words without changing their case (the reference `string_to_list`).

    A list or tuple is returned as a list, unchanged. One leading ``[`` and one trailing ``]`` are removed
    only when they are the very first and last characters, as in the reference, so ``" [a]"`` keeps its
    bracket on ``"[a"`` (a word no table knows). Unlike the reference, ``"["`` gives [] instead of raising.

    Args:
        value: a label string, a sequence of words, a numpy array of words, None or NaN.

    Returns:
        The words, stripped; empty pieces dropped (sequence items are left as they are).

    Example:
        >>> split_label_string("['Happy', \\"calm\\", ]")
        ['Happy', 'calm']
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if not isinstance(value, str):
        raise TypeError(f"labels must be a string, a sequence of strings or None, not {type(value).__name__}")
    if value.startswith("["):
        value = value[1:]
    if value.endswith("]"):
        value = value[:-1]
    return [piece.strip() for piece in _LABEL_SEPARATORS.split(value) if piece.strip()]


def parse_label_list(value: Labels) -> list[str]:
    """Turn one sample's labels into lower-case, stripped words, as the reference does before mapping.

    Args:
        value: ``"[happy, relieved]"``, ``"happy, relieved"``, ``"['happy', 'relieved']"``, a list of words,
            None or an empty string.

    Returns:
        The words in their original order, duplicates kept (the metric takes sets later). Words of a list
        are not split further, so ``["happy, sad"]`` stays one (unknown) word, as in the reference.

    Example:
        >>> parse_label_list("[Sunny,  Stormy ]")
        ['sunny', 'stormy']
        >>> parse_label_list(None)
        []
    """
    return [word.lower().strip() for word in split_label_string(value)]


def _wheel_level_map(wheels: EmotionWheels, wheel: str, level: str) -> Mapping[str, str]:
    """The wheel-word -> ancestor table of one wheel and level; raises ValueError on a bad name."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    if wheel not in wheels.wheel_map:
        raise ValueError(f"tables {wheels.name!r} have no wheel {wheel!r} (they have {list(wheels.wheel_map)})")
    if level not in wheels.wheel_map[wheel]:
        raise ValueError(f"wheel {wheel!r} of tables {wheels.name!r} has no {level!r} map")
    return wheels.wheel_map[wheel][level]


def _map_with(word: str, wheels: EmotionWheels, ancestors: Mapping[str, str]) -> str | None:
    """Map one normalised word through the tables onto one wheel's ancestors (step 2)."""
    if word not in wheels.format_mapping:
        return None
    candidates = [raw for base in wheels.format_mapping[word] for raw in wheels.raw_mapping.get(base, ())]
    # The alphabetical walk is what makes the result unique when a word has synonyms in several branches.
    for candidate in sorted(candidates):
        if candidate in ancestors:
            return ancestors[candidate]
    return None


def map_word(word: str, wheels: EmotionWheels, wheel: str, level: str = "level1") -> str | None:
    """Map one word onto a wheel at a level, as the reference "case3" mapping does.

    Args:
        word: an emotion word; it is lower-cased and stripped first.
        wheels: the lookup tables.
        wheel: the wheel name, a key of ``wheels.wheel_map`` (e.g. "wheel1").
        level: "level1" (the main score) or "level2".

    Returns:
        The wheel word the input maps to, or None when the tables do not know it or none of its synonyms is
        in this wheel. A base form missing from ``raw_mapping`` contributes no candidates (the reference
        would raise; the loaded official tables are checked so that this cannot happen).

    Example:
        >>> toy = EmotionWheels(
        ...     name="toy",
        ...     format_mapping={"sunny": ("sunny",), "sunnier": ("sunny",), "breezy": ("breezy",)},
        ...     raw_mapping={"sunny": ("sunny",), "breezy": ("breezy", "sunny")},
        ...     wheel_map={"w1": {"level1": {"sunny": "fair", "breezy": "fair"}}},
        ... )
        >>> map_word(" Sunnier", toy, "w1")
        'fair'
        >>> map_word("foggy", toy, "w1") is None
        True
    """
    return _map_with(word.lower().strip(), wheels, _wheel_level_map(wheels, wheel, level))


def _mapped_sets(samples: Sequence[list[str]], wheels: EmotionWheels, wheel: str, level: str) -> list[set[str]]:
    """Map every parsed sample onto one wheel; a memo avoids re-sorting candidates of repeated words."""
    ancestors = _wheel_level_map(wheels, wheel, level)
    memo: dict[str, str | None] = {}
    mapped_samples = []
    for words in samples:
        mapped = set()
        for word in words:
            if word not in memo:
                memo[word] = _map_with(word, wheels, ancestors)
            if memo[word] is not None:
                mapped.add(memo[word])
        mapped_samples.append(mapped)
    return mapped_samples


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
            _mapped_sets(gold_words, wheels, wheel, level), _mapped_sets(pred_words, wheels, wheel, level)
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
        gold_set = _mapped_sets(gold_words, wheels, wheel, level)[0]
        pair = _precision_recall(gold_set, _mapped_sets(pred_words, wheels, wheel, level)[0])
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
        gold_sets = _mapped_sets(gold_words, wheels, wheel, "level1")
        pred_sets = _mapped_sets(pred_words, wheels, wheel, "level1")
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
