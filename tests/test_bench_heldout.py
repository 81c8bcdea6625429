"""Benchmark held-out scoring (benchmarks/heldout.py): figures from the one evaluation path, hand-checked.

Run: pytest tests/test_bench_heldout.py -q
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from affect_mllm.jsonl import write_jsonl

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
GOLD = [  # id, emotion, AUs (intensity 3: present)
    ("c1", "happy", (6, 12, 25)),
    ("c2", "happy", (6, 12)),
    ("c3", "sad", (1, 4, 15)),
    ("c4", "sad", (1, 4, 15, 17)),
]


@pytest.fixture(scope="module")
def heldout():
    spec = importlib.util.spec_from_file_location("heldout", BENCHMARKS / "heldout.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["heldout"] = module
    spec.loader.exec_module(module)
    return module


def _answer(emotion: str, cited: tuple[int, ...], aus: tuple[int, ...] | None) -> str:
    think = "Seen: " + ", ".join(f"AU{a}" for a in cited) + "."
    body = f"emotion: {emotion}" + ("" if aus is None else "; aus: " + ", ".join(f"AU{a}" for a in aus))
    return f"<think>{think}</think><answer>{body}</answer>"


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    gold = tmp_path / "gold.jsonl"
    write_jsonl(gold, [{"id": i, "emotion": e, "emotions": [e], "aus": [{"au": a, "intensity": 3.0} for a in aus]}
                       for i, e, aus in GOLD])
    # arm a: right emotions, answers without an aus field, rationales citing AU6 / AU1 only
    arm_a = [{"id": i, "raw": _answer(e, (6,) if e == "happy" else (1,), None)} for i, e, _ in GOLD]
    # arm b: c4 wrong (happy), every answer lists the gold AUs; rationale cites the gold AUs plus AU9 (not gold)
    arm_b = [{"id": i, "raw": _answer("happy" if i == "c4" else e, (*aus, 9), aus)} for i, e, aus in GOLD]
    out = {"gold": gold}
    for name, rows in (("a", arm_a), ("b", arm_b)):
        out[name] = tmp_path / f"{name}.jsonl"
        write_jsonl(out[name], rows)
    return out


def test_figures_come_from_the_evaluation(heldout, files) -> None:
    a = heldout.figures(files["a"], files["gold"], task="au_reasoning", n_resamples=50)
    assert a["emotion_acc"] == 1.0 and a["answer_au_f1"] == 0.0  # no answer gives an aus field
    assert a["format_rate"] == 0.0  # au_reasoning asks for aus
    assert a["grounding"] == 1.0  # AU6 and AU1 are gold wherever cited
    b = heldout.figures(files["b"], files["gold"], task="au_reasoning", n_resamples=50)
    assert b["emotion_acc"] == 0.75 and b["answer_au_f1"] == 1.0 and b["format_rate"] == 1.0
    # each rationale cites its gold AUs plus AU9: 12 of the 16 cited AUs are gold (3/4, 2/3, 3/4, 4/5)
    assert b["grounding"] == pytest.approx(12 / 16)
    assert b["rationale_au_f1"] == 1.0  # AU9 is in no gold sample, so it is not an AU the mean runs over
    assert b["ci95"]["emotion_acc"][0] <= 0.75 <= b["ci95"]["emotion_acc"][1]


def test_paired_differences_and_within_class(heldout, files) -> None:
    diff = heldout.differences(files["gold"], files["a"], files["b"], task="au_reasoning", n_resamples=40)
    assert diff["emotion_acc"]["difference"] == pytest.approx(-0.25) and diff["answer_au_f1"]["difference"] == 1.0
    assert diff["emotion_acc"]["ci95"][0] <= -0.25 <= diff["emotion_acc"]["ci95"][1] <= 0.0
    within = heldout.optional_au_f1(files["b"], files["gold"], n_resamples=20)
    assert set(within) == {"AU25 in happy", "AU17 in sad"}  # the optional AUs these clips show
    assert within["AU25 in happy"]["answer"] == 1.0 and within["AU25 in happy"]["always_present"] == pytest.approx(
        2 * 0.5 / 1.5)
    assert heldout.optional_au_f1(files["a"], files["gold"], n_resamples=20)["AU17 in sad"]["rationale"] == 0.0
