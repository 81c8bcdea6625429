"""MER2023, MER2024, MER2025 (Track 1, OV-MERD, MER-Caption+) and OV-MERD+ in their released layouts.

Layouts, as the challenge organisers' own code reads them (zeroQiaoba/MERTools):

- MER2023 (``MER2023`` raw release; ``MER2025/MER2025_Track1/toolkit/preprocess/mer2023.py``): ``train-label.csv``,
  ``test1-label.csv``, ``test2-label.csv``, ``test3-label.csv`` with columns ``name, discrete, valence`` (test3 has
  no valence) and the clips of each subset in a folder of the same name (``train/<name>.mp4`` or ``.avi``).
- MER2024 (``toolkit/preprocess/mer2024.py``): ``label-disdim.csv`` (``name, discrete``) for the labelled clips in
  ``video-labeled/``; the unlabelled test pool has no labels and is not read.
- MER2025 (``MER2025/README.md``, ``MER2025_Track23/my_affectgpt/datasets/datasets/ovmerd_dataset.py``):
  ``video/<name>.mp4``, ``audio/<name>.wav``, ``subtitle_chieng.csv`` (``name, chinese, english``),
  ``track1_train_disdim.csv`` (``name, discrete``), ``track2_train_{ovmerd,mercaptionplus}.csv``
  (``name, openset`` with cells like ``"['sad', 'tired']"``) and ``track3_train_{ovmerd,mercaptionplus}.csv``
  (``name, reason``).
- OV-MERD+ (AffectGPT's MER-UniBench folder ``ovmerdplus-process``, read by
  ``my_affectgpt/datasets/datasets/ovmerdplus_dataset.py`` in the AffectGPT code): ``ovlabel.csv``
  (``name, openset``), ``subtitle_eng.csv`` (``name, sentence``), ``video/<name>.mp4``, ``audio/<name>.wav``.

Not read: the preprocessed MER-UniBench label files (``label-6way.npz``), which are pickled Python dicts;
unpickling a downloaded file can run arbitrary code. Convert from the released CSVs instead.

Valence: read from a ``valence`` column wherever a label file has one. The stored readers read it only for
MER2023; the ``disdim`` files of MER2024/MER2025 are read for ``discrete`` alone and no stored source shows
whether they carry valence. The MER annotations score valence on [-5, 5] (MER2023 paper; the range is not stated
in any stored source file); it is divided by 5, and a value outside [-5, 5] is an error rather than clipped.

Label table (MER's six classes, ``emos_mer`` in ``toolkit/globals.py``): neutral -> neutral, angry -> angry,
happy -> happy, sad -> sad, surprise -> surprised, worried -> None. "worried" is its own class in MER's 6-way
protocol; the lexicon files it under fearful, but collapsing it would merge two classes, so `emotion` is left
empty and the word is kept in `emotions`. Open-vocabulary sets keep their words as written, `emotion` None.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from affect_mllm.adapters.common import (
    Where,
    build_sample,
    cell,
    check_unique,
    first_existing,
    if_exists,
    label_fields,
    parse_word_list,
    pick_split,
    read_table,
    scaled_score,
)
from affect_mllm.schema import Sample

MER_LABELS = MappingProxyType({
    "neutral": "neutral", "angry": "angry", "happy": "happy", "sad": "sad", "surprise": "surprised",
    "worried": None,
})
MER_VALENCE_HALF_RANGE = 5.0
MER2023_SPLITS = ("train", "test1", "test2", "test3")
MER2025_CATEGORICAL = MappingProxyType({"track1": "track1_train_disdim.csv"})
MER2025_OPEN_VOCABULARY = MappingProxyType({
    "ovmerd": ("track2_train_ovmerd.csv", "track3_train_ovmerd.csv"),
    "mercaptionplus": ("track2_train_mercaptionplus.csv", "track3_train_mercaptionplus.csv"),
})
VIDEO_EXTENSIONS = (".mp4", ".avi")


def read_subtitles(path: Path, text_columns: tuple[str, ...]) -> dict[str, str]:
    """name -> subtitle from a subtitle CSV (first non-empty of `text_columns`); {} when the file is absent."""
    if not path.is_file():
        return {}
    rows = read_table(path, ["name"])
    subtitles = {}
    for _, row in rows:
        text = next((row[c] for c in text_columns if row.get(c)), "")
        if text:
            subtitles[row["name"]] = text
    return subtitles


def _categorical_samples(label_file: Path, dataset: str, split: str, video_folder: str,
                         subtitles: dict[str, str]) -> list[Sample]:
    """One sample per row of a ``name, discrete[, valence]`` file; clips in `video_folder`."""
    root = label_file.parent
    samples = []
    for where, row in read_table(label_file, ["name", "discrete"]):
        name, label = cell(row, "name", where), cell(row, "discrete", where)
        valence = row.get("valence", "")
        video = first_existing(root, [f"{video_folder}/{name}{ext}" for ext in VIDEO_EXTENSIONS])
        samples.append(build_sample(
            name, where, {"dataset": dataset, "split": split, "label": label},
            video=video, subtitle=subtitles.get(name), **label_fields(label, MER_LABELS, where),
            valence=scaled_score(valence, MER_VALENCE_HALF_RANGE, where, "valence") if valence else None))
    return samples


def read_mer2023(root: Path, split: str | None = None) -> list[Sample]:
    """MER2023 labelled subsets: split train, test1, test2 or test3; None reads all four.

    Subtitles are taken from ``subtitle_chieng.csv`` or ``transcription-engchi-polish.csv`` when present.
    """
    subtitles = read_subtitles(root / "subtitle_chieng.csv", ("english", "chinese")) or read_subtitles(
        root / "transcription-engchi-polish.csv", ("english", "chinese"))
    samples = []
    for name in pick_split(split, MER2023_SPLITS, MER2023_SPLITS, "mer2023"):
        samples += _categorical_samples(root / f"{name}-label.csv", "mer2023", name, name, subtitles)
    return check_unique(samples, Where(root))


def read_mer2024(root: Path, split: str | None = None) -> list[Sample]:
    """MER2024 labelled clips (split 'train', the default): ``label-disdim.csv`` and ``video-labeled/``."""
    pick_split(split, ["train"], ["train"], "mer2024")
    subtitles = read_subtitles(root / "subtitle_chieng.csv", ("english", "chinese"))
    samples = _categorical_samples(root / "label-disdim.csv", "mer2024", "train", "video-labeled", subtitles)
    return check_unique(samples, Where(root))


def _open_vocabulary_samples(root: Path, label_file: str, reason_file: str | None, dataset: str, split: str,
                             subtitles: dict[str, str]) -> list[Sample]:
    """One sample per row of a ``name, openset`` file, with the ``name, reason`` description when present."""
    reasons = {}
    if reason_file and (root / reason_file).is_file():
        reasons = {row["name"]: row["reason"] for _, row in read_table(root / reason_file, ["name", "reason"])}
    samples = []
    for where, row in read_table(root / label_file, ["name", "openset"]):
        name = cell(row, "name", where)
        samples.append(build_sample(
            name, where, {"dataset": dataset, "split": split},
            video=f"video/{name}.mp4", audio=if_exists(root, f"audio/{name}.wav"), subtitle=subtitles.get(name),
            emotions=parse_word_list(row["openset"]), rationale=reasons.get(name) or None))
    return samples


def read_mer2025(root: Path, split: str | None = None) -> list[Sample]:
    """MER2025 training sets: split 'ovmerd' (default), 'mercaptionplus' or 'track1' (6-way labels)."""
    known = [*MER2025_OPEN_VOCABULARY, *MER2025_CATEGORICAL]
    (name,) = pick_split(split, known, ["ovmerd"], "mer2025")
    subtitles = read_subtitles(root / "subtitle_chieng.csv", ("english", "chinese"))
    if name in MER2025_CATEGORICAL:
        samples = _categorical_samples(root / MER2025_CATEGORICAL[name], "mer2025", name, "video", subtitles)
        samples = [s.model_copy(update={"audio": if_exists(root, f"audio/{s.id}.wav")}) for s in samples]
    else:
        label_file, reason_file = MER2025_OPEN_VOCABULARY[name]
        samples = _open_vocabulary_samples(root, label_file, reason_file, "mer2025", name, subtitles)
    return check_unique(samples, Where(root))


def read_ovmerdplus(root: Path, split: str | None = None) -> list[Sample]:
    """OV-MERD+ (the MER-UniBench open-vocabulary test set; split 'test', the default)."""
    pick_split(split, ["test"], ["test"], "ovmerdplus")
    subtitles = read_subtitles(root / "subtitle_eng.csv", ("sentence", "english"))
    samples = _open_vocabulary_samples(root, "ovlabel.csv", None, "ovmerdplus", "test", subtitles)
    return check_unique(samples, Where(root))
