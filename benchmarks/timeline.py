"""Emotion over time on long SynthFACS clips: segment accuracy and boundary error of a tuned tiny model, against its
own per-window accuracy, and timeline throughput with the HF engine vs vLLM.

A tiny omni model is LoRA-tuned from `tiny-omni-base` (recipes/tiny-omni/sft.yaml) on 4-second SynthFACS clips for
the two questions a timeline asks (ov_emotion, valence_arousal). It then answers every window (4 s, stride 2 s) of
held-out long clips (`affect_mllm.synthfacs.long`: K expression episodes of 6-12 s by one person of the test
identities), through the library's timeline runner (`inference.timeline.run_timeline`), once with each engine.
Scored against the known segments (`affect_mllm.timeline.scoring`):

- window accuracy: each window's leading emotion vs the true label at its centre (the per-window baseline);
- time accuracy of the smoothed segments (`affect_mllm.timeline.segments`, default smoothing) and, as the control
  that could win, of the raw windows (no mode filter, no minimum length);
- segment accuracy: true segments whose time-majority predicted label is right;
- boundary error: per true boundary, the distance to the nearest predicted one (clip ends count), smoothed vs raw,
  and against K-1 equally spaced boundaries (a control that knows K); boundary F1 within +-2 s (extra boundaries
  count against it, which the distance does not see);
- throughput: video seconds answered per second of answering (engine start reported apart), HF vs vLLM on the same
  windows, and how many windows' answers the two engines agree on.

95 % intervals resample clips (bootstrap). Data and the adapter are cached under --work, keyed by what determines
them (benchmarks/cache_key.py); the timeline runs are redone each time (they are what is measured).

    flock /tmp/affect_heavy.lock .venv/bin/python benchmarks/timeline.py            # about 15 minutes on 2 cores
    .venv/bin/python benchmarks/timeline.py --quick                                 # a smoke run

Last line: {"windows": {...}, "smoothed": {...}, "raw": {...}, "uniform": {...}, "throughput": {...}, ...}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from cache_key import cached, code_digest, stored_key
from steps import recipe_key, run_module, synthfacs_set

BASE = "tiny-omni-base"
TASKS = ("ov_emotion", "valence_arousal")
BACKENDS = ("hf", "vllm")
TOLERANCE_S = 2.0  # a predicted boundary within 2 s (one stride) of a true one is a hit


@dataclass(frozen=True)
class Budget:
    train_clips: int = 1600
    sft_steps: int = 600  # the recipe's
    long_clips: int = 8
    segments: int = 6
    level: int = 2  # the project's headline SynthFACS level
    batch_windows: int = 8
    max_new_tokens: int = 128


QUICK = Budget(train_clips=32, sft_steps=4, long_clips=2, segments=3, max_new_tokens=24)


def tuned_adapter(work: Path, budget: Budget, code: dict) -> Path:
    """LoRA SFT from the base on both timeline questions, cached by its key."""
    train = synthfacs_set(work / "train", budget.train_clips, seed=0, split="train", level=budget.level, code=code)
    args = ["--model_name_or_path", BASE, "--report_to", "none", "--save_steps", "100000", "--eval_manifest", "",
            "--max_steps", str(budget.sft_steps), "--tasks", *TASKS]
    return cached(work / "sft", recipe_key(code, "recipes/tiny-omni/sft.yaml", BASE, train, args),
                  lambda out: run_module("training.sft", ["--config", "recipes/tiny-omni/sft.yaml", *args,
                                                          "--train_manifest", str(train), "--output_dir", str(out)]))


def long_clips(work: Path, budget: Budget, code: dict) -> Path:
    """Held-out long clips with known segments, cached by their arguments and the library's code."""
    from affect_mllm.synthfacs.long import LongSettings, generate_long

    settings = LongSettings(seed=1, split="test", segments=budget.segments, difficulty=budget.level)
    cached(work / "long", {"code": code["affect_mllm"], "n": budget.long_clips, "settings": asdict(settings)},
           lambda out: generate_long(out, budget.long_clips, settings))
    return work / "long" / "test-long.jsonl"


def run_backend(backend: str, adapter: Path, manifest, out: Path, budget: Budget) -> dict:
    """Every long clip's timeline with one engine: {"start_s", "seconds", "video_s", "clips": {id: folder}}."""
    from inference.engine import SamplingSettings, load_engine
    from inference.timeline import TimelineSettings, run_timeline
    from inference.timeline_answer import EngineAnswerer

    shutil.rmtree(out, ignore_errors=True)
    started = time.monotonic()
    options = {"max_batch_size": budget.batch_windows * len(TASKS)} if backend == "hf" else \
        {"kv_cache_gib": 0.5, "max_num_seqs": budget.batch_windows * len(TASKS)}
    engine = load_engine(BASE, backend, adapters={"sft": str(adapter)}, **options)
    start_s = time.monotonic() - started
    answerer = EngineAnswerer(engine, TASKS, SamplingSettings(max_new_tokens=budget.max_new_tokens), adapter="sft",
                              batch_size=budget.batch_windows)
    seconds = video_s = 0.0
    folders = {}
    try:
        for sample in manifest.samples:
            run = run_timeline(manifest.media_path(sample, "video"), out / sample.id, answerer,
                               settings=TimelineSettings(tasks=TASKS), media=engine.spec.media)
            seconds, video_s = seconds + run.seconds, video_s + run.video_s
            folders[sample.id] = out / sample.id
    finally:
        engine.close()
    return {"start_s": round(start_s, 1), "seconds": seconds, "video_s": video_s, "clips": folders}


def clip_scores(folder: Path, truth: list[dict], duration_s: float) -> dict:
    """One clip's window, time, segment and boundary figures (smoothed, raw, uniform control); its figure with the
    true segments is written beside the timeline (timeline_truth.png)."""
    from affect_mllm.jsonl import atomic_write_bytes
    from affect_mllm.timeline.plot import timeline_png
    from affect_mllm.timeline.scoring import (
        boundaries,
        boundary_errors,
        boundary_matches,
        label_at,
        time_accuracy,
        window_accuracy,
    )
    from affect_mllm.timeline.segments import SmoothingSettings, segment_list
    from affect_mllm.timeline.windows import Window

    records = [json.loads(line) for line in (folder / "timeline.jsonl").read_text().splitlines()]
    windows = [Window(r["window"], r["start_s"], r["end_s"]) for r in records]
    smoothed = json.loads((folder / "segments.json").read_text())["segments"]
    raw = segment_list(records, windows, duration_s, SmoothingSettings(smooth_windows=1, min_segment_s=0.0))
    true_bounds = boundaries(truth)
    uniform = [duration_s * k / len(truth) for k in range(1, len(truth))]
    correct, answered = window_accuracy(records, truth)
    atomic_write_bytes(folder / "timeline_truth.png", timeline_png(records, windows, smoothed, duration_s, truth))

    def majority_right(predicted: list[dict], segment: dict) -> bool:
        times = np.arange(segment["start_s"] + 0.05, segment["end_s"], 0.1)
        labels = [label_at(predicted, t) for t in times]
        top = max(set(labels), key=labels.count)
        return top is not None and top == segment["emotion"]

    out = {"window_correct": correct, "windows": answered, "parsed": sum(r["parsed"] for r in records)}
    for name, predicted in (("smoothed", smoothed), ("raw", raw)):
        out[name] = {"time_acc": time_accuracy(predicted, truth, duration_s),
                     "segments_right": sum(majority_right(predicted, s) for s in truth),
                     "boundary_errors": boundary_errors(boundaries(predicted), true_bounds, duration_s),
                     "predicted_boundaries": len(boundaries(predicted)),
                     "matched": boundary_matches(boundaries(predicted), true_bounds, TOLERANCE_S)}
    out["uniform"] = {"boundary_errors": boundary_errors(uniform, true_bounds, duration_s),
                      "matched": boundary_matches(uniform, true_bounds, TOLERANCE_S),
                      "predicted_boundaries": len(uniform)}
    out["labels"] = [r["emotion"] for r in records]
    return out


def summarise(scores: list[dict], n_resamples: int = 1000) -> dict:
    """Pooled figures over clips with bootstrap intervals (clips resampled)."""
    from affect_mllm.metrics.bootstrap import bootstrap_ci

    def pooled(figure):
        value = figure(np.arange(len(scores)))
        return {"value": round(value, 4), "ci95": [round(x, 4) for x in bootstrap_ci(figure, len(scores),
                                                                                      n_resamples=n_resamples)]}

    def ratio(num, den):
        return lambda idx: sum(num(scores[i]) for i in idx) / max(sum(den(scores[i]) for i in idx), 1)

    def mean_error(arm):
        return lambda idx: float(np.mean([e for i in idx for e in scores[i][arm]["boundary_errors"]]))

    true_segments = lambda s: len(s["smoothed"]["boundary_errors"]) + 1  # noqa: E731

    def boundary_f1(arm):
        def figure(idx):
            matched = sum(scores[i][arm]["matched"] for i in idx)
            predicted = sum(scores[i][arm]["predicted_boundaries"] for i in idx)
            true = sum(len(scores[i][arm]["boundary_errors"]) for i in idx)
            return 2 * matched / (predicted + true) if predicted + true else 1.0
        return figure
    out = {"windows": {"accuracy": pooled(ratio(lambda s: s["window_correct"], lambda s: s["windows"])),
                       "n": sum(s["windows"] for s in scores),
                       "parsed_share": round(sum(s["parsed"] for s in scores) / sum(s["windows"] for s in scores), 4)}}
    for arm in ("smoothed", "raw"):
        out[arm] = {"time_accuracy": pooled(lambda idx, a=arm: float(np.mean([scores[i][a]["time_acc"]
                                                                              for i in idx]))),
                    "segment_accuracy": pooled(ratio(lambda s, a=arm: s[a]["segments_right"], true_segments)),
                    "boundary_error_s": pooled(mean_error(arm)), "boundary_f1": pooled(boundary_f1(arm)),
                    "predicted_per_true_boundary": round(sum(s[arm]["predicted_boundaries"] for s in scores) /
                                                         sum(len(s[arm]["boundary_errors"]) for s in scores), 3)}
    out["uniform"] = {"boundary_error_s": pooled(mean_error("uniform")), "boundary_f1": pooled(boundary_f1("uniform"))}
    out["smoothed_minus_raw_time_accuracy"] = pooled(
        lambda idx: float(np.mean([scores[i]["smoothed"]["time_acc"] - scores[i]["raw"]["time_acc"] for i in idx])))
    return out


def main() -> None:
    from affect_mllm.schema import read_manifest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget: checks every step runs")
    parser.add_argument("--work", default="runs/timeline", help="folder for data, the adapter and the timelines")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="engines to compare (hf, vllm)")
    args = parser.parse_args()
    budget = QUICK if args.quick else Budget()
    work = Path(args.work) / ("quick" if args.quick else "full")
    started = time.time()
    code = code_digest()
    adapter = tuned_adapter(work, budget, code)
    manifest = read_manifest(long_clips(work, budget, code))
    truth = {s.id: (s.source["segments"], s.source["duration_s"]) for s in manifest.samples}
    results: dict = {"budget": asdict(budget), "adapter": stored_key(adapter)["digest"][:12],
                     "clips": len(manifest.samples), "video_s": round(sum(d for _, d in truth.values()), 1)}
    runs = {backend: run_backend(backend, adapter, manifest, work / "runs" / backend, budget)
            for backend in args.backends.split(",")}
    first = next(iter(runs.values()))
    scores = [clip_scores(first["clips"][cid], *truth[cid]) for cid in truth]
    results.update(summarise(scores))
    results["throughput"] = {b: {"video_s_per_s": round(r["video_s"] / r["seconds"], 3),
                                 "engine_start_s": r["start_s"], "answering_s": round(r["seconds"], 1)}
                             for b, r in runs.items()}
    if len(runs) == 2:
        a, b = (runs[name] for name in BACKENDS)
        results["throughput"]["vllm_over_hf"] = round(a["seconds"] / b["seconds"], 3)
        labels = [(x, y) for cid in truth for x, y in zip(clip_scores(a["clips"][cid], *truth[cid])["labels"],
                                                           clip_scores(b["clips"][cid], *truth[cid])["labels"],
                                                           strict=True)]
        results["throughput"]["same_label_share"] = round(sum(x == y for x, y in labels) / len(labels), 4)
    results["scored_backend"] = next(iter(runs))
    results["minutes"] = round((time.time() - started) / 60, 1)
    print_table(results)
    print(json.dumps(results))


def print_table(results: dict) -> None:
    def cell(entry):
        return f"{entry['value']:.3f} [{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]"

    print(f"{results['clips']} long clips, {results['video_s']} s of video, {results['windows']['n']} windows "
          f"(scored: {results['scored_backend']}; parsed {results['windows']['parsed_share']:.3f})")
    print(f"window accuracy (label at the window centre): {cell(results['windows']['accuracy'])}")
    for arm in ("smoothed", "raw"):
        entry = results[arm]
        print(f"{arm:8s} time acc {cell(entry['time_accuracy'])}  segment acc {cell(entry['segment_accuracy'])}  "
              f"boundary error {cell(entry['boundary_error_s'])} s  boundary F1 (2 s) {cell(entry['boundary_f1'])}  "
              f"predicted/true boundaries {entry['predicted_per_true_boundary']}")
    print(f"uniform boundaries (K known): boundary error {cell(results['uniform']['boundary_error_s'])} s  "
          f"boundary F1 {cell(results['uniform']['boundary_f1'])}")
    print(f"smoothed - raw time accuracy: {cell(results['smoothed_minus_raw_time_accuracy'])}")
    for backend, entry in results["throughput"].items():
        print(f"{backend}: {entry}")


if __name__ == "__main__":
    main()
