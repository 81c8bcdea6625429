"""The MER-UniBench sentiment sets: CMU-MOSI, CMU-MOSEI, CH-SIMS and CH-SIMS v2, from their MMSA-style label CSVs.

Layout, as ``thuiar/MMSA-FET`` reads an MMSA dataset folder (``src/MSA_FET/dataset.py``: ``label.csv`` with
columns ``video_id, clip_id, text, label, label_T, label_A, label_V, annotation, mode`` and clips
``Raw/<video_id>/<clip_id>.mp4``; ids read as strings, so zero-padded clip ids keep their padding). CH-SIMS v2
ships the same information as ``meta.csv`` (``video_id, clip_id, text, label, mode``), which is what MERTools'
``toolkit/preprocess/simsv2.py`` reads; either file name is accepted for every set. ``mode`` is ``train``,
``valid`` or ``test``.

Not read: AffectGPT's MER-UniBench folders (``cmumosi-process`` ...), whose labels are pickled ``label.npz``
dicts (unpickling a downloaded file can run code), nor the ``*_features_raw_2way.pkl`` files MERTools builds
MOSI/MOSEI from. The scores are the same ones the MMSA CSVs carry.

Scores: MOSI/MOSEI sentiment lies in [-3, 3], SIMS/SIMSv2 in [-1, 1] (MERTools' preprocess scripts check these
ranges); `valence` is the score divided by its half-range. The polarity follows the sign, as AffectGPT's
``func_map_valence_to_emotion`` does (> 0 positive, < 0 negative, 0 neutral): it goes to `emotions` (one word)
and `source["polarity"]`; the raw score is kept in `source["score"]`. Polarity is not an emotion category, so
`emotion` is left empty. Splits: ``train``, ``valid``, ``test``; None reads ``test``.
"""

from __future__ import annotations

from pathlib import Path

from affect_mllm.adapters.common import (
    Where,
    build_sample,
    cell,
    check_unique,
    first_existing,
    pick_split,
    read_table,
    scaled_score,
)
from affect_mllm.schema import Sample

MODES = ("train", "valid", "test")
LABEL_FILES = ("label.csv", "meta.csv")
REQUIRED_COLUMNS = ("video_id", "clip_id", "label", "mode")
MOSI_HALF_RANGE = 3.0
SIMS_HALF_RANGE = 1.0


def polarity(score: float) -> str:
    """'positive', 'negative' or 'neutral' from the sign of a sentiment score."""
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def _read_sentiment(root: Path, split: str | None, dataset: str, half_range: float) -> list[Sample]:
    """Rows of the MMSA label CSV whose mode is the chosen split, as Samples."""
    (mode,) = pick_split(split, MODES, ["test"], dataset)
    samples = []
    for where, row in read_table(root / first_existing(root, LABEL_FILES), REQUIRED_COLUMNS):
        row_mode = cell(row, "mode", where)
        if row_mode not in MODES:
            raise where.error(f"mode {row_mode!r} is not one of {list(MODES)}")
        if row_mode != mode:
            continue
        video_id, clip_id = cell(row, "video_id", where), cell(row, "clip_id", where)
        raw_score = cell(row, "label", where)
        valence, score = scaled_score(raw_score, half_range, where, "label"), float(raw_score)
        samples.append(build_sample(
            f"{dataset}_{video_id}_{clip_id}", where,
            {"dataset": dataset, "split": mode, "score": score, "polarity": polarity(score),
             "annotation": row.get("annotation") or None},
            video=f"Raw/{video_id}/{clip_id}.mp4", subtitle=row.get("text") or None,
            valence=valence, emotions=[polarity(score)]))
    return check_unique(samples, Where(root))


def read_cmumosi(root: Path, split: str | None = None) -> list[Sample]:
    """CMU-MOSI clips of one split (None: test); scores in [-3, 3]."""
    return _read_sentiment(root, split, "cmumosi", MOSI_HALF_RANGE)


def read_cmumosei(root: Path, split: str | None = None) -> list[Sample]:
    """CMU-MOSEI clips of one split (None: test); scores in [-3, 3]."""
    return _read_sentiment(root, split, "cmumosei", MOSI_HALF_RANGE)


def read_sims(root: Path, split: str | None = None) -> list[Sample]:
    """CH-SIMS clips of one split (None: test); scores in [-1, 1]."""
    return _read_sentiment(root, split, "sims", SIMS_HALF_RANGE)


def read_simsv2(root: Path, split: str | None = None) -> list[Sample]:
    """CH-SIMS v2 clips of one split (None: test); scores in [-1, 1]."""
    return _read_sentiment(root, split, "simsv2", SIMS_HALF_RANGE)
