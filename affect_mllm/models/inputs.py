"""(sample media, prompt) -> processor inputs for the chosen architecture: the only file that knows how.

Media go to the processor as decoded numpy arrays (our decoder's frames and 16 kHz audio), with the media
settings' fps and pixel caps passed at call time: the processors' class defaults would otherwise upscale small
frames (a 64x64 clip became 336x336, 655 prompt tokens instead of 99; cpu_stack_findings.md section 2).

Video and audio are two parts of the user turn by default. `audio_in_video=True` uses Qwen2.5-Omni's
time-interleaved audio-in-video instead (transformers 5.19: the processor and `generate` both take
`use_audio_in_video=True`); it needs frames at 2 fps to match vLLM's interleaving.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from affect_mllm.media import SampleMedia
from affect_mllm.models.registry import ModelSpec
from affect_mllm.schema import Sample

IGNORE_INDEX = -100


def user_content(media: SampleMedia, text: str, spec: ModelSpec, audio_in_video: bool = False) -> list[dict]:
    """Content parts of a user turn: the media placeholders (video/image, then audio), then the text."""
    parts = []
    if media.video is not None:
        parts.append({"type": "video"})
    if media.image is not None:
        parts.append({"type": "image"})
    if media.audio is not None and spec.has_audio and not audio_in_video:
        parts.append({"type": "audio"})
    parts.append({"type": "text", "text": text})
    return parts


def build_messages(media: SampleMedia, prompt: str, spec: ModelSpec, system: str | None = None,
                   audio_in_video: bool = False) -> list[dict]:
    """A one-turn conversation asking `prompt` about the media."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user_content(media, prompt, spec, audio_in_video)})
    return messages


@dataclass
class Conversation:
    """Messages (media parts are placeholders) plus the decoded media they refer to."""

    messages: list[dict]
    media: SampleMedia


def conversation_for(sample: Sample, media: SampleMedia, task: str, spec: ModelSpec, *, variant: int = 0,
                     cot: bool = False, audio_in_video: bool = False) -> Conversation:
    """The prompt conversation for a sample and task (the same one inference builds)."""
    from affect_mllm.prompts import SYSTEM_PROMPT, Modalities, build_prompt

    modalities = Modalities(video=media.video is not None, image=media.image is not None,
                            audio=media.audio is not None and spec.has_audio, subtitle=bool(sample.subtitle))
    prompt = build_prompt(task, modalities, subtitle=sample.subtitle, variant=variant, cot=cot, face=media.face)
    return Conversation(build_messages(media, prompt, spec, SYSTEM_PROMPT, audio_in_video), media)


def model_media(media: SampleMedia, spec: ModelSpec) -> dict:
    """The decoded media the model takes, by kind ("video", "image", "audio"): audio only where the model hears."""
    items = {"video": media.video, "image": media.image, "audio": media.audio if spec.has_audio else None}
    return {kind: value for kind, value in items.items() if value is not None}


def processor_media_kwargs(spec: ModelSpec) -> dict:
    """Per-modality processor options (fps, pixel caps) from the media settings; HF `encode` and vLLM share them."""
    return {"videos_kwargs": spec.media.processor_video_kwargs(),
            "images_kwargs": {"min_pixels": spec.media.min_pixels, "max_pixels": 4 * spec.media.max_pixels}}


# Processors that time video frames from the video's metadata (`sampled_fps`), not from the `fps` option: without
# metadata transformers assumes 24 fps, so 2 fps frames got 1/12 of their real temporal spacing in mrope
# (second_per_grid_ts 0.083 instead of 1.0). vLLM requires the metadata for these models as well.
VIDEO_METADATA_ARCHS = ("qwen2_5_vl", "qwen3_vl")


def video_metadata(frames, spec: ModelSpec) -> dict:
    """What the processor needs to know about pre-sampled frames: all of them kept, taken at the settings' fps."""
    count = int(frames.shape[0])
    return {"fps": spec.media.fps, "total_num_frames": count, "frames_indices": list(range(count)),
            "duration": count / spec.media.fps}


def render_prompt(processor, conversation: Conversation, add_generation_prompt: bool = True) -> str:
    """The conversation as the chat template writes it (media parts become placeholder tokens)."""
    return processor.apply_chat_template(conversation.messages, add_generation_prompt=add_generation_prompt,
                                         tokenize=False)


def _media_lists(conversations: Sequence[Conversation], spec: ModelSpec) -> dict:
    items = [model_media(c.media, spec) for c in conversations]
    videos = [m["video"] for m in items if "video" in m]
    images = [m["image"] for m in items if "image" in m]
    audios = [m["audio"] for m in items if "audio" in m]
    out = {}
    if videos:
        out["videos"] = videos
    if images:
        out["images"] = images
    if audios:
        out["audio"] = audios
    return out


def _audio_padding(audios: Sequence, sample_rate: int) -> dict:
    """Pad audio features to the batch's longest clip plus one second, not Whisper's fixed 30 s.

    The feature extractor pads with zeros; the frames of the real audio come out identical whether 1 s or 26 s
    of zeros follow (the log-mel floor is set by the loudest frame), and the encoders read only the frames
    `feature_attention_mask` marks, so the model sees the same thing at 8x less extraction cost. Serving
    (vLLM) keeps the 30 s default; a test checks the outputs agree.
    """
    longest = max(len(a) for a in audios)
    padded = min(30 * sample_rate, (math.ceil(longest / sample_rate) + 1) * sample_rate)
    return {"padding": "max_length", "max_length": padded, "truncation": True}


def encode(processor, spec: ModelSpec, conversations: Sequence[Conversation], *, add_generation_prompt: bool = True,
           suffixes: Sequence[str] | None = None, padding_side: str = "left", audio_in_video: bool = False):
    """Run the chat template and the processor over a batch.

    Args:
        processor: the model's processor.
        spec: the model's spec (architecture, media settings).
        conversations: the batch.
        add_generation_prompt: end each text with the assistant header.
        suffixes: text appended to each rendered conversation (the assistant's answer, for training).
        padding_side: "left" for generation, "right" for training.
        audio_in_video: Qwen2.5-Omni interleaved audio-in-video.

    Returns:
        The processor's BatchFeature (input_ids, attention_mask, pixel values, audio features, grids).
    """
    texts = [render_prompt(processor, c, add_generation_prompt) for c in conversations]
    if suffixes is not None:
        texts = [t + s for t, s in zip(texts, suffixes, strict=True)]
    kwargs = _media_lists(conversations, spec)
    media_kwargs = processor_media_kwargs(spec)
    if "videos" in kwargs:
        kwargs["videos_kwargs"] = media_kwargs["videos_kwargs"]
        if spec.arch in VIDEO_METADATA_ARCHS:
            metadata = [video_metadata(video, spec) for video in kwargs["videos"]]
            kwargs["videos_kwargs"] = {**kwargs["videos_kwargs"], "video_metadata": metadata}
    if "audio" in kwargs:
        kwargs["audio_kwargs"] = _audio_padding(kwargs["audio"], spec.media.sample_rate)
    if "images" in kwargs:
        kwargs["images_kwargs"] = media_kwargs["images_kwargs"]
    if audio_in_video:
        kwargs["use_audio_in_video"] = True
    # the omni processor's own default is left padding, whatever the tokenizer says: pass the side explicitly
    text_kwargs = {"padding": True, "padding_side": padding_side}
    return processor(text=texts, return_tensors="pt", text_kwargs=text_kwargs, **kwargs)


def encode_for_training(processor, spec: ModelSpec, conversations: Sequence[Conversation], answers: Sequence[str],
                        audio_in_video: bool = False):
    """Encode prompt + answer + end token, with labels only on the answer and the end token.

    The end token is in the target so that greedy generation learns to stop (learnability_findings.md).

    Returns:
        BatchFeature with `labels` (-100 over the prompt and the padding).
    """
    end = processor.tokenizer.eos_token or "<|im_end|>"
    targets = [answer + end for answer in answers]
    batch = encode(processor, spec, conversations, add_generation_prompt=True, suffixes=targets,
                   padding_side="right", audio_in_video=audio_in_video)
    labels = batch["input_ids"].clone()
    labels[:] = IGNORE_INDEX
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    for row, (target, length) in enumerate(zip(targets, lengths, strict=True)):
        target_ids = processor.tokenizer(target, add_special_tokens=False)["input_ids"]
        start = length - len(target_ids)
        if batch["input_ids"][row, start:length].tolist() != target_ids:
            raise ValueError("the answer tokenizes differently inside the conversation; cannot mask the prompt")
        labels[row, start:length] = batch["input_ids"][row, start:length]
    batch["labels"] = labels
    return batch
