"""The one evaluation path: predictions + gold -> the metrics dict, with bootstrap intervals and provenance.

`affect-mllm evaluate`, the demo and the benchmarks all score through here; nothing else turns predictions into
reported figures. `evaluate_files` reads the files and calls `evaluate_records`, the in-memory form (records
already read, e.g. a benchmark's predictions); both fill missing emotion labels from free text with the same
extractor, join on id and run `metrics.corpus.evaluate_corpus`. What each figure means (the gold set of the
wheel metric, the `unmapped` column, the format rule) is written down once, in `affect_mllm.metrics.corpus`.

Benchmarks read their figures with `benchmark_figures` and compare two arms on the same clips with
`paired_differences` (B minus A, a paired bootstrap interval on each figure).
"""

from __future__ import annotations

import hashlib
import math
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from affect_mllm import __version__
from affect_mllm.extraction import Extractor, LexiconExtractor, LLMExtractor, fill_emotions
from affect_mllm.jsonl import atomic_write_json, read_jsonl
from affect_mllm.lexicon import project_wheels
from affect_mllm.metrics.corpus import BootstrapSettings, evaluate_corpus
from affect_mllm.ovmer_tables import load_ovmer_tables, resolve_tables_dir
from affect_mllm.predictions import (
    LabelRecord,
    PredictionFileError,
    file_format,
    file_sha256,
    join_records,
    read_records,
)
from affect_mllm.prompts import task_fields
from affect_mllm.report import json_safe, write_report
from affect_mllm.wheels import EmotionWheels

EXTRACTORS = ("lexicon", "llm")
MISSING_GROUP = "(missing)"  # the group of gold records without the group_by key
# name -> (section, key) of the figures the benchmarks report; wheel F is on the project's wheels, level 1.
BENCHMARK_FIGURES = {
    "emotion_acc": ("categorical", "accuracy"),
    "wheel_f": ("wheel_level1", "f"),
    "answer_au_f1": ("au", "mean_f1"),
    "rationale_au_f1": ("rationale", "au_f1"),
    "grounding": ("rationale", "grounding"),
    "format_rate": ("format", "rate"),
}


def evaluate_files(pred: Path, gold: Path, *, tables_dir: str | None = None, extractor: str = "lexicon",
                   llm: tuple[str | None, str | None, Path | None] = (None, None, None), n_resamples: int = 1000,
                   seed: int = 0, task: str | None = None, group_by: str | None = None) -> dict[str, Any]:
    """Read both files, then `evaluate_records`; the provenance names the files and their hashes.

    Args:
        pred: prediction file (.jsonl, official ``name,openset`` .csv or .npz).
        gold: gold file (same formats, or a project manifest).
        tables_dir: official tables folder, or None to fall back to $AFFECT_MLLM_OVMER_TABLES.
        extractor: "lexicon" or "llm".
        llm: (base URL, model, cache file) of the LLM extractor.
        n_resamples: bootstrap resamples (0: no intervals).
        seed: bootstrap seed.
        task: the prompt task the predictions answer (its fields are the format rule), None: "names an emotion".
        group_by: a key of the gold JSONL records (dotted for nested ones, e.g. ``source.difficulty`` or
            ``emotion``); the metrics of each group go under ``by_group``.

    Returns:
        The metrics dict (not yet JSON-cleaned); headline figures carry ``ci95`` intervals.

    Raises:
        PredictionFileError: an unreadable file, a group_by on a non-JSONL gold, or no prediction id matches.
        OvmerTablesError, ExtractionError: unreadable tables or a failing endpoint.
        ValueError: an unknown extractor or task.
    """
    if extractor not in EXTRACTORS:
        raise ValueError(f"extractor must be one of {EXTRACTORS}, not {extractor!r}")
    gold_records, pred_records = read_records(gold), read_records(pred)
    pred_ids = {record.id for record in pred_records}
    if gold_records and not any(record.id in pred_ids for record in gold_records):
        raise PredictionFileError(pred, f"no prediction id matches a gold id of {gold}")
    folder = resolve_tables_dir(tables_dir)
    chosen = LLMExtractor(base_url=llm[0], model=llm[1], cache_path=llm[2]) if extractor == "llm" \
        else LexiconExtractor()
    groups = group_values(gold, group_by) if group_by else None
    metrics = evaluate_records(gold_records, pred_records, official=load_ovmer_tables(folder) if folder else None,
                               extractor=chosen, n_resamples=n_resamples, seed=seed, task=task, groups=groups)
    metrics["provenance"] = {
        "pred": {"path": str(pred), "format": file_format(pred), "sha256": file_sha256(pred)},
        "gold": {"path": str(gold), "format": file_format(gold), "sha256": file_sha256(gold)},
        **metrics["provenance"],
    }
    if folder is not None:
        files = sorted(p for p in folder.iterdir() if p.suffix in (".npz", ".csv", ".xlsx"))
        metrics["provenance"]["tables"]["ovmer"] = {"dir": str(folder),
                                                    "files_sha256": {p.name: file_sha256(p) for p in files}}
    if group_by:
        metrics["provenance"]["group_by"] = group_by
    return metrics


def evaluate_records(gold: Sequence[LabelRecord], pred: Sequence[LabelRecord], *,
                     official: EmotionWheels | None = None, extractor: Extractor | None = None,
                     n_resamples: int = 1000, seed: int = 0, task: str | None = None,
                     groups: Sequence[str] | None = None) -> dict[str, Any]:
    """The in-memory form: fill emotion labels from free text, join on id, score every section the gold allows.

    Args:
        gold: gold records (e.g. `predictions.read_records` of a manifest).
        pred: prediction records as `predictions.read_records` or `record_from_answer` make them (a completion's
            fields parsed), any order; ids not in the gold are counted and ignored.
        official: the official OV-MER tables, or None.
        extractor: free text -> labels for predictions without emotion words (default: the lexicon extractor).
        n_resamples: bootstrap resamples (0: no intervals).
        seed: bootstrap seed.
        task: the prompt task (format rule), or None.
        groups: one group name per gold record; each group's metrics go under ``by_group``.

    Returns:
        The metrics dict with ``provenance`` (extractor, bootstrap, tables, code version).
    """
    chosen = extractor if extractor is not None else LexiconExtractor()
    filled, n_extracted = fill_emotions(list(pred), chosen)
    joined = join_records(gold, filled)
    bootstrap = BootstrapSettings(n_resamples=n_resamples, seed=seed)
    fields = task_fields(task)
    metrics = evaluate_corpus(joined.gold, joined.pred, project=project_wheels(), official=official,
                              bootstrap=bootstrap, answer_fields=fields)
    metrics.update(n_missing_predictions=len(joined.missing_ids), n_extra_predictions=len(joined.extra_ids),
                   missing_ids=joined.missing_ids[:20])  # the first few, to show which ids failed to join
    if groups is not None:
        metrics["by_group"] = _by_group(joined.gold, joined.pred, groups, official, bootstrap, fields)
    metrics["provenance"] = _provenance({**chosen.settings(), "n_extracted": n_extracted}, bootstrap, task)
    return metrics


def _by_group(gold: list[LabelRecord], pred: list[LabelRecord | None], groups: Sequence[str],
              official: EmotionWheels | None, bootstrap: BootstrapSettings, fields: tuple[str, ...] | None) -> dict:
    if len(groups) != len(gold):
        raise ValueError(f"{len(groups)} group names for {len(gold)} gold records")
    out = {}
    for name in sorted(set(groups)):
        rows = [i for i, group in enumerate(groups) if group == name]
        out[name] = evaluate_corpus([gold[i] for i in rows], [pred[i] for i in rows], project=project_wheels(),
                                    official=official, bootstrap=bootstrap, answer_fields=fields)
    return out


def group_values(gold: Path, key: str) -> list[str]:
    """The value of `key` (dotted for nested keys) in each record of a JSONL gold file, as group names."""
    if file_format(gold) != "jsonl":
        raise PredictionFileError(gold, f"group_by {key!r} needs a JSONL gold file")
    values = []
    for record in read_jsonl(gold):
        value: Any = record
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values.append(MISSING_GROUP if value is None else str(value))
    return values


def _provenance(extractor: dict, bootstrap: BootstrapSettings, task: str | None) -> dict:
    """What determined the figures apart from the input files: tables, extractor, settings and code version."""
    data = resources.files("affect_mllm") / "data"
    wheels = {name: hashlib.sha256((data / name).read_bytes()).hexdigest()
              for name in ("emotion_lexicon.csv", "emotion_forms.csv")}
    return {
        "tables": {"project_wheels": wheels},
        "extractor": extractor,
        "task": task,
        "bootstrap": {"n_resamples": bootstrap.n_resamples, "seed": bootstrap.seed,
                      "confidence": bootstrap.confidence},
        "code_version": {"affect_mllm": __version__, "git_commit": git_commit()},
    }


def git_commit() -> str | None:
    """The commit of the checkout the package runs from, or None outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                              text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def benchmark_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The benchmarks' figures (`BENCHMARK_FIGURES`) from a metrics dict, with "ci95" and "n"; None if absent."""
    out: dict[str, Any] = {"ci95": {}}
    for name, (section, key) in BENCHMARK_FIGURES.items():
        block = metrics.get(section) or {}
        out[name] = block.get(key)
        out["ci95"][name] = (block.get("ci95") or {}).get(key)
    out["n"] = metrics.get("n_samples")
    return out


def paired_differences(gold: Sequence[LabelRecord], pred_a: Sequence[LabelRecord], pred_b: Sequence[LabelRecord],
                       *, task: str | None = None, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Each benchmark figure of B minus A on the same gold samples, with a paired 95 % bootstrap interval.

    Both arms are scored on the same resample of samples each time (the clip-to-clip variation they share cancels),
    through `evaluate_corpus` exactly as `evaluate_records` scores them.

    Returns:
        {figure: {"a", "b", "difference", "ci95"}}; a figure one arm lacks has None throughout.
    """
    extractor, fields = LexiconExtractor(), task_fields(task)
    arms = [join_records(gold, fill_emotions(list(p), extractor)[0]).pred for p in (pred_a, pred_b)]
    gold = list(gold)

    def figures(rows: Sequence[int]) -> list[dict[str, Any]]:
        return [benchmark_figures(evaluate_corpus([gold[i] for i in rows], [arm[i] for i in rows],
                                                  project=project_wheels(), bootstrap=BootstrapSettings(0),
                                                  answer_fields=fields)) for arm in arms]

    full_a, full_b = figures(range(len(gold)))
    rng = np.random.default_rng(seed)
    draws = [figures(rng.integers(0, len(gold), size=len(gold))) for _ in range(n_resamples if gold else 0)]
    out = {}
    for name in BENCHMARK_FIGURES:
        a, b = full_a[name], full_b[name]
        diffs = np.array([_difference(fa[name], fb[name]) for fa, fb in draws], dtype=float)
        diffs = diffs[np.isfinite(diffs)]
        ci = [float(x) for x in np.percentile(diffs, [2.5, 97.5])] if len(diffs) else None
        out[name] = {"a": a, "b": b, "difference": _difference(a, b), "ci95": ci}
    return out


def _difference(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return None
    return b - a


def write_outputs(metrics: dict[str, Any], json_out: Path, report: Path | None) -> None:
    """Write OUT.json and, when asked, the report folder."""
    atomic_write_json(json_out, json_safe(metrics))
    if report is not None:
        write_report(metrics, report)
