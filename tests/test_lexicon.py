"""Tests of affect_mllm.lexicon: table consistency, normalisation, categories, fine words, wheel export.

Run: pytest tests/test_lexicon.py -q
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from affect_mllm import lexicon
from affect_mllm.data_tables import DataTableError, read_data_table
from affect_mllm.knowledge import CATEGORIES
from affect_mllm.lexicon import (
    WHEELS,
    all_surface_words,
    ancestor,
    branches,
    fine_words,
    head_words,
    load_lexicon,
    normalize_word,
    project_wheels,
    sentiment,
    to_category,
    valence_arousal,
)
from affect_mllm.wheels import EmotionWheels


def _ovmer_map(wheels: EmotionWheels, word: str, wheel: str, level: str) -> str | None:
    """The OV-MER mapping protocol: form -> bases -> wheel words -> first present (alphabetical) -> ancestor."""
    word = word.strip().lower()
    candidates = sorted({w for base in wheels.format_mapping.get(word, ()) for w in wheels.raw_mapping.get(base, ())})
    present = [w for w in candidates if w in wheels.wheel_map[wheel][level]]
    return wheels.wheel_map[wheel][level][present[0]] if present else None


def _precision_recall(gold: list[str], pred: list[str], wheel: str, level: str) -> tuple[float, float]:
    """Per-sample precision and recall of mapped word sets, as the OV-MER metric computes them."""
    wheels = project_wheels()
    mapped_gold = {_ovmer_map(wheels, w, wheel, level) for w in gold} - {None}
    mapped_pred = {_ovmer_map(wheels, w, wheel, level) for w in pred} - {None}
    hits = len(mapped_gold & mapped_pred)
    return hits / len(mapped_pred), hits / len(mapped_gold)


def test_lexicon_size_and_levels():
    lex = load_lexicon()
    assert 300 <= len(lex.entries) <= 600
    for wheel in WHEELS:
        levels = {1 if word == p[0] else 2 if word == p[1] else 3
                  for word, e in lex.entries.items() if (p := e.parents.get(wheel))}
        assert levels == {1, 2, 3}, wheel


def test_categories_are_the_level1_words_of_wheel1():
    level1 = {e.parents["wheel1"][0] for e in load_lexicon().entries.values()}
    assert level1 == set(CATEGORIES)


def test_every_word_reaches_a_level1_word_in_every_wheel_it_is_in():
    entries = load_lexicon().entries
    for word, entry in entries.items():
        for wheel, (level1, level2) in entry.parents.items():
            top = entries[level1].parents[wheel]
            assert top == (level1, ""), (word, wheel)  # the level-1 word is its own root
            if word != level1:
                assert entries[level2].parents[wheel] == (level1, level2), (word, wheel)


def test_no_cycles_in_the_hierarchy():
    entries = load_lexicon().entries
    for wheel in WHEELS:
        for word, entry in entries.items():
            if wheel not in entry.parents:
                continue
            chain = [word]
            while True:  # parent of a level-3 word: its level2; of a level-2 word: its level1
                level1, level2 = entries[chain[-1]].parents[wheel]
                parent = level2 if level2 and level2 != chain[-1] else level1
                if parent == chain[-1]:
                    break
                assert parent not in chain, (wheel, chain)
                chain.append(parent)
            assert len(chain) <= 3, (wheel, chain)


def test_no_word_twice_in_the_table():
    words = [row["word"] for _, row in read_data_table("emotion_lexicon.csv", ("word",))]
    assert len(words) == len(set(words))


def test_every_form_synonym_and_code_target_exists():
    lex = load_lexicon()
    for form, bases in lex.forms.items():
        assert bases and all(b in lex.entries or b in lex.synonyms for b in bases), form
    for synonym, heads in lex.synonyms.items():
        assert heads and all(h in lex.entries for h in heads), synonym
    assert all(head in lex.entries for head in lex.codes.values())
    assert all(head in lex.entries for head in lex.derived.values())
    assert not set(lex.derived) & (set(lex.entries) | set(lex.synonyms) | set(lex.forms))
    assert not set(lex.forms) & set(lex.entries) and not set(lex.synonyms) & set(lex.entries)


def test_affect_values_in_range():
    for entry in load_lexicon().entries.values():
        assert -1.0 <= entry.valence <= 1.0 and -1.0 <= entry.arousal <= 1.0 and 0.0 <= entry.intensity <= 1.0


@pytest.mark.parametrize(
    ("alias", "category"),
    [("surprise", "surprised"), ("fear", "fearful"), ("anger", "angry"), ("disgust", "disgusted"),
     ("contempt", "contemptuous"), ("happiness", "happy"), ("sadness", "sad"), ("worried", "fearful"),
     ("worry", "fearful"), ("joy", "happy"), ("neutral", "neutral"), ("calm", "neutral"),
     ("Happy", "happy"), ("SAD", "sad"), ("hap", "happy"), ("neu", "neutral"), ("ang", "angry"),
     ("exc", "happy"), ("fru", "angry"), ("excited", "happy"), ("frustrated", "angry"), ("afraid", "fearful")],
)
def test_to_category_of_dataset_aliases(alias, category):
    assert to_category(alias) == category


def test_to_category_of_unknown_words_is_none():
    assert to_category("table") is None
    assert to_category("not happy") is None


@pytest.mark.parametrize(
    ("word", "head"),
    [("Happiness", "happy"), ("happily", "happy"), ("happier", "happy"), ("anger", "angry"),
     ("angrily", "angry"), ("surprising", "surprised"), ("afraid", "fearful"), ("annoyance", "annoyed"),
     ("  Very   annoyed! ", "annoyed"), ("a bit sad", "sad"), ("'joy'", "joyful"), ("fed up", "frustrated"),
     ("Self-Conscious", "self-conscious"), ("loneliness", "lonely"), ("sadder", "sad"), ("madder", "angry"),
     ("calmly", "calm"), ("taken_aback", "taken aback"), ("gibberish", None), ("", None)],
)
def test_normalize_word(word, head):
    assert normalize_word(word) == head


def test_valence_arousal_and_sentiment():
    assert valence_arousal("joy") == (0.9, 0.5)
    assert valence_arousal("gibberish") is None
    assert sentiment("happiness") == "positive"  # valence 0.8 >= 0.15
    assert sentiment("furious") == "negative"  # valence -0.9 <= -0.15
    assert sentiment("surprised") == "neutral"  # |0.1| < 0.15
    assert sentiment("gibberish") is None


def test_level1_and_level2_mappings_differ_for_a_realistic_sample():
    sample = ["happy", "joyful", "content", "relieved", "sad", "lonely", "worried", "anxious", "angry",
              "annoyed", "furious", "surprised", "amazed", "disgusted", "contemptuous", "calm"]
    for wheel in WHEELS:
        differ = [w for w in sample if ancestor(w, wheel, "level1") != ancestor(w, wheel, "level2")]
        assert len(differ) == len(sample), wheel
    # Hand-worked level-2 targets: a level-1 word maps to its alphabetically first level-2 child.
    assert [ancestor(w, "wheel1", "level2") for w in ("happy", "sad", "angry", "neutral")] == \
        ["cheerful", "dejected", "annoyed", "calm"]
    assert ancestor("annoyed", "wheel1", "level2") != ancestor("furious", "wheel1", "level2")


def test_wheels_disagree_sometimes():
    # contempt is its own category in wheel1 but sits under disgust in wheel2 (Plutchik's dyad).
    assert ancestor("contemptuous", "wheel1") != ancestor("disgusted", "wheel1")
    assert ancestor("contemptuous", "wheel2") == ancestor("disgusted", "wheel2") == "disgusted"
    # excitement is happiness in wheel1 but anticipation ('expectant') in wheel2.
    assert ancestor("excited", "wheel1") == ancestor("happy", "wheel1") == "happy"
    assert ancestor("excited", "wheel2") == "expectant" != ancestor("happy", "wheel2")


def test_level2_branches_differ_in_arousal():
    entries = load_lexicon().entries
    for category in CATEGORIES:
        names = branches(category)
        assert len(names) >= 3, category
        arousal = [entries[name].arousal for name in names]
        assert max(arousal) - min(arousal) >= 0.4, category


def test_fine_words_follow_intensity_and_arousal():
    entries = load_lexicon().entries
    strong = fine_words("angry", intensity=0.95, arousal=0.95, k=3)
    mild = fine_words("angry", intensity=0.3, arousal=0.3, k=3)
    assert all(entries[w].intensity >= 0.85 for w in strong)
    assert all(entries[w].intensity <= 0.5 for w in mild)
    calm_happy = fine_words("happy", intensity=0.4, arousal=-0.6, k=3)
    assert all(entries[w].parents["wheel1"][1] in ("content", "relieved") for w in calm_happy)
    elated = fine_words("happy", intensity=0.9, arousal=0.9, k=3)
    assert all(entries[w].parents["wheel1"][1] == "elated" for w in elated)


def test_fine_words_are_deterministic_by_rng():
    for category in CATEGORIES:
        first = fine_words(category, 0.5, 0.2, k=4, rng=random.Random(7))
        again = fine_words(category, 0.5, 0.2, k=4, rng=random.Random(7))
        with_numpy = fine_words(category, 0.5, 0.2, k=4, rng=np.random.default_rng(7))
        assert first == again and len(set(first)) == 4 and len(with_numpy) == 4
        assert all(to_category(w) == category and w != category for w in first + with_numpy)
    with pytest.raises(ValueError):
        fine_words("bored", 0.5, 0.0)


def test_all_surface_words_are_single_words():
    words = all_surface_words()
    assert set(CATEGORIES) <= set(words) and {"happiness", "anger", "afraid"} <= set(words)
    assert all(w.isalpha() and w == w.lower() for w in words)
    assert "taken aback" not in words and "self-conscious" not in words and "hap" not in words
    assert list(words) == sorted(set(words))


def test_project_wheels_tables():
    wheels = project_wheels()
    assert wheels.name == "project" and set(wheels.wheel_map) == set(WHEELS)
    assert all(key == key.lower() for key in wheels.format_mapping)
    assert all(base in wheels.raw_mapping for bases in wheels.format_mapping.values() for base in bases)
    for head in head_words():
        assert wheels.format_mapping[head] == (head,) and wheels.raw_mapping[head] == (head,)
    assert "hap" not in wheels.format_mapping  # dataset codes are not words


def test_ovmer_protocol_on_project_tables_hand_worked():
    # gold [happy, relieved] vs pred [joyful], wheel1 level1: {happy} vs {happy} -> P = R = 1.
    assert _precision_recall(["happy", "relieved"], ["joyful"], "wheel1", "level1") == (1.0, 1.0)
    # level2: gold {cheerful, relieved}, pred {cheerful} -> P = 1/1, R = 1/2.
    assert _precision_recall(["happy", "relieved"], ["joyful"], "wheel1", "level2") == (1.0, 0.5)
    # gold [angry, frustrated] vs pred [anger, sadness, anxious], level1: {angry} vs {angry, sad, fearful}
    # -> P = 1/3, R = 1/1; level2: {annoyed, frustrated} vs {annoyed, dejected, anxious} -> P = 1/3, R = 1/2.
    assert _precision_recall(["angry", "frustrated"], ["anger", "sadness", "anxious"], "wheel1", "level1") == \
        pytest.approx((1 / 3, 1.0))
    assert _precision_recall(["angry", "frustrated"], ["anger", "sadness", "anxious"], "wheel1", "level2") == \
        pytest.approx((1 / 3, 0.5))
    # 'fearless' is courage, not fear; 'upset' maps through its synonym entry.
    assert _ovmer_map(project_wheels(), "fearless", "wheel1", "level1") == "happy"
    assert _ovmer_map(project_wheels(), "Upset", "wheel1", "level1") == "sad"


def test_bad_lexicon_row_names_file_and_line(monkeypatch):
    real = lexicon.read_data_table

    def fake(filename, columns):
        """The real tables, with row 20 of the lexicon pointing at a level-2 word that does not exist."""
        rows = real(filename, columns)
        if filename == "emotion_lexicon.csv":
            line_no, row = rows[20]
            rows[20] = (line_no, {**row, "wheel1_level2": "nonexistent"})
        return rows

    monkeypatch.setattr(lexicon, "read_data_table", fake)
    line_no = real("emotion_lexicon.csv", ("word",))[20][0]
    with pytest.raises(DataTableError, match=rf"emotion_lexicon\.csv line {line_no} \(wheel1\)"):
        lexicon.load_lexicon.__wrapped__()
