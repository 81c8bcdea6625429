"""Prediction and gold files (affect_mllm/predictions.py): the three formats, round trips, joins, clear errors.

Run: .venv/bin/python -m pytest tests/test_predictions.py -q
"""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from affect_mllm import predictions as predictions_module
from affect_mllm.answer import parse_answer
from affect_mllm.predictions import (
    LabelRecord,
    PredictionFileError,
    join_records,
    read_records,
    record_from_answer,
    write_records,
)


def write_lines(path, records, newline_at_end: bool = True):
    lines = [r if isinstance(r, bytes) else (r if isinstance(r, str) else json.dumps(r)).encode() for r in records]
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline_at_end else b""))
    return path


def test_doctests_pass():
    assert doctest.testmod(predictions_module).failed == 0


def test_jsonl_fields_and_label_string_variants(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [
        {"id": "a", "emotions": "[Happy, 'relieved' ]", "aus": [6, "AU12C", {"au": 4, "intensity": 0.5}],
         "valence": 0.5, "arousal": -1},
        {"id": "b", "emotions": ["sad"], "emotion": "sad", "rationale": "Brows (AU4)."},
        {"id": 7},
    ])
    a, b, c = read_records(path)
    assert a.emotions == ("Happy", "relieved")  # split as the reference does; case is the metric's business
    assert a.aus == {6: None, 12: 3.0, 4: 0.5} and a.au_set() == {6, 12}  # AU4 at 0.5 is below the threshold
    assert (a.valence, a.arousal) == (0.5, -1.0)
    assert b.emotion_words == ("sad",) and b.rationale_aus == (4,)
    assert c == LabelRecord(id="7")


def test_raw_completion_fills_missing_fields_but_never_overrides(tmp_path):
    raw = "<think>Cheeks (AU6C).</think><answer>emotion: happy; aus: AU6, AU12; valence: 0.80</answer>"
    (record,) = read_records(write_lines(tmp_path / "p.jsonl", [{"id": "a", "raw": raw, "valence": 0.1}]))
    assert record.emotion == "happy" and record.aus == {6: None, 12: None}
    assert record.valence == 0.1  # given explicitly
    assert record.rationale == "Cheeks (AU6C)." and record.rationale_au_letters == {6: "C"}


def test_manifest_records_are_gold(tmp_path):
    sample = {"id": "c1", "video": "clips/c1.mp4", "emotion": "happy", "emotions": ["happy", "delighted"],
              "aus": [{"au": 6, "intensity": 3.2}], "source": {"dataset": "synthfacs"}}
    (record,) = read_records(write_lines(tmp_path / "train.jsonl", [sample]))
    assert record.emotion_words == ("happy", "delighted") and record.aus == {6: 3.2}


def test_official_csv(tmp_path):
    path = tmp_path / "track2.csv"
    path.write_text('name,openset\nsample_001,"[happy, relieved]"\n00002,\n003,"[\'sad\', \'angry\']"\n')
    records = read_records(path)
    assert [r.id for r in records] == ["sample_001", "00002", "003"]  # names stay text
    assert [r.emotions for r in records] == [("happy", "relieved"), (), ("sad", "angry")]


def test_reason_csv_gives_rationales(tmp_path):
    path = tmp_path / "track3.csv"
    path.write_text('name,reason\ns1,"He smiles, clearly happy."\n')
    (record,) = read_records(path)
    assert record.rationale == "He smiles, clearly happy." and record.emotions is None


def test_openset_npz_string_arrays_are_read_and_pickles_refused(tmp_path):
    """The official layout (string arrays) loads without unpickling; a pickle would run code, so it is refused
    unopened: the pickled object's __reduce__ here creates a file when it runs."""
    path = tmp_path / "epoch_60-openset.npz"
    np.savez(path, filenames=np.array(["s1", "s2"]), fileitems=np.array(["[happy]", "sad, angry"]))
    assert [r.emotions for r in read_records(path)] == [("happy",), ("sad", "angry")]
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.touch, ())

    layouts = {
        "objects.npz": {"filenames": np.array(["s1"]), "fileitems": np.array([Payload()], dtype=object)},
        "epoch_60.npz": {"name2reason": np.array({"s1": "She is delighted."}, dtype=object)},
    }
    for name, arrays in layouts.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(PredictionFileError, match="pickled Python objects, which evaluate does not load"):
            read_records(tmp_path / name)
    assert not marker.exists()
    with np.load(tmp_path / "objects.npz", allow_pickle=True) as archive:  # control: unpickling runs the payload
        archive["fileitems"]
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".npz"])
def test_write_read_round_trip(tmp_path, suffix):
    records = [LabelRecord("a", emotion="happy", emotions=("happy", "relieved"), aus={6: 3.0, 12: None},
                           valence=0.5, rationale="Smile (AU12)."),
               LabelRecord("b", emotions=())]
    back = read_records(write_records(tmp_path / f"out{suffix}", records))
    if suffix == ".jsonl":
        assert back == records
    else:  # the official formats keep the open set only (the categorical label joins it)
        assert [(r.id, r.emotions) for r in back] == [("a", ("happy", "relieved")), ("b", ())]


def test_record_from_answer():
    record = record_from_answer("x", parse_answer("<think>Brows (AU4).</think><answer>emotion: angry</answer>"))
    assert record.emotion == "angry" and record.rationale_aus == (4,) and record.aus is None


@pytest.mark.parametrize(("lines", "fault"), [
    (['{"emotions": ["happy"]}'], "no 'id'"),
    (['{"id": "a"}', '{"id": "a"}'], "duplicate id 'a'"),
    (['{"id": "a", "emotions": [1, 2]}'], "emotions must be"),
    (['{"id": "a", "aus": [{"au": 6, "intensity": 9}]}'], r"AU6 intensity 9 is outside \[0.0, 5.0\]"),
    (['{"id": "a", "valence": 7}'], r"valence 7 is outside \[-1.0, 1.0\]"),  # what a manifest refuses too
    (['{"id": "a", "arousal": -9}'], r"arousal -9 is outside"),
    (['{"id": "a"}', '{"id": "b"'], r":2: not valid JSON"),  # a cut last line of a user's file is an error
    (['{"id": "a"}', b'{"id": "\xff"}'], r":2: not valid UTF-8"),
    (['{"id": "a", "aus": ["cheek"]}'], "cannot read AU"),
    (['{"id": "a", "valence": "high"}'], "valence must be a finite number"),
    (['{"id": "a", "raw": 5}'], "raw must be a string"),
    (['{"id": "a"}', "not json"], ":2: not valid JSON"),
])
def test_jsonl_errors_name_the_file_and_fault(tmp_path, lines, fault):
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(PredictionFileError, match=fault) as info:
        read_records(path)
    assert "bad.jsonl" in str(info.value)


def test_other_errors_name_the_file(tmp_path):
    with pytest.raises(PredictionFileError, match="file not found"):
        read_records(tmp_path / "missing.jsonl")
    with pytest.raises(PredictionFileError, match="unknown format"):
        read_records(tmp_path / "preds.txt")
    (tmp_path / "x.csv").write_text("id,openset\na,[happy]\n")
    with pytest.raises(PredictionFileError, match="x.csv: has no 'name' column"):
        read_records(tmp_path / "x.csv")
    (tmp_path / "y.csv").write_text("name,label\na,happy\n")
    with pytest.raises(PredictionFileError, match="neither an 'openset' nor a 'reason'"):
        read_records(tmp_path / "y.csv")
    (tmp_path / "z.npz").write_bytes(b"not a zip")
    with pytest.raises(PredictionFileError, match="z.npz: cannot be read"):
        read_records(tmp_path / "z.npz")
    np.savez(tmp_path / "w.npz", names=np.array(["a"]))
    with pytest.raises(PredictionFileError, match="no 'filenames'"):
        read_records(tmp_path / "w.npz")


def test_join_keeps_gold_order_and_reports_missing_and_extra():
    gold = [LabelRecord("a"), LabelRecord("b"), LabelRecord("c")]
    pred = [LabelRecord("c", emotion="sad"), LabelRecord("z"), LabelRecord("a")]
    joined = join_records(gold, pred)
    assert [p.id if p else None for p in joined.pred] == ["a", None, "c"]
    assert joined.missing_ids == ["b"] and joined.extra_ids == ["z"]
