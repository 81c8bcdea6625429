"""Tokens per training sample from the manifest's own clips: container headers only, the real processor formulas.

Each row becomes the text the collator would build (the same prompt, phrasing and target, rendered by the
model's chat template and tokenized by its real tokenizer); its media placeholders are then expanded by the
processor formulas of `affect_mllm.token_budget` from the clip's header (duration, frame size, audio), so no
frame is decoded and no weight is loaded. GRPO rows count the prompt plus `max_completion_length`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affect_mllm.media import IMAGE_SUFFIXES, MediaError, SampleMedia
from affect_mllm.models.inputs import conversation_for, render_prompt
from affect_mllm.models.registry import ModelSpec
from affect_mllm.schema import Manifest, Sample, read_manifest
from affect_mllm.targets import target_text
from affect_mllm.token_budget import (
    MediaExtent,
    VisionGeometry,
    expanded_length,
    media_tokens,
    placeholder_ids,
)

logger = logging.getLogger(__name__)

FAMILIES = {"qwen2_5_omni": "qwen2.5-omni", "qwen2_5_vl": "qwen2.5-vl"}
_PRESENT = np.zeros(0, dtype=np.uint8)  # stands for decoded media: the prompt builder only asks whether it exists


def model_config(spec: ModelSpec) -> dict:
    """The model's config as a dict (a local folder's config.json, else the published config); omni: the thinker."""
    if Path(spec.source).is_dir():
        config = json.loads((Path(spec.source) / "config.json").read_text())
    else:
        from affect_mllm.models.published import published_json

        config = published_json(spec.name)
    return config.get("thinker_config", config)


def text_renderer(spec: ModelSpec):
    """The object that renders chats and tokenizes: a local folder's processor, else the published processor."""
    if Path(spec.source).is_dir():
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(spec.source)
    if spec.arch not in FAMILIES:
        raise ValueError(f"{spec.name}: no offline processor for architecture {spec.arch}; point "
                         "model_name_or_path at a local folder of the checkpoint to count its tokens")
    from affect_mllm.models.qwen_processor import build_published_processor

    return build_published_processor(FAMILIES[spec.arch])


def _folder_extent(folder: Path, fps: float) -> MediaExtent:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MediaError(folder, "frames folder holds no images")
    with Image.open(files[0]) as first:
        width, height = first.size
    return MediaExtent(video_frames=len(files), video_fps=fps, width=width, height=height)


def media_extent(manifest: Manifest, sample: Sample, spec: ModelSpec) -> MediaExtent:
    """What the headers of a sample's media say (`media.probe_media`: no decoding); the offline caps are checked."""
    from PIL import Image

    from affect_mllm.media import check_media_caps, probe_media

    settings, extent = spec.media, {}
    paths = {kind: manifest.media_path(sample, kind) for kind in ("video", "audio", "image", "frames")}
    if paths["video"] is not None:
        header = probe_media(paths["video"])
        check_media_caps(header, settings, name=str(paths["video"]))
        frames = header.frame_count or round((header.duration_s or 0.0) * (header.fps or 0.0))
        extent.update(video_frames=frames, video_fps=header.fps, width=header.width, height=header.height)
        if header.has_audio and header.audio_duration_s:
            extent["audio_samples"] = round(header.audio_duration_s * settings.sample_rate)
    elif paths["frames"] is not None:
        return _with_audio(_folder_extent(paths["frames"], settings.fps), paths["audio"], spec)
    if paths["image"] is not None:
        with Image.open(paths["image"]) as image:
            extent["image_size"] = image.size
    return _with_audio(MediaExtent(**extent), paths["audio"], spec)


def _with_audio(extent: MediaExtent, audio: Path | None, spec: ModelSpec) -> MediaExtent:
    """A separate audio file replaces the video's own track (as `media.load_sample_media` does)."""
    if audio is None:
        return extent
    from dataclasses import replace

    from affect_mllm.media import probe_media

    header = probe_media(audio, expect="audio")
    return replace(extent, audio_samples=round((header.audio_duration_s or 0.0) * spec.media.sample_rate))


@dataclass
class TokenCounter:
    """Counts the tokens of training rows for one model, data settings and stage."""

    spec: ModelSpec
    renderer: object  # a processor (or tokenizer) with `apply_chat_template` and a tokenizer
    rationale_style: str = "reference"
    audio_in_video: bool = False
    completion_tokens: int | None = None  # GRPO: prompt + this many completion tokens; SFT (None): prompt + target
    _manifests: dict[str, Manifest] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from training.data import MediaChatCollator

        self.tokenizer = getattr(self.renderer, "tokenizer", self.renderer)
        self.placeholders = placeholder_ids(self.tokenizer, self.spec.arch)
        self.geometry = VisionGeometry.from_config(model_config(self.spec).get("vision_config", {}))
        # the SFT collator decides which rationale a target carries; it needs no processor for that
        self._rationales = MediaChatCollator(None, self.spec, rationale_style=self.rationale_style)

    def manifest(self, path: str) -> Manifest:
        if path not in self._manifests:
            self._manifests[path] = read_manifest(path)
        return self._manifests[path]

    def row(self, row: dict) -> dict:
        """Tokens of one training row: prompt, target (SFT), media parts and the total sequence."""
        sample = Sample.from_record(json.loads(row["sample"]))
        extent = media_extent(self.manifest(row["manifest"]), sample, self.spec)
        presence = SampleMedia(video=_PRESENT if extent.video_frames else None,
                               image=_PRESENT if extent.image_size else None,
                               audio=_PRESENT if extent.audio_samples else None)
        interleave = self.audio_in_video and self.completion_tokens is None  # GRPO rollouts never interleave
        if interleave and extent.video_frames and not extent.audio_samples:
            raise MediaError(row["manifest"], f"sample {sample.id!r}: audio_in_video needs an audio track, its "
                                              "video has none (the processor fails on it)")
        conversation = conversation_for(sample, presence, row["task"], self.spec, variant=row["variant"],
                                        cot=row["cot"], audio_in_video=interleave)
        media = media_tokens(extent, self.spec.media, self.geometry, self.spec.has_audio)
        prompt_text = render_prompt(self.renderer, conversation)
        prompt = expanded_length(self.tokenizer(prompt_text)["input_ids"], self.placeholders, media, interleave)
        if self.completion_tokens is None:
            end = self.tokenizer.eos_token or "<|im_end|>"
            target = target_text(sample, row["task"], self._rationales.rationale(sample)) + end
            total = expanded_length(self.tokenizer(prompt_text + target)["input_ids"], self.placeholders, media,
                                    interleave)
        else:
            total = prompt + self.completion_tokens
        return {"id": sample.id, "prompt": prompt, "answer": total - prompt, "total": total, "video": media.video,
                "image": media.image, "audio": media.audio if self.spec.has_audio else 0, "frames": media.frames}
