"""The inference side of the modality check: rerun a prediction set with one modality removed.

`affect_mllm.modality.mask_media` removes the modality from decoded media (muted audio, blank frames). Two
wrappers put it in front of whatever answers, so every caller (predict, chat, timeline) gets the same masking
without a second code path:

- `MaskingEngine(engine, mask)`: a local engine whose requests have their media masked before generation;
- `MaskingClient(client, mask)`: a server client whose clips are decoded, masked and written as a clip of their own
  (frames at the model's fps re-encoded near-losslessly, the muted or original audio) before they are sent, since a
  server decodes files itself.

The prompt is left as it was: it states the modalities the clip has, so only the signal is missing.

    affect-mllm predict data/val.jsonl --out runs/pred_muted.jsonl --model M --adapter A --mask audio
    affect-mllm evaluate --pred runs/pred.jsonl --gold data/val.jsonl --ablate audio=runs/pred_muted.jsonl ...
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from affect_mllm.media import MediaSettings, load_sample_media
from affect_mllm.modality import ABLATIONS, mask_media
from affect_mllm.models.inputs import Conversation
from inference.client import Clip
from inference.engine import Generation, GenerationRequest, SamplingSettings
from inference.timeline_answer import media_clip


def _check(mask: str) -> str:
    if mask not in ABLATIONS:
        raise ValueError(f"can mask one of {ABLATIONS}, not {mask!r}")
    return mask


class MaskingEngine:
    """An engine whose requests lose one modality ("audio" or "video") before they reach the model."""

    def __init__(self, engine, mask: str) -> None:
        self.engine, self.mask = engine, _check(mask)

    def __getattr__(self, name: str):
        return getattr(self.engine, name)  # spec, processor, adapter_names ...: the wrapped engine's

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[list[Generation]]:
        """The wrapped engine's answers to the masked requests."""
        masked = [replace(r, conversation=Conversation(r.conversation.messages,
                                                       mask_media(r.conversation.media, self.mask)))
                  for r in requests]
        return self.engine.generate(masked, sampling)

    def close(self) -> None:
        self.engine.close()


def masked_clip(clip: Clip, mask: str, folder: Path, settings: MediaSettings = MediaSettings()) -> Clip:
    """The clip with `mask` ("audio" or "video") removed, written under `folder` (the caller deletes it).

    Raises:
        MediaError: the clip cannot be decoded.
    """
    media = mask_media(load_sample_media(video=clip.video, audio=clip.audio, settings=settings), _check(mask))
    if media.video is None:  # an audio-only clip: its (muted) track as a lossless WAV file
        import soundfile

        path = Path(folder) / "masked.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, media.audio, settings.sample_rate, subtype="FLOAT")
        return Clip(audio=path, subtitle=clip.subtitle)
    return Clip(video=media_clip(media, Path(folder) / "masked.mp4", settings), subtitle=clip.subtitle)


class MaskingClient:
    """A server client (`AffectClient`) whose clips lose one modality before they are sent."""

    def __init__(self, client, mask: str, settings: MediaSettings = MediaSettings()) -> None:
        self.client, self.mask, self.settings = client, _check(mask), settings

    def __getattr__(self, name: str):
        return getattr(self.client, name)  # model, models(), complete() ...: the wrapped client's

    def analyze(self, clip: Clip, task: str = "ov_emotion", *, media: str = "file", **options):
        """`AffectClient.analyze` on the masked clip, sent as data (the masked file lives only for the request)."""
        with tempfile.TemporaryDirectory(prefix="affect-mllm-masked-") as folder:
            return self.client.analyze(masked_clip(clip, self.mask, Path(folder), self.settings), task,
                                       media="data", **options)
