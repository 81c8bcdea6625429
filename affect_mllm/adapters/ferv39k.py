"""FERV39k (multi-scene facial expression recognition in videos), All-scenes setup.

Layout, from ``wangyanckxx/FERV39k`` (README: the release and its terms) and the reader of ``sunlicai/MAE-DFER``
(``preprocess/ferv39k.py``, with its generated ``saved/data/ferv39k/all_scenes/test.csv`` showing the paths):

- ``4_setups/All_scenes/train_All.csv`` and ``test_All.csv``: whitespace-separated, no header, one clip per line
  as ``<Scene>/<Label>/<NNNN> <Label>``, e.g. ``Interview/Happy/0118 Happy``;
- ``2_ClipsforFaceCrop/<Scene>/<Label>/<NNNN>/``: the face-cropped frames of the clip (a folder of images), which
  is what the benchmark's models read; the samples point at this folder (`frames`).

Splits: ``train`` or ``test``; None reads ``test``.

Label table (the 7 classes of the release): Happy -> happy, Sad -> sad, Neutral -> neutral, Angry -> angry,
Surprise -> surprised, Disgust -> disgusted, Fear -> fearful. Every class has a category.
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
    label_fields,
    pick_split,
    read_table,
)
from affect_mllm.schema import Sample

FERV39K_LABELS = MappingProxyType({
    "Happy": "happy", "Sad": "sad", "Neutral": "neutral", "Angry": "angry", "Surprise": "surprised",
    "Disgust": "disgusted", "Fear": "fearful",
})
FERV39K_SPLITS = ("train", "test")
FRAME_FOLDER = "2_ClipsforFaceCrop"


def read_ferv39k(root: Path, split: str | None = None) -> list[Sample]:
    """FERV39k All-scenes clips of split 'train' or 'test' (None: 'test'), as face-crop frame folders."""
    samples = []
    for name in pick_split(split, FERV39K_SPLITS, ["test"], "ferv39k"):
        list_file = root / "4_setups" / "All_scenes" / f"{name}_All.csv"
        for where, row in read_table(list_file, ["clip", "label"], sep=WHITESPACE, names=["clip", "label"]):
            clip, label = cell(row, "clip", where).strip("/"), cell(row, "label", where)
            samples.append(build_sample(
                "ferv39k_" + clip.replace("/", "_"), where,
                {"dataset": "ferv39k", "split": name, "label": label, "scene": clip.split("/")[0]},
                frames=f"{FRAME_FOLDER}/{clip}", **label_fields(label, FERV39K_LABELS, where)))
    return check_unique(samples, Where(root))
