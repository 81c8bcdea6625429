"""Tests of the OV-MER emotion-wheel metric in affect_mllm/wheels.py.

Run: pytest tests/test_wheels.py -q

Hand-worked cases use TOY, a small weather-themed set of wheels invented here. The worked cases of the
official tables' README run only when ../shared/ovmer_emotion_wheel (beside the repository) exists; they are
skipped, with the folder named, when it does not. No word list of the official tables is kept here.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affect_mllm.metrics.wheel import hit_rate, sample_wheel_f, wheel_scores
from affect_mllm.wheels import EmotionWheels, map_word, parse_label_list

pytest_plugins = ["ovmer_tables_fixtures"]
TOL = 1e-12


def _toy_wheels() -> EmotionWheels:
    """Two wheels. w1: warm <- sunny; cool <- breezy, stormy. w2: warm <- breezy, sunny; cool <- misty, stormy.

    At level2 a level1 word maps to its alphabetically first child (w1: cool -> breezy; w2: warm -> breezy).
    "mixed" has two bases; "changeable" and "hazy" have synonyms in both branches; "foggy" is known to the
    tables but has no synonym in any wheel.
    """
    forms = {word: (word,) for word in ("sunny", "stormy", "breezy", "misty", "warm", "cool", "foggy")}
    forms |= {"sunnier": ("sunny",), "sunshine": ("sunny",), "storm": ("stormy",), "mixed": ("sunny", "stormy")}
    forms |= {"changeable": ("changeable",), "hazy": ("hazy",)}
    raws = {word: (word,) for word in ("sunny", "stormy", "breezy", "misty", "warm", "cool")}
    raws |= {"changeable": ("sunny", "stormy"), "hazy": ("sunny", "misty"), "foggy": ("fogbank",)}
    w1_level1 = {"warm": "warm", "sunny": "warm", "cool": "cool", "breezy": "cool", "stormy": "cool"}
    w1_level2 = {"warm": "sunny", "sunny": "sunny", "cool": "breezy", "breezy": "breezy", "stormy": "stormy"}
    w2_level1 = {"warm": "warm", "sunny": "warm", "breezy": "warm", "cool": "cool", "misty": "cool", "stormy": "cool"}
    w2_level2 = {"warm": "breezy", "sunny": "sunny", "breezy": "breezy", "cool": "misty", "misty": "misty"}
    w2_level2["stormy"] = "stormy"
    return EmotionWheels(
        name="toy",
        format_mapping=forms,
        raw_mapping=raws,
        wheel_map={"w1": {"level1": w1_level1, "level2": w1_level2}, "w2": {"level1": w2_level1, "level2": w2_level2}},
    )


TOY = _toy_wheels()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[happy, relieved]", ["happy", "relieved"]),
        ("happy, relieved", ["happy", "relieved"]),
        ("['happy', 'relieved']", ["happy", "relieved"]),
        ('["Happy","RELIEVED"]', ["happy", "relieved"]),
        (["Happy ", " relieved"], ["happy", "relieved"]),
        ("[happy,, ,relieved,]", ["happy", "relieved"]),
        (" [happy]", ["[happy"]),  # the reference strips the bracket only when it is the very first character
        (["happy, sad"], ["happy, sad"]),  # list items are not split again, as in the reference
        ("[]", []),
        ("[", []),  # the reference raises IndexError here
        ("", []),
        (None, []),
        (math.nan, []),
    ],
)
def test_parse_label_list_variants(value, expected):
    assert parse_label_list(value) == expected


def test_parse_label_list_rejects_non_text():
    with pytest.raises(TypeError):
        parse_label_list(3)


@pytest.mark.parametrize(
    ("word", "wheel", "level", "expected"),
    [
        ("sunny", "w1", "level1", "warm"),
        (" Sunnier ", "w1", "level1", "warm"),  # form -> base sunny; case and spaces normalised
        ("breezy", "w1", "level1", "cool"),
        ("breezy", "w2", "level1", "warm"),
        ("changeable", "w1", "level1", "cool"),  # candidates sorted: stormy < sunny, stormy first
        ("hazy", "w1", "level1", "warm"),  # sorted: misty < sunny; misty is not in w1, so sunny
        ("hazy", "w2", "level1", "cool"),  # misty is in w2 and comes first
        ("mixed", "w2", "level1", "cool"),  # bases sunny + stormy -> candidates [stormy, sunny]
        ("misty", "w1", "level1", None),  # known word, not in this wheel
        ("foggy", "w1", "level1", None),  # known form whose synonyms are in no wheel
        ("gibberish", "w1", "level1", None),  # unknown word
        ("warm", "w2", "level2", "breezy"),  # level1 word -> alphabetically first level2 child
        ("storm", "w2", "level2", "stormy"),
    ],
)
def test_map_word_case3(word, wheel, level, expected):
    assert map_word(word, TOY, wheel, level) == expected


@pytest.mark.parametrize(("wheel", "level"), [("w9", "level1"), ("w1", "level3")])
def test_map_word_rejects_unknown_wheel_or_level(wheel, level):
    with pytest.raises(ValueError):
        map_word("sunny", TOY, wheel, level)


def _per_wheel(scores, key):
    return [scores["per_wheel"][wheel][key] for wheel in ("w1", "w2")]


def test_samples_without_mapped_gold_are_skipped_per_wheel():
    scores = wheel_scores(["[misty]", "[sunny]"], ["[misty]", "[sunny]"], TOY)
    # w1: misty maps to nothing -> sample 1 skipped; sample 2 {warm} vs {warm}: P = R = 1.
    # w2: misty -> cool; both samples P = R = 1.
    assert _per_wheel(scores, "n_samples") == [1, 2]
    assert _per_wheel(scores, "n_skipped") == [1, 0]
    assert scores["f"] == scores["precision"] == scores["recall"] == 1.0


def test_empty_prediction_scores_zero_and_counts():
    scores = wheel_scores(["sunny", "stormy"], ["sunny", ""], TOY)
    # Both wheels: sample 1 P = R = 1; sample 2 has no prediction -> P = R = 0 -> P_w = R_w = 1/2, F_w = 1/2.
    assert _per_wheel(scores, "n_samples") == [2, 2]
    assert scores["f"] == pytest.approx(0.5, abs=TOL)
    assert scores["precision"] == pytest.approx(0.5, abs=TOL)


def test_unknown_predicted_words_are_dropped_not_penalised():
    # gibberish and foggy map to nothing, so P = {warm}: P = R = 1; a prediction of only unknown words is empty.
    assert wheel_scores(["sunny"], ["[sunny, gibberish, foggy]"], TOY)["f"] == 1.0
    assert wheel_scores(["sunny"], ["[gibberish]"], TOY)["f"] == 0.0


def test_duplicates_and_forms_collapse_to_one_wheel_word():
    # sunny, Sunnier, SUNSHINE all map to warm: G = P = {warm} on both wheels.
    scores = wheel_scores(["[sunny, sunny]"], ["['sunny', 'Sunnier', 'SUNSHINE']"], TOY)
    assert scores["precision"] == scores["recall"] == 1.0


def test_precision_recall_are_averaged_before_f():
    scores = wheel_scores(["[sunny]", "[stormy]"], ["[sunny, stormy]", "[stormy]"], TOY)
    # Both wheels: s1 G = {warm}, P = {warm, cool}: P = 1/2, R = 1; s2 P = R = 1.
    # P_w = 3/4, R_w = 1, F_w = 2 * 3/4 / (7/4) = 6/7; the mean of per-sample F would be (2/3 + 1) / 2 = 5/6.
    assert scores["precision"] == pytest.approx(0.75, abs=TOL)
    assert scores["recall"] == pytest.approx(1.0, abs=TOL)
    assert scores["f"] == pytest.approx(6 / 7, abs=TOL)
    assert sample_wheel_f("[sunny]", "[sunny, stormy]", TOY) == pytest.approx(2 / 3, abs=TOL)
    assert sample_wheel_f("[stormy]", "[stormy]", TOY) == 1.0


def test_level1_word_at_level2_maps_to_first_child():
    # level1: warm and sunny both -> warm on both wheels: F = 1.
    # level2: w1 warm -> sunny (only child) = sunny: F = 1; w2 warm -> breezy (breezy < sunny) != sunny: F = 0.
    assert wheel_scores(["warm"], ["sunny"], TOY)["f"] == 1.0
    level2 = wheel_scores(["warm"], ["sunny"], TOY, level="level2")
    assert _per_wheel(level2, "f") == [1.0, 0.0]
    assert level2["f"] == pytest.approx(0.5, abs=TOL)


def test_wheel_without_any_mapped_gold_scores_zero_and_is_marked():
    scores = wheel_scores(["misty"], ["misty"], TOY)
    # w1 has no scored sample: F = P = R = 0, n_samples = 0 (MER2026 keeps that 0 in the mean); w2 scores 1.
    assert scores["empty_wheels"] == ["w1"]
    assert scores["per_wheel"]["w1"] == {"f": 0.0, "precision": 0.0, "recall": 0.0, "n_samples": 0, "n_skipped": 1}
    assert scores["f"] == pytest.approx(0.5, abs=TOL)


def test_empty_corpus_scores_zero_with_every_wheel_marked():
    scores = wheel_scores([], [], TOY)
    assert (scores["f"], scores["precision"], scores["recall"]) == (0.0, 0.0, 0.0)
    assert scores["empty_wheels"] == ["w1", "w2"]
    assert _per_wheel(scores, "n_samples") == [0, 0]


def test_wheel_scores_rejects_bad_corpora():
    with pytest.raises(ValueError, match="2 samples but pred has 1"):
        wheel_scores(["sunny", "stormy"], ["sunny"], TOY)
    with pytest.raises(TypeError):
        wheel_scores("sunny", "sunny", TOY)
    with pytest.raises(ValueError):
        wheel_scores(["sunny"], ["sunny"], TOY, level="level3")
    with pytest.raises(ValueError, match="no wheels"):
        wheel_scores(["sunny"], ["sunny"], EmotionWheels("none", {}, {}, {}))


def test_sample_wheel_f_averages_only_wheels_where_gold_maps():
    # misty: w1 skipped, w2 F = 1 -> 1.0 (the corpus metric gives 0.5, see the empty-wheel test).
    assert sample_wheel_f("misty", "misty", TOY) == 1.0
    assert sample_wheel_f("[gibberish]", "[sunny]", TOY) is None
    assert sample_wheel_f("[sunny]", None, TOY) == 0.0


def test_hit_rate_one_hot():
    gold = ["sunny", "stormy", "misty", "gibberish"]
    pred = ["[sunny, stormy]", "[sunny]", "[misty]", "[sunny]"]
    result = hit_rate(gold, pred, TOY)
    # w1: hits 1, 0; misty and gibberish skipped -> 1/2.  w2: hits 1, 0, 1; gibberish skipped -> 2/3.
    assert result["per_wheel"]["w1"] == {"hit_rate": 0.5, "n_samples": 2, "n_skipped": 2}
    assert result["per_wheel"]["w2"]["hit_rate"] == pytest.approx(2 / 3, abs=TOL)
    assert result["hit_rate"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=TOL)
    assert hit_rate([], [], TOY)["empty_wheels"] == ["w1", "w2"]


def test_hit_rate_rejects_multi_word_gold():
    with pytest.raises(ValueError, match="one-hot"):
        hit_rate(["[sunny, stormy]"], ["sunny"], TOY)


TOY_VOCABULARY = sorted(TOY.format_mapping) + ["gibberish", "Sunny "]
TOY_WORDS_IN_EVERY_WHEEL = sorted(w for w in TOY.format_mapping if all(map_word(w, TOY, x) for x in TOY.wheel_map))
sample_words = st.lists(st.sampled_from(TOY_VOCABULARY), max_size=4)
corpora = st.lists(st.tuples(sample_words, sample_words), max_size=8)


def _as_label_string(words: list[str], style: int) -> str | list[str]:
    return [f"[{', '.join(words)}]", ", ".join(words), str(words), words][style]


def _scores_vector(scores: dict) -> list[float]:
    per_wheel = [scores["per_wheel"][wheel][key] for wheel in scores["per_wheel"] for key in ("f", "precision")]
    return [scores["f"], scores["precision"], scores["recall"], *per_wheel]


@settings(max_examples=60, deadline=None)
@given(corpus=corpora, level=st.sampled_from(["level1", "level2"]), style=st.integers(0, 3))
def test_scores_stay_in_unit_interval(corpus, level, style):
    gold = [_as_label_string(g, style) for g, _ in corpus]
    pred = [_as_label_string(p, style) for _, p in corpus]
    assert all(0.0 <= value <= 1.0 for value in _scores_vector(wheel_scores(gold, pred, TOY, level)))
    for g, p in zip(gold, pred, strict=True):
        value = sample_wheel_f(g, p, TOY, level)
        assert value is None or 0.0 <= value <= 1.0


@settings(max_examples=60, deadline=None)
@given(corpus=corpora, data=st.data())
def test_scores_ignore_order_of_samples_and_words(corpus, data):
    shuffled = data.draw(st.permutations(corpus))
    shuffled = [(data.draw(st.permutations(g)), data.draw(st.permutations(p))) for g, p in shuffled]
    before = wheel_scores([g for g, _ in corpus], [p for _, p in corpus], TOY)
    after = wheel_scores([g for g, _ in shuffled], [p for _, p in shuffled], TOY)
    assert _scores_vector(after) == pytest.approx(_scores_vector(before), abs=TOL)


@settings(max_examples=60, deadline=None)
@given(gold=st.lists(st.lists(st.sampled_from(TOY_WORDS_IN_EVERY_WHEEL), min_size=1, max_size=4), min_size=1))
def test_perfect_prediction_of_known_words_scores_one(gold):
    for level in ("level1", "level2"):
        scores = wheel_scores(gold, gold, TOY, level)
        assert scores["empty_wheels"] == []
        assert scores["f"] == scores["precision"] == scores["recall"] == 1.0


def test_readme_case_happy_relieved_vs_joyful(official):
    # Every wheel: G and P map to the same level1 word (wheel5 via the alphabetical walk): P = R = F = 1.
    scores = wheel_scores(["[happy, relieved]"], ["[joyful]"], official)
    for result in scores["per_wheel"].values():
        assert (result["precision"], result["recall"], result["n_samples"]) == (1.0, 1.0, 1)
    assert scores["f"] == pytest.approx(1.0, abs=TOL)
    expected_ancestors = ["happy", "happy", "joyful", "joy", "powerful"]  # as documented in field_anchors 2.5
    assert [map_word("happy", official, f"wheel{k}") for k in range(1, 6)] == expected_ancestors


def test_readme_case_angry_frustrated(official):
    scores = wheel_scores(["[angry, frustrated]"], ["[anger, sadness, anxious]"], official)
    expected_precision = [2 / 3, 2 / 3, 1 / 3, 2 / 3, 1 / 3]
    assert _official_per_wheel(scores, "precision") == pytest.approx(expected_precision, abs=TOL)
    assert _official_per_wheel(scores, "recall") == pytest.approx([1.0] * 5, abs=TOL)
    # F_w = 2PR/(P+R): 4/5 for P = 2/3, 1/2 for P = 1/3 -> F = (3 * 4/5 + 2 * 1/2) / 5 = 17/25; P = 8/15.
    assert scores["f"] == pytest.approx(17 / 25, abs=TOL)
    assert scores["precision"] == pytest.approx(8 / 15, abs=TOL)
    assert scores["recall"] == pytest.approx(1.0, abs=TOL)


def test_readme_case_fearless_vs_fear(official):
    scores = wheel_scores(["[fearless]"], ["[fear]"], official)
    # wheel1: the gold maps to nothing -> skipped; wheels 2-5: P = R = 0.
    assert _official_per_wheel(scores, "n_samples") == [0, 1, 1, 1, 1]
    assert _official_per_wheel(scores, "n_skipped") == [1, 0, 0, 0, 0]
    assert _official_per_wheel(scores, "precision") == [0.0] * 5
    assert scores["empty_wheels"] == ["wheel1"]
    assert scores["f"] == 0.0


def test_field_anchors_level2_case(official):
    # level2: wheel1 G = {joyful} vs P = {accepted}, wheel2 G = {content} vs P = {accepted}: 0; wheels 3-5: 1.
    scores = wheel_scores(["[happy, relieved]"], ["[joyful]"], official, level="level2")
    assert _official_per_wheel(scores, "f") == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert scores["f"] == pytest.approx(3 / 5, abs=TOL)
    assert scores["precision"] == pytest.approx(3 / 5, abs=TOL)
    assert scores["recall"] == pytest.approx(3 / 5, abs=TOL)


def _official_per_wheel(scores: dict, key: str) -> list:
    return [scores["per_wheel"][f"wheel{k}"][key] for k in range(1, 6)]


@pytest.fixture(scope="module")
def official_words_in_every_wheel(official):
    # Drawn at run time from the loaded tables; nothing of the tables is stored in this file.
    return sorted(w for w in official.format_mapping if all(map_word(w, official, x) for x in official.wheel_map))


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_perfect_prediction_on_official_tables_scores_one(official, official_words_in_every_wheel, data):
    known = official_words_in_every_wheel
    gold = data.draw(st.lists(st.lists(st.sampled_from(known), min_size=1, max_size=4), min_size=1, max_size=6))
    scores = wheel_scores(gold, gold, official)
    assert scores["f"] == scores["precision"] == scores["recall"] == 1.0
