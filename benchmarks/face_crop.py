"""Face focus: the tiny SFT recipe with and without face crops on small, moving faces; what a crop costs per clip.

SynthFACS faces fill the frame at every level (a head 65-98 % of the side at levels 3-4), where a crop changes
little. So the clips here are SynthFACS level 3 and 4 clips shot wide: each 112 px clip (its own background around
the face) moves across a 320 px textured canvas along a straight line, so the head is a third of the side and, at the
tiny model's 112x112 budget, about 39 px without a crop. Both arms train the same recipe (recipes/tiny-omni/sft.yaml,
from the committed base) on the same clips for the same steps; one with `--face_crop true`, whose collator crops
every frame to the tracked face (affect_mllm.face), and predicts with the same setting (engine.spec, as predict
does). The arm without crops is the control and could win (a lost face costs the crop arm its picture).

Figures (held-out identities, levels 3 and 4 together; inference.predict + affect_mllm.evaluation, bootstrap 95 %
intervals): emotion accuracy (ov_emotion prompt), answer and rationale AU F1 (au_reasoning prompt), crop minus
full-frame paired differences; the share of test clips and frames where a face was found; ms per clip of
`load_sample_media` with and without the crop (the same clips, one core).

    .venv/bin/python benchmarks/face_crop.py            # 22 minutes on 2 CPU cores (measured)
    .venv/bin/python benchmarks/face_crop.py --quick    # a smoke run (minutes)

Steps are cached under --work by what determines them (benchmarks/cache_key.py).
Last line: {"full": {...}, "crop": {...}, "crop_minus_full": {...}, "faces_found": {...}, "ms_per_clip": {...}}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from cache_key import cached, code_digest, file_digest, stored_key
from heldout import differences, figures, predict
from steps import recipe_key, run_module

LEVELS = (3, 4)
CANVAS = 320
BASE = "tiny-omni-base"
RECIPE = "recipes/tiny-omni/sft.yaml"
TASKS = ("ov_emotion", "au_reasoning")
ARMS = ("full", "crop")


@dataclass(frozen=True)
class Budget:
    train_clips: int = 500  # per level
    test_clips: int = 96  # per level
    sft_steps: int = 200
    max_new_tokens: int = 128


QUICK = Budget(train_clips=16, test_clips=8, sft_steps=4, max_new_tokens=32)


def canvas(rng: np.random.Generator) -> np.ndarray:
    """A smooth random texture with grain, (CANVAS, CANVAS, 3) uint8."""
    import cv2

    coarse = rng.uniform(40, 200, (6, 6, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (CANVAS, CANVAS), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)


def wide_shot(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clip's frames moving along a straight line across a textured canvas."""
    side = frames.shape[1]
    start, end = rng.integers(0, CANVAS - side, 2), rng.integers(0, CANVAS - side, 2)
    background = canvas(rng)
    out = []
    for t, frame in enumerate(frames):
        x, y = (start + (end - start) * t / max(len(frames) - 1, 1)).round().astype(int)
        shot = background.copy()
        shot[y:y + side, x:x + side] = frame
        out.append(shot)
    return np.stack(out)


def write_split(folder: Path, split: str, n: int, seed: int) -> Path:
    """n wide-shot clips per level (SynthFACS plans, labels and audio; the picture moved onto a canvas)."""
    from affect_mllm.media import write_video
    from affect_mllm.schema import write_manifest
    from affect_mllm.synthfacs.generate import (
        GeneratorSettings,
        clip_sample,
        plan_clip,
        render_audio,
        render_frames,
    )

    (folder / "clips").mkdir(parents=True, exist_ok=True)
    samples = []
    for level in LEVELS:
        settings = GeneratorSettings(seed=seed + level, split=split, difficulty=level)
        for index in range(n):
            plan = plan_clip(settings, index)
            video = f"clips/{plan.id}-wide.mp4"
            frames = wide_shot(render_frames(plan), np.random.default_rng([seed, level, index]))
            write_video(folder / video, frames, settings.fps, render_audio(plan), settings.sample_rate, crf=plan.crf)
            samples.append(clip_sample(plan, video))
    return write_manifest(folder / f"{split}.jsonl", samples)


def train(work: Path, manifest: Path, budget: Budget, code: dict) -> dict[str, Path]:
    """The recipe's SFT once per arm, cached by its key."""
    adapters = {}
    for arm in ARMS:
        argv = ["--model_name_or_path", BASE, "--report_to", "none", "--save_steps", "100000", "--eval_manifest", "",
                "--max_steps", str(budget.sft_steps), "--face_crop", str(arm == "crop").lower()]

        def run(out: Path, argv=argv) -> None:
            run_module("training.sft", ["--config", RECIPE, *argv, "--train_manifest", str(manifest),
                                        "--output_dir", str(out)])

        adapters[arm] = cached(work / f"sft-{arm}", recipe_key(code, RECIPE, BASE, manifest, argv), run)
    return adapters


def predictions(work: Path, adapters: dict[str, Path], gold: Path, budget: Budget, code: dict) -> dict:
    """{arm: {task: predictions file}}, each arm predicting with its own crop setting."""
    from affect_mllm.face import with_face_crop
    from inference.engine import load_engine

    loaded: dict = {}  # the engine (both adapters) and its spec as loaded, built on the first prediction
    out: dict = {arm: {} for arm in ARMS}
    for arm in ARMS:
        for task in TASKS:
            folder = work / "predictions" / f"{arm}-{task}"
            key = {"code": code, "adapter": stored_key(adapters[arm])["digest"], "gold": file_digest(gold),
                   "task": task, "max_new_tokens": budget.max_new_tokens}

            def run(folder_out: Path, arm=arm, task=task) -> None:
                if not loaded:
                    loaded["engine"] = load_engine(BASE, backend="hf",
                                                   adapters={a: str(p) for a, p in adapters.items()})
                    loaded["spec"] = loaded["engine"].spec
                engine = loaded["engine"]
                engine.spec = with_face_crop(loaded["spec"], arm == "crop")  # what predict's engine reads
                predict(engine, gold, folder_out / "pred.jsonl", task=task, adapter=arm,
                        max_new_tokens=budget.max_new_tokens)

            cached(folder, key, run)
            out[arm][task] = folder / "pred.jsonl"
    return out


def crop_cost_and_faces(gold: Path, limit: int) -> tuple[dict, dict]:
    """ms per clip of load_sample_media without and with the crop, and how often a face was found."""
    import torch

    from affect_mllm.face import track_face
    from affect_mllm.media import load_sample_media, load_video
    from affect_mllm.models.registry import resolve
    from affect_mllm.schema import read_manifest

    torch.set_num_threads(1)
    manifest = read_manifest(gold)
    paths = [manifest.media_path(sample, "video") for sample in manifest.samples[:limit]]
    settings = resolve(BASE).media
    spent = {}
    for arm, arm_settings in (("full", settings), ("crop", replace(settings, face_crop=True))):
        load_sample_media(video=paths[0], settings=arm_settings)  # warm-up: the detector is built once
        started = time.perf_counter()
        for path in paths:
            load_sample_media(video=path, settings=arm_settings)
        spent[arm] = round(1000 * (time.perf_counter() - started) / len(paths), 1)
    spent["crop_cost"] = round(spent["crop"] - spent["full"], 1)
    shares = [0.0 if track is None else track.found_share
              for track in (track_face(load_video(path, settings).frames) for path in paths)]
    found = {"clips": round(sum(s > 0 for s in shares) / len(shares), 3),
             "frames": round(statistics.fmean(shares), 3), "n": len(shares)}
    return spent, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/bench_face_crop")
    parser.add_argument("--quick", action="store_true", help="tiny budget: checks every step runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    budget = QUICK if args.quick else Budget()
    work = Path(args.work) / ("quick" if args.quick else "full")
    code = code_digest()
    data_key = {"code": code["affect_mllm"], "budget": budget.__dict__, "seed": args.seed, "canvas": CANVAS}
    train_set = cached(work / "train", {**data_key, "split": "train"},
                       lambda out: write_split(out, "train", budget.train_clips, args.seed)) / "train.jsonl"
    gold = cached(work / "test", {**data_key, "split": "test"},
                  lambda out: write_split(out, "test", budget.test_clips, args.seed + 100)) / "test.jsonl"
    adapters = train(work, train_set, budget, code)
    preds = predictions(work, adapters, gold, budget, code)
    results = {arm: {task: figures(preds[arm][task], gold, task=task) for task in TASKS} for arm in ARMS}
    results["crop_minus_full"] = {task: differences(gold, preds["full"][task], preds["crop"][task], task=task)
                                  for task in TASKS}
    results["ms_per_clip"], results["faces_found"] = crop_cost_and_faces(gold, limit=min(48, 2 * budget.test_clips))
    _print_table(results)
    print(json.dumps(results))


def _print_table(results: dict) -> None:
    def figure(block: dict, name: str) -> str:  # None where no answer parsed (a smoke run's few steps)
        value = block[name]
        return "n/a" if value is None else f"{value:.3f} {block['ci95'][name]}"

    for arm in ARMS:
        emotion, aus = results[arm]["ov_emotion"], results[arm]["au_reasoning"]
        print(f"{arm:5s} emotion_acc {figure(emotion, 'emotion_acc')}  answer_au_f1 {figure(aus, 'answer_au_f1')}  "
              f"rationale_au_f1 {figure(aus, 'rationale_au_f1')}")
    print(f"faces found: {results['faces_found']}; ms per clip: {results['ms_per_clip']}")

if __name__ == "__main__":
    main()
