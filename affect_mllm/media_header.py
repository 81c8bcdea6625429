"""Media headers read without decoding (`probe_media`) and the caps applied to them (`check_media_caps`).

Both run before any decoder: on a file for the offline pipeline (`media.load_video`, `load_audio`,
`load_segment`) and on in-memory bytes (a data URL's payload) for a server's request guard, so a small file that
would decode to gigabytes is refused first, with the same caps (`MediaSettings` fields) everywhere.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from affect_mllm.media import MediaSettings


class MediaError(Exception):
    """A media file that cannot be used, naming the file and the fault."""

    def __init__(self, path: str | Path, fault: str) -> None:
        self.path, self.fault = str(path), fault
        super().__init__(f"{path}: {fault}")



def check_file(path: Path) -> None:
    """Refuse a missing path, a folder or an empty file, naming it."""
    if not path.exists():
        raise MediaError(path, "file not found")
    if path.is_dir():
        raise MediaError(path, "is a folder, not a media file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")


def open_container(source, label: str):
    """PyAV's container for a path (as str) or a file-like object, failures as MediaError naming `label`."""
    import av

    try:
        return av.open(source, metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise MediaError(label, "not a readable media container (invalid data: truncated, or not media)") from None
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(label, f"cannot open media container ({exc})") from None


@dataclass(frozen=True)
class MediaHeader:
    """What a media file's container headers say, read without decoding a frame."""

    name: str
    container: str  # FFmpeg's format name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "h264", "matroska,webm"
    duration_s: float | None  # as the header states it; None when it states none (a raw stream)
    width: int
    height: int
    fps: float
    frame_count: int | None  # as stated, or counted from the packets when no duration is stated; None: unknown
    has_video: bool
    has_audio: bool
    audio_sample_rate: int | None
    audio_channels: int | None
    audio_duration_s: float | None
    is_image: bool = False  # a still image container (PNG, JPEG, ...), whatever the file is called

    @property
    def video_duration_s(self) -> float | None:
        """The stated duration, or the counted frames over the fps where the header states none."""
        if self.duration_s is not None:
            return self.duration_s
        return self.frame_count / self.fps if self.frame_count and self.fps else None


def _is_image_format(name: str) -> bool:
    return name.endswith("_pipe") or name in ("image2", "apng")


def _stream_duration_s(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base is microseconds
    return None


def _count_packets(container, video, audio) -> tuple[int, float]:
    """Video packets (one per frame) and audio seconds, by demuxing: nothing is decoded."""
    frames, audio_ticks = 0, 0
    for packet in container.demux([s for s in (video, audio) if s is not None]):
        if not packet.size:
            continue
        if packet.stream is video:
            frames += 1
        elif packet.duration:
            audio_ticks += packet.duration
    return frames, float(audio_ticks * audio.time_base) if audio is not None and audio_ticks else 0.0


def _header_of(container, label: str) -> MediaHeader:
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    duration = _stream_duration_s(container, video) if video is not None else None
    audio_duration = _stream_duration_s(container, audio) if audio is not None else None
    width = height = frame_count = 0
    fps = 0.0
    if video is not None:
        width, height = video.codec_context.width, video.codec_context.height
        # a raw stream's average rate is the demuxer's default (25); the guessed rate reads the stream's timing
        rates = (video.guessed_rate, video.average_rate) if duration is None else (video.average_rate,
                                                                                 video.guessed_rate)
        rate = next((r for r in (*rates, video.base_rate) if r), None)
        fps = float(rate) if rate else 0.0
        frame_count = video.frames
    if (video is not None and duration is None and not frame_count) or (audio is not None and audio_duration is None):
        counted, audio_seconds = _count_packets(container, video, audio)
        frame_count = frame_count or counted
        audio_duration = audio_duration if audio_duration is not None else audio_seconds or None
    return MediaHeader(
        name=label, container=container.format.name, duration_s=duration if video is not None else audio_duration,
        width=width, height=height, fps=fps, frame_count=frame_count or None,
        has_video=video is not None, has_audio=audio is not None,
        audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
        audio_channels=audio.codec_context.channels if audio is not None else None,
        audio_duration_s=audio_duration, is_image=_is_image_format(container.format.name))


def probe_media(source: str | Path | bytes, *, name: str | None = None, expect: str = "video") -> MediaHeader:
    """Read a media file's container headers (a path, or in-memory bytes such as a data URL's payload).

    No frame is decoded; only where the header states no duration are the packets counted (demuxed, not decoded).

    Args:
        source: a file path, or the file's bytes.
        name: how errors name the input (default: the path, or "<in-memory media>").
        expect: "video" (a video stream is required), "audio" (an audio stream is required) or "any".

    Raises:
        MediaError: naming the input and the fault (missing, empty, not a media container, an image, no stream).
    """
    if expect not in ("video", "audio", "any"):
        raise ValueError(f"expect must be 'video', 'audio' or 'any', not {expect!r}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<in-memory media>"
        if not len(source):
            raise MediaError(label, "empty (0 bytes)")
        opened = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        label = name or str(path)
        check_file(path)
        opened = str(path)
    with open_container(opened, label) as container:
        header = _header_of(container, label)
    _check_streams(header, expect)
    return header


def _check_streams(header: MediaHeader, expect: str) -> None:
    if header.is_image and expect != "audio":
        kind = header.container.removesuffix("_pipe")
        raise MediaError(header.name, f"an image file ({kind}), not a video or audio container: "
                                      "use it as an `image` input")
    if expect == "video" and not header.has_video:
        if header.has_audio:
            raise MediaError(header.name, "no video stream (an audio-only file: use it as an `audio` input)")
        raise MediaError(header.name, "no video stream")
    if expect == "audio" and not header.has_audio:
        raise MediaError(header.name, "no audio stream")
    if expect == "any" and not (header.has_video or header.has_audio):
        raise MediaError(header.name, "no video or audio stream")


def check_media_caps(header: MediaHeader, settings: MediaSettings, *, name: str) -> None:
    """Refuse input over the caps the offline pipeline applies, before anything decodes.

    Raises:
        MediaError: naming `name` and the cap exceeded (the MediaSettings field and its value).
    """
    fault = _video_cap_fault(header, settings) if header.has_video else None
    limit = settings.max_duration_s
    if fault is None and header.audio_duration_s is not None and header.audio_duration_s > limit:
        fault = f"audio lasts {header.audio_duration_s:.0f} s, over max_duration_s = {limit:.0f} s"
    if fault is not None:
        raise MediaError(name, fault)


def _video_cap_fault(header: MediaHeader, settings: MediaSettings) -> str | None:
    size = f"{header.width}x{header.height}"
    if header.width <= 0 or header.height <= 0:
        return f"invalid frame size {size}"
    if max(header.width, header.height) > settings.max_side:
        return f"absurd frame size {size}: over max_side = {settings.max_side} px per side"
    if header.width * header.height > settings.max_frame_pixels:
        return (f"frame size {size} = {header.width * header.height} pixels, over max_frame_pixels = "
                f"{settings.max_frame_pixels}")
    frames = header.frame_count or (round(header.duration_s * header.fps) if header.duration_s else None)
    if frames is not None and frames > settings.max_total_frames:
        return f"{frames} frames, over max_total_frames = {settings.max_total_frames}"
    duration = header.video_duration_s
    if duration is None:
        return "the header states no duration and no frames could be counted"
    if duration > settings.max_duration_s:
        counted = " (counted from its frames: the header states none)" if header.duration_s is None else ""
        return f"duration {duration:.0f} s{counted}, over max_duration_s = {settings.max_duration_s:.0f} s"
    return None
