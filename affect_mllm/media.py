"""Media pipeline: video frames sampled at a fixed fps, audio as 16 kHz mono float32, one error type.

Why we decode ourselves: transformers 5.19+ decodes video files only through torchcodec, which does not load on
this CPU stack (a CUDA-linked build on PyPI). We pass numpy arrays to the processor instead.

Frame sampling follows the Qwen2-VL video processor's fps mode, which vLLM's `qwen2_vl` video loader ports
index-for-index, so training (our decoder) and serving (vLLM decoding a `video_url`) see the same frames:
n = total / native_fps * fps, clamped to [min_frames, min(max_frames, total)], floored to a multiple of the
temporal patch (2); indices = float32 arange(0, total, total / n). Frames keep their native size: the pixel caps
(`min_pixels`/`max_pixels`) are applied by the model's processor, identically in HF and vLLM.

Before anything decodes, `probe_media` reads the container's headers (a path or in-memory bytes) and
`check_media_caps` applies the caps (`max_side`, `max_frame_pixels`, `max_total_frames`, `max_duration_s`), so a
small file that would decode to gigabytes is refused first; where the header states no duration (a raw H.264
stream) the frames are counted from the packets. The decoders (`media_decode`) keep only the sampled frames.

Every failure raises `MediaError(path, fault)`: missing, empty, truncated, not a media container, an image named
like a video, no video stream, no decodable frames, a cap exceeded (named).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from affect_mllm.media_header import (  # re-exported: affect_mllm.media is the pipeline's one import
    MediaError,
    MediaHeader,
    check_file,
    check_media_caps,
    probe_media,
)

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


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
    max_duration_s: float = 600.0  # cap on a clip's video and audio duration (a timeline window's, for segments)
    max_side: int = 8192  # larger frames in a header are treated as corrupt rather than decoded
    max_frame_pixels: int = 3840 * 2160  # 4K UHD: sampled frames then hold at most max_frames * 25 MB
    max_total_frames: int = 36_000  # frames in the container (600 s at 60 fps): PyAV decodes each of them
    decoder: str = "auto"  # "auto" (decord where installed, else PyAV), "decord" or "pyav"
    decode_threads: int = 1  # per decoder (0: one per core); DataLoader workers give the parallelism in training
    face_crop: bool = False  # crop every frame to the tracked face (affect_mllm.face); full frames where none is found
    face_margin: float = 0.3  # crop side = face size x (1 + 2 x margin)

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


def _decoder_name(settings: MediaSettings, header: MediaHeader) -> str:
    if settings.decoder not in ("auto", "decord", "pyav"):
        raise ValueError(f"unknown video decoder {settings.decoder!r}: use 'auto', 'decord' or 'pyav'")
    if settings.decoder != "auto":
        return settings.decoder
    import importlib.util

    if header.duration_s is None:  # decord refuses a stream whose header states no duration
        return "pyav"
    return "decord" if importlib.util.find_spec("decord") is not None else "pyav"


def load_video(path: str | Path, settings: MediaSettings = MediaSettings(), *,
               header: MediaHeader | None = None) -> VideoClip:
    """Decode a video file into frames sampled at `settings.fps`, after its header passed the caps.

    `header`: the file's `probe_media` header where the caller has read it already (it is not read twice).

    Raises:
        MediaError: naming the file and the fault.
    """
    from affect_mllm.media_decode import decode_decord, decode_pyav

    path = Path(path)
    header = header if header is not None else probe_media(path)
    check_media_caps(header, settings, name=str(path))
    if _decoder_name(settings, header) == "decord":
        if header.duration_s is None:
            raise MediaError(path, "decord cannot read a stream whose header states no duration (a raw "
                                   "elementary stream): use the 'pyav' decoder")
        frames, indices, total, fps = decode_decord(path, settings)
    else:
        frames, indices, total, fps = decode_pyav(path, settings, header)
    if not indices or frames.shape[0] == 0:
        raise MediaError(path, "no decodable video frames")
    return VideoClip(frames=frames, indices=indices, native_fps=fps, total_frames=total,
                     duration_s=header.video_duration_s or total / fps, width=header.width,
                     height=header.height, has_audio=header.has_audio)


def load_audio(path: str | Path, settings: MediaSettings = MediaSettings(), *,
               header: MediaHeader | None = None) -> np.ndarray | None:
    """Decode the first audio stream of any container into mono float32 at `settings.sample_rate`.

    `header`: the file's `probe_media` header where the caller has read it already.

    Returns:
        The waveform, or None when the file has no audio track (a silent video is not an error).

    Raises:
        MediaError: naming the file and the fault.
    """
    from affect_mllm.media_decode import decode_audio

    path = Path(path)
    header = header if header is not None else probe_media(path, expect="any")
    if not header.has_audio:
        return None
    duration, limit = header.audio_duration_s, settings.max_duration_s
    if duration is not None and duration > limit:
        raise MediaError(path, f"audio lasts {duration:.0f} s, over max_duration_s = {limit:.0f} s")
    return decode_audio(path, str(path), settings, stated_s=duration)


def load_segment(path: str | Path, start_s: float, end_s: float,
                 settings: MediaSettings = MediaSettings()) -> SampleMedia:
    """Decode only [start_s, end_s) of a video: its frames sampled as a clip of its own, and that stretch of audio.

    Memory is bounded by the window: PyAV seeks to the keyframe before it and keeps only the sampled frames. The
    file's own length is not capped (a timeline walks an hour-long video window by window); the window's is, by
    `max_duration_s`, and the frame caps apply as for a clip.

    Raises:
        MediaError: naming the file and the fault (a window outside the video, a broken stretch, a cap).
    """
    from affect_mllm.media_decode import decode_audio, decode_window, window_indices

    path = Path(path)
    header = probe_media(path)
    if not 0 <= start_s < end_s:
        raise MediaError(path, f"invalid window [{start_s}, {end_s}) s")
    if end_s - start_s > settings.max_duration_s:
        raise MediaError(path, f"window of {end_s - start_s:.0f} s, over max_duration_s = "
                               f"{settings.max_duration_s:.0f} s")
    check_media_caps(header, replace(settings, max_duration_s=math.inf, max_total_frames=2**62), name=str(path))
    indices = window_indices(header, start_s, end_s, settings)
    if not indices:
        raise MediaError(path, f"window [{start_s:.2f}, {end_s:.2f}) s holds no frame of the video "
                               f"({header.video_duration_s or 0:.2f} s)")
    media = SampleMedia(video=decode_window(path, header, indices))
    if settings.face_crop:
        media.video, media.face = _face_crop(media.video, settings)
    if header.has_audio:
        media.audio = decode_audio(path, str(path), settings, start_s=start_s, end_s=end_s)
    return media


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    check_file(path)
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
    face: bool | None = None  # face_crop asked: True cropped to the face, False no face found (full frames)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(name for name in ("video", "image", "audio") if getattr(self, name) is not None)


def load_sample_media(video: Path | None = None, audio: Path | None = None, image: Path | None = None,
                      frames: Path | None = None, settings: MediaSettings = MediaSettings()) -> SampleMedia:
    """Decode a sample's resolved media paths; a separate audio file overrides the video's own track."""
    media = SampleMedia()
    if video is not None:
        header = probe_media(video)
        media.video = load_video(video, settings, header=header).frames
        media.audio = load_audio(video, settings, header=header)
    elif frames is not None:
        media.video = load_frames_folder(frames, settings)
    if settings.face_crop and media.video is not None:
        media.video, media.face = _face_crop(media.video, settings)
    if audio is not None:
        media.audio = load_audio(audio, settings)
        if media.audio is None:
            raise MediaError(audio, "no audio stream")
    if image is not None:
        media.image = load_image(image)
    return media


def _face_crop(frames: np.ndarray, settings: MediaSettings) -> tuple[np.ndarray, bool]:
    from affect_mllm.face import face_crop

    return face_crop(frames, settings.face_margin, settings.max_pixels)


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
