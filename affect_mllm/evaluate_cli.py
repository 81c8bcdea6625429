"""`affect-mllm evaluate`: score predictions against gold labels and write OUT.json (and a report).

    affect-mllm evaluate --pred PRED --gold GOLD [--ovmer-tables DIR] --json OUT.json [--report DIR]
                         [--extractor lexicon|llm] [--llm-base-url URL --llm-model NAME] [--task TASK]
                         [--group-by KEY]

PRED and GOLD may be project JSONL, the official ``name,openset`` CSV or an ``*-openset.npz``. The official
OV-MER figures (``ovmer_level1``/``ovmer_level2``) are written only when the official tables are used
(``--ovmer-tables`` or ``$AFFECT_MLLM_OVMER_TABLES``); the same metric on the project's wheels is always written
as ``wheel_level1``/``wheel_level2``. The work is `affect_mllm.evaluation.evaluate_files`; this module only parses
arguments and prints. Registration imports nothing heavy; the command imports its work lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
        task: str = typer.Option(
            None, "--task", help="Prompt task the predictions answer: its fields are the format rule "
                                 "(default: the answer names an emotion)."),
        group_by: str = typer.Option(
            None, "--group-by", help="Gold JSONL key (dotted, e.g. source.difficulty or emotion): metrics per group."),
        ablate: list[str] = typer.Option(
            [], "--ablate", help="MODALITY=PRED (audio or video): PRED's rerun without it (`predict --mask`); "
                                 "adds the modality check (repeatable)."),
    ) -> None:
        """Score PRED against GOLD: OV-MER wheel F, categorical, sentiment, AU, V/A and rationale metrics."""
        from affect_mllm.evaluation import EXTRACTORS, evaluate_files, write_outputs
        from affect_mllm.extraction import ExtractionError
        from affect_mllm.ovmer_tables import OvmerTablesError
        from affect_mllm.predictions import PredictionFileError
        from affect_mllm.prompts import TASK_FIELDS

        if extractor not in EXTRACTORS:
            raise typer.BadParameter(f"must be one of {EXTRACTORS}", param_hint="--extractor")
        if task is not None and task not in TASK_FIELDS:
            raise typer.BadParameter(f"must be one of {tuple(TASK_FIELDS)}", param_hint="--task")
        if extractor == "llm" and not (llm_base_url and llm_model):
            raise typer.BadParameter("the llm extractor needs --llm-base-url and --llm-model",
                                     param_hint="--extractor")
        try:
            metrics = evaluate_files(pred, gold, tables_dir=ovmer_tables, extractor=extractor,
                                     llm=(llm_base_url, llm_model, llm_cache), n_resamples=bootstrap, seed=seed,
                                     task=task, group_by=group_by)
        except (PredictionFileError, OvmerTablesError, ExtractionError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        if ablate:
            metrics["modality"] = _modality(typer, pred, gold, ablate, metrics, ovmer_tables, extractor,
                                            (llm_base_url, llm_model, llm_cache), bootstrap, seed, task)
        write_outputs(metrics, json_out, report)
        _echo_summary(metrics, json_out, report)


def _modality(typer, pred, gold, ablate, metrics, tables_dir, extractor, llm, bootstrap, seed, task) -> dict:
    """The modality section (`affect_mllm.modality.modality_check`), every condition scored like PRED."""
    from affect_mllm.modality import modality_check, modality_markdown, parse_ablations

    try:
        ablated = parse_ablations(ablate)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ablate") from None
    section = modality_check(pred, gold, ablated, full_metrics=metrics, tables_dir=tables_dir, extractor=extractor,
                             llm=llm, n_resamples=bootstrap, seed=seed, task=task)
    typer.echo("\n".join(modality_markdown(section)).strip())
    return section


def _echo_summary(metrics: dict[str, Any], json_out: Path, report: Path | None) -> None:
    import math

    import typer

    from affect_mllm.evaluation import benchmark_figures
    from affect_mllm.report import headline_rows

    typer.echo(f"{metrics['n_samples']} samples, {metrics['n_predicted']} with a prediction "
               f"({metrics['n_missing_predictions']} missing, {metrics['n_extra_predictions']} not in the gold)")
    for label, value, interval in headline_rows(metrics):
        ci = "" if not interval else f"  95% CI [{interval[0]:.4f}, {interval[1]:.4f}]"
        shown = "n/a" if value is None or math.isnan(value) else f"{value:.4f}"
        typer.echo(f"  {label}: {shown}{ci}")
    for name, group in metrics.get("by_group", {}).items():
        figures = benchmark_figures(group)
        shown = ", ".join(f"{key} {value:.4f}" for key, value in figures.items()
                          if key not in ("n", "ci95") and value is not None and not math.isnan(value))
        typer.echo(f"  [{name}] n={figures['n']}: {shown}")
    typer.echo(f"metrics -> {json_out}" + (f"; report -> {report}" if report is not None else ""))
