"""Metrics (affect_mllm/metrics/): hand-worked cases, order invariance, perfect scores, bootstrap, doctests.

Run: pytest tests/test_metrics.py -q

The worked OV-MER cases of the official tables' README run only when ../shared/ovmer_emotion_wheel exists
(beside the repository); they are skipped, with the folder named, when it does not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affect_mllm.lexicon import project_wheels
from affect_mllm.metrics import (
    au_f1,
    categorical_scores,
    category_of,
    ccc,
    first_category,
    grounding,
    icc_3_1,
    intensity_scores,
    label_polarity,
    rouge_l,
    sample_au_f1,
    sentiment_scores,
)
from affect_mllm.metrics.bootstrap import bootstrap_ci
from affect_mllm.metrics.corpus import BootstrapSettings, evaluate_corpus
from affect_mllm.metrics.text import lcs_length, rouge_tokens
from affect_mllm.metrics.wheel import hit_rate, hit_table, wheel_scores, wheel_table
from affect_mllm.predictions import LabelRecord

pytest_plugins = ["ovmer_tables_fixtures"]
TOL = 1e-12
NO_BOOTSTRAP = BootstrapSettings(n_resamples=0)
PROJECT_WORDS = ["happy", "sad", "angry", "fearful", "surprised", "disgusted", "calm", "anxious", "joyful",
                 "frustrated", "relieved", "furious", "nervous", "content", "lonely"]


@pytest.mark.parametrize(("word", "expected"), [
    (" Joyful", "happy"), ("HAPPINESS", "happy"), ("ang", "angry"), ("very annoyed", "angry"),
    ("Blorp", "blorp"), ("", None), (None, None), ("afraid", "fearful"),
])
def test_category_of_normalises_case_forms_codes_and_keeps_unknown_words(word, expected):
    assert category_of(word) == expected


def test_first_category_prefers_the_first_word_the_lexicon_places():
    assert first_category(["meh", "furious", "sad"]) == "angry"
    assert first_category(["meh"]) == "unmapped"  # words that name no class are never a class of their own
    assert first_category(["Meh"], classes={"meh"}) == "meh"  # unless the corpus's gold has that class
    assert first_category([]) is None


def test_unmapped_predictions_are_one_column_and_never_a_class():
    # Gold happy, happy, sad, sad; predictions: right, rationale text, unknown word, no prediction.
    gold = ["happy", "happy", "sad", "sad"]
    pred = [first_category(w) for w in (["joyful"], ["inner brows raised (au4", "au1)"], ["stoked"], [])]
    assert pred == ["happy", "unmapped", "unmapped", None]
    s = categorical_scores(gold, pred)
    assert s["confusion_matrix"] == {"labels": ["happy", "sad"], "columns": ["happy", "sad", "unmapped", "(none)"],
                                     "matrix": [[1, 0, 1, 0], [0, 0, 1, 1]]}
    # accuracy 1/4; UAR (1/2 + 0) / 2; F1 happy 2*1/(2+0+1) = 2/3, sad 0 -> macro 1/3; weighted (2/3*2 + 0)/4.
    assert (s["accuracy"], s["uar"], s["n_unmapped"], s["n_no_prediction"]) == (0.25, 0.25, 2, 1)
    assert abs(s["macro_f1"] - 1 / 3) < TOL and abs(s["weighted_f1"] - 1 / 3) < TOL
    assert set(s["per_class"]) == {"happy", "sad"}
    with pytest.raises(ValueError, match="unmapped"):
        categorical_scores(["unmapped"], ["happy"])


def test_categorical_hand_worked():
    # gold a a a b / pred a a b b: accuracy 3/4; recall a = 2/3, b = 1 -> UAR 5/6.
    # F1 a: TP 2 FP 0 FN 1 -> 4/5; b: TP 1 FP 1 FN 0 -> 2/3; macro 11/15; weighted (3 * 4/5 + 2/3) / 4 = 23/30.
    s = categorical_scores(["a", "a", "a", "b"], ["a", "a", "b", "b"])
    assert s["accuracy"] == s["war"] == 0.75
    assert abs(s["uar"] - 5 / 6) < TOL
    assert abs(s["macro_f1"] - 11 / 15) < TOL
    assert abs(s["weighted_f1"] - 23 / 30) < TOL
    assert s["confusion_matrix"] == {"labels": ["a", "b"], "columns": ["a", "b"], "matrix": [[2, 1], [0, 1]]}


def test_missing_predictions_are_wrong_and_get_their_own_column():
    # happy: TP 1, FN 1 (one None); the None makes no class and no false positive.
    s = categorical_scores(["happy", "happy", "sad"], ["happy", None, "sad"])
    assert s["accuracy"] == 2 / 3
    assert s["per_class"]["happy"] == {"f1": 2 / 3, "support": 2}
    assert s["confusion_matrix"]["columns"] == ["happy", "sad", "(none)"]
    assert s["confusion_matrix"]["matrix"] == [[1, 0, 1], [0, 1, 0]]


def test_predicted_only_class_enters_macro_f1_as_zero():
    # labels {happy, sad}: happy TP 1 FP 0 FN 1 -> 2/3; sad never gold, predicted once -> 0; macro 1/3.
    s = categorical_scores(["happy", "happy"], ["happy", "sad"])
    assert abs(s["macro_f1"] - 1 / 3) < TOL
    assert abs(s["weighted_f1"] - 2 / 3) < TOL


def test_empty_corpus_gives_nan():
    s = categorical_scores([], [])
    assert math.isnan(s["accuracy"]) and math.isnan(s["uar"]) and math.isnan(s["macro_f1"])


def test_categorical_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    gold = [str(x) for x in rng.integers(0, 5, 200)]
    pred = [str(x) for x in rng.integers(0, 6, 200)]
    s = categorical_scores(gold, pred)
    assert abs(s["macro_f1"] - metrics.f1_score(gold, pred, average="macro")) < TOL
    assert abs(s["weighted_f1"] - metrics.f1_score(gold, pred, average="weighted")) < TOL
    assert abs(s["uar"] - metrics.recall_score(gold, pred, average="macro", labels=sorted(set(gold)))) < TOL


def test_sentiment_hand_worked_as_mer_unibench():
    # gold 0 dropped; positive = > 0. gold T F T / pred (1, 0, -1) -> T F F: accuracy 2/3.
    # F1 positive: TP 1 FN 1 -> 2/3; other: TP 1 FP 1 -> 2/3; weighted 2/3.
    s = sentiment_scores([0.8, -0.4, 0.0, 2.0], [1, 0, 1, -1])
    assert s["n"] == 3 and s["n_dropped"] == 1
    assert abs(s["accuracy"] - 2 / 3) < TOL
    assert abs(s["weighted_f1"] - 2 / 3) < TOL


@pytest.mark.parametrize(("words", "expected"), [
    (["happy", "relieved"], 1), (["Furious", "sad"], -1), (["qwerty"], 0), ([], 0), (["happy", "sad"], 0),
])
def test_label_polarity_from_mean_lexicon_valence(words, expected):
    assert label_polarity(words) == expected


@pytest.mark.parametrize(("gold", "cited", "expected"), [
    ({6, 12}, {6, 12}, 1.0),
    ({6, 12}, {6, 12, 4}, 0.8),  # 2*2 / (2 + 3)
    ({6, 12}, set(), 0.0),
    (set(), {4}, 0.0),
    (set(), set(), 0.0),
    ({1, 2, 4}, {4, 9}, 0.4),  # 2*1 / (3 + 2)
])
def test_sample_au_f1_hand_worked(gold, cited, expected):
    assert abs(sample_au_f1(gold, cited) - expected) < TOL


def test_intensity_aware_sample_f1():
    # AU6 gold 3.0 (C) cited C -> 1; AU12 gold 4.0 (D) cited B -> 1 - 2/4 = 0.5; AU4 no letter -> 0.5 but not gold.
    # TP 1.5, |cited| 3, |gold| 2 -> 2*1.5/5 = 0.6.
    value = sample_au_f1({6, 12}, {6, 12, 4}, {6: 3.0, 12: 4.0}, {6: "C", 12: "B", 4: "A"})
    assert abs(value - 0.6) < TOL


def test_au_f1_per_au_hand_worked():
    # AU6: TP 1 -> 1; AU12: TP 1, FP 2 -> 2/4; AU4: TP 1 -> 1; AU9 only predicted: not scored.
    r = au_f1([{6, 12}, {4}, set()], [{6, 12}, {4, 12, 9}, {12}])
    assert r["per_au"] == {4: 1.0, 6: 1.0, 12: 0.5}
    assert abs(r["mean_f1"] - 2.5 / 3) < TOL
    assert math.isnan(au_f1([set()], [{1}])["mean_f1"])


def test_icc_and_mae_hand_worked():
    # ratings [[1,2],[3,4],[5,5]]: grand 10/3; SS_rows 37/3, SS_cols 2/3, SS_total 40/3, SS_error 1/3.
    # MS_rows 37/6, MS_error 1/6 -> ICC = (37/6 - 1/6) / (37/6 + 1/6) = 36/38 = 18/19.
    assert abs(icc_3_1(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 5.0]])) - 18 / 19) < TOL
    r = intensity_scores([{12: 1.0}, {12: 3.0}, {12: 5.0}], [{12: 2.0}, {12: 4.0}, {12: 5.0}])
    assert abs(r["mae"] - 2 / 3) < TOL and abs(r["icc"] - 18 / 19) < TOL
    assert math.isnan(icc_3_1(np.ones((3, 2))))  # no variance at all


def test_unlisted_aus_count_as_zero_intensity():
    # AU4 gold 2.0 in sample 1 only; prediction lists nothing -> MAE (2 + 0) / 2 = 1.
    r = intensity_scores([{4: 2.0}, {}], [{}, {}])
    assert r["per_au"][4]["mae"] == 1.0


def test_ccc_hand_worked():
    # gold 1 2 3, pred 2 3 4: var 2/3 each, cov 2/3, mean gap 1 -> 2*(2/3) / (2/3 + 2/3 + 1) = 4/7.
    assert abs(ccc([1, 2, 3], [2, 3, 4]) - 4 / 7) < TOL
    assert ccc([1, 2, 3], [1, 2, 3]) == 1.0
    assert abs(ccc([1, 2, 3], [3, 2, 1]) + 1.0) < TOL
    assert math.isnan(ccc([1.0], [1.0])) and math.isnan(ccc([2, 2], [2, 2]))


def test_grounding_hand_worked():
    # cited {6,12} all grounded, {4,9}: 4 grounded -> (2 + 1) / 4.
    assert grounding([{6, 12}, {4, 9}, set()], [{6, 12}, {4}, {1}]) == 0.75
    assert math.isnan(grounding([set()], [{1}]))


@pytest.mark.parametrize(("candidate", "reference", "expected"), [
    ("the cheeks are raised", "cheeks raised and lips up", 4 / 9),  # LCS 2: P 1/2, R 2/5
    ("Cheeks RAISED!", "cheeks raised", 1.0),  # case and punctuation ignored
    ("", "cheeks raised", 0.0),
    ("cheeks raised", None, 0.0),
    ("a a a", "a", 0.5),  # duplicates: LCS 1, P 1/3, R 1 -> 1/2
])
def test_rouge_l_hand_worked(candidate, reference, expected):
    assert abs(rouge_l(candidate, reference) - expected) < TOL


def _lcs_table(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


@given(st.lists(st.sampled_from("abcd"), max_size=30), st.lists(st.sampled_from("abcd"), max_size=30))
def test_bit_parallel_lcs_equals_dynamic_programming(a, b):
    assert lcs_length(a, b) == _lcs_table(a, b)


def test_rouge_tokens_follow_rouge_score_defaults():
    assert rouge_tokens("Brows (AU4) don't move") == ["brows", "au4", "don", "t", "move"]


def test_bootstrap_is_seeded_and_handles_degenerate_inputs():
    values = np.arange(10, dtype=float)

    def mean(idx):
        return float(values[idx].mean())

    assert bootstrap_ci(mean, 10, n_resamples=100, seed=4) == bootstrap_ci(mean, 10, n_resamples=100, seed=4)
    assert bootstrap_ci(mean, 10, n_resamples=100, seed=4) != bootstrap_ci(mean, 10, n_resamples=100, seed=5)
    assert bootstrap_ci(mean, 0) is None
    assert bootstrap_ci(lambda idx: float("nan"), 5, n_resamples=10) is None
    assert bootstrap_ci(lambda idx: 0.5, 5, n_resamples=10) == [0.5, 0.5]
    with pytest.raises(ValueError):
        bootstrap_ci(mean, 10, confidence=1.5)


corpus_strategy = st.lists(
    st.tuples(st.lists(st.sampled_from(PROJECT_WORDS + ["qwerty"]), max_size=3),
              st.lists(st.sampled_from(PROJECT_WORDS + ["qwerty"]), max_size=4)),
    min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(corpus_strategy, st.sampled_from(["level1", "level2"]))
def test_wheel_table_reproduces_wheel_scores(corpus, level):
    gold, pred = [g for g, _ in corpus], [p for _, p in corpus]
    expected = wheel_scores(gold, pred, project_wheels(), level)
    got = wheel_table(gold, pred, project_wheels(), level).scores(np.arange(len(corpus)))
    for key in ("f", "precision", "recall"):
        assert abs(got[key] - expected[key]) < TOL


def test_hit_table_reproduces_hit_rate():
    gold, pred = ["happy", "sad", "qwerty", "angry"], [["joyful"], ["happy"], ["sad"], ["furious", "sad"]]
    expected = hit_rate(gold, pred, project_wheels())["hit_rate"]
    assert abs(hit_table(gold, pred, project_wheels()).scores(np.arange(4))["precision"] - expected) < TOL


@settings(max_examples=30, deadline=None)
@given(corpus_strategy, st.randoms(use_true_random=False))
def test_metrics_are_invariant_to_sample_order(corpus, rng):
    order = list(range(len(corpus)))
    rng.shuffle(order)
    gold, pred = [g for g, _ in corpus], [p for _, p in corpus]
    shuffled_gold, shuffled_pred = [gold[i] for i in order], [pred[i] for i in order]
    assert abs(wheel_scores(gold, pred, project_wheels())["f"]
               - wheel_scores(shuffled_gold, shuffled_pred, project_wheels())["f"]) < TOL
    gold_labels = [category_of(g[0]) if g else "none" for g in gold]
    pred_labels = [first_category(p, set(gold_labels)) for p in pred]
    a = categorical_scores(gold_labels, pred_labels)
    b = categorical_scores([gold_labels[i] for i in order], [pred_labels[i] for i in order])
    assert all(abs(a[k] - b[k]) < TOL for k in ("accuracy", "uar", "macro_f1", "weighted_f1"))
    sets = [{len(g), len(p)} for g, p in corpus]
    assert au_f1(sets, sets[::-1])["per_au"] == au_f1([sets[i] for i in order], [sets[::-1][i] for i in order])[
        "per_au"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PROJECT_WORDS), min_size=1, max_size=3), min_size=1, max_size=6))
def test_perfect_prediction_scores_one(gold):
    for level in ("level1", "level2"):
        assert abs(wheel_scores(gold, gold, project_wheels(), level)["f"] - 1.0) < TOL
    labels = [first_category(g) for g in gold]
    s = categorical_scores(labels, labels)
    assert s["accuracy"] == s["uar"] == s["macro_f1"] == s["weighted_f1"] == 1.0
    sets = [{6, 12}, {1, 4, 15}][: len(gold)]
    assert au_f1(sets, sets)["mean_f1"] == 1.0


def _record(record_id, **fields):
    return LabelRecord(id=record_id, **fields)


def test_evaluate_corpus_hand_worked_sections():
    gold = [
        _record("a", emotion="happy", emotions=("happy",), aus={6: 3.0, 12: 4.0}, valence=0.8, rationale="smile wide"),
        _record("b", emotion="sad", emotions=("sad",), aus={1: 2.0, 4: 0.5}, valence=-0.5),
    ]
    pred = [_record("a", emotions=("joyful",), aus={6: None, 12: None}, valence=0.6, rationale="wide smile (AU6)"),
            None]
    result = evaluate_corpus(gold, pred, project=project_wheels(), bootstrap=NO_BOOTSTRAP)
    assert "ovmer_level1" not in result and "ovmer_hit_rate" not in result
    # wheel: a P = R = 1, b empty prediction P = R = 0 -> P = R = 1/2 on both wheels -> F 1/2.
    assert abs(result["wheel_level1"]["f"] - 0.5) < TOL
    assert result["categorical"]["accuracy"] == 0.5
    # AU4 at 0.5 is below the presence threshold: gold sets {6,12}, {1}; answer AUs {6,12}, {} -> AU1 0, AU6 1, AU12 1.
    assert result["au"]["source"] == "answer"
    assert result["au"]["per_au"] == {1: 0.0, 6: 1.0, 12: 1.0}
    assert result["rationale"]["grounding"] == 1.0  # AU6 cited, AU6 labelled
    # ROUGE-L on sample a only (b has no reference): [wide smile au6] vs [smile wide]: LCS 1, P 1/3, R 1/2 -> 2/5.
    assert abs(result["rationale"]["rouge_l"] - 0.4) < TOL
    assert "au_intensity" not in result  # no prediction states an intensity
    assert result["valence_arousal"]["valence_n"] == 1
    assert result["n_predicted"] == 1


def test_evaluate_corpus_without_labels_writes_no_sections():
    result = evaluate_corpus([_record("a")], [_record("a", emotions=("happy",))], project=project_wheels(),
                             bootstrap=NO_BOOTSTRAP)
    assert set(result) == {"n_samples", "n_predicted"}


def test_evaluate_corpus_marks_wheels_where_every_sample_is_skipped():
    # "qwerty" maps onto no wheel: every sample is skipped, each wheel scores 0 and is listed.
    result = evaluate_corpus([_record("a", emotions=("qwerty",))], [_record("a", emotions=("happy",))],
                             project=project_wheels(), bootstrap=BootstrapSettings(n_resamples=20))
    assert result["wheel_level1"]["f"] == 0.0
    assert result["wheel_level1"]["empty_wheels"] == ["wheel1", "wheel2"]


def test_readme_cases_through_the_corpus_evaluation(official):
    gold = [_record("1", emotions=("happy", "relieved")), _record("2", emotions=("angry", "frustrated")),
            _record("3", emotions=("fearless",))]
    pred = [_record("1", emotions=("joyful",)), _record("2", emotions=("anger", "sadness", "anxious")),
            _record("3", emotions=("fear",))]
    for g, p, precisions, recalls in [
        (gold[0], pred[0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]),
        (gold[1], pred[1], [2 / 3, 2 / 3, 1 / 3, 2 / 3, 1 / 3], [1, 1, 1, 1, 1]),
    ]:
        result = evaluate_corpus([g], [p], project=project_wheels(), official=official, bootstrap=NO_BOOTSTRAP)
        per_wheel = list(result["ovmer_level1"]["per_wheel"].values())
        assert all(abs(w["precision"] - x) < TOL for w, x in zip(per_wheel, precisions, strict=True))
        assert all(abs(w["recall"] - x) < TOL for w, x in zip(per_wheel, recalls, strict=True))
    result = evaluate_corpus([gold[2]], [pred[2]], project=project_wheels(), official=official,
                             bootstrap=NO_BOOTSTRAP)
    per_wheel = result["ovmer_level1"]["per_wheel"]
    assert [per_wheel[w]["n_skipped"] for w in per_wheel] == [1, 0, 0, 0, 0]
    assert [per_wheel[w]["f"] for w in per_wheel] == [0.0] * 5


def test_official_perfect_prediction_scores_one(official):
    gold = [_record("1", emotions=("happy", "relieved")), _record("2", emotions=("angry",))]
    result = evaluate_corpus(gold, gold, project=project_wheels(), official=official, bootstrap=NO_BOOTSTRAP)
    assert abs(result["ovmer_level1"]["f"] - 1.0) < TOL and abs(result["ovmer_level2"]["f"] - 1.0) < TOL
