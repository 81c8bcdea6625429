"""The inference side of the modality check: rerun a prediction set with one modality removed.

`affect_mllm.modality.mask_media` removes the modality from the decoded media (muted audio, blank frames). With the
local engine the masked media go straight into the request (`inference.engine.request_from_sample(..., mask=)`);
a server decodes files itself, so `masked_clip` writes the masked clip as a file of its own (frames at the model's
fps, re-encoded near-losslessly, and the muted or original audio) for the client to send. The prompt is left as it
was: it states the modalities the clip has, so only the signal is missing.

    affect-mllm predict data/val.jsonl --out runs/pred_muted.jsonl --model M --adapter A --mask audio
    affect-mllm evaluate --pred runs/pred.jsonl --gold data/val.jsonl --ablate audio=runs/pred_muted.jsonl ...
"""

from __future__ import annotations

from pathlib import Path

from affect_mllm.media import MediaSettings, load_sample_media
from affect_mllm.modality import mask_media
from inference.client import Clip
from inference.timeline_answer import media_clip


def masked_clip(clip: Clip, mask: str, folder: Path, settings: MediaSettings = MediaSettings()) -> Clip:
    """The clip with `mask` ("audio" or "video") removed, written under `folder` (the caller deletes it).

    Raises:
        MediaError: the clip cannot be decoded.
    """
    media = mask_media(load_sample_media(video=clip.video, audio=clip.audio, settings=settings), mask)
    if media.video is None:  # an audio-only clip: its (muted) track as a lossless WAV file
        import soundfile

        path = Path(folder) / "masked.wav"
        soundfile.write(path, media.audio, settings.sample_rate, subtype="FLOAT")
        return Clip(audio=path, subtitle=clip.subtitle)
    return Clip(video=media_clip(media, Path(folder) / "masked.mp4", settings), subtitle=clip.subtitle)
