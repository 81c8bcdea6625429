"""MAFW (Multi-modal Affective database for dynamic Facial expression in the Wild): single and compound labels.

Layout, from the database's README (``MAFW-database/MAFW``: clips ``00151.mp4`` ..., labels such as
``03747.mp4  anger`` and compound ``anger_disgust_anxiety``) and the readers of ``sunlicai/MAE-DFER``
(``preprocess/mafw.py``: whitespace-separated ``<clip>.mp4 <label>`` lines without a header, 11 labels):

- ``Train & Test Set/{single,compound}/no_caption/set_<k>/{train,test}.txt`` for folds k = 1..5 (a folder named
  ``Train_Test_Set`` is accepted too); the ``with_caption`` variants are not read.
- ``data/clips/<00025>.mp4``; where a clip is absent the frame folder ``data/frames/<00025>/`` is used if it
  exists.

Splits: ``single_train_<k>``, ``single_test_<k>``, ``compound_train_<k>``, ``compound_test_<k>``; None reads the
five single-label test folds, which together hold every single-labelled clip exactly once.

Label table (the 11 single labels, in the order MAE-DFER indexes them):
anger -> angry, disgust -> disgusted, fear -> fearful, happiness -> happy, neutral -> neutral, sadness -> sad,
surprise -> surprised, contempt -> contemptuous, anxiety -> None, helplessness -> None, disappointment -> None.
The last three are classes of their own in MAFW's 11-way protocol (R1-Omni asks for them by name); the lexicon
files them under fearful / sad / sad, but collapsing them would merge classes, so `emotion` stays empty and the
word is kept in `emotions`. A compound label (``anger_disgust``) gives each part in `emotions` and no `emotion`.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from affect_mllm.adapters.common import (
    WHITESPACE,
    Where,
    build_sample,
    cell,
    check_unique,
    pick_split,
    read_table,
)
from affect_mllm.schema import Sample

MAFW_LABELS = MappingProxyType({
    "anger": "angry", "disgust": "disgusted", "fear": "fearful", "happiness": "happy", "neutral": "neutral",
    "sadness": "sad", "surprise": "surprised", "contempt": "contemptuous",
    "anxiety": None, "helplessness": None, "disappointment": None,
})
FOLDS = range(1, 6)
MAFW_SPLITS = tuple(f"{kind}_{part}_{k}" for kind in ("single", "compound") for part in ("train", "test")
                    for k in FOLDS)
SPLIT_FOLDERS = ("Train & Test Set", "Train_Test_Set")


def _split_file(root: Path, split: str) -> Path:
    """The list file of a split such as 'compound_test_2', under either name of the split folder."""
    kind, part, fold = split.split("_")
    candidates = [root / folder / kind / "no_caption" / f"set_{fold}" / f"{part}.txt" for folder in SPLIT_FOLDERS]
    return next((c for c in candidates if c.is_file()), candidates[0])


def _label_fields(label: str, where: Where) -> dict:
    """`emotion`/`emotions` of a single or compound ('anger_disgust') label."""
    parts = label.split("_")
    unknown = [p for p in parts if p not in MAFW_LABELS]
    if unknown:
        raise where.error(f"unknown label {label!r}; MAFW's labels are {sorted(MAFW_LABELS)} or their '_' compounds")
    return {"emotion": MAFW_LABELS[parts[0]] if len(parts) == 1 else None, "emotions": parts}


def _clip(root: Path, stem: str) -> dict[str, str]:
    """The clip of a file stem: the mp4, else its frame folder if only that exists."""
    video, frames = f"data/clips/{stem}.mp4", f"data/frames/{stem}"
    if not (root / video).exists() and (root / frames).is_dir():
        return {"frames": frames}
    return {"video": video}


def read_mafw(root: Path, split: str | None = None) -> list[Sample]:
    """MAFW clips of one fold split ('single_test_1', 'compound_train_3', ...); None: all single test folds."""
    samples = []
    for name in pick_split(split, MAFW_SPLITS, [f"single_test_{k}" for k in FOLDS], "mafw"):
        for where, row in read_table(_split_file(root, name), ["clip", "label"], sep=WHITESPACE,
                                     names=["clip", "label"]):
            clip, label = cell(row, "clip", where), cell(row, "label", where)
            stem = clip.removesuffix(".mp4")
            samples.append(build_sample(
                f"mafw_{stem}", where, {"dataset": "mafw", "split": name, "label": label},
                **_clip(root, stem), **_label_fields(label, where)))
    return check_unique(samples, Where(root))
