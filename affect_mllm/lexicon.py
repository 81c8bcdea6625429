"""Open-vocabulary emotion lexicon: head words, their forms and synonyms, and two three-level wheels.

Data: ``affect_mllm/data/emotion_lexicon.csv`` (head words with valence, arousal and intensity, and their
ancestors in wheel1 = the project's 8 categories and wheel2 = a Plutchik-style grouping) and
``emotion_forms.csv`` (inflections, derivations, synonyms and dataset label codes). Regular -ly/-ness/
-ier/-iest forms are derived here by rule. ``project_wheels()`` exports the tables in the structure the
OV-MER style metric of ``affect_mllm.wheels`` reads.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from affect_mllm.data_tables import DataTableError, read_data_table
from affect_mllm.knowledge import CATEGORIES
from affect_mllm.wheels import LEVELS, EmotionWheels

WHEELS = ("wheel1", "wheel2")
SENTIMENT_THRESHOLD = 0.15  # |valence| below this reads as neutral sentiment
FORM_KINDS = ("inflection", "derivation", "synonym", "code")
# Degree words and framing that normalize_word drops in front of an emotion word ("very annoyed").
_MODIFIERS = frozenset({"very", "really", "quite", "rather", "slightly", "somewhat", "extremely", "deeply",
                        "mildly", "highly", "so", "too", "bit", "little", "a", "feeling", "feels", "felt"})
_LEXICON_FILE = "emotion_lexicon.csv"
_FORMS_FILE = "emotion_forms.csv"


@dataclass(frozen=True)
class LexiconEntry:
    """A head word with its affect estimates and its ancestors per wheel."""

    word: str
    valence: float  # [-1, 1]
    arousal: float  # [-1, 1]
    intensity: float  # [0, 1], strength within its family
    parents: Mapping[str, tuple[str, str]]  # wheel -> (level-1 word, level-2 word or "" for a level-1 word)


@dataclass(frozen=True)
class Lexicon:
    """The loaded lexicon: entries, surface forms, synonyms and dataset codes."""

    entries: Mapping[str, LexiconEntry]
    forms: Mapping[str, tuple[str, ...]]  # table form (inflection, derivation) -> bases (head words or synonyms)
    synonyms: Mapping[str, tuple[str, ...]]  # synonym -> head words, primary first
    codes: Mapping[str, str]  # dataset label code -> head word
    derived: Mapping[str, str]  # rule-derived form -> head word (happily -> happy)


def _number(text: str, low: float, high: float, where: str, column: str) -> float:
    """Parse a float cell and check its range."""
    try:
        value = float(text)
    except ValueError:
        raise DataTableError(f"{where}: {column} {text!r} is not a number") from None
    if not low <= value <= high:
        raise DataTableError(f"{where}: {column} {value} is outside [{low}, {high}]")
    return value


def _read_entries() -> tuple[dict[str, LexiconEntry], dict[str, str]]:
    """Read the head words; returns entries and word -> 'file line N' for error messages."""
    columns = ["word", "valence", "arousal", "intensity"] + [f"{w}_{lv}" for w in WHEELS for lv in LEVELS]
    entries: dict[str, LexiconEntry] = {}
    where_of: dict[str, str] = {}
    for line_no, row in read_data_table(_LEXICON_FILE, columns):
        where, word = f"{_LEXICON_FILE} line {line_no}", row["word"]
        if not word or word != word.lower() or word in entries:
            raise DataTableError(f"{where}: word {word!r} is empty, not lower-case or listed twice")
        cells = {wheel: (row[f"{wheel}_level1"], row[f"{wheel}_level2"]) for wheel in WHEELS}
        parents = {wheel: pair for wheel, pair in cells.items() if any(pair)}  # empty cells: not in that wheel
        entries[word] = LexiconEntry(
            word, _number(row["valence"], -1, 1, where, "valence"), _number(row["arousal"], -1, 1, where, "arousal"),
            _number(row["intensity"], 0, 1, where, "intensity"), MappingProxyType(parents))
        where_of[word] = where
    return entries, where_of


def _check_wheels(entries: Mapping[str, LexiconEntry], where_of: Mapping[str, str]) -> None:
    """Check that every word sits at level 1, 2 or 3 under existing level-1/level-2 words of its wheel."""
    for word, entry in entries.items():
        for wheel, (level1, level2) in entry.parents.items():
            where = f"{where_of[word]} ({wheel})"
            parent1 = entries.get(level1)
            if parent1 is None or parent1.parents.get(wheel, ("", ""))[0] != level1:
                raise DataTableError(f"{where}: level1 {level1!r} is not a level-1 word of {wheel}")
            if word == level1:
                if level2:
                    raise DataTableError(f"{where}: a level-1 word must leave level2 empty")
                continue
            parent2 = entries.get(level2)
            if parent2 is None or parent2.parents.get(wheel) != (level1, level2):
                raise DataTableError(f"{where}: level2 {level2!r} is not a level-2 word under {level1!r} in {wheel}")


def _derived_forms(word: str) -> set[str]:
    """Regular adverb/noun/comparative forms of a one-word head word (happy -> happily, happiness, ...)."""
    if " " in word:
        return set()
    if word.endswith("y") and len(word) > 3 and word[-2] not in "aeiou":
        stem = word[:-1] + "i"
        return {stem + "ly", stem + "ness", stem + "er", stem + "est"}
    if word.endswith("ic"):
        return {word + "ally"}
    if word.endswith("ble"):
        return {word[:-1] + "y"}
    return {word + "ly", word + "ness"}


def _read_forms(
    entries: Mapping[str, LexiconEntry],
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], dict[str, str]]:
    """Read emotion_forms.csv; returns (form -> bases, synonym -> heads, code -> head)."""
    rows = read_data_table(_FORMS_FILE, ("form", "target", "kind"))
    synonyms: dict[str, tuple[str, ...]] = {}
    for line_no, row in rows:  # synonyms first: inflections may target them
        if row["kind"] == "synonym":
            if row["form"] in synonyms:
                raise DataTableError(f"{_FORMS_FILE} line {line_no}: synonym {row['form']!r} is listed twice")
            synonyms[row["form"]] = tuple(t.strip() for t in row["target"].split(";"))
    forms: dict[str, list[str]] = {}
    codes: dict[str, str] = {}
    for line_no, row in rows:
        where, form, kind = f"{_FORMS_FILE} line {line_no}", row["form"], row["kind"]
        targets = synonyms[form] if kind == "synonym" else (row["target"],)
        if kind not in FORM_KINDS:
            raise DataTableError(f"{where}: kind {kind!r} is not one of {FORM_KINDS}")
        if not form or form != form.lower() or form in entries:
            raise DataTableError(f"{where}: form {form!r} is empty, not lower-case or a head word")
        allowed = entries if kind in ("synonym", "code") else {**entries, **synonyms}
        if any(target not in allowed for target in targets):
            raise DataTableError(f"{where}: target {row['target']!r} is not a head word" + (
                "" if kind in ("synonym", "code") else " or synonym"))
        if kind == "code":
            if form in codes:
                raise DataTableError(f"{where}: code {form!r} is listed twice")
            codes[form] = row["target"]
        elif kind != "synonym":
            if form in synonyms:
                raise DataTableError(f"{where}: form {form!r} is also a synonym")
            forms.setdefault(form, []).append(row["target"])
    return {f: tuple(dict.fromkeys(bases)) for f, bases in forms.items()}, synonyms, codes


@functools.lru_cache(maxsize=1)
def load_lexicon() -> Lexicon:
    """Returns: the validated lexicon (cached); DataTableError names the file and line of bad data."""
    entries, where_of = _read_entries()
    _check_wheels(entries, where_of)
    # to_category reads wheel1, so it must hold every word, under exactly the 8 categories.
    outside = [word for word, entry in entries.items() if "wheel1" not in entry.parents]
    roots = {entry.parents["wheel1"][0] for entry in entries.values() if "wheel1" in entry.parents}
    if outside or roots != set(CATEGORIES):
        raise DataTableError(f"{_LEXICON_FILE}: wheel1 must hold every word under exactly {CATEGORIES}; "
                             f"its level-1 words are {sorted(roots)}, words outside it {outside[:5]}")
    forms, synonyms, codes = _read_forms(entries)
    taken = {*entries, *synonyms, *forms}
    derived = {form: word for word in entries for form in sorted(_derived_forms(word) - taken)}
    return Lexicon(MappingProxyType(entries), MappingProxyType(forms), MappingProxyType(synonyms),
                   MappingProxyType(codes), MappingProxyType(derived))


def head_words() -> tuple[str, ...]:
    """Returns: all head words of the lexicon, in table order."""
    return tuple(load_lexicon().entries)


def all_surface_words() -> tuple[str, ...]:
    """Single-word spellings the lexicon lists: head words, synonyms and table forms, sorted.

    Phrases, hyphenated words, rule-derived forms and dataset codes are left out, so that each word can be
    one token of a tokenizer that splits on spaces and punctuation.
    """
    lexicon = load_lexicon()
    words = {*lexicon.entries, *lexicon.synonyms, *lexicon.forms}
    return tuple(sorted(w for w in words if w.isalpha()))


def _clean(word: str) -> str:
    """Lower-case, turn '_' into spaces, drop punctuation but hyphens and apostrophes, squeeze spaces."""
    text = re.sub(r"[^\w\s'-]", " ", word.lower().replace("_", " "))
    return " ".join(text.split()).strip("-'")


def _resolve(text: str, lexicon: Lexicon) -> str | None:
    """Head word of an exact (cleaned) surface string, or None."""
    if text in lexicon.entries:
        return text
    if text in lexicon.synonyms:
        return lexicon.synonyms[text][0]
    for base in lexicon.forms.get(text, ()):
        return base if base in lexicon.entries else lexicon.synonyms[base][0]
    return lexicon.derived.get(text)


def normalize_word(word: str) -> str | None:
    """Head word of any spelling of an emotion word.

    Handles case, whitespace, punctuation, inflections and derivations (angrily -> angry), synonyms
    (afraid -> fearful) and leading degree words ('very annoyed' -> annoyed). Negations are not stripped.
    Args:
        word: a word or short phrase.
    Returns:
        the head word, or None when the word is unknown.
    """
    lexicon = load_lexicon()
    tokens = _clean(word).split(" ")
    while tokens:
        head = _resolve(" ".join(tokens), lexicon)
        if head is not None or tokens[0] not in _MODIFIERS:
            return head
        tokens = tokens[1:]
    return None


def to_category(word: str) -> str | None:
    """Returns: the one of CATEGORIES a word belongs to (wheel1 level 1), also for dataset codes; else None."""
    lexicon = load_lexicon()
    head = lexicon.codes.get(_clean(word)) or normalize_word(word)
    if head is None or "wheel1" not in lexicon.entries[head].parents:
        return None
    return lexicon.entries[head].parents["wheel1"][0]


def valence_arousal(word: str) -> tuple[float, float] | None:
    """Returns: (valence, arousal) in [-1, 1] of a word's head word, or None when unknown."""
    head = normalize_word(word)
    if head is None:
        return None
    entry = load_lexicon().entries[head]
    return entry.valence, entry.arousal


def sentiment(word: str) -> str | None:
    """Sentiment from valence: 'positive' if valence >= 0.15, 'negative' if <= -0.15, else 'neutral'.

    Returns None for an unknown word.
    """
    pair = valence_arousal(word)
    if pair is None:
        return None
    if pair[0] >= SENTIMENT_THRESHOLD:
        return "positive"
    return "negative" if pair[0] <= -SENTIMENT_THRESHOLD else "neutral"


@functools.lru_cache(maxsize=1)
def _wheel_maps() -> Mapping[str, Mapping[str, Mapping[str, str]]]:
    """wheel -> level -> word -> ancestor; a level-1 word maps at level 2 to its alphabetically first child."""
    entries = load_lexicon().entries
    maps: dict[str, Mapping[str, Mapping[str, str]]] = {}
    for wheel in WHEELS:
        members = {word: e.parents[wheel] for word, e in entries.items() if wheel in e.parents}
        first_child: dict[str, str] = {}
        for word, (level1, level2) in sorted(members.items()):
            if level2 == word:
                first_child.setdefault(level1, word)
        level1_map = {word: level1 for word, (level1, _) in members.items()}
        level2_map = {word: level2 or first_child.get(word, word) for word, (_, level2) in members.items()}
        maps[wheel] = MappingProxyType({"level1": MappingProxyType(level1_map),
                                        "level2": MappingProxyType(level2_map)})
    return MappingProxyType(maps)


def ancestor(word: str, wheel: str = "wheel1", level: str = "level1") -> str | None:
    """Returns: the wheel word a word maps to at a level ('level1' or 'level2'), or None if not in the wheel."""
    head = normalize_word(word)
    return None if head is None else _wheel_maps()[wheel][level].get(head)


def branches(level1_word: str, wheel: str = "wheel1") -> tuple[str, ...]:
    """Returns: the level-2 words under a level-1 word of a wheel, alphabetically."""
    members = (e.parents[wheel] for e in load_lexicon().entries.values() if wheel in e.parents)
    return tuple(sorted(level2 for level1, level2 in set(members) if level1 == level1_word and level2))


def _pick(rng: random.Random | Any, n: int, k: int) -> list[int]:
    """k distinct indices below n from a random.Random or a numpy Generator."""
    if isinstance(rng, random.Random):
        return rng.sample(range(n), k)
    return [int(i) for i in rng.choice(n, size=k, replace=False)]


def fine_words(category: str, intensity: float, arousal: float, k: int = 3,
               rng: random.Random | Any | None = None) -> list[str]:
    """Fine-grained words of a category that fit an intensity and an arousal.

    Each word under the category in wheel1 (the category itself excluded) is scored by
    distance = |intensity_w - intensity| + |arousal_w - arousal| / 2; the 3k nearest form the pool and k of
    them are drawn with `rng` (random.Random or numpy.random.Generator; None takes the k nearest).
    Args:
        category: one of CATEGORIES.
        intensity: wanted intensity in [0, 1].
        arousal: wanted arousal in [-1, 1].
        k: number of words.
        rng: source of randomness; the same rng state gives the same words.
    Returns:
        k distinct words (fewer if the category has fewer), nearest first.
    """
    if category not in CATEGORIES:
        raise ValueError(f"{category!r} is not one of {CATEGORIES}")
    if not (0.0 <= intensity <= 1.0 and -1.0 <= arousal <= 1.0 and k >= 1):
        raise ValueError(f"need intensity in [0, 1], arousal in [-1, 1], k >= 1; got {intensity}, {arousal}, {k}")
    entries = load_lexicon().entries
    candidates = [e for e in entries.values() if e.word != category and e.parents.get("wheel1", ("",))[0] == category]
    ranked = sorted(candidates, key=lambda e: (abs(e.intensity - intensity) + abs(e.arousal - arousal) / 2, e.word))
    if rng is None:
        return [e.word for e in ranked[:k]]
    pool = ranked[: 3 * k]
    chosen = sorted(_pick(rng, len(pool), min(k, len(pool))))
    return [pool[i].word for i in chosen]


@functools.lru_cache(maxsize=1)
def project_wheels() -> EmotionWheels:
    """The lexicon as OV-MER style lookup tables (name 'project').

    format_mapping: every head word, synonym, table form and rule-derived form -> its bases (head words and
    synonyms map to themselves); raw_mapping: head word -> (itself,), synonym -> its head words;
    wheel_map: wheel1/wheel2 -> level1/level2 -> word -> ancestor. Dataset codes are left out.
    Returns:
        the EmotionWheels tables.
    """
    lexicon = load_lexicon()
    format_mapping = {word: (word,) for word in [*lexicon.entries, *lexicon.synonyms]}
    format_mapping.update(lexicon.forms)
    format_mapping.update({form: (head,) for form, head in lexicon.derived.items()})
    raw_mapping = {word: (word,) for word in lexicon.entries}
    raw_mapping.update(lexicon.synonyms)
    return EmotionWheels(name="project", format_mapping=MappingProxyType(format_mapping),
                         raw_mapping=MappingProxyType(raw_mapping), wheel_map=_wheel_maps())
