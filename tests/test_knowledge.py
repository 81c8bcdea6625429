"""Tests of the knowledge base: AU catalogue, intensity letters, prototypes, au_support (affect_mllm.knowledge),
voice profiles and cue words (affect_mllm.voice_cues) and the data-table reader (affect_mllm.data_tables).

Run: pytest tests/test_knowledge.py -q
"""

from __future__ import annotations

import math
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affect_mllm import knowledge
from affect_mllm.data_tables import DataTableError, read_data_table
from affect_mllm.knowledge import (
    CATEGORIES,
    REGIONS,
    all_aus,
    au_cue,
    au_name,
    au_phrases,
    au_region,
    au_support,
    emotions_supported_by,
    intensity_from_letter,
    intensity_letter,
    prototype,
    prototypes,
)
from affect_mllm.voice_cues import (
    VOICE_ATTRIBUTES,
    voice_claim_agreement,
    voice_cue_phrases,
    voice_cue_vocabulary,
    voice_cues_in,
    voice_phrase,
    voice_profile,
)

REQUIRED_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 27, 43)


def test_categories_are_the_project_classes():
    assert CATEGORIES == ("neutral", "happy", "sad", "surprised", "fearful", "angry", "disgusted", "contemptuous")


def test_catalogue_has_every_required_au_with_region_and_cue():
    assert set(REQUIRED_AUS) <= set(all_aus())
    assert list(all_aus()) == sorted(all_aus())
    for number in all_aus():
        assert au_region(number) in REGIONS
        assert au_name(number) and au_cue(number)


@pytest.mark.parametrize(
    ("number", "name", "region", "cue"),
    [
        (1, "Inner Brow Raiser", "brows", "inner brows raised"),
        (4, "Brow Lowerer", "brows", "brows lowered and drawn together"),
        (6, "Cheek Raiser", "cheeks", "cheeks raised with crow's feet at the eyes"),
        (12, "Lip Corner Puller", "mouth", "lip corners pulled up"),
        (17, "Chin Raiser", "chin", "chin raised and lower lip pushed up"),
        (26, "Jaw Drop", "jaw", "jaw dropped"),
        (43, "Eyes Closed", "eyes", "eyes closed"),
    ],
)
def test_au_lookup(number, name, region, cue):
    assert (au_name(number), au_region(number), au_cue(number)) == (name, region, cue)


def test_unknown_au_raises_key_error_naming_it():
    with pytest.raises(KeyError, match="AU99"):
        au_name(99)


@pytest.mark.parametrize(
    ("value", "letter"),
    [(0.2, "A"), (1.0, "A"), (1.49, "A"), (1.5, "B"), (2.0, "B"), (2.5, "C"), (3.0, "C"), (4.0, "D"),
     (4.49, "D"), (4.5, "E"), (5.0, "E")],
)
def test_intensity_letter_rounds_half_up(value, letter):
    assert intensity_letter(value) == letter


@pytest.mark.parametrize("value", [-0.1, 5.01, math.nan])
def test_intensity_letter_rejects_values_off_the_scale(value):
    with pytest.raises(ValueError):
        intensity_letter(value)


def test_letters_and_numbers_round_trip():
    assert [intensity_from_letter(letter) for letter in "ABCDE"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert intensity_from_letter(" c ") == 3.0
    for letter in "ABCDE":
        assert intensity_letter(intensity_from_letter(letter)) == letter
    with pytest.raises(ValueError):
        intensity_from_letter("F")


def test_prototypes_cover_categories_and_cite_only_catalogued_aus():
    table = prototypes()
    assert tuple(name for name, p in table.items() if p.kind == "basic") == CATEGORIES
    assert len([p for p in table.values() if p.kind == "compound"]) >= 12
    for proto in table.values():
        assert proto.aus <= set(all_aus()), proto.emotion
        assert not proto.core & proto.optional
        assert proto.unilateral <= proto.core


def test_compounds_share_aus_with_each_component():
    # Du et al. 2014: a compound combines the movements of its component emotions.
    for proto in prototypes().values():
        for component in proto.components:
            assert proto.aus & prototype(component).aus, (proto.emotion, component)


def test_specific_prototypes():
    assert prototype("happy").core == {6, 12}
    assert prototype("sad").core == {1, 4, 15}
    assert prototype("contemptuous").unilateral == {12, 14}
    assert prototype("neutral").aus == frozenset()
    assert prototype("happily_surprised").components == ("happy", "surprised")
    with pytest.raises(KeyError):
        prototype("bored")


@pytest.mark.parametrize(
    ("aus", "emotion", "expected"),
    [
        ({6, 12}, "happy", 1.0),  # coverage 2/2, no conflicts -> 1 * (1 - 0/2)
        ({6, 12}, "sad", 0.0),  # coverage 0/3 -> 0
        ({6, 12}, "neutral", 0.0),  # no core -> coverage 1; 6 and 12 are happy's core -> 1 * (1 - 2/2)
        ({6, 12}, "contemptuous", 0.25),  # coverage 1/2 (12); AU6 is happy's core -> 0.5 * (1 - 1/2)
        ({1, 4, 15, 12}, "sad", 0.75),  # coverage 3/3; AU12 conflicts -> 1 * (1 - 1/4)
        ({1, 4, 15, 12}, "happy", 0.125),  # coverage 1/2; 1, 4, 15 conflict -> 0.5 * (1 - 3/4)
        ({6, 12, 25}, "happy", 1.0),  # AU25 is optional for happy: no conflict -> 1 * (1 - 0/3)
        ({1, 2, 5, 26, 12}, "surprised", 0.8),  # coverage 4/4; AU12 conflicts -> 1 * (1 - 1/5)
        ({1, 2, 12, 25}, "happily_surprised", 1.0),  # components' AUs are allies: 4/4 * (1 - 0/4)
        (set(), "neutral", 1.0),  # nothing cited supports neutral only
        (set(), "happy", 0.0),
        ({45}, "neutral", 1.0),  # a blink is in no prototype: 1 * (1 - 0/1)
    ],
)
def test_au_support_worked_examples(aus, emotion, expected):
    assert au_support(aus, emotion) == pytest.approx(expected)


@settings(max_examples=200, deadline=None)
@given(aus=st.sets(st.sampled_from(sorted(knowledge.all_aus()))), emotion=st.sampled_from(CATEGORIES))
def test_au_support_is_in_unit_interval(aus, emotion):
    assert 0.0 <= au_support(aus, emotion) <= 1.0


def test_core_aus_fully_support_their_own_basic_emotion():
    for emotion in CATEGORIES:
        assert au_support(prototype(emotion).core, emotion) == 1.0


def test_emotions_supported_by_ranks_best_first():
    ranked = emotions_supported_by({6, 12})
    assert ranked == [("happy", 1.0), ("contemptuous", 0.25)]
    assert emotions_supported_by(set()) == [("neutral", 1.0)]
    with_compounds = emotions_supported_by({1, 2, 5, 12, 25, 26}, include_compounds=True)
    assert with_compounds[0] == ("happily_surprised", 1.0)
    scores = [score for _, score in with_compounds]
    assert scores == sorted(scores, reverse=True)


def test_every_category_has_a_valid_voice_profile():
    for emotion in CATEGORIES:
        cues = voice_profile(emotion).cues()
        assert set(cues) == set(VOICE_ATTRIBUTES)
        assert all(value in VOICE_ATTRIBUTES[attribute] for attribute, value in cues.items())
    assert voice_profile("sad").cues() == {"pitch_level": "low", "pitch_range": "narrow", "contour": "falling",
                                           "loudness": "quiet", "rate": "slow", "tremor": "yes"}
    assert voice_profile("fearful").tremor == "yes"


def test_voice_cue_phrases_list_marked_cues():
    # angry differs from neutral in everything but tremor.
    assert voice_cue_phrases("angry") == ("high-pitched voice", "wide pitch range", "rising intonation",
                                          "loud voice", "fast speech")
    assert len(voice_cue_phrases("neutral")) == len(VOICE_ATTRIBUTES)
    assert len(voice_cue_phrases("angry", marked_only=False)) == len(VOICE_ATTRIBUTES)


def test_every_vocabulary_phrase_is_read_back_as_its_own_cue():
    for phrase, cue in voice_cue_vocabulary().items():
        assert voice_cues_in(f"Her voice: {phrase}.") == [cue], phrase
    for attribute, values in VOICE_ATTRIBUTES.items():
        for value in values:
            assert voice_cues_in(voice_phrase(attribute, value)) == [(attribute, value)]


def test_voice_cues_in_a_rationale():
    text = "He speaks in a shaky, high pitched voice, not loud; rather slowly. Without shouting."
    # 'not loud' and 'without shouting' are negated; 'slowly' is in another clause than 'not'.
    assert voice_cues_in(text) == [("tremor", "yes"), ("pitch_level", "high"), ("rate", "slow")]
    assert voice_cues_in("The breakfast was fine.") == []  # 'fast' only as a whole word


def test_voice_claim_agreement_worked_example():
    claims = [("pitch_level", "low"), ("loudness", "loud")]
    assert voice_claim_agreement(claims, "sad") == 0.5  # low pitch agrees, loud does not: 1/2
    assert voice_claim_agreement(voice_cues_in("a trembling, quiet voice"), "sad") == 1.0  # 2/2
    assert voice_claim_agreement([], "sad") == 0.0


def test_au_and_voice_wording():
    assert {"Lip Corner Puller", "lip corners pulled up"} <= set(au_phrases())
    assert {"trembling voice", "high-pitched"} <= set(voice_cue_vocabulary())


def test_bad_catalogue_row_names_file_and_line(monkeypatch):
    rows = [(6, {"au": "1", "name": "Inner Brow Raiser", "region": "brows", "cue": "inner brows raised"}),
            (7, {"au": "2", "name": "Outer Brow Raiser", "region": "forehead", "cue": "outer brows raised"})]
    monkeypatch.setattr(knowledge, "read_data_table", lambda filename, columns: rows)
    with pytest.raises(DataTableError, match=r"au_catalogue\.csv line 7: region 'forehead'"):
        knowledge.au_catalogue.__wrapped__()


def test_read_data_table_reports_file_line_numbers():
    rows = read_data_table("au_catalogue.csv", ("au",))
    text = (resources.files("affect_mllm") / "data" / "au_catalogue.csv").read_text(encoding="utf-8")
    first_line_no, first_row = rows[0]
    assert text.splitlines()[first_line_no - 1].startswith(f"{first_row['au']},")
