"""The decoders behind `media.load_video`, `media.load_audio` and `media.load_segment`; memory bounded by the caps.

Each decoder keeps only the sampled frames: decord seeks to them (`get_batch`), PyAV decodes the stream in order and
converts and keeps a frame only when its index is sampled, so a clip holds at most `max_frames` RGB frames of at most
`max_frame_pixels` whatever its length. A window of a long video (`decode_window`) is read with PyAV, which seeks to
the keyframe before the window: a decord reader indexes the whole file each time it opens (0.18 s per 10 minutes of
25 fps video, measured), too slow to open once per window of an hour.
"""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path

import numpy as np

from affect_mllm.media import MediaSettings, sample_indices
from affect_mllm.media_header import MediaError, MediaHeader, open_container

logger = logging.getLogger(__name__)

TRUNCATED_SHARE = 0.9  # fewer decodable frames than this share of the stated count: a truncated file
AUDIO_SEEK_LEAD_S = 0.5  # audio of a window decodes from this much earlier, then is cut at the window's start


def no_frames() -> np.ndarray:
    """An empty (0, 0, 0, 3) frame array."""
    return np.zeros((0, 0, 0, 3), np.uint8)


def decode_decord(path: Path, settings: MediaSettings) -> tuple[np.ndarray, list[int], int, float]:
    """Sampled frames, their indices, the frame count and fps as decord reads them."""
    import decord

    try:
        reader = decord.VideoReader(str(path), num_threads=settings.decode_threads)
        total, fps = len(reader), float(reader.get_avg_fps())
        indices = sample_indices(total, fps, settings)
        frames = reader.get_batch(indices).asnumpy() if indices else no_frames()
    except decord.DECORDError as exc:
        raise MediaError(path, f"truncated or corrupt video ({str(exc).splitlines()[0][:200]})") from None
    return frames, indices, total, fps


def count_video_packets(path: Path) -> int:
    """The number of video packets in the file (one per frame), read by demuxing only."""
    with open_container(str(path), str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def _sampled_pass(path: Path, wanted: set[int], threads: int) -> tuple[dict[int, np.ndarray], int]:
    """Decode in order, keeping only the frames whose index is wanted; returns them and how many decoded."""
    import av

    kept, count = {}, 0
    last = max(wanted) if wanted else -1
    try:
        with open_container(str(path), str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type, stream.codec_context.thread_count = "AUTO", threads
            for frame in container.decode(stream):
                if count in wanted:
                    kept[count] = frame.to_ndarray(format="rgb24")
                count += 1
                if count > last:  # every sampled frame is in hand: the rest of the file need not decode
                    break
    except av.error.FFmpegError as exc:
        if not count:
            raise MediaError(path, f"truncated or corrupt video ({exc})") from None
        logger.warning("%s: decoding stopped early (%s) after %d frames", path, exc, count)
    return kept, count


def decode_pyav(path: Path, settings: MediaSettings, header: MediaHeader) -> tuple[np.ndarray, list[int], int, float]:
    """Sampled frames, their indices, the frame count and fps, keeping only the sampled frames in memory.

    The count comes from the header, or from the packets where the header has none. A stream that stops decoding
    early is sampled again over the frames that did decode (a second pass), or refused as truncated when fewer than
    90 % of the stated frames decode.
    """
    total = header.frame_count or count_video_packets(path)
    indices = sample_indices(total, header.fps, settings)
    kept, decoded = _sampled_pass(path, set(indices), settings.decode_threads)
    if len(kept) < len(indices):
        if decoded < TRUNCATED_SHARE * total:
            raise MediaError(path, f"truncated video: the header declares {total} frames, only {decoded} decode")
        total, indices = decoded, sample_indices(decoded, header.fps, settings)
        kept, _ = _sampled_pass(path, set(indices), settings.decode_threads)
    frames = np.stack([kept[i] for i in indices]) if indices and len(kept) == len(indices) else no_frames()
    return frames, indices, total, header.fps


def window_indices(header: MediaHeader, start_s: float, end_s: float, settings: MediaSettings) -> list[int]:
    """Frame indices sampled from the frames timed in [start_s, end_s), as if the window were a clip of its own."""
    fps = header.fps
    first, last = math.ceil(start_s * fps - 1e-6), math.ceil(end_s * fps - 1e-6)
    known = header.frame_count or (round(header.duration_s * fps) if header.duration_s else None)
    if known is not None:
        last = min(last, known)
    return [first + i for i in sample_indices(last - first, fps, settings)]


def decode_window(source: Path, header: MediaHeader, indices: list[int]) -> np.ndarray:
    """The frames at these indices (timestamp order), seeking to the keyframe before the first."""
    import av

    if not indices:
        return no_frames()
    wanted, kept = set(indices), {}
    try:
        with open_container(str(source), str(source)) as container:
            stream = container.streams.video[0]
            origin = stream.start_time or 0
            seek_s = indices[0] / header.fps
            container.seek(origin + int(seek_s / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                index = round(float((frame.pts - origin) * stream.time_base) * header.fps)
                if index in wanted:
                    kept[index] = frame.to_ndarray(format="rgb24")
                if index >= indices[-1]:
                    break
    except av.error.FFmpegError as exc:
        logger.warning("%s: decoding stopped in a window (%s)", source, exc)
    missing = [i for i in indices if i not in kept]
    if missing:
        raise MediaError(source, f"frames {missing[0]}..{missing[-1]} ({len(missing)} of the window's "
                                 f"{len(indices)} sampled frames) do not decode: a broken stretch of the file")
    return np.stack([kept[i] for i in indices])


def decode_audio(source: str | Path | bytes, label: str, settings: MediaSettings, start_s: float | None = None,
                 end_s: float | None = None, stated_s: float | None = None) -> np.ndarray:
    """The first audio stream as mono float32 at `settings.sample_rate`, whole or the stretch [start_s, end_s).

    `stated_s` (the stream's stated duration) cuts the codec's padding (AAC priming) from a whole-track decode.
    """
    import av

    opened = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    chunks, first_time = [], None
    with open_container(opened, label) as container:
        stream = container.streams.audio[0]
        if start_s:  # from a little earlier: the first frames after a seek decode wrong (MDCT overlap, filter)
            lead_s = max(0.0, start_s - AUDIO_SEEK_LEAD_S)
            container.seek(int(lead_s / stream.time_base) + (stream.start_time or 0), stream=stream, backward=True)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=settings.sample_rate)
        try:
            for frame in container.decode(stream):
                if end_s is not None and frame.time is not None and frame.time >= end_s:
                    break
                if first_time is None:
                    first_time = frame.time or 0.0
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError(label, f"truncated or corrupt audio ({exc})") from None
            logger.warning("%s: audio decoding stopped early (%s)", label, exc)
    if not chunks:
        raise MediaError(label, "audio stream has no decodable samples")
    wave = np.concatenate(chunks).astype(np.float32, copy=False)
    if start_s is None and end_s is None:
        return wave[: int(round(stated_s * settings.sample_rate))] if stated_s else wave
    offset = max(0, int(round(((start_s or 0.0) - first_time) * settings.sample_rate)))
    stop = None if end_s is None else offset + int(round((end_s - (start_s or 0.0)) * settings.sample_rate))
    return wave[offset:stop]
