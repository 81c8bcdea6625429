"""Held-out evaluation of a perception base: real mp4 clips, the media pipeline, greedy generation, parsed answers.

AU F1: mean per-AU F1 of the answer's `aus` field against the labelled AU set. Voice accuracy: for each clip and
voice attribute (pitch, loudness, rate, contour, tremor), whether the rationale states the labelled value.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

_KNOWLEDGE_NAMES = {"pitch_level": "pitch"}  # the knowledge base's attribute name -> SynthFACS's


def make_eval_sets(folder: Path, levels: list[int], clips: int, seed: int) -> dict[int, Path]:
    """One held-out (val split) SynthFACS manifest per level, generated once per (level, clips, seed) and reused.

    The folder name holds every argument, so a run asking for other clips never reuses a set made for another
    (the clips themselves follow from these arguments and the generator's code).
    """
    from affect_mllm.synthfacs.generate import generate_synthfacs

    sets = {}
    for level in sorted(set(levels)):
        target = folder / f"level{level}-{clips}clips-seed{seed + 1}"
        manifest = target / "val.jsonl"
        sets[level] = manifest if manifest.is_file() else generate_synthfacs(target, clips, seed=seed + 1,
                                                                             split="val", difficulty=level)
    return sets


def voice_accuracy(rationales: list[str | None], gold: list[dict[str, str]]) -> float:
    """Share of (clip, attribute) pairs whose labelled value the rationale states."""
    from affect_mllm.voice_cues import voice_cues_in

    hits = total = 0
    for text, labels in zip(rationales, gold, strict=True):
        stated = {_KNOWLEDGE_NAMES.get(a, a): v for a, v in voice_cues_in(text or "")}
        for attribute, value in labels.items():
            total += 1
            hits += stated.get(attribute) == value
    return hits / total if total else 0.0


@torch.no_grad()
def evaluate_perception(model, processor, spec, eval_sets: dict[int, Path], batch_size: int = 16) -> dict:
    """AU F1 and voice-attribute accuracy per level (keys `au_f1_level{k}`, `voice_acc_level{k}`)."""
    from affect_mllm.answer import parse_answer
    from affect_mllm.media import load_sample_media
    from affect_mllm.metrics.au import au_f1
    from affect_mllm.models.generate import generate_texts
    from affect_mllm.models.inputs import conversation_for
    from affect_mllm.schema import read_manifest

    model.eval()
    scores = {}
    for level, path in eval_sets.items():
        manifest = read_manifest(path)
        gold, predicted, rationales, voices = [], [], [], []
        for start in range(0, len(manifest), batch_size):
            samples = manifest.samples[start:start + batch_size]
            conversations = []
            for sample in samples:
                media = load_sample_media(video=manifest.media_path(sample, "video"), settings=spec.media)
                conversations.append(conversation_for(sample, media, "au", spec))
            for sample, text in zip(samples, generate_texts(model, processor, spec, conversations,
                                                            max_new_tokens=160), strict=True):
                parsed = parse_answer(text)
                gold.append(sample.au_set())
                predicted.append(set(parsed.fields.aus or ()))
                rationales.append(parsed.fields.rationale)
                voices.append(sample.source["voice"])
        scores[f"au_f1_level{level}"] = float(au_f1(gold, predicted)["mean_f1"])
        if spec.has_audio:
            scores[f"voice_acc_level{level}"] = voice_accuracy(rationales, voices)
    return scores
