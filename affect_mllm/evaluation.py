"""The one evaluation path: predictions + gold -> the metrics dict, with bootstrap intervals and provenance.

`affect-mllm evaluate`, the demo and the benchmarks all call `evaluate_files` (or `evaluate_records` for
records already in memory); nothing else turns predictions into reported figures.
"""

from __future__ import annotations

import hashlib
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

from affect_mllm import __version__
from affect_mllm.extraction import LexiconExtractor, LLMExtractor, fill_emotions
from affect_mllm.jsonl import atomic_write_json
from affect_mllm.lexicon import project_wheels
from affect_mllm.metrics.corpus import BootstrapSettings, evaluate_corpus
from affect_mllm.ovmer_tables import load_ovmer_tables, resolve_tables_dir
from affect_mllm.predictions import PredictionFileError, file_format, file_sha256, join_records, read_records
from affect_mllm.report import json_safe, write_report

EXTRACTORS = ("lexicon", "llm")


def evaluate_files(pred: Path, gold: Path, *, tables_dir: str | None = None, extractor: str = "lexicon",
                   llm: tuple[str | None, str | None, Path | None] = (None, None, None), n_resamples: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """Read, extract labels where needed, join on id, compute the metrics and record their provenance.

    Args:
        pred: prediction file (.jsonl, official ``name,openset`` .csv or .npz).
        gold: gold file (same formats, or a project manifest).
        tables_dir: official tables folder, or None to fall back to $AFFECT_MLLM_OVMER_TABLES.
        extractor: "lexicon" or "llm".
        llm: (base URL, model, cache file) of the LLM extractor.
        n_resamples: bootstrap resamples (0: no intervals).
        seed: bootstrap seed.

    Returns:
        The metrics dict (not yet JSON-cleaned); headline figures carry ``ci95`` intervals.

    Raises:
        PredictionFileError: an unreadable file, or no prediction id matches a gold id.
        OvmerTablesError, ExtractionError: unreadable tables or a failing endpoint.
    """
    if extractor not in EXTRACTORS:
        raise ValueError(f"extractor must be one of {EXTRACTORS}, not {extractor!r}")
    gold_records, pred_records = read_records(gold), read_records(pred)
    folder = resolve_tables_dir(tables_dir)
    official = load_ovmer_tables(folder) if folder is not None else None
    chosen = LLMExtractor(base_url=llm[0], model=llm[1], cache_path=llm[2]) if extractor == "llm" \
        else LexiconExtractor()
    pred_records, n_extracted = fill_emotions(pred_records, chosen)
    joined = join_records(gold_records, pred_records)
    if gold_records and len(joined.missing_ids) == len(gold_records):
        raise PredictionFileError(pred, f"no prediction id matches a gold id of {gold}")
    bootstrap = BootstrapSettings(n_resamples=n_resamples, seed=seed)
    metrics = evaluate_corpus(joined.gold, joined.pred, project=project_wheels(), official=official,
                              bootstrap=bootstrap)
    metrics.update(n_missing_predictions=len(joined.missing_ids), n_extra_predictions=len(joined.extra_ids),
                   missing_ids=joined.missing_ids[:20])  # the first few, to show which ids failed to join
    extractor_settings = {**chosen.settings(), "n_extracted": n_extracted}
    metrics["provenance"] = provenance(pred, gold, folder, extractor_settings, bootstrap)
    return metrics


def provenance(pred: Path, gold: Path, folder: Path | None, extractor: dict, bootstrap: BootstrapSettings) -> dict:
    """What determined the figures: input hashes, tables, extractor, bootstrap settings and code version."""
    data = resources.files("affect_mllm") / "data"
    tables: dict[str, Any] = {"project_wheels": {name: hashlib.sha256((data / name).read_bytes()).hexdigest()
                                                 for name in ("emotion_lexicon.csv", "emotion_forms.csv")}}
    if folder is not None:
        files = sorted(p for p in folder.iterdir() if p.suffix in (".npz", ".csv", ".xlsx"))
        tables["ovmer"] = {"dir": str(folder), "files_sha256": {p.name: file_sha256(p) for p in files}}
    return {
        "pred": {"path": str(pred), "format": file_format(pred), "sha256": file_sha256(pred)},
        "gold": {"path": str(gold), "format": file_format(gold), "sha256": file_sha256(gold)},
        "tables": tables,
        "extractor": extractor,
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


def write_outputs(metrics: dict[str, Any], json_out: Path, report: Path | None) -> None:
    """Write OUT.json and, when asked, the report folder."""
    atomic_write_json(json_out, json_safe(metrics))
    if report is not None:
        write_report(metrics, report)
