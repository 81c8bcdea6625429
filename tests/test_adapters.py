"""Benchmark adapters on fixtures written in each dataset's published layout (see each fixture's SOURCE.md).

Run: .venv/bin/python -m pytest tests/test_adapters.py -q
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from affect_mllm.adapters import ADAPTERS, AdapterError, convert, summarize
from affect_mllm.adapters.cli import DATASETS, register
from affect_mllm.adapters.dfew import DFEW_LABELS
from affect_mllm.adapters.fea20k import FEA20K_LABELS
from affect_mllm.adapters.ferv39k import FERV39K_LABELS
from affect_mllm.adapters.mafw import MAFW_LABELS
from affect_mllm.adapters.meld import MELD_LABELS
from affect_mllm.adapters.mer import MER_LABELS
from affect_mllm.knowledge import CATEGORIES
from affect_mllm.lexicon import to_category
from affect_mllm.schema import MEDIA_FIELDS, meta_path, read_manifest

FIXTURES = Path(__file__).parent / "fixtures" / "adapters"

# dataset -> (split, {id: fields expected on that sample}); fields absent from a dict are not checked.
EXPECTED = {
    "mer2023": (None, {
        "sample_00000101": {"emotion": "happy", "emotions": ["happy"], "valence": 0.5,
                            "video": "train/sample_00000101.mp4"},
        "sample_00000102": {"emotion": None, "emotions": ["worried"], "valence": -0.36,
                            "video": "train/sample_00000102.avi"},
        "sample_00000103": {"emotion": "surprised"},
        "sample_00003001": {"emotion": "angry", "valence": -0.64},
        "sample_00003002": {"emotion": "neutral", "valence": 0.0},
        "sample_00004001": {"emotion": "sad", "video": "test2/sample_00004001.avi"},
        "sample_00005001": {"emotion": "happy", "valence": None},
    }),
    "mer2024": (None, {
        "sample_00010001": {"emotion": "sad", "video": "video-labeled/sample_00010001.mp4"},
        "sample_00010002": {"emotion": "happy"},
        "sample_00010003": {"emotion": None, "emotions": ["worried"], "video": "video-labeled/sample_00010003.avi"},
    }),
    "mer2025": (None, {
        "sample_00020001": {"emotion": None, "emotions": ["sad", "tired", "resigned"], "subtitle": "I'm fine.",
                            "audio": "audio/sample_00020001.wav", "video": "video/sample_00020001.mp4"},
        "sample_00020002": {"emotions": ["surprised", "doubtful"], "subtitle": "Really? You did that?"},
    }),
    "ovmerdplus": (None, {
        "sample_00030001": {"emotions": ["angry", "frustrated"], "subtitle": "Why would you do that again?"},
        "sample_00030002": {"emotions": ["happy", "relieved"], "subtitle": "Oh, thank goodness, it worked."},
        "sample_00030003": {"emotions": [], "subtitle": None},
    }),
    "dfew": (None, {
        "dfew_00001": {"emotion": "happy", "emotions": ["happy"], "video": "Clip/original/00001.mp4"},
        "dfew_00002": {"emotion": "angry"},
        "dfew_00003": {"emotion": "neutral"},
        "dfew_00004": {"emotion": "disgusted", "emotions": ["disgust"]},
        "dfew_00005": {"emotion": "surprised", "video": None, "frames": "Clip/clip_224x224/00005"},
        "dfew_00006": {"emotion": "fearful", "emotions": ["fear"]},
    }),
    "mafw": (None, {
        "mafw_00011": {"emotion": None, "emotions": ["anxiety"], "video": "data/clips/00011.mp4"},
        "mafw_00012": {"emotion": "happy", "emotions": ["happiness"]},
        "mafw_00021": {"emotion": "angry", "emotions": ["anger"]},
        "mafw_00022": {"emotion": None, "emotions": ["helplessness"]},
        "mafw_00023": {"emotion": "contemptuous"},
        "mafw_00024": {"emotion": None, "emotions": ["disappointment"]},
    }),
    "ferv39k": (None, {
        "ferv39k_Speech_Neutral_0003": {"emotion": "neutral", "frames": "2_ClipsforFaceCrop/Speech/Neutral/0003"},
        "ferv39k_Terror_Fear_0021": {"emotion": "fearful", "emotions": ["fear"]},
        "ferv39k_Crime_Disgust_0005": {"emotion": "disgusted"},
    }),
    "meld": (None, {
        "meld_test_dia3_utt0": {"emotion": "sad", "emotions": ["sadness"], "subtitle": "I miss her so much.",
                                "video": "output_repeated_splits_test/dia3_utt0.mp4"},
        "meld_test_dia3_utt1": {"emotion": "disgusted"},
        "meld_test_dia3_utt2": {"emotion": "fearful"},
    }),
    "fea20k": (None, {
        "fea20k_DISFA-Test_0": {"emotion": None, "emotions": None, "image": "DISFA-Test/SN030/1200.png",
                                "au_set": {6, 12, 25}},
        "fea20k_DISFA-Test_1": {"au_set": {1, 4, 15}},
        "fea20k_RAF-DB-Test_test_0001": {"emotion": "happy", "emotions": ["happiness"], "au_set": {6, 12},
                                         "rationale": "A Duchenne smile: AU6 with AU12."},
        "fea20k_RAF-DB-Test_test_0002": {"emotion": None, "emotions": ["confusion", "surprise"], "au_set": set()},
    }),
    "disfa": (None, {
        "disfa_SN001_00001": {"image": "img/SN001/0.png", "au_set": set()},
        "disfa_SN001_00003": {"image": "img/SN001/2.png", "au_set": {6, 12, 25}},
        "disfa_SN001_00004": {"au_set": {6, 12}},
        "disfa_SN002_00001": {"au_set": {1, 4, 15}},
        "disfa_SN002_00002": {"au_set": {4}},
        "disfa_SN001_00002": {}, "disfa_SN002_00003": {},
    }),
    "bp4d": (None, {
        "bp4d_F001_T1_2440": {"image": "img/F001/T1/2440.jpg", "au_set": {6, 7, 10, 12}},
        "bp4d_F001_T1_2441": {"au_set": {6, 7, 10, 12, 14}},
        "bp4d_F001_T1_2442": {"au_set": {1, 2}},
        "bp4d_M007_T2_1010": {"au_set": {4, 7, 15, 17, 23, 24}},
    }),
    "cmumosi": (None, {
        "cmumosi_aB3dE5fG7hI_1": {"emotions": ["positive"], "valence": 2.6 / 3, "video": "Raw/aB3dE5fG7hI/1.mp4",
                                  "subtitle": "i really loved this movie"},
        "cmumosi_aB3dE5fG7hI_2": {"emotions": ["negative"], "valence": -1.2 / 3},
        "cmumosi_Zy9xW8vU7tS_1": {"emotions": ["neutral"], "valence": 0.0, "emotion": None},
    }),
    "cmumosei": (None, {"cmumosei_Qq1Ww2Ee3Rr_0": {"emotions": ["positive"], "valence": 1.6667 / 3}}),
    "sims": (None, {
        "sims_video_0001_0001": {"emotions": ["positive"], "valence": 0.8, "video": "Raw/video_0001/0001.mp4"},
        "sims_video_0001_0002": {"emotions": ["negative"], "valence": -0.6},
    }),
    "simsv2": (None, {
        "simsv2_aqz7_0101_00012": {"emotions": ["positive"], "valence": 1.0, "video": "Raw/aqz7_0101/00012.mp4"},
        "simsv2_aqz7_0101_00013": {"emotions": ["negative"], "valence": -0.4},
    }),
}


def check_fields(sample, expected: dict) -> None:
    """Compare a sample with the expected fields ('au_set' compares the present AUs)."""
    for field, want in expected.items():
        got = sample.au_set() if field == "au_set" else getattr(sample, field)
        if isinstance(want, float):
            assert got == pytest.approx(want), (sample.id, field)
        else:
            assert got == want, (sample.id, field)


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def test_every_adapter_has_a_fixture_expectation_and_a_cli_name():
    assert set(EXPECTED) == set(ADAPTERS) == set(DATASETS)
    assert all((FIXTURES / name / "SOURCE.md").is_file() for name in ADAPTERS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_adapter_reads_its_fixture(name):
    split, expected = EXPECTED[name]
    samples = {s.id: s for s in ADAPTERS[name](FIXTURES / name, split)}
    assert set(samples) == set(expected)
    for sample_id, fields in expected.items():
        check_fields(samples[sample_id], fields)
        assert samples[sample_id].source["dataset"] == name
        assert samples[sample_id].emotion in (None, *CATEGORIES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_conversion_round_trips_and_paths_resolve(name, tmp_path):
    out = tmp_path / "manifests" / f"{name}.jsonl"  # outside the dataset folder: a media root is declared
    samples = ADAPTERS[name](FIXTURES / name, None)
    assert convert(name, FIXTURES / name, out) == out
    manifest = read_manifest(out)
    assert [s.id for s in manifest] == [s.id for s in samples]
    assert manifest.media_roots == [(FIXTURES / name).resolve()]
    for original, written in zip(samples, manifest, strict=True):
        assert written.model_dump(exclude=set(MEDIA_FIELDS)) == original.model_dump(exclude=set(MEDIA_FIELDS))
        for field in MEDIA_FIELDS:
            if getattr(original, field) is not None:
                assert manifest.media_path(written, field) == (FIXTURES / name / getattr(original, field)).resolve()
                assert manifest.media_path(written, field).exists()
    meta = json.loads(meta_path(out).read_text())
    assert (meta["adapter"], meta["samples"], meta["missing_media"]) == (name, len(samples), 0)
    assert summarize(out).missing_media == 0


def test_manifest_inside_the_dataset_folder_needs_no_media_root(tmp_path):
    root = copy_fixture("meld", tmp_path)
    manifest = read_manifest(convert("meld", root, root / "meld.jsonl"))
    assert manifest.media_roots == []
    assert manifest.samples[0].video == "output_repeated_splits_test/dia3_utt0.mp4"


@pytest.mark.parametrize(("table", "name"), [
    (MER_LABELS, "mer"), (DFEW_LABELS, "dfew"), (MAFW_LABELS, "mafw"), (FERV39K_LABELS, "ferv39k"),
    (MELD_LABELS, "meld"), (FEA20K_LABELS, "fea20k"),
])
def test_label_tables_agree_with_the_lexicon(table, name):
    # Every mapped label is a category the lexicon itself gives that word; unmapped ones are documented choices.
    for label, category in table.items():
        if category is not None:
            assert category in CATEGORIES and to_category(label) == category, (name, label)


@pytest.mark.parametrize(("name", "split", "ids"), [
    ("dfew", "train_1", {"dfew_00001", "dfew_00002", "dfew_00006"}),
    ("mafw", "single_train_1", {"mafw_00011", "mafw_00012"}),
    ("ferv39k", "train", {"ferv39k_Interview_Happy_0007", "ferv39k_Conflict_Angry_0012"}),
    ("meld", "dev", {"meld_dev_dia0_utt0"}),
    ("mer2023", "test1", {"sample_00003001", "sample_00003002"}),
    ("mer2025", "mercaptionplus", {"sample_00020003"}),
    ("disfa", "SN002", {"disfa_SN002_00001", "disfa_SN002_00002", "disfa_SN002_00003"}),
    ("bp4d", "M007", {"bp4d_M007_T2_1010"}),
    ("cmumosi", "train", {"cmumosi_Zy9xW8vU7tS_2"}),
    ("cmumosei", "valid", {"cmumosei_Qq1Ww2Ee3Rr_1"}),
    ("sims", "train", {"sims_video_0002_0001"}),
    ("simsv2", "valid", {"simsv2_btw3_0202_00001"}),
    ("fea20k", "RAF-DB-Test", {"fea20k_RAF-DB-Test_test_0001", "fea20k_RAF-DB-Test_test_0002"}),
])
def test_splits_select_their_rows(name, split, ids):
    assert {s.id for s in ADAPTERS[name](FIXTURES / name, split)} == ids


def test_compound_mafw_labels_keep_every_part():
    samples = {s.id: s for s in ADAPTERS["mafw"](FIXTURES / "mafw", "compound_test_1")}
    check_fields(samples["mafw_00031"], {"emotion": None, "emotions": ["anger", "disgust"]})
    check_fields(samples["mafw_00032"], {"emotion": None, "emotions": ["sadness", "helplessness"]})
    check_fields(samples["mafw_00021"], {"emotion": "angry", "emotions": ["anger"]})


def test_mer2025_track1_and_descriptions():
    samples = {s.id: s for s in ADAPTERS["mer2025"](FIXTURES / "mer2025", "track1")}
    check_fields(samples["sample_00020003"], {"emotion": "happy", "audio": "audio/sample_00020003.wav",
                                              "subtitle": "That's wonderful!"})
    check_fields(samples["sample_00020004"], {"emotion": "angry", "audio": None, "subtitle": None})
    ovmerd = {s.id: s for s in ADAPTERS["mer2025"](FIXTURES / "mer2025", None)}
    assert ovmerd["sample_00020002"].rationale.startswith("Raised brows and a rising pitch")


def test_provenance_keeps_sentiment_and_occurrence_scale():
    (meld,) = [s for s in ADAPTERS["meld"](FIXTURES / "meld", "train") if s.id == "meld_train_dia0_utt1"]
    assert meld.source == {"dataset": "meld", "split": "train", "label": "surprise", "sentiment": "negative",
                           "speaker": "Ben"}
    assert meld.subtitle == "Are you kidding me?!"
    (mosi,) = [s for s in ADAPTERS["cmumosi"](FIXTURES / "cmumosi", None) if s.id == "cmumosi_aB3dE5fG7hI_1"]
    assert mosi.source["score"] == 2.6 and mosi.source["polarity"] == "positive"
    bp4d = ADAPTERS["bp4d"](FIXTURES / "bp4d", None)
    assert all(s.source["au_scale"] == "occurrence" for s in bp4d)
    assert 24 not in {a.au for a in bp4d[2].aus} and 3 not in {a.au for a in bp4d[0].aus}  # 9 = not coded


def rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


@pytest.mark.parametrize(("name", "edit", "fault"), [
    ("mer2024", lambda r: (r / "label-disdim.csv").unlink(), "label-disdim.csv: label file not found"),
    ("mer2024", lambda r: rewrite(r / "label-disdim.csv", "discrete", "emotion"), "missing column(s) ['discrete']"),
    ("mer2023", lambda r: rewrite(r / "train-label.csv", "worried", "bored"),
     "train-label.csv: row 3: unknown label 'bored'"),
    ("mer2023", lambda r: rewrite(r / "train-label.csv", "2.5", "7.5"), "valence 7.5 is outside [-5, 5]"),
    ("dfew", lambda r: rewrite(r / "EmoLabel_DataSplit/test(single-labeled)/set_1.csv", "4,6", "4,8"),
     "unknown label code '8'"),
    ("mafw", lambda r: rewrite(r / "Train & Test Set/single/no_caption/set_1/test.txt", "helplessness", "joy"),
     "test.txt: row 2: unknown label 'joy'"),
    ("mafw", lambda r: rewrite(r / "Train & Test Set/single/no_caption/set_2/test.txt", "anxiety", "anxiety x"),
     "a row has more fields than the header"),
    ("meld", lambda r: rewrite(r / "test_sent_emo.csv", "fear,negative", "fear,bleak"), "unknown sentiment 'bleak'"),
    ("meld", lambda r: rewrite(r / "test_sent_emo.csv", "disgust,negative,3,1", "disgust,negative,,1"),
     "test_sent_emo.csv: row 3: empty 'Dialogue_ID'"),
    ("fea20k", lambda r: rewrite(r / "DISFA-Test.jsonl", '"AU25"', '"cheek"'), "'cheek' is not an AU name"),
    ("fea20k", lambda r: (r / "RAF-DB-Test.jsonl").write_text("{not json\n"), "RAF-DB-Test.jsonl: row 1: not valid"),
    ("disfa", lambda r: rewrite(r / "ActionUnit_Labels/SN002/SN002_au9.txt", "3,0\n", ""), "frames differ"),
    ("disfa", lambda r: rewrite(r / "ActionUnit_Labels/SN001/SN001_au12.txt", "3,4", "3,7"),
     "expected '<frame>,<intensity 0-5>'"),
    ("bp4d", lambda r: rewrite(r / "AUCoding/AU_OCC/M007_T2.csv", "1010,0,0,9,1", "1010,0,0,9,2"),
     "AU4 is '2'"),
    ("cmumosi", lambda r: rewrite(r / "label.csv", "2.6", "4.2"), "label 4.2 is outside [-3, 3]"),
    ("sims", lambda r: rewrite(r / "label.csv", ",test\n", ",dev\n"), "mode 'dev' is not one of"),
])
def test_bad_input_names_the_file_and_the_fault(name, edit, fault, tmp_path):
    root = copy_fixture(name, tmp_path)
    edit(root)
    with pytest.raises(AdapterError) as caught:
        ADAPTERS[name](root, None)
    assert fault in str(caught.value)


@pytest.mark.parametrize(("name", "split"), [("dfew", "train_9"), ("meld", "val"), ("disfa", "SN404"),
                                             ("mer2025", "track9")])
def test_unknown_split_or_dataset_is_refused(name, split, tmp_path):
    with pytest.raises(ValueError, match="no split|unknown subject"):
        ADAPTERS[name](FIXTURES / name, split)
    with pytest.raises(ValueError, match="unknown dataset 'affectnet'"):
        convert("affectnet", FIXTURES / "meld", tmp_path / "x.jsonl")
    with pytest.raises(AdapterError, match="dataset folder not found"):
        convert("meld", tmp_path / "nowhere", tmp_path / "x.jsonl")


def test_missing_media_is_counted_not_fatal(tmp_path, caplog):
    root = copy_fixture("mafw", tmp_path)
    (root / "data/clips/00022.mp4").unlink()
    out = tmp_path / "mafw.jsonl"
    with caplog.at_level(logging.WARNING, logger="affect_mllm.adapters"):
        convert("mafw", root, out)
    assert "1 media file(s) not found" in caplog.text and "data/clips/00022.mp4" in caplog.text
    assert json.loads(meta_path(out).read_text())["missing_media"] == 1
    summary = summarize(out)
    assert (summary.samples, summary.missing_media, summary.labels["emotion"]) == (6, 1, 3)
    assert {s.id for s in read_manifest(out)} >= {"mafw_00022"}  # the sample stays, with its expected path


def test_cli_converts_and_prints_one_summary_line(tmp_path):
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    out = tmp_path / "dfew.jsonl"
    result = CliRunner().invoke(app, ["data-convert", "dfew", str(FIXTURES / "dfew"), str(out), "--split", "train_1"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines() == [
        f"dfew (train_1): 3 samples in {out}; labels: emotion 3, emotions 3; missing media: 0"]
    bad = CliRunner().invoke(app, ["data-convert", "dfew", str(tmp_path / "missing"), str(out)])
    assert bad.exit_code == 1 and "dataset folder not found" in bad.output
