"""The one evaluation path (affect_mllm/evaluation.py) on a hand-worked corpus: every benchmark figure, the
`unmapped` column, the format rule, groups, the in-memory form and paired differences.

Run: pytest tests/test_evaluation.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affect_mllm.answer import parse_answer
from affect_mllm.evaluation import (
    benchmark_figures,
    evaluate_files,
    evaluate_records,
    paired_differences,
)
from affect_mllm.predictions import read_records, record_from_answer

TOL = 1e-12


def _gold(record_id, emotion, aus, difficulty):
    return {"id": record_id, "video": f"{record_id}.mp4", "emotion": emotion, "emotions": [emotion],
            "aus": [{"au": au, "intensity": x} for au, x in aus.items()], "source": {"difficulty": difficulty}}


GOLD = [_gold("g1", "happy", {6: 3.0, 12: 4.0}, 0), _gold("g2", "sad", {1: 2.0, 15: 3.0}, 1),
        _gold("g3", "angry", {4: 3.0}, 1), _gold("g4", "happy", {6: 2.0, 12: 3.0}, 0)]
PRED = [
    # right, well formed, answer AUs {6, 12}, cites {6, 12}
    {"id": "g1", "raw": "<think>Cheeks raised (AU6), lip corners up (AU12).</think>"
                        "<answer>emotion: happy; aus: AU6, AU12</answer>"},
    # rationale text in the emotion field: malformed, and its words name no class; cites {1}
    {"id": "g2", "raw": "<think>Inner brows raised (AU1).</think><answer>emotion: inner brows raised (AU1)</answer>"},
    # well formed but names no emotion (AUs only): not read from the rationale; answer {4}, cites {4, 12}
    {"id": "g3", "raw": "<think>Brows lowered (AU4), lip corners up (AU12).</think><answer>aus: AU4</answer>"},
    # g4: no prediction
]


def _write(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture()
def files(tmp_path):
    return _write(tmp_path / "pred.jsonl", PRED), _write(tmp_path / "gold.jsonl", GOLD)


def test_every_benchmark_figure_by_hand(files):
    metrics = evaluate_files(*files, n_resamples=0)
    figures = benchmark_figures(metrics)
    # emotion: g1 right; g2 unmapped; g3 and g4 name none -> 1/4.
    # wheel F (project wheels): per-sample P = R = 1, 0, 0, 0 on each wheel -> P_w = R_w = 1/4 -> F 1/4.
    # answer AUs {6,12}, {}, {4}, {} vs gold {6,12}, {1,15}, {4}, {6,12}: AU1 0, AU4 1, AU6 2/3, AU12 2/3, AU15 0.
    # cited AUs {6,12}, {1}, {4,12}, {}: AU1 1, AU4 1, AU6 2/3, AU12 2TP/(2TP+FP+FN) = 2/4, AU15 0.
    # grounding: cited 2 + 1 + 2 = 5, of which in the labels 2 + 1 + 1 = 4.
    # format (names an emotion): g1 only -> 1/4.
    expected = {"emotion_acc": 0.25, "wheel_f": 0.25, "answer_au_f1": 7 / 15, "rationale_au_f1": 19 / 30,
                "grounding": 0.8, "format_rate": 0.25}
    for name, value in expected.items():
        assert abs(figures[name] - value) < TOL, name
    assert figures["n"] == 4 and set(figures["ci95"]) == set(expected)
    assert metrics["format"]["faults"] == {"no_completion": 1, "think": 0, "answer": 0, "order": 0, "fields": 1,
                                           "fields_asked": 1}


def test_words_that_name_no_class_are_one_unmapped_column(files):
    confusion = evaluate_files(*files, n_resamples=0)["categorical"]["confusion_matrix"]
    assert confusion["labels"] == ["angry", "happy", "sad"]
    assert confusion["columns"] == ["angry", "happy", "sad", "unmapped", "(none)"]
    assert confusion["matrix"] == [[0, 0, 0, 0, 1], [0, 1, 0, 0, 1], [0, 0, 0, 1, 0]]


@pytest.mark.parametrize(("task", "rate", "fields_asked"), [
    ("au_reasoning", 0.25, 2),  # g2 gives no aus, g3 no emotion
    ("au", 0.5, 1),  # g1 and g3 follow; g2 gives no aus (and is malformed whatever was asked)
    ("ov_emotion", 0.0, 3),  # nobody gives the open-vocabulary field
])
def test_the_task_decides_which_fields_the_format_asks_for(files, task, rate, fields_asked):
    fmt = evaluate_files(*files, n_resamples=0, task=task)["format"]
    assert fmt["rate"] == rate and fmt["faults"]["fields_asked"] == fields_asked


def test_unknown_task_is_refused(files):
    with pytest.raises(ValueError, match="unknown task"):
        evaluate_files(*files, n_resamples=0, task="mind_reading")


def test_groups_from_a_gold_key(files):
    metrics = evaluate_files(*files, n_resamples=0, group_by="source.difficulty")
    groups = metrics["by_group"]
    assert set(groups) == {"0", "1"} and groups["0"]["n_samples"] == groups["1"]["n_samples"] == 2
    assert groups["0"]["categorical"]["accuracy"] == 0.5 and groups["1"]["categorical"]["accuracy"] == 0.0
    # Within happy (g1, g4): AU6 and AU12 each TP 1, FN 1 in the answer -> F1 2/3.
    by_class = evaluate_files(*files, n_resamples=0, group_by="emotion")["by_group"]
    assert by_class["happy"]["au"]["per_au"] == {6: 2 / 3, 12: 2 / 3}
    assert metrics["provenance"]["group_by"] == "source.difficulty"


def test_in_memory_records_score_like_the_files(files):
    pred, gold = files
    from_files = evaluate_files(pred, gold, n_resamples=50, seed=1)
    in_memory = evaluate_records(read_records(gold), read_records(pred), n_resamples=50, seed=1)
    assert benchmark_figures(in_memory) == benchmark_figures(from_files)
    assert "pred" not in in_memory["provenance"] and from_files["provenance"]["pred"]["format"] == "jsonl"


def test_intervals_bracket_each_figure(files):
    figures = benchmark_figures(evaluate_files(*files, n_resamples=200))
    for name, (low, high) in figures["ci95"].items():
        assert low <= figures[name] <= high, name


def _perfect_answer(gold: dict) -> str:
    aus = ", ".join(f"AU{item['au']}" for item in gold["aus"])
    return f"<think>Seen: {aus}.</think><answer>emotion: {gold['emotion']}; aus: {aus}</answer>"


def test_paired_differences(files):
    pred, gold = files
    gold_records = read_records(gold)
    right = [record_from_answer(g["id"], parse_answer(_perfect_answer(g))) for g in GOLD]
    worse = read_records(pred)
    diff = paired_differences(gold_records, worse, right, n_resamples=200)
    expected = {"emotion_acc": 0.75, "wheel_f": 0.75, "answer_au_f1": 8 / 15, "rationale_au_f1": 11 / 30,
                "grounding": 0.2, "format_rate": 0.75}
    for name, value in expected.items():
        assert abs(diff[name]["difference"] - value) < TOL and diff[name]["b"] == 1.0, name
        low, high = diff[name]["ci95"]
        assert low <= value <= high
    same = paired_differences(gold_records, worse, worse, n_resamples=50)
    assert all(v["difference"] == 0.0 and v["ci95"] == [0.0, 0.0] for v in same.values())
