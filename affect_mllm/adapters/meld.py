"""MELD (Multimodal EmotionLines Dataset): utterance clips of Friends with emotion and sentiment labels.

Layout, from ``declare-lab/MELD`` (``data/MELD/train_sent_emo.csv``: columns ``Sr No., Utterance, Speaker,
Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime``) and the MELD.Raw archive as
public readers unpack it (``train_splits/``, ``dev_splits_complete/``, ``output_repeated_splits_test/``, clips
``dia<D>_utt<U>.mp4``; MERTools' ``toolkit/preprocess/meld.py`` reads the same CSVs and clip names):

- ``{train,dev,test}_sent_emo.csv`` at the top of the folder or inside ``train/``, ``dev/``, ``test/``;
- the clip folder of each split at the top or inside the split folder (``train/train_splits/``), or a folder
  named after the split.

Splits: ``train``, ``dev``, ``test``; None reads ``test``. Sample ids are ``meld_<split>_dia<D>_utt<U>``
(dialogue numbers restart in every split).

Label table (MELD's 7 emotions): anger -> angry, disgust -> disgusted, fear -> fearful, joy -> happy,
neutral -> neutral, sadness -> sad, surprise -> surprised. The utterance is the subtitle; speaker and sentiment
(positive / negative / neutral) go to `source`.
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
    label_fields,
    pick_split,
    read_table,
)
from affect_mllm.schema import Sample

MELD_LABELS = MappingProxyType({
    "anger": "angry", "disgust": "disgusted", "fear": "fearful", "joy": "happy", "neutral": "neutral",
    "sadness": "sad", "surprise": "surprised",
})
MELD_SENTIMENTS = ("positive", "negative", "neutral")
MELD_COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
CLIP_FOLDERS = MappingProxyType({
    "train": ("train_splits", "train/train_splits", "train"),
    "dev": ("dev_splits_complete", "dev/dev_splits_complete", "dev"),
    "test": ("output_repeated_splits_test", "test/output_repeated_splits_test", "test"),
})


def read_meld(root: Path, split: str | None = None) -> list[Sample]:
    """MELD utterances of split 'train', 'dev' or 'test' (None: 'test')."""
    samples = []
    for name in pick_split(split, CLIP_FOLDERS, ["test"], "meld"):
        label_file = root / first_existing(root, (f"{name}_sent_emo.csv", f"{name}/{name}_sent_emo.csv"))
        clip_folder = first_existing(root, CLIP_FOLDERS[name])
        for where, row in read_table(label_file, MELD_COLUMNS):
            dialogue, utterance = cell(row, "Dialogue_ID", where), cell(row, "Utterance_ID", where)
            label, sentiment = cell(row, "Emotion", where), cell(row, "Sentiment", where)
            if sentiment not in MELD_SENTIMENTS:
                raise where.error(f"unknown sentiment {sentiment!r}; MELD's are {list(MELD_SENTIMENTS)}")
            clip = f"dia{dialogue}_utt{utterance}"
            samples.append(build_sample(
                f"meld_{name}_{clip}", where,
                {"dataset": "meld", "split": name, "label": label, "sentiment": sentiment, "speaker": row["Speaker"]},
                video=f"{clip_folder}/{clip}.mp4", subtitle=row["Utterance"] or None,
                **label_fields(label, MELD_LABELS, where)))
    return check_unique(samples, Where(root))
