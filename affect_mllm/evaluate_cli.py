"""`affect-mllm evaluate`: score predictions against gold labels and write OUT.json (and a report).

    affect-mllm evaluate --pred PRED --gold GOLD [--ovmer-tables DIR] --json OUT.json [--report DIR]
                         [--extractor lexicon|llm] [--llm-base-url URL --llm-model NAME]

PRED and GOLD may be project JSONL, the official ``name,openset`` CSV or an ``*-openset.npz``. The official
OV-MER figures (``ovmer_level1``/``ovmer_level2``) are written only when the official tables are used
(``--ovmer-tables`` or ``$AFFECT_MLLM_OVMER_TABLES``); the same metric on the project's wheels is always written
as ``wheel_level1``/``wheel_level2``. Registration imports nothing heavy; the command imports its work lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXTRACTORS = ("lexicon", "llm")


def register(app) -> None:
    """Add the `evaluate` command."""
    import typer

    @app.command("evaluate")
    def evaluate_command(
        pred: Path = typer.Option(..., "--pred", help="Predictions: .jsonl, official name,openset .csv or .npz."),
        gold: Path = typer.Option(..., "--gold", help="Gold labels (same formats, or a project manifest)."),
        json_out: Path = typer.Option(..., "--json", help="Where to write the metrics JSON."),
        ovmer_tables: str = typer.Option(
            None, "--ovmer-tables", help="Folder of the official OV-MER tables (else $AFFECT_MLLM_OVMER_TABLES)."),
        report: Path = typer.Option(None, "--report", help="Folder for report.md, report.json and PNG plots."),
        extractor: str = typer.Option("lexicon", "--extractor", help="Free text -> labels: lexicon or llm."),
        llm_base_url: str = typer.Option(None, "--llm-base-url", help="OpenAI-compatible endpoint (llm extractor)."),
        llm_model: str = typer.Option(None, "--llm-model", help="Model name at that endpoint (llm extractor)."),
        llm_cache: Path = typer.Option(None, "--llm-cache", help="JSONL cache of LLM extractions (llm extractor)."),
        bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95 % CIs."),
        seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    ) -> None:
        """Score PRED against GOLD: OV-MER wheel F, categorical, sentiment, AU, V/A and rationale metrics."""
        from affect_mllm.extraction import ExtractionError
        from affect_mllm.ovmer_tables import OvmerTablesError
        from affect_mllm.predictions import PredictionFileError

        if extractor not in EXTRACTORS:
            raise typer.BadParameter(f"must be one of {EXTRACTORS}", param_hint="--extractor")
        if extractor == "llm" and not (llm_base_url and llm_model):
            raise typer.BadParameter("the llm extractor needs --llm-base-url and --llm-model",
                                     param_hint="--extractor")
        try:
            metrics = run_evaluation(pred, gold, tables_dir=ovmer_tables, extractor=extractor,
                                     llm=(llm_base_url, llm_model, llm_cache), n_resamples=bootstrap, seed=seed)
        except (PredictionFileError, OvmerTablesError, ExtractionError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        write_outputs(metrics, json_out, report)
        _echo_summary(metrics, json_out, report)


def run_evaluation(pred_path: Path, gold_path: Path, *, tables_dir: str | None = None, extractor: str = "lexicon",
                   llm: tuple[str | None, str | None, Path | None] = (None, None, None), n_resamples: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """Read, extract labels where needed, join on id, compute the metrics and record their provenance.

    Args:
        pred_path: prediction file.
        gold_path: gold file.
        tables_dir: official tables folder, or None to fall back to $AFFECT_MLLM_OVMER_TABLES.
        extractor: "lexicon" or "llm".
        llm: (base URL, model, cache file) of the LLM extractor.
        n_resamples: bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        The metrics dict (not yet JSON-cleaned).

    Raises:
        PredictionFileError: an unreadable file, or no prediction id matches a gold id.
        OvmerTablesError, ExtractionError: unreadable tables or a failing endpoint.
    """
    from affect_mllm.extraction import LexiconExtractor, LLMExtractor, fill_emotions
    from affect_mllm.lexicon import project_wheels
    from affect_mllm.metrics.corpus import BootstrapSettings, evaluate_corpus
    from affect_mllm.ovmer_tables import load_ovmer_tables, resolve_tables_dir
    from affect_mllm.predictions import PredictionFileError, join_records, read_records

    gold_records, pred_records = read_records(gold_path), read_records(pred_path)
    folder = resolve_tables_dir(tables_dir)
    official = load_ovmer_tables(folder) if folder is not None else None
    chosen = LLMExtractor(base_url=llm[0], model=llm[1], cache_path=llm[2]) if extractor == "llm" \
        else LexiconExtractor()
    pred_records, n_extracted = fill_emotions(pred_records, chosen)
    joined = join_records(gold_records, pred_records)
    if gold_records and len(joined.missing_ids) == len(gold_records):
        raise PredictionFileError(pred_path, f"no prediction id matches a gold id of {gold_path}")
    bootstrap = BootstrapSettings(n_resamples=n_resamples, seed=seed)
    metrics = evaluate_corpus(joined.gold, joined.pred, project=project_wheels(), official=official,
                              bootstrap=bootstrap)
    metrics.update(n_missing_predictions=len(joined.missing_ids), n_extra_predictions=len(joined.extra_ids),
                   missing_ids=joined.missing_ids[:20])  # the first few, to show which ids failed to join
    extractor_settings = {**chosen.settings(), "n_extracted": n_extracted}
    metrics["provenance"] = _provenance(pred_path, gold_path, folder, extractor_settings, bootstrap)
    return metrics


def _provenance(pred_path: Path, gold_path: Path, folder: Path | None, extractor: dict, bootstrap) -> dict:
    from importlib import resources

    from affect_mllm import __version__
    from affect_mllm.predictions import file_format, file_sha256

    data = resources.files("affect_mllm") / "data"
    tables: dict[str, Any] = {"project_wheels": {name: _bytes_sha256((data / name).read_bytes())
                                                 for name in ("emotion_lexicon.csv", "emotion_forms.csv")}}
    if folder is not None:
        files = sorted(p for p in folder.iterdir() if p.suffix in (".npz", ".csv", ".xlsx"))
        tables["ovmer"] = {"dir": str(folder), "files_sha256": {p.name: file_sha256(p) for p in files}}
    return {
        "pred": {"path": str(pred_path), "format": file_format(pred_path), "sha256": file_sha256(pred_path)},
        "gold": {"path": str(gold_path), "format": file_format(gold_path), "sha256": file_sha256(gold_path)},
        "tables": tables,
        "extractor": extractor,
        "bootstrap": {"n_resamples": bootstrap.n_resamples, "seed": bootstrap.seed,
                      "confidence": bootstrap.confidence},
        "code_version": {"affect_mllm": __version__, "git_commit": _git_commit()},
    }


def _bytes_sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _git_commit() -> str | None:
    """The commit of the checkout the package runs from, or None outside a git checkout."""
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                              text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def write_outputs(metrics: dict[str, Any], json_out: Path, report: Path | None) -> None:
    """Write OUT.json and, when asked, the report folder."""
    from affect_mllm.jsonl import atomic_write_json
    from affect_mllm.report import json_safe, write_report

    atomic_write_json(json_out, json_safe(metrics))
    if report is not None:
        write_report(metrics, report)


def _echo_summary(metrics: dict[str, Any], json_out: Path, report: Path | None) -> None:
    import math

    import typer

    from affect_mllm.report import headline_rows

    typer.echo(f"{metrics['n_samples']} samples, {metrics['n_predicted']} with a prediction "
               f"({metrics['n_missing_predictions']} missing, {metrics['n_extra_predictions']} not in the gold)")
    for label, value, interval in headline_rows(metrics):
        ci = "" if not interval else f"  95% CI [{interval[0]:.4f}, {interval[1]:.4f}]"
        shown = "n/a" if value is None or math.isnan(value) else f"{value:.4f}"
        typer.echo(f"  {label}: {shown}{ci}")
    typer.echo(f"metrics -> {json_out}" + (f"; report -> {report}" if report is not None else ""))
