"""Tokens per sample from container headers alone: the Qwen2-VL / Qwen2.5-Omni processor formulas, no decoding.

What the processors do (transformers 5.19, `Qwen2VLVideoProcessor`, `Qwen2VLImageProcessor`,
`WhisperFeatureExtractor`, `Qwen2_5OmniProcessor.replace_multimodal_special_tokens`), restated here so that a
preflight can count a manifest of thousands of clips from their headers in seconds:

- video: our sampler keeps `len(media.sample_indices(frames, fps, settings))` frames (2 fps, clamped, a multiple
  of the temporal patch); the processor pads them to a multiple of `temporal_patch_size` (grid_t = ceil(T / 2)),
  resizes each frame with `smart_resize(h, w, factor=patch*merge, min_pixels, max_pixels)` and merges 2x2 patches:
  tokens = grid_t * (h' / patch) * (w' / patch) / merge**2.
- image: the same resize with the image caps (`models.inputs.processor_media_kwargs`), grid_t = 1.
- audio: 16 kHz samples, truncated at 30 s (`models.inputs` pads and truncates there); mel frames =
  ceil(samples / hop 160); the audio tower halves twice: tokens = ((frames - 1) // 2 + 1 - 2) // 2 + 1 (25 a second).
- Qwen2.5-Omni audio-in-video: one `<|VIDEO|>` becomes `<|audio_bos|>` + the video and audio tokens interleaved in
  2 s chunks + `<|audio_eos|>` (the vision bos/eos stay), and there is no separate audio part.

`tests/test_preflight.py` checks these counts against the real processor's `input_ids` on real clips.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from affect_mllm.media import MediaSettings, sample_indices

WHISPER_HOP = 160  # samples per mel frame at 16 kHz (Qwen2.5-Omni's WhisperFeatureExtractor)
WHISPER_CHUNK_S = 30  # training truncates longer audio to one 30 s chunk (models.inputs._audio_padding)

# The placeholder each chat template writes for a media part (the processor expands it to the media's tokens).
PLACEHOLDERS = {
    "qwen2_5_omni": {"video": "<|VIDEO|>", "image": "<|IMAGE|>", "audio": "<|AUDIO|>"},
    "qwen3_omni_moe": {"video": "<|video_pad|>", "image": "<|image_pad|>", "audio": "<|audio_pad|>"},
    "qwen2_5_vl": {"video": "<|video_pad|>", "image": "<|image_pad|>"},
    "qwen3_vl": {"video": "<|video_pad|>", "image": "<|image_pad|>"},
}
# Architectures whose processors follow exactly the formulas above; others are counted with them as an estimate.
EXACT_ARCHS = ("qwen2_5_omni", "qwen2_5_vl")


@dataclass(frozen=True)
class VisionGeometry:
    """The vision tower's patching, which the processor must match (model config `vision_config`)."""

    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2

    @classmethod
    def from_config(cls, vision_config: Mapping) -> VisionGeometry:
        """Read patch, merge and temporal patch sizes from a config's `vision_config` dict."""
        return cls(int(vision_config.get("patch_size", 14)), int(vision_config.get("spatial_merge_size", 2)),
                   int(vision_config.get("temporal_patch_size", 2)))

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


@dataclass(frozen=True)
class MediaExtent:
    """What a sample's media headers say (no frame is decoded); None where the sample has no such media."""

    video_frames: int | None = None  # frames in the container, or images in a frames folder
    video_fps: float | None = None  # the container's frame rate (a frames folder: the settings' fps)
    width: int | None = None  # of the video frames
    height: int | None = None
    image_size: tuple[int, int] | None = None  # (width, height) of an image input
    audio_samples: int | None = None  # at the model's sample rate, after resampling


@dataclass(frozen=True)
class MediaTokens:
    """Placeholder tokens each media part expands to."""

    video: int = 0
    image: int = 0
    audio: int = 0
    frames: int = 0  # frames the sampler keeps (for the table)


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The Qwen2-VL processors' resize (the function they call, so rounding is identical)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as qwen_smart_resize

    return qwen_smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)


def video_tokens(frames: int, height: int, width: int, settings: MediaSettings, geometry: VisionGeometry) -> int:
    """Tokens of `frames` already-sampled frames of height x width after the processor's resize and merge."""
    grid_t = math.ceil(frames / geometry.temporal_patch_size)
    h, w = smart_resize(height, width, geometry.factor, settings.min_pixels, settings.max_pixels)
    return grid_t * (h // geometry.patch_size) * (w // geometry.patch_size) // geometry.merge_size**2


def image_tokens(height: int, width: int, settings: MediaSettings, geometry: VisionGeometry) -> int:
    """Tokens of one image (the image caps: `models.inputs.processor_media_kwargs`)."""
    h, w = smart_resize(height, width, geometry.factor, settings.min_pixels, 4 * settings.max_pixels)
    return (h // geometry.patch_size) * (w // geometry.patch_size) // geometry.merge_size**2


def audio_tokens(samples: int, sample_rate: int = 16000, max_seconds: float = WHISPER_CHUNK_S) -> int:
    """Audio tokens of `samples` at `sample_rate` (Whisper frames, halved twice by the audio tower).

    `max_seconds`: where the feature extractor truncates; 30 s in training (`models.inputs` pads and truncates
    to at most 30 s), the published Qwen2.5-Omni feature extractor's `chunk_length` (300 s) when it runs alone.
    """
    if samples <= 0:
        return 0
    kept = min(samples, int(max_seconds * sample_rate))
    frames = math.ceil(kept / WHISPER_HOP)
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def sampled_frames(frames: int, fps: float, settings: MediaSettings) -> int:
    """Frames our sampler keeps from a clip of `frames` at `fps` (the training decoder's own formula)."""
    return len(sample_indices(frames, fps, settings))


def media_tokens(extent: MediaExtent, settings: MediaSettings, geometry: VisionGeometry, hears: bool) -> MediaTokens:
    """Placeholder tokens of a sample's media; audio only for a model that hears."""
    video = image = kept = 0
    if extent.image_size:
        image = image_tokens(extent.image_size[1], extent.image_size[0], settings, geometry)
    if extent.video_frames and extent.width and extent.height:
        kept = sampled_frames(extent.video_frames, extent.video_fps or settings.fps, settings)
        video = video_tokens(kept, extent.height, extent.width, settings, geometry)
    audio = audio_tokens(extent.audio_samples or 0, settings.sample_rate) if hears else 0
    return MediaTokens(video=video, image=image, audio=audio, frames=kept)


def placeholder_ids(tokenizer, arch: str) -> dict[str, int]:
    """Token id of each media placeholder of `arch` in `tokenizer`."""
    return {kind: tokenizer.convert_tokens_to_ids(token) for kind, token in PLACEHOLDERS[arch].items()}


def expanded_length(token_ids: Sequence[int], placeholders: Mapping[str, int], tokens: MediaTokens,
                    audio_in_video: bool = False) -> int:
    """Length of a tokenized text once the processor has expanded its media placeholders.

    Each placeholder is one id in `token_ids`; the processor replaces it with `tokens.<kind>` ids. With
    audio-in-video the video placeholder takes the audio too, plus its `<|audio_bos|>`/`<|audio_eos|>`.
    """
    length = len(token_ids)
    for kind, token_id in placeholders.items():
        count = sum(1 for t in token_ids if t == token_id)
        if not count:
            continue
        size = getattr(tokens, kind)
        if kind == "video" and audio_in_video:
            size += tokens.audio + 2
        length += count * (size - 1)
    return length


def percentile_summary(lengths: Sequence[int], ids: Sequence[str], limit: int, first: int = 5) -> dict:
    """p50 / p95 / max of per-sample lengths and the samples over `limit` (count and the first few ids)."""
    import numpy as np

    if not lengths:
        raise ValueError("no samples to summarise")
    values = np.asarray(lengths)
    over = [sample_id for sample_id, n in zip(ids, lengths, strict=True) if n > limit]
    return {"p50": int(np.percentile(values, 50, method="higher")),
            "p95": int(np.percentile(values, 95, method="higher")), "max": int(values.max()),
            "mean": round(float(values.mean()), 1), "over_max_length": len(over), "over_ids": over[:first],
            "max_length": limit}
