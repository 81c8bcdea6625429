"""FEA-20K, Facial-R1's facial-emotion reasoning set: per-source JSONL files of images with AUs, labels, reasoning.

Layout, from ``RobitsG/Facial-R1`` (README "For Your Own Data": one JSON object per line with ``id, dataset, image,
question, AUs, labels, description, meta_info``; ``src/open-r1-multimodal/src/open_r1/grpo_jsonl.py`` reads
``image`` as a path or a list of paths relative to an image folder, ``AUs`` as ``["AU1", "AU4"]`` and scores
``labels[0]``; ``run_scripts/grpo_emotion.sh`` pairs ``DISFA-Train-3.jsonl`` with the image folder ``DISFA-Train``
and ``RAF-DB-Train.jsonl`` with ``RAF-DB-Train``). The annotations are published on the Hugging Face hub
(``QBiscuits/FEA-20K``) without images; the images come from the source datasets.

- ``<name>.jsonl`` files at the top of the folder;
- each file's images under the folder named like the file, or like its name with trailing ``-<part>`` pieces
  removed (``DISFA-Train-3`` -> ``DISFA-Train``, ``DISFA``), or under the top folder itself.

Splits: the stem of one JSONL file (``DISFA-Test``); None reads every JSONL file. Sample ids are
``fea20k_<stem>_<id>``.

AUs are occurrence labels (no intensity): each listed AU gets intensity `AU_PRESENCE_THRESHOLD` (FACS level A,
the least that counts as present) and `source["au_scale"]` says "occurrence", so that intensity metrics skip them.

Label table (Facial-R1 normalises labels to nouns): anger -> angry, disgust -> disgusted, fear -> fearful,
happiness -> happy, neutral -> neutral, sadness -> sad, surprise -> surprised, contempt -> contemptuous; the
extra words of the GPT-annotated files (bittersweet, confidence, conflict, conflicted, confusion, determination,
frustration, mixed, pride; listed in ``open_r1/configs/config.json``) -> None, kept in `emotions`.
`emotion` follows ``labels[0]``, the label Facial-R1 scores.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

from affect_mllm.adapters.common import (
    AdapterError,
    Where,
    build_sample,
    check_unique,
    first_existing,
    label_fields,
    pick_split,
    read_json_lines,
)
from affect_mllm.schema import AU_PRESENCE_THRESHOLD, Sample

FEA20K_LABELS = MappingProxyType({
    "anger": "angry", "disgust": "disgusted", "fear": "fearful", "happiness": "happy", "neutral": "neutral",
    "sadness": "sad", "surprise": "surprised", "contempt": "contemptuous",
    **dict.fromkeys(("bittersweet", "confidence", "conflict", "conflicted", "confusion", "determination",
                     "frustration", "mixed", "pride")),
})
AU_NAME = re.compile(r"AU(\d{1,2})", re.IGNORECASE)


def _image_folders(stem: str) -> list[str]:
    """Candidate image folders of a JSONL stem, most specific first, ending with the top folder ('')."""
    parts = stem.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)] + [""]


def _aus(names: Any, where: Where) -> list[dict[str, float]] | None:
    """["AU1", "AU12"] -> occurrence records; None when the record has no AU list."""
    if names is None:
        return None
    if not isinstance(names, list):
        raise where.error(f"AUs must be a list such as ['AU1', 'AU4'], got {names!r}")
    numbers = []
    for name in names:
        match = AU_NAME.fullmatch(str(name).strip())
        if not match:
            raise where.error(f"{name!r} is not an AU name such as 'AU12'")
        numbers.append(int(match.group(1)))
    return [{"au": n, "intensity": AU_PRESENCE_THRESHOLD} for n in sorted(set(numbers))]


def _labels(labels: Any, where: Where) -> dict[str, Any]:
    """`emotion` from labels[0] and every label in `emotions`."""
    if not labels:
        return {}
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise where.error(f"labels must be a list of words, got {labels!r}")
    fields = label_fields(labels[0].strip().lower(), FEA20K_LABELS, where)
    for extra in labels[1:]:
        label_fields(extra.strip().lower(), FEA20K_LABELS, where)  # checks the vocabulary
    return {**fields, "emotions": [x.strip().lower() for x in labels]}


def _sample(root: Path, stem: str, where: Where, record: dict[str, Any]) -> Sample:
    """One FEA-20K record as a Sample."""
    if "id" not in record or "image" not in record:
        raise where.error("a record needs 'id' and 'image'")
    images = record["image"] if isinstance(record["image"], list) else [record["image"]]
    if not images or not all(isinstance(i, str) and i for i in images):
        raise where.error(f"image must be a path or a list of paths, got {record['image']!r}")
    image = first_existing(root, [f"{folder}/{images[0]}".lstrip("/") for folder in _image_folders(stem)])
    source = {"dataset": "fea20k", "split": stem, "origin": record.get("dataset"), "au_scale": "occurrence",
              "images": len(images)}
    return build_sample(
        f"fea20k_{stem}_{record['id']}", where, source, image=image, aus=_aus(record.get("AUs"), where),
        rationale=record.get("description") or None, **_labels(record.get("labels"), where))


def read_fea20k(root: Path, split: str | None = None) -> list[Sample]:
    """FEA-20K records of one JSONL file (split = its stem, e.g. 'RAF-DB-Test') or of all files (None)."""
    stems = sorted(p.stem for p in root.glob("*.jsonl"))
    if not stems:
        raise AdapterError(root, "no FEA-20K .jsonl file in this folder")
    samples = []
    for stem in pick_split(split, stems, stems, "fea20k"):
        samples += [_sample(root, stem, where, record) for where, record in read_json_lines(root / f"{stem}.jsonl")]
    return check_unique(samples, Where(root))
