"""Manifests -> training rows, and the collator that turns rows into model batches (media decoded here).

A row holds the sample as JSON (lossless whatever its labels), its manifest (for path confinement), the task it
trains and the prompt phrasing. TRL's own collators ignore video and audio, so ours decodes the media with the
project's decoder (the same frames and audio the engines see), renders the chat through the model's template and
masks everything but the assistant's answer (`models.inputs.encode_for_training`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence

from affect_mllm.media import SampleMedia, load_sample_media
from affect_mllm.models.inputs import conversation_for, encode_for_training
from affect_mllm.models.registry import ModelSpec
from affect_mllm.schema import Manifest, Sample, read_manifest
from affect_mllm.targets import sample_perception_rationale, target_text, task_is_answerable

logger = logging.getLogger(__name__)


def _unit_draw(*parts: object) -> float:
    """A deterministic draw in [0, 1) from its arguments (stable across processes, unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_task(sample: Sample, tasks: Sequence[str], weights: Sequence[float] | None, seed: int) -> str | None:
    """Draw one answerable task for a sample (seeded by sample id); None when it answers none."""
    options = [(t, w) for t, w in zip(tasks, weights or [1.0] * len(tasks), strict=True)
               if task_is_answerable(sample, t)]
    if not options:
        return None
    draw = _unit_draw(seed, sample.id, "task") * sum(w for _, w in options)
    for task, weight in options:
        draw -= weight
        if draw < 0:
            return task
    return options[-1][0]


def training_rows(manifest: Manifest, tasks: Sequence[str], weights: Sequence[float] | None = None, *,
                  seed: int = 0, prompt_variants: int = 2, cot_share: float = 0.0,
                  limit: int | None = None) -> list[dict]:
    """One row per usable sample: its JSON, manifest path, task, phrasing and CoT flag."""
    rows = []
    for sample in manifest.samples[:limit]:
        task = assign_task(sample, tasks, weights, seed)
        if task is None:
            continue
        rows.append({
            "sample": json.dumps(sample.to_record()),
            "manifest": str(manifest.path),
            "task": task,
            "variant": int(_unit_draw(seed, sample.id, "variant") * max(prompt_variants, 1)),
            "cot": _unit_draw(seed, sample.id, "cot") < cot_share,
        })
    skipped = len(manifest.samples[:limit]) - len(rows)
    if skipped:
        logger.warning("%s: %d samples have labels for none of the tasks %s", manifest.path, skipped, list(tasks))
    return rows


def build_dataset(manifest_path: str, tasks: Sequence[str], weights: Sequence[float] | None = None, **kwargs):
    """A `datasets.Dataset` of training rows (TRL's trainers take only datasets.Dataset)."""
    from datasets import Dataset

    rows = training_rows(read_manifest(manifest_path), tasks, weights, **kwargs)
    if not rows:
        raise ValueError(f"{manifest_path}: no sample has labels for the tasks {list(tasks)}")
    return Dataset.from_list(rows)


class MediaChatCollator:
    """Rows -> a training batch (input ids, media tensors, labels on the answer only)."""

    def __init__(self, processor, spec: ModelSpec, *, cache_clips: int = 0, audio_in_video: bool = False,
                 rationale_style: str = "reference") -> None:
        self.processor = processor
        self.spec = spec
        self.rationale_style = rationale_style
        self.audio_in_video = audio_in_video
        self.cache_clips = cache_clips
        self._media: OrderedDict[tuple[str, str], SampleMedia] = OrderedDict()
        self._manifests: dict[str, Manifest] = {}

    def _manifest(self, path: str) -> Manifest:
        if path not in self._manifests:
            self._manifests[path] = read_manifest(path)
        return self._manifests[path]

    def media(self, sample: Sample, manifest_path: str) -> SampleMedia:
        """Decode a sample's media (from the in-memory cache when enabled)."""
        key = (manifest_path, sample.id)
        if key in self._media:
            self._media.move_to_end(key)
            return self._media[key]
        manifest = self._manifest(manifest_path)
        paths = {kind: manifest.media_path(sample, kind) for kind in ("video", "audio", "image", "frames")}
        media = load_sample_media(**paths, settings=self.spec.media)
        if self.cache_clips > 0:
            self._media[key] = media
            if len(self._media) > self.cache_clips:
                self._media.popitem(last=False)
        return media

    def rationale(self, sample: Sample) -> str | None:
        """The <think> text to train on (None: the sample's reference rationale, also for a sample without AU labels
        under the perception style: there is nothing to ground a perception rationale in)."""
        if self.rationale_style == "perception" and sample.aus is not None:
            return sample_perception_rationale(sample, with_voice=self.spec.has_audio)
        return None

    def __call__(self, rows: list[dict]):
        conversations, answers = [], []
        for row in rows:
            sample = Sample.from_record(json.loads(row["sample"]))
            media = self.media(sample, row["manifest"])
            conversations.append(conversation_for(sample, media, row["task"], self.spec, variant=row["variant"],
                                                  cot=row["cot"], audio_in_video=self.audio_in_video))
            answers.append(target_text(sample, row["task"], self.rationale(sample)))
        batch = encode_for_training(self.processor, self.spec, conversations, answers,
                                    audio_in_video=self.audio_in_video)
        if self.audio_in_video:
            batch["use_audio_in_video"] = True
        return batch
