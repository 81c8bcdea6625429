"""Held-out scoring for the benchmarks: predictions written as `affect-mllm predict` writes them, scored by the one
evaluation path (`affect_mllm.evaluation`), every figure with its bootstrap 95 % interval.

- `predict`: a manifest through a loaded engine with `inference.predict`'s EnginePredictor, progress log and
  output writer (the local branch of `affect-mllm predict`), into a project JSONL predictions file.
- `figures`: `evaluation.benchmark_figures` of `evaluate_files(pred, gold, task=...)`: emotion_acc, wheel_f,
  answer_au_f1, rationale_au_f1, grounding, format_rate, each with its "ci95".
- `differences`: `evaluation.paired_differences` of two arms' predictions on the same gold clips.
- `optional_au_f1`: within-class F1 of the AUs a class shows only sometimes (SynthFACS profiles' `one_of` and
  `sometimes` AUs: AU25 in happy, AU17 in sad, AU26 vs AU27 in surprised, AU23 vs AU24 in angry, AU15 and AU17 in
  disgusted). Most SynthFACS AUs follow from the class, so overall AU F1 restates emotion recognition; these do
  not. Beside each: the always-present F1 in that class, 2p / (1 + p), the best a constant guess scores.
"""

from __future__ import annotations

from pathlib import Path


def optional_aus() -> list[tuple[str, int]]:
    """(class, AU) pairs where the AU is optional within the class, from the SynthFACS face profiles."""
    from affect_mllm.synthfacs.profiles import FACE_PROFILES

    return [(name, au) for name, profile in FACE_PROFILES.items()
            for au in sorted({*profile.one_of, *profile.sometimes})]


def always_present_f1(share: float) -> float:
    """F1 of predicting 'present' for every sample when a share `share` of them is positive: 2p / (1 + p).

    Example:
        >>> always_present_f1(0.375), always_present_f1(0.0)
        (0.5454545454545454, 0.0)
    """
    return 2 * share / (1 + share) if share > 0 else 0.0


def predict(engine, manifest_path: Path, out: Path, *, task: str, adapter: str | None, max_new_tokens: int,
            batch_size: int = 16) -> Path:
    """Greedy predictions of every clip into `out` (.jsonl), as the local `affect-mllm predict` makes them."""
    from inference.engine import SamplingSettings
    from inference.predict import EnginePredictor, load_inputs, progress_log_path, run_predictions, write_output

    manifest = load_inputs(manifest_path)
    predictor = EnginePredictor(engine, manifest, task, SamplingSettings(max_new_tokens=max_new_tokens), adapter,
                                batch_size)
    log = progress_log_path(out)
    log.unlink(missing_ok=True)  # a benchmark predicts afresh: its cache key, not a log, decides reuse
    run_predictions(manifest, predictor, log)
    write_output(manifest, log, out)
    return out


def figures(pred: Path, gold: Path, *, task: str, n_resamples: int = 1000, seed: int = 0) -> dict:
    """The benchmark figures of one predictions file, each with its interval under "ci95"."""
    from affect_mllm.evaluation import benchmark_figures, evaluate_files

    return benchmark_figures(evaluate_files(pred, gold, task=task, n_resamples=n_resamples, seed=seed))


def differences(gold: Path, pred_a: Path, pred_b: Path, *, task: str, n_resamples: int = 300, seed: int = 0) -> dict:
    """{figure: {"a", "b", "difference", "ci95"}}: arm B minus arm A on the same clips, paired bootstrap."""
    from affect_mllm.evaluation import paired_differences
    from affect_mllm.predictions import read_records

    return paired_differences(read_records(gold), read_records(pred_a), read_records(pred_b), task=task,
                              n_resamples=n_resamples, seed=seed)


def optional_au_f1(pred: Path, gold: Path, *, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Within-class F1 of each optional AU (see `optional_aus`), from the answer's `aus` field and the rationale.

    Each figure is `evaluate_files` on a gold file of that class's clips whose AU labels are cut down to the one
    AU, so the evaluation's mean per-AU F1 (and its interval) is that AU's F1 within the class.

    Returns:
        {"AU25 in happy": {"answer", "rationale", "ci95": {"answer", "rationale"}, "always_present", "n",
        "positives"}, ...}; an AU that no clip of its class shows is left out.
    """
    from affect_mllm.evaluation import benchmark_figures, evaluate_files
    from affect_mllm.jsonl import write_jsonl
    from affect_mllm.predictions import read_records

    gold_records = read_records(gold)
    out = {}
    for emotion, au in optional_aus():
        rows = [{"id": g.id, "emotion": g.emotion,
                 "aus": [{"au": au, "intensity": x} for a, x in (g.aus or {}).items() if a == au and au in g.au_set()]}
                for g in gold_records if g.emotion == emotion]
        positives = sum(bool(r["aus"]) for r in rows)
        if not positives:
            continue
        subset = pred.with_name(f"{pred.stem}.gold_{emotion}_au{au}.jsonl")
        write_jsonl(subset, rows)
        scored = benchmark_figures(evaluate_files(pred, subset, n_resamples=n_resamples, seed=seed))
        out[f"AU{au} in {emotion}"] = {
            "answer": scored["answer_au_f1"], "rationale": scored["rationale_au_f1"],
            "ci95": {"answer": scored["ci95"]["answer_au_f1"], "rationale": scored["ci95"]["rationale_au_f1"]},
            "always_present": always_present_f1(positives / len(rows)), "n": len(rows), "positives": positives,
        }
    return out
