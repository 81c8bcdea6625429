"""DFEW (Dynamic Facial Expression in the Wild) with its single-label 5-fold splits.

Layout, from the README of the DFEW release (dfew-dataset.github.io; a copy of that README is stored in public
repositories) and the readers of ``jiangxingxun/DFEW`` (``DataParallel/libs/DFEW_Dataset.py``) and
``sunlicai/MAE-DFER`` (``preprocess/dfew.py``):

- ``EmoLabel_DataSplit/train(single-labeled)/set_<k>.csv`` and ``EmoLabel_DataSplit/test(single-labeled)/set_<k>.csv``
  for folds k = 1..5, columns ``video_name, label``; ``video_name`` is the clip number (zero-padded to 5 digits
  in file names) and ``label`` a code 1..7. The README spells the folders ``train(single_labeled)`` in one
  place; both spellings are accepted.
- ``Clip/original/<00001>.mp4``: the original clips. Where a clip is absent the face-aligned frame folder
  ``Clip/clip_224x224/<00001>/`` is used instead, if it exists.

Splits: ``train_<k>`` or ``test_<k>``; None reads the five test folds, which together hold every
single-labelled clip exactly once.

Label table (codes from the README: 1 Happy, 2 Sad, 3 Neutral, 4 Angry, 5 Surprise, 6 Disgust, 7 Fear):
happy -> happy, sad -> sad, neutral -> neutral, angry -> angry, surprise -> surprised, disgust -> disgusted,
fear -> fearful. Every DFEW class has a category.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from affect_mllm.adapters.common import (
    Where,
    build_sample,
    cell,
    check_unique,
    label_fields,
    pick_split,
    read_table,
)
from affect_mllm.schema import Sample

DFEW_CODES = MappingProxyType({"1": "happy", "2": "sad", "3": "neutral", "4": "angry", "5": "surprise",
                               "6": "disgust", "7": "fear"})
DFEW_LABELS = MappingProxyType({
    "happy": "happy", "sad": "sad", "neutral": "neutral", "angry": "angry", "surprise": "surprised",
    "disgust": "disgusted", "fear": "fearful",
})
FOLDS = range(1, 6)
DFEW_SPLITS = tuple(f"{part}_{k}" for part in ("train", "test") for k in FOLDS)


def _split_file(root: Path, split: str) -> Path:
    """The CSV of a split such as 'test_3', under either spelling of the split folder."""
    part, fold = split.split("_")
    candidates = [root / "EmoLabel_DataSplit" / f"{part}({spelling})" / f"set_{fold}.csv"
                  for spelling in ("single-labeled", "single_labeled")]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _clip_stem(number: str, where: Where) -> str:
    """A clip number as its 5-digit file stem ('17' -> '00017')."""
    if not number.isdigit():
        raise where.error(f"video_name {number!r} is not a clip number")
    return f"{int(number):05d}"


def _clip(root: Path, stem: str) -> dict[str, str]:
    """The clip of a file stem: the original mp4, else the aligned frame folder if only that exists."""
    video = f"Clip/original/{stem}.mp4"
    frames = f"Clip/clip_224x224/{stem}"
    if not (root / video).exists() and (root / frames).is_dir():
        return {"frames": frames}
    return {"video": video}


def read_dfew(root: Path, split: str | None = None) -> list[Sample]:
    """DFEW single-labelled clips of one fold split ('train_1' ... 'test_5'); None: all five test folds."""
    samples = []
    for name in pick_split(split, DFEW_SPLITS, [f"test_{k}" for k in FOLDS], "dfew"):
        for where, row in read_table(_split_file(root, name), ["video_name", "label"]):
            number, code = cell(row, "video_name", where), cell(row, "label", where)
            if code not in DFEW_CODES:
                raise where.error(f"unknown label code {code!r}; DFEW codes are {sorted(DFEW_CODES)}")
            label, stem = DFEW_CODES[code], _clip_stem(number, where)
            samples.append(build_sample(
                f"dfew_{stem}", where, {"dataset": "dfew", "split": name, "label": label},
                **_clip(root, stem), **label_fields(label, DFEW_LABELS, where)))
    return check_unique(samples, Where(root))
