"""Media pipeline: video frames sampled at a fixed fps, audio as 16 kHz mono float32, one error type.

Why we decode ourselves: transformers 5.19+ decodes video files only through torchcodec, which does not load on
this CPU stack (shared/notes/cpu_stack_findings.md). We pass numpy arrays to the processor instead.

Frame sampling follows the Qwen2-VL video processor's fps mode, which vLLM's `qwen2_vl` video loader ports
index-for-index, so training (our decoder) and serving (vLLM decoding a `video_url`) see the same frames:
n = total / native_fps * fps, clamped to [min_frames, min(max_frames, total)], floored to a multiple of the
temporal patch (2); indices = float32 arange(0, total, total / n). Frames keep their native size: the pixel caps
(`min_pixels`/`max_pixels`) are applied by the model's processor, identically in HF and vLLM.

Every failure raises `MediaError(path, fault)`: missing, empty, truncated, not a media container, no video
stream, no decodable frames, absurd dimensions or duration.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class MediaError(Exception):
    """A media file that cannot be used, naming the file and the fault."""

    def __init__(self, path: str | Path, fault: str) -> None:
        self.path, self.fault = str(path), fault
        super().__init__(f"{path}: {fault}")


@dataclass(frozen=True)
class MediaSettings:
    """How clips become model inputs; the same values go to training, the HF engine and vLLM."""

    fps: float = 2.0  # Qwen's default; vLLM's omni audio-in-video interleaving assumes it
    min_frames: int = 4  # the Qwen2-VL sampler's floor (short clips are sampled up to it)
    max_frames: int = 32  # cap per clip: tokens grow linearly with frames
    temporal_patch_size: int = 2
    min_pixels: int = 3136  # per frame, applied by the processor (56x56)
    max_pixels: int = 12544  # per frame, applied by the processor (112x112 for the tiny models)
    sample_rate: int = 16000  # Whisper feature extractor rate
    max_duration_s: float = 600.0
    max_side: int = 8192  # larger frames in a header are treated as corrupt rather than decoded
    decoder: str = "auto"  # "auto" (decord where installed, else PyAV), "decord" or "pyav"

    def processor_video_kwargs(self) -> dict:
        """Keyword arguments for a Qwen video processor call: frames are pre-sampled, caps applied there."""
        return {"fps": self.fps, "do_sample_frames": False,
                "size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}}


@dataclass
class VideoClip:
    """Sampled frames (T, H, W, 3) uint8 RGB and what the container said."""

    frames: np.ndarray
    indices: list[int]
    native_fps: float
    total_frames: int
    duration_s: float
    width: int
    height: int
    has_audio: bool


def sample_indices(total_frames: int, native_fps: float, settings: MediaSettings) -> list[int]:
    """Indices of the frames to keep (the Qwen2-VL processor's fps-mode formula)."""
    if total_frames <= 0 or native_fps <= 0:
        return []
    patch = settings.temporal_patch_size
    upper = math.floor(min(settings.max_frames, total_frames) / patch) * patch
    if upper == 0:  # fewer frames than one temporal patch: keep them all, the processor pads
        return list(range(total_frames))
    wanted = total_frames / native_fps * settings.fps
    wanted = min(max(wanted, settings.min_frames), upper, total_frames)
    count = max(patch, math.floor(wanted / patch) * patch)
    step = np.float32(total_frames) / np.float32(count)
    indices = (np.arange(count, dtype=np.float32) * step).astype(np.int64)
    return np.minimum(indices, total_frames - 1).tolist()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(path, "file not found")
    if path.is_dir():
        raise MediaError(path, "is a folder, not a media file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")


def _open_container(path: Path):
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise MediaError(path, "not a readable media container (invalid data: truncated, or not media)") from None
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(path, f"cannot open media container ({exc})") from None


@dataclass(frozen=True)
class _VideoHeader:
    total_frames: int
    native_fps: float
    duration_s: float
    width: int
    height: int
    has_audio: bool


def _read_header(path: Path, settings: MediaSettings) -> _VideoHeader:
    with _open_container(path) as container:
        if not container.streams.video:
            if container.streams.audio:
                raise MediaError(path, "no video stream (an audio-only file: use it as an `audio` input)")
            raise MediaError(path, "no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        native_fps = float(rate) if rate else 0.0
        duration = _duration_s(container, stream)
        total = stream.frames or (round(duration * native_fps) if duration and native_fps else 0)
        has_audio = bool(container.streams.audio)
    if width <= 0 or height <= 0:
        raise MediaError(path, f"invalid frame size {width}x{height}")
    if max(width, height) > settings.max_side:
        raise MediaError(path, f"absurd frame size {width}x{height} (limit {settings.max_side} px per side)")
    if duration > settings.max_duration_s:
        raise MediaError(path, f"duration {duration:.0f} s exceeds the limit of {settings.max_duration_s:.0f} s")
    return _VideoHeader(int(total), native_fps, duration, width, height, has_audio)


def _duration_s(container, stream) -> float:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base is microseconds
    return 0.0


def _decoder_name(settings: MediaSettings) -> str:
    if settings.decoder in ("decord", "pyav"):
        return settings.decoder
    if settings.decoder != "auto":
        raise ValueError(f"unknown video decoder {settings.decoder!r}: use 'auto', 'decord' or 'pyav'")
    import importlib.util

    return "decord" if importlib.util.find_spec("decord") is not None else "pyav"


def _decode_decord(path: Path, settings: MediaSettings) -> tuple[np.ndarray, list[int], int, float]:
    import decord

    try:
        reader = decord.VideoReader(str(path), num_threads=1)
        total, fps = len(reader), float(reader.get_avg_fps())
        indices = sample_indices(total, fps, settings)
        frames = reader.get_batch(indices).asnumpy() if indices else np.zeros((0, 0, 0, 3), np.uint8)
    except decord.DECORDError as exc:
        raise MediaError(path, f"truncated or corrupt video ({str(exc).splitlines()[0][:200]})") from None
    return frames, indices, total, fps


def _decode_pyav(path: Path, settings: MediaSettings,
                 header: _VideoHeader) -> tuple[np.ndarray, list[int], int, float]:
    import av

    decoded = []
    try:
        with _open_container(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except av.error.FFmpegError as exc:
        if not decoded:
            raise MediaError(path, f"truncated or corrupt video ({exc})") from None
        logger.warning("%s: decoding stopped early (%s); using %d frames", path, exc, len(decoded))
    total = len(decoded)  # the decoded count is exact where container metadata is not
    if header.total_frames and total < 0.9 * header.total_frames:
        raise MediaError(path, f"truncated video: the header declares {header.total_frames} frames, "
                               f"only {total} decode")
    indices = sample_indices(total, header.native_fps, settings)
    frames = np.stack([decoded[i] for i in indices]) if indices else np.zeros((0, 0, 0, 3), np.uint8)
    return frames, indices, total, header.native_fps


def load_video(path: str | Path, settings: MediaSettings = MediaSettings()) -> VideoClip:
    """Decode a video file into frames sampled at `settings.fps`.

    Raises:
        MediaError: naming the file and the fault.
    """
    path = Path(path)
    _check_file(path)
    header = _read_header(path, settings)
    if _decoder_name(settings) == "decord":
        frames, indices, total, fps = _decode_decord(path, settings)
    else:
        frames, indices, total, fps = _decode_pyav(path, settings, header)
    if not indices or frames.shape[0] == 0:
        raise MediaError(path, "no decodable video frames")
    return VideoClip(frames=frames, indices=indices, native_fps=fps, total_frames=total,
                     duration_s=header.duration_s or total / fps, width=header.width, height=header.height,
                     has_audio=header.has_audio)


def load_audio(path: str | Path, settings: MediaSettings = MediaSettings()) -> np.ndarray | None:
    """Decode the first audio stream of any container into mono float32 at `settings.sample_rate`.

    Returns:
        The waveform, or None when the file has no audio track (a silent video is not an error).

    Raises:
        MediaError: naming the file and the fault.
    """
    import av

    path = Path(path)
    _check_file(path)
    with _open_container(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        duration = _duration_s(container, stream)
        if duration > settings.max_duration_s:
            raise MediaError(path, f"duration {duration:.0f} s exceeds the limit of {settings.max_duration_s:.0f} s")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=settings.sample_rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError(path, f"truncated or corrupt audio ({exc})") from None
            logger.warning("%s: audio decoding stopped early (%s)", path, exc)
    if not chunks:
        raise MediaError(path, "audio stream has no decodable samples")
    wave = np.concatenate(chunks).astype(np.float32, copy=False)
    if duration > 0:  # drop codec padding (AAC priming) beyond the stream's stated duration
        wave = wave[: int(round(duration * settings.sample_rate))]
    return wave


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path) as image:
            if max(image.size) > MediaSettings.max_side:
                raise MediaError(path, f"absurd image size {image.size[0]}x{image.size[1]}")
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError(path, f"not a readable image ({exc})") from None


def load_frames_folder(path: str | Path, settings: MediaSettings = MediaSettings()) -> np.ndarray:
    """Read a folder of frame images (name order), taken as already sampled at `settings.fps`; cap the count."""
    path = Path(path)
    if not path.is_dir():
        raise MediaError(path, "frames folder not found")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MediaError(path, "frames folder holds no images")
    indices = sample_indices(len(files), settings.fps, settings)
    frames = [load_image(files[i]) for i in indices]
    if len({f.shape for f in frames}) > 1:
        raise MediaError(path, "frames of different sizes")
    return np.stack(frames)


def inspect_video(path: str | Path, settings: MediaSettings = MediaSettings()) -> dict:
    """Check a file as a video input; return what the `media inspect` command prints."""
    clip = load_video(path, settings)
    return {"path": str(path), "frames": clip.total_frames, "sampled_frames": len(clip.indices),
            "fps": round(clip.native_fps, 3), "duration_s": round(clip.duration_s, 3), "width": clip.width,
            "height": clip.height, "has_audio": clip.has_audio}


@dataclass
class SampleMedia:
    """The decoded inputs of one sample; `audio` is None when the sample has no audio (the prompt says so)."""

    video: np.ndarray | None = None  # (T, H, W, 3) uint8
    audio: np.ndarray | None = None  # (N,) float32 at settings.sample_rate
    image: np.ndarray | None = None  # (H, W, 3) uint8

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(name for name in ("video", "image", "audio") if getattr(self, name) is not None)


def load_sample_media(video: Path | None = None, audio: Path | None = None, image: Path | None = None,
                      frames: Path | None = None, settings: MediaSettings = MediaSettings()) -> SampleMedia:
    """Decode a sample's resolved media paths; a separate audio file overrides the video's own track."""
    media = SampleMedia()
    if video is not None:
        media.video = load_video(video, settings).frames
        media.audio = load_audio(video, settings)
    elif frames is not None:
        media.video = load_frames_folder(frames, settings)
    if audio is not None:
        media.audio = load_audio(audio, settings)
        if media.audio is None:
            raise MediaError(audio, "no audio stream")
    if image is not None:
        media.image = load_image(image)
    return media


def write_video(path: str | Path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
                sample_rate: int = 16000, crf: int = 23) -> Path:
    """Encode frames (T, H, W, 3) uint8 as H.264 (yuv420p) mp4, with an optional mono AAC track.

    Odd frame sizes are padded by one pixel (yuv420p needs even sizes).
    """
    import fractions

    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    pad_h, pad_w = height % 2, width % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    rate = fractions.Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width + pad_w, height + pad_h, "yuv420p"
        # one encoder thread: a short clip gains nothing from more, and batch generation runs clips in parallel
        video.options = {"crf": str(crf), "preset": "ultrafast", "tune": "zerolatency", "threads": "1"}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate, layout="mono")
            sound.options = {"aac_coder": "fast"}  # 2x faster than the default coder, inaudible at these rates
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None:
            _encode_audio(container, sound, audio, sample_rate)
    return path


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    import av

    samples = np.clip(audio, -1.0, 1.0).astype(np.float32)
    frame_size = 1024  # AAC frame length
    for start in range(0, len(samples), frame_size):
        chunk = samples[start:start + frame_size]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
