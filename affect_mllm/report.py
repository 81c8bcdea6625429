"""Evaluation report: metrics dict -> report.json + report.md + PNG plots (confusion matrix, per-AU F1 bars).

Files are written atomically. Plots use matplotlib's Agg canvas directly (no pyplot, no global backend state),
so reports render on machines without a display.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from affect_mllm.jsonl import atomic_write_bytes, atomic_write_json, atomic_write_text

# (section key or None for top level, figure key, label) of the figures the summary lists first.
_WHEEL_FIGURES = [(f"{prefix}_{level}", key, f"{prefix}_{level} {key}")
                  for prefix in ("ovmer", "wheel") for level in ("level1", "level2")
                  for key in ("f", "precision", "recall")]
HEADLINE_FIGURES = [
    *_WHEEL_FIGURES,
    ("ovmer_hit_rate", "hit_rate", "ovmer hit rate"), ("wheel_hit_rate", "hit_rate", "wheel hit rate"),
    ("categorical", "accuracy", "accuracy (WAR)"), ("categorical", "uar", "UAR"),
    ("categorical", "macro_f1", "macro F1"), ("categorical", "weighted_f1", "weighted F1"),
    ("sentiment", "weighted_f1", "sentiment weighted F1"), ("sentiment", "accuracy", "sentiment accuracy"),
    ("valence_arousal", "valence_ccc", "valence CCC"), ("valence_arousal", "arousal_ccc", "arousal CCC"),
    ("au", "mean_f1", "AU mean F1 (answer field)"), ("au_intensity", "mae", "AU intensity MAE"),
    ("au_intensity", "icc", "AU intensity ICC(3,1)"), ("rationale", "au_f1", "AU mean F1 (rationale citations)"),
    ("rationale", "grounding", "rationale AU grounding"), ("rationale", "rouge_l", "rationale ROUGE-L F"),
    ("format", "rate", "format rate"),
]


def json_safe(value: Any) -> Any:
    """A JSON-ready copy: NaN and infinities -> None, numpy values -> Python, tuples -> lists, keys -> str.

    Example:
        >>> json_safe({"f": float("nan"), 6: np.float64(0.5), "aus": (6, 12)})
        {'f': None, '6': 0.5, 'aus': [6, 12]}
    """
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def headline_rows(metrics: Mapping[str, Any]) -> list[tuple[str, float | None, list[float] | None]]:
    """(label, value, 95 % interval) of each headline figure the metrics hold, in report order."""
    rows = []
    for section, key, label in HEADLINE_FIGURES:
        block = metrics.get(section)
        if isinstance(block, Mapping) and key in block:
            interval = (block.get("ci95") or {}).get(key)
            rows.append((label, block[key], interval))
    return rows


def _number(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4f}"


def render_markdown(metrics: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    """The report as Markdown: headline table with intervals, per-wheel and per-AU details, plots, provenance."""
    lines = ["# Evaluation report", "", f"Samples: {metrics.get('n_samples')}, "
             f"with a prediction: {metrics.get('n_predicted')}.", ""]
    if not any(key.startswith("ovmer_") for key in metrics):
        lines += ["Official OV-MER tables not used: emotion-wheel figures are on the project's wheels "
                  "(`wheel_*`) and are not comparable with published OV-MER scores.", ""]
    lines += ["| figure | value | 95 % CI |", "|---|---|---|"]
    for label, value, interval in headline_rows(metrics):
        ci = "n/a" if not interval else f"[{_number(interval[0])}, {_number(interval[1])}]"
        lines.append(f"| {label} | {_number(value)} | {ci} |")
    for name in [key for key in metrics if key.endswith(("_level1", "_level2"))]:
        lines += ["", f"## {name} per wheel", "", "| wheel | F | P | R | samples | skipped |",
                  "|---|---|---|---|---|---|"]
        for wheel, scores in metrics[name]["per_wheel"].items():
            lines.append(f"| {wheel} | {_number(scores['f'])} | {_number(scores['precision'])} | "
                         f"{_number(scores['recall'])} | {scores['n_samples']} | {scores['n_skipped']} |")
    series = _au_series(metrics)
    if series:
        lines += ["", "## AU F1", "", "| AU | " + " | ".join(series) + " |", "|---|" + "---|" * len(series)]
        aus = next(iter(series.values()))
        lines += [f"| AU{au} | " + " | ".join(_number(values.get(au)) for values in series.values()) + " |"
                  for au in aus]
    if "format" in metrics:
        faults = ", ".join(f"{name} {count}" for name, count in metrics["format"]["faults"].items())
        lines += ["", "## Answer format", "", f"Fields asked: {metrics['format']['fields_asked']}. "
                  f"Samples failing each check: {faults}."]
    if "modality" in metrics:
        from affect_mllm.modality import modality_markdown

        lines += modality_markdown(metrics["modality"])
    for name, filename in plots.items():
        lines += ["", f"## {name.replace('_', ' ')}", "", f"![{name}]({filename})"]
    if "provenance" in metrics:
        lines += ["", "## Provenance", "", "```json", _json_text(metrics["provenance"]), "```"]
    return "\n".join(lines) + "\n"


def _au_series(metrics: Mapping[str, Any]) -> dict[str, Mapping[Any, float]]:
    """Per-AU F1 of the answer field and of the rationale's citations, where the metrics hold them."""
    series = {}
    if metrics.get("au", {}).get("per_au"):
        series["answer field"] = metrics["au"]["per_au"]
    if metrics.get("rationale", {}).get("au_per_au"):
        series["rationale citations"] = metrics["rationale"]["au_per_au"]
    return series


def _json_text(value: Any) -> str:
    import json

    return json.dumps(json_safe(value), indent=2, ensure_ascii=False)


def _figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def confusion_matrix_png(confusion: Mapping[str, Any]) -> bytes:
    """PNG of a confusion matrix ({"labels", "columns", "matrix"}: rows gold, columns predicted), counts annotated."""
    matrix = np.asarray(confusion["matrix"], dtype=float)
    rows, columns = confusion["labels"], confusion["columns"]
    figure = _figure(2.0 + 0.6 * len(columns), 1.5 + 0.5 * len(rows))
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues", vmin=0)  # shade from 0, so the text colour rule below matches
    axes.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    axes.set_yticks(range(len(rows)), rows)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    peak = matrix.max() if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(j, i, f"{int(count)}", ha="center", va="center", color="white" if count > peak / 2 else "black")
    return _png(figure)


def au_f1_png(series: Mapping[str, Mapping[Any, float]]) -> bytes:
    """PNG of per-AU F1 bars, one bar per series (e.g. answer field, rationale citations) for each AU."""
    aus = list(next(iter(series.values())))
    width = 0.8 / len(series)
    figure = _figure(1.5 + 0.45 * len(aus) * len(series), 3.0)
    axes = figure.add_subplot()
    for k, (name, per_au) in enumerate(series.items()):
        values = [per_au.get(au) for au in aus]
        values = [0.0 if v is None or not math.isfinite(v) else v for v in values]
        axes.bar([i + (k - (len(series) - 1) / 2) * width for i in range(len(aus))], values, width, label=name)
    axes.set_xticks(range(len(aus)), [f"AU{au}" for au in aus], rotation=45, ha="right")
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel("F1")
    axes.legend(fontsize="small")
    return _png(figure)


def write_report(metrics: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.md and the plots the metrics allow into `out_dir`.

    Args:
        metrics: the evaluation result (`affect_mllm.evaluation.evaluate_files`).
        out_dir: destination folder (created).

    Returns:
        name -> path of every file written ("json", "markdown", "confusion_matrix", "au_f1").
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    plots: dict[str, str] = {}
    if "categorical" in metrics:
        paths["confusion_matrix"] = out_dir / "confusion_matrix.png"
        atomic_write_bytes(paths["confusion_matrix"], confusion_matrix_png(metrics["categorical"]["confusion_matrix"]))
        plots["confusion_matrix"] = paths["confusion_matrix"].name
    if _au_series(metrics):
        paths["au_f1"] = out_dir / "au_f1.png"
        atomic_write_bytes(paths["au_f1"], au_f1_png(_au_series(metrics)))
        plots["au_f1"] = paths["au_f1"].name
    atomic_write_json(paths["json"], json_safe(metrics))
    atomic_write_text(paths["markdown"], render_markdown(metrics, plots))
    return paths
