"""Emotion wheels: the lookup tables and the mapping of emotion words onto them (steps 1-2 of OV-MER).

Both the official OV-MER tables (loaded from a user-named folder, never shipped) and the project's own
lexicon are turned into one structure, `EmotionWheels`, so one metric implementation serves both. The metric
itself (steps 3-5, `wheel_scores`, `sample_wheel_f`, `hit_rate`) is `affect_mllm.metrics.wheel`.

The steps, as the reference computes them (MERTools `MER2026_Track2/my_affectgpt/evaluation/wheel.py`,
`toolkit/utils/functions.py::string_to_list`):

1. Parse each label string: strip one leading ``[`` and one trailing ``]``, split on quotes and commas,
   strip the pieces, drop the empty ones, lower-case them (`parse_label_list`).
2. Map each word to one wheel word, per wheel and level ("case3", `map_word`, `mapped_sets`): a word that is not
   a key of ``format_mapping`` is dropped; otherwise gather ``raw_mapping[base]`` for every base form of the
   word, walk these candidates in alphabetical order and take the ancestor, at the chosen level, of the first
   one present in the wheel; when no candidate is in the wheel, the word is dropped.
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


def mapped_sets(samples: Sequence[list[str]], wheels: EmotionWheels, wheel: str, level: str) -> list[set[str]]:
    """Map every parsed sample (step 1 output) onto one wheel at a level (step 2); unknown words are dropped."""
    # a memo avoids re-sorting the candidates of repeated words
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
