"""The client helper `chat`, `predict` and users' code share: clip -> OpenAI chat messages -> tagged answer -> JSON.

It talks to any OpenAI-compatible server through the official `openai` client, `affect-mllm serve` first of all:

    client = AffectClient("http://127.0.0.1:8000/v1", api_key="KEY")
    result = client.analyze(Clip(video=Path("clips/c1.mp4")), task="ov_emotion", media="file")
    result.json["emotions"], result.json["rationale"]

Messages are the conversation SFT trains on (`models.inputs.build_messages`): the system prompt, then one user turn
with the media parts first (video, then audio) and the task prompt of `prompts.build_prompt`, which states the
modalities the clip really has. Media travel two ways:

- `media="file"`: `file://` URLs; the server decodes them, and only under its `--media-root`;
- `media="data"`: the video file's bytes as a data URL, and the audio decoded by our pipeline
  (`media.load_audio`: 16 kHz mono) as a lossless float WAV, in an `input_audio` or `audio_url` part.

The JSON form comes from parsing the tagged text the model was trained to write (`answer.parse_answer`,
`answer.answer_to_json`). Guided decoding, when asked, constrains that same tag grammar (a regex), never a JSON
layout the model never saw.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from affect_mllm.answer import ParsedAnswer, answer_to_json, parse_answer
from affect_mllm.media import MediaError, MediaSettings
from affect_mllm.prompts import SYSTEM_PROMPT, Modalities, build_prompt
from affect_mllm.schema import Manifest, Sample
from inference.engine import SamplingSettings

MEDIA_MODES = ("file", "data")
AUDIO_PARTS = ("input_audio", "audio_url")
VIDEO_MIME = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
}
DEFAULT_SAMPLING = SamplingSettings()  # greedy, 256 new tokens (frozen, so safe as a default)
# Bounds of the guided grammar: the tiny models' rationales can loop, so the grammar closes the tags in time.
MAX_RATIONALE_CHARS = 400
MAX_LIST_ITEMS = 8


@dataclass(frozen=True)
class Clip:
    """What to ask about: a video (its own audio track is heard when it has one), an audio file, or both.

    A separate `audio` file replaces the video's own track, as in a manifest sample.
    """

    video: Path | None = None
    audio: Path | None = None
    subtitle: str | None = None

    def __post_init__(self) -> None:
        if self.video is None and self.audio is None:
            raise ValueError("a clip needs a video or an audio file")

    @classmethod
    def from_sample(cls, sample: Sample, manifest: Manifest) -> Clip:
        """A manifest sample's clip, its paths resolved and confined to the manifest's roots (ManifestError)."""
        if sample.video is None and sample.audio is None:
            raise MediaError(
                sample.image or sample.frames or sample.id, "only video and audio samples can be sent to a server"
            )
        return cls(
            video=manifest.media_path(sample, "video"),
            audio=manifest.media_path(sample, "audio"),
            subtitle=sample.subtitle,
        )

    @property
    def audio_source(self) -> Path | None:
        """The file whose audio the model hears: the separate audio file, else the video if it has a track."""
        if self.audio is not None:
            return self.audio
        return self.video if self.video is not None and has_audio_track(self.video) else None


def has_audio_track(path: Path) -> bool:
    """Whether a media file has an audio stream (reads the container header only).

    Raises:
        MediaError: the file is missing or not a readable container.
    """
    import av

    if not Path(path).is_file():
        raise MediaError(path, "file not found")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(path, f"not a readable media container ({exc})") from None


def clip_prompt(
    clip: Clip, task: str = "ov_emotion", *, variant: int = 0, cot: bool = False, hears_audio: bool = True
) -> str:
    """The task prompt for a clip, stating the modalities it has (no audio track: the prompt says so)."""
    heard = hears_audio and clip.audio_source is not None
    modalities = Modalities(video=clip.video is not None, audio=heard, subtitle=bool(clip.subtitle))
    return build_prompt(task, modalities, subtitle=clip.subtitle, variant=variant, cot=cot)


def file_url(path: Path) -> str:
    """A `file://` URL of the absolute path (the server checks it lies under its media root)."""
    return Path(path).resolve().as_uri()


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def wav_bytes(path: Path, settings: MediaSettings = MediaSettings()) -> bytes:
    """A file's audio decoded by our pipeline (mono, settings.sample_rate) as lossless float32 WAV bytes."""
    import soundfile

    from affect_mllm.media import load_audio

    wave = load_audio(path, settings)
    if wave is None:
        raise MediaError(path, "no audio stream")
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, settings.sample_rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def media_parts(
    clip: Clip,
    media: str = "file",
    *,
    audio_part: str = "audio_url",
    hears_audio: bool = True,
    settings: MediaSettings = MediaSettings(),
) -> list[dict]:
    """OpenAI content parts for a clip's media, video first (the order SFT's messages have).

    Args:
        clip: the clip.
        media: "file" (file:// URLs) or "data" (data URLs; the audio decoded by our pipeline).
        audio_part: "audio_url" or "input_audio" (data mode only; file mode always uses audio_url).
        hears_audio: False for a video-only model: no audio part.
        settings: decoding settings for the data mode's audio.

    Raises:
        MediaError: a file that is missing or cannot be read.
    """
    if media not in MEDIA_MODES:
        raise ValueError(f"unknown media mode {media!r}; choose from {', '.join(MEDIA_MODES)}")
    if audio_part not in AUDIO_PARTS:
        raise ValueError(f"unknown audio part {audio_part!r}; choose from {', '.join(AUDIO_PARTS)}")
    parts = []
    if clip.video is not None:
        url = file_url(clip.video) if media == "file" else _data_url(_video_mime(clip.video), _read(clip.video))
        parts.append({"type": "video_url", "video_url": {"url": url}})
    source = clip.audio_source if hears_audio else None
    if source is None:
        return parts
    if media == "file":
        parts.append({"type": "audio_url", "audio_url": {"url": file_url(source)}})
    elif audio_part == "input_audio":
        data = base64.b64encode(wav_bytes(source, settings)).decode("ascii")
        parts.append({"type": "input_audio", "input_audio": {"data": data, "format": "wav"}})
    else:
        parts.append({"type": "audio_url", "audio_url": {"url": _data_url("audio/wav", wav_bytes(source, settings))}})
    return parts


def _video_mime(path: Path) -> str:
    return VIDEO_MIME.get(Path(path).suffix.lower(), "video/mp4")


def _read(path: Path) -> bytes:
    if not Path(path).is_file():
        raise MediaError(path, "file not found")
    return Path(path).read_bytes()


def clip_messages(
    clip: Clip, text: str, media: str = "file", *, system: str | None = SYSTEM_PROMPT, **part_options
) -> list[dict]:
    """A one-turn conversation about a clip: system prompt, then the media parts and `text` in one user turn."""
    messages = [{"role": "system", "content": system}] if system else []
    content = [*media_parts(clip, media, **part_options), {"type": "text", "text": text}]
    messages.append({"role": "user", "content": content})
    return messages


def tagged_answer_regex(task: str = "ov_emotion", max_rationale_chars: int = MAX_RATIONALE_CHARS) -> str:
    """The task's answer grammar as a regex for guided decoding (`answer.answer_regex`, the emotion field held to
    the knowledge base's categories).

    It is the format SFT trains on, with the task's fields (`prompts.TASK_FIELDS`), so guiding only keeps a model on
    its own grammar; no JSON layout is imposed.
    """
    from affect_mllm.answer import answer_regex
    from affect_mllm.knowledge import CATEGORIES
    from affect_mllm.prompts import TASK_FIELDS

    if task not in TASK_FIELDS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASK_FIELDS)}")
    return answer_regex(TASK_FIELDS[task], categories=CATEGORIES, max_rationale_chars=max_rationale_chars,
                        max_list_items=MAX_LIST_ITEMS)


def sampling_request(sampling: SamplingSettings, seed: int | None = None, regex: str | None = None) -> dict:
    """The request's decoding fields, every knob explicit as the engines pass them (the server's defaults do
    not leak in); greedy is temperature 0. `regex` guides decoding (`tagged_answer_regex`)."""
    extra: dict = {"repetition_penalty": 1.0, "top_k": sampling.top_k}
    if regex is not None:
        extra["structured_outputs"] = {"regex": regex}
    fields: dict = {"max_tokens": sampling.max_new_tokens, "n": sampling.n, "extra_body": extra}
    if sampling.greedy:
        fields["temperature"] = 0.0
    else:
        fields.update(temperature=sampling.temperature, top_p=sampling.top_p)
        if seed is not None:
            fields["seed"] = seed
    return fields


@dataclass
class ClientAnswer:
    """One completion from the server: its text, the parsed answer and the JSON form served to users."""

    text: str
    finish_reason: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    answer: ParsedAnswer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.answer = parse_answer(self.text)

    @property
    def json(self) -> dict:
        """The structured answer (emotions, AUs, valence/arousal, rationale, well-formedness, raw text)."""
        return answer_to_json(self.answer)


class AffectClient:
    """A thin layer over `openai.OpenAI`: affective prompts in, parsed answers out."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        """Connect to an OpenAI-compatible server.

        Args:
            base_url: e.g. "http://127.0.0.1:8000/v1" (a URL without a path gets "/v1").
            api_key: the server's key (None: a server without one).
            model: the served model (or LoRA adapter) to ask; None: the server's first model.
            timeout: seconds per request.
            max_retries: the openai client's retries of connection errors and 429/5xx answers.
        """
        import openai

        self.openai = openai.OpenAI(
            base_url=_api_base(base_url), api_key=api_key or "none", timeout=timeout, max_retries=max_retries
        )
        self._model = model

    @property
    def model(self) -> str:
        """The model requests go to (asked of the server once when not given)."""
        if self._model is None:
            self._model = self.models()[0]
        return self._model

    def models(self) -> list[str]:
        """The names the server answers to: the base model, then its LoRA adapters."""
        return [m.id for m in self.openai.models.list().data]

    def complete(
        self,
        messages: Sequence[dict],
        sampling: SamplingSettings = DEFAULT_SAMPLING,
        *,
        model: str | None = None,
        seed: int | None = None,
        regex: str | None = None,
    ) -> list[ClientAnswer]:
        """Complete a conversation; one ClientAnswer per candidate (`sampling.n`), guided by `regex` if given.

        Raises:
            openai.APIStatusError: the server refused the request (4xx: bad media, unknown model, ...).
        """
        response = self.openai.chat.completions.create(
            model=model or self.model, messages=list(messages), **sampling_request(sampling, seed, regex)
        )
        usage = response.usage
        return [
            ClientAnswer(
                choice.message.content or "",
                choice.finish_reason or "length",
                response.model,
                usage.prompt_tokens if usage else None,
                usage.completion_tokens if usage else None,
            )
            for choice in sorted(response.choices, key=lambda c: c.index)
        ]

    def stream(
        self,
        messages: Sequence[dict],
        sampling: SamplingSettings = DEFAULT_SAMPLING,
        *,
        model: str | None = None,
        regex: str | None = None,
    ) -> Iterator[str]:
        """Complete a conversation (one candidate), yielding the text as it is generated (guided by `regex`)."""
        if sampling.n != 1:
            raise ValueError("streaming gives one candidate: use n=1")
        chunks = self.openai.chat.completions.create(
            model=model or self.model, messages=list(messages), stream=True, **sampling_request(sampling, regex=regex)
        )
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    def analyze(
        self,
        clip: Clip,
        task: str = "ov_emotion",
        *,
        media: str = "file",
        model: str | None = None,
        sampling: SamplingSettings = DEFAULT_SAMPLING,
        guided: bool = False,
        variant: int = 0,
        cot: bool = False,
        audio_part: str = "audio_url",
    ) -> ClientAnswer:
        """Ask the trained task question about a clip; `.json` holds the structured answer.

        With `guided`, decoding follows the task's tag grammar (`tagged_answer_regex`).

        Raises:
            MediaError: a local file is missing or unreadable.
            openai.APIStatusError: the server refused the request.
        """
        text = clip_prompt(clip, task, variant=variant, cot=cot)
        messages = clip_messages(clip, text, media, audio_part=audio_part)
        regex = tagged_answer_regex(task) if guided else None
        return self.complete(messages, sampling, model=model, regex=regex)[0]


def _api_base(base_url: str) -> str:
    """`http://host:port` -> `http://host:port/v1`; a URL with a path is kept."""
    from urllib.parse import urlparse

    stripped = base_url.rstrip("/")
    return stripped + "/v1" if urlparse(stripped).path in ("", "/") else stripped


def split_tagged(text: str) -> tuple[str, str]:
    """(rationale, answer) of a possibly unfinished tagged completion, for showing them apart while streaming.

    Text outside the tags (a model that did not follow the format) counts as the answer.

    Example:
        >>> split_tagged("<think>Brows drawn (AU4).</think><answer>emotions: ang")
        ('Brows drawn (AU4).', 'emotions: ang')
    """
    from affect_mllm.answer import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

    if THINK_OPEN not in text:
        return "", text.replace(ANSWER_OPEN, "").replace(ANSWER_CLOSE, "").strip()
    before, _, rest = text.partition(THINK_OPEN)
    rationale, closed, after = rest.partition(THINK_CLOSE)
    if not closed:
        return rationale.strip(), before.strip()
    answer = (before + after).replace(ANSWER_OPEN, "").replace(ANSWER_CLOSE, "")
    return rationale.strip(), answer.strip()
