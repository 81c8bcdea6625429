"""Sample schema and manifests: validation, AU sets, path confinement, media roots, datasets round-trip.

Run: .venv/bin/python -m pytest tests/test_schema.py -q
"""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from affect_mllm.schema import (
    AU_PRESENCE_THRESHOLD,
    ManifestError,
    Sample,
    check_label_value,
    meta_path,
    present_aus,
    read_manifest,
    write_manifest,
)

RICH = {
    "id": "c1", "video": "clips/c1.mp4", "subtitle": "I can't believe it",
    "emotion": "happy", "emotions": ["happy", "delighted"],
    "aus": [{"au": 6, "intensity": 3.2}, {"au": 12, "intensity": 4.1}, {"au": 25, "intensity": 0.4}],
    "valence": 0.8, "arousal": 0.5, "rationale": "Cheeks raised (AU6).",
    "source": {"dataset": "synthfacs", "seed": 3, "difficulty": 1},
}


def test_au_set_uses_the_one_threshold():
    sample = Sample.model_validate(RICH)
    assert AU_PRESENCE_THRESHOLD == 1.0
    assert sample.au_set() == {6, 12}  # AU25 at 0.4 is below level A
    assert present_aus([{"au": 25, "intensity": 1.0}]) == {25}  # the threshold itself counts
    assert Sample(id="x", audio="a.wav").au_set() is None  # no AU labels, not an empty set


@pytest.mark.parametrize(
    ("record", "fault"),
    [
        ({"id": "x"}, "none of the inputs"),
        ({"id": "x", "video": "a.mp4", "valence": 1.5}, "valence"),
        ({"id": "x", "video": "a.mp4", "aus": {"6": 2.0}}, "list"),
        ({"id": "x", "video": "a.mp4", "aus": [{"au": 6, "intensity": 7}]}, "intensity"),
        ({"id": "", "video": "a.mp4"}, "id"),
        ({"id": "x", "video": "a.mp4", "mood": "sad"}, "mood"),
    ],
)
def test_invalid_records_are_rejected(tmp_path, record, fault):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"id": "ok", "audio": "a.wav"}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    assert f"{path}:2" in str(info.value) and fault in str(info.value)


def test_bad_json_and_duplicates_name_the_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a", "audio": "a.wav"}\n{not json}\n')
    with pytest.raises(ManifestError, match=r"m.jsonl:2"):
        read_manifest(path)
    path.write_text('{"id": "a", "audio": "a.wav"}\n{"id": "a", "audio": "b.wav"}\n')
    with pytest.raises(ManifestError, match="duplicate id 'a'"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.jsonl")
    path.write_bytes(b'{"id": "a", "audio": "a.wav"}\n{"id": "\xe9", "audio": "b.wav"}\n')  # Latin-1, not UTF-8
    with pytest.raises(ManifestError, match=r"m.jsonl:2: not valid UTF-8"):
        read_manifest(path)


def test_a_last_line_without_newline_is_a_sample(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"id": "a", "audio": "a.wav"}\n{"id": "b", "audio": "b.wav"}')
    assert [s.id for s in read_manifest(path)] == ["a", "b"]


def test_one_range_check_for_manifests_and_evaluate():
    """The ranges a manifest enforces are the ones evaluate's reader enforces (tests/test_predictions.py)."""
    assert check_label_value("valence", -1) == -1.0 and check_label_value("intensity", 5) == 5.0
    for name, value in (("valence", 7), ("arousal", -9), ("intensity", 5.5), ("valence", float("nan"))):
        with pytest.raises(ValueError, match=name):
            check_label_value(name, value)
        with pytest.raises(ValidationError):
            Sample.model_validate({"id": "x", "audio": "a.wav", **(
                {"aus": [{"au": 6, "intensity": value}]} if name == "intensity" else {name: value})})


def test_single_modality_samples_are_first_class():
    for field in ("video", "audio", "image", "frames"):
        assert getattr(Sample(id="x", **{field: "p"}), field) == "p"


def test_paths_resolve_against_the_manifest_root_and_are_confined(tmp_path):
    root = tmp_path / "data"
    manifest = write_manifest(root / "train.jsonl", [
        Sample(id="in", video="clips/a.mp4"),
        Sample(id="out", video="../elsewhere/b.mp4"),
        Sample(id="abs", video="/etc/passwd"),
    ])
    loaded = read_manifest(manifest)
    assert loaded.media_path(loaded.samples[0], "video") == (root / "clips" / "a.mp4").resolve()
    for sample in loaded.samples[1:]:
        with pytest.raises(ManifestError, match="escapes the manifest root"):
            loaded.media_path(sample, "video")


def test_declared_media_roots_allow_other_datasets(tmp_path):
    shard = write_manifest(tmp_path / "synth" / "round1.jsonl", [Sample(id="a", video="../pool/a.mp4")],
                           media_roots=["../pool"])
    assert json.loads(meta_path(shard).read_text())["media_roots"] == ["../pool"]
    loaded = read_manifest(shard)
    assert loaded.media_path(loaded.samples[0], "video") == (tmp_path / "pool" / "a.mp4").resolve()
    (meta_path(shard)).write_text('{"media_roots": "../pool"}')
    with pytest.raises(ManifestError, match="media_roots"):
        read_manifest(shard)


def test_manifest_loads_in_datasets_without_loss(tmp_path):
    datasets = pytest.importorskip("datasets")
    samples = [
        Sample.model_validate(RICH),
        Sample(id="c2", audio="a.wav", emotion="sad", aus=[{"au": 1, "intensity": 2.0}]),
        Sample(id="c3", image="i.png", emotions=["calm"], source={"dataset": "fea20k"}),
    ]
    path = write_manifest(tmp_path / "m.jsonl", samples)
    table = datasets.load_dataset("json", data_files=str(path), split="train")
    assert table.num_rows == 3
    # Arrow fills absent keys (and absent struct fields) with None; from_record treats None as absent
    assert [Sample.from_record(row) for row in table] == samples
    assert table[0]["aus"] == [{"au": 6, "intensity": 3.2}, {"au": 12, "intensity": 4.1}, {"au": 25, "intensity": 0.4}]
