"""Clips for the timeline tests: written with PyAV frame by frame, so a 20-minute clip never sits in memory.

Loaded by `pytest_plugins = ["timeline_fixtures"]` in the timeline test modules.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np
import pytest


def write_stream_clip(path: Path, seconds: float, *, fps: int = 4, size: int = 64, gop: int = 4,
                      audio_rate: int | None = 8000, container: str | None = None) -> Path:
    """A clip whose frames change with time (grey level and a moving bar) and a tone track, encoded as it is drawn.

    Short GOPs (`gop` frames, scene cuts off) so that a stretch of the file can be broken without breaking the rest;
    the audio is 16-bit PCM (no encoder cost), so the container must take PCM (mkv, mov).
    """
    import av

    frames = int(round(seconds * fps))
    with av.open(str(path), "w", format=container) as output:
        video = output.add_stream("libx264", rate=fractions.Fraction(fps))
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0",
                         "threads": "1"}
        sound = output.add_stream("pcm_s16le", rate=audio_rate, layout="mono") if audio_rate else None
        per_frame = audio_rate // fps if audio_rate else 0
        for i in range(frames):
            image = np.full((size, size, 3), (i * 7) % 200 + 20, np.uint8)
            image[:, (i * 3) % (size - 4):(i * 3) % (size - 4) + 4] = 255
            output.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            if sound is not None:
                t = (np.arange(per_frame) + i * per_frame) / audio_rate
                wave = (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16).reshape(1, -1)
                chunk = av.AudioFrame.from_ndarray(wave, format="s16", layout="mono")
                chunk.sample_rate, chunk.pts = audio_rate, i * per_frame
                output.mux(sound.encode(chunk))
        output.mux(video.encode(None))
        if sound is not None:
            output.mux(sound.encode(None))
    return path


def break_stretch(path: Path, start_s: float, end_s: float) -> int:
    """Zero the video packets timed in [start_s, end_s) in place (a corrupt stretch); returns packets broken."""
    import av

    data = bytearray(path.read_bytes())
    broken = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.pts is None or packet.pos is None or packet.pos < 0:
                continue
            if start_s <= float(packet.pts * stream.time_base) < end_s:
                data[packet.pos:packet.pos + packet.size] = bytes(packet.size)
                broken += 1
    path.write_bytes(bytes(data))
    return broken


@pytest.fixture(scope="session")
def timeline_clip(tmp_path_factory) -> Path:
    """A 13-second clip with audio (6 windows of 4 s every 2 s, the last one moved back to end at 13 s)."""
    return write_stream_clip(tmp_path_factory.mktemp("timeline") / "talk.mkv", 13.0, container="matroska")


@pytest.fixture(scope="session")
def broken_clip(tmp_path_factory) -> Path:
    """A 16-second clip whose video packets in [8, 10) s are zeroed."""
    path = write_stream_clip(tmp_path_factory.mktemp("timeline") / "broken.mkv", 16.0, container="matroska")
    assert break_stretch(path, 8.0, 10.0) > 0
    return path
