"""Round reports: yield, reward distributions, class balance and example rationales (JSON + Markdown), and a PNG
of every finished round side by side.

A round's `report.json`/`report.md` sit in its folder; `synthesis_report.{json,md}` and `synthesis_rounds.png` in
the output folder cover all rounds so far and are rewritten after each round. Plots draw on matplotlib's Agg
canvas directly (no pyplot state), so they render without a display.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from affect_mllm.jsonl import atomic_write_bytes, atomic_write_json, atomic_write_text
from affect_mllm.report import json_safe

SUMMARY_NAME = "synthesis_report"
PLOT_NAME = "synthesis_rounds.png"


def distribution(values: Sequence[float | None]) -> dict:
    """n, mean, std, min, quartiles and max of the scored values (None values are left out).

    Example:
        >>> distribution([1.0, None, 3.0])["mean"], distribution([None])["n"]
        (2.0, 0)
    """
    scored = np.array([v for v in values if v is not None], dtype=float)
    if scored.size == 0:
        return {"n": 0}
    q = np.quantile(scored, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {
        "n": int(scored.size),
        "mean": float(scored.mean()),
        "std": float(scored.std()),
        "min": float(q[0]),
        "p25": float(q[1]),
        "median": float(q[2]),
        "p75": float(q[3]),
        "max": float(q[4]),
    }


def reward_distributions(entries: Sequence[dict]) -> dict:
    """Per-reward and total distributions over scored candidate entries (verdict `candidates` / `kept`)."""
    names = list(dict.fromkeys(name for entry in entries for name in entry["rewards"]))
    out = {name: distribution([entry["rewards"].get(name) for entry in entries]) for name in names}
    out["total"] = distribution([entry["total"] for entry in entries])
    return out


def round_report(
    round_index: int, verdicts: Sequence[dict], kept: Sequence[dict], dropped: Mapping[str, list], examples: int = 3
) -> dict:
    """The figures of one round.

    Args:
        round_index: the round.
        verdicts: the verify step's verdicts (every candidate's scores, the chosen one per clip).
        kept: the records that survived cleaning: {"id", "class", "rationale", "total"}.
        dropped: clip ids dropped by the clean step, per reason.
        examples: how many kept rationales to show (best first).

    Returns:
        {"round", "clips", "candidates", "passing_candidates", "verified", "kept", "yield", "clip_yield",
        "rewards": {"all", "kept"}, "class_balance", "dropped", "examples"}.
    """
    candidates = [entry for verdict in verdicts for entry in verdict["candidates"]]
    chosen = [verdict["kept"] for verdict in verdicts if verdict["kept"] is not None]
    kept_ids = {record["id"] for record in kept}
    best_first = sorted(kept, key=lambda r: (-r["total"], r["id"]))
    return {
        "round": round_index,
        "clips": len(verdicts),
        "candidates": len(candidates),
        "passing_candidates": sum(entry["passes"] for entry in candidates),
        "verified": len(chosen),
        "kept": len(kept),
        "yield": len(kept) / len(candidates) if candidates else 0.0,
        "clip_yield": len(kept) / len(verdicts) if verdicts else 0.0,
        "rewards": {
            "all": reward_distributions(candidates),
            "kept": reward_distributions([v["kept"] for v in verdicts if v["id"] in kept_ids]),
        },
        "class_balance": dict(sorted(Counter(record["class"] for record in kept).items())),
        "dropped": {reason: len(ids) for reason, ids in dropped.items()},
        "examples": [dict(record) for record in best_first[:examples]],
    }


def render_round_markdown(report: Mapping) -> str:
    """A round report as Markdown."""
    lines = [
        f"# Synthesis round {report['round']}",
        "",
        f"- clips: {report['clips']}, candidates: {report['candidates']}, passing: {report['passing_candidates']}",
        f"- kept after verify: {report['verified']}, after clean: "
        f"{report['kept']} (yield {report['yield']:.3f} per candidate, {report['clip_yield']:.3f} per clip)",
        f"- dropped by cleaning: {_inline(report['dropped'])}",
        f"- class balance: {_inline(report['class_balance']) or 'none kept'}",
        "",
        "| reward | all: n | all: mean | kept: n | kept: mean |",
        "|---|---|---|---|---|",
    ]
    for name, stats in report["rewards"]["all"].items():
        kept = report["rewards"]["kept"].get(name, {"n": 0})
        lines.append(
            f"| {name} | {stats['n']} | {_number(stats.get('mean'))} | {kept['n']} | {_number(kept.get('mean'))} |"
        )
    lines += ["", "## Example rationales", ""]
    lines += [f"- `{e['id']}` ({e['class']}, reward {e['total']:.2f}): {e['rationale']}" for e in report["examples"]]
    return "\n".join(lines) + "\n"


def _inline(counts: Mapping) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items())


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_round_report(report: Mapping, folder: str | Path) -> dict[str, Path]:
    """Write a round's report.json and report.md (atomically)."""
    folder = Path(folder)
    paths = {"json": folder / "report.json", "markdown": folder / "report.md"}
    atomic_write_json(paths["json"], json_safe(report))
    atomic_write_text(paths["markdown"], render_round_markdown(report))
    return paths


def write_summary(reports: Sequence[Mapping], output_dir: str | Path) -> dict[str, Path]:
    """Write the across-rounds summary (JSON, Markdown table, PNG) into the output folder."""
    output_dir = Path(output_dir)
    paths = {
        "json": output_dir / f"{SUMMARY_NAME}.json",
        "markdown": output_dir / f"{SUMMARY_NAME}.md",
        "plot": output_dir / PLOT_NAME,
    }
    atomic_write_json(paths["json"], json_safe({"rounds": list(reports)}))
    lines = [
        "# Synthesis rounds",
        "",
        f"![rounds]({PLOT_NAME})",
        "",
        "| round | clips | candidates | kept | yield | mean reward (all) | mean reward (kept) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r['round']} | {r['clips']} | {r['candidates']} | {r['kept']} | {r['yield']:.3f} | "
            f"{_number(r['rewards']['all']['total'].get('mean'))} | "
            f"{_number(r['rewards']['kept']['total'].get('mean'))} |"
        )
    atomic_write_text(paths["markdown"], "\n".join(lines) + "\n")
    atomic_write_bytes(paths["plot"], rounds_png(reports))
    return paths


def rounds_png(reports: Sequence[Mapping]) -> bytes:
    """PNG of yield, mean reward (all vs kept) and kept per class, one point/bar per round."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 3.2))
    FigureCanvasAgg(figure)
    rounds = [r["round"] for r in reports]
    yield_axes, reward_axes, class_axes = figure.subplots(1, 3)
    yield_axes.bar(rounds, [r["yield"] for r in reports], color="tab:blue")
    yield_axes.set(title="yield (kept / candidates)", xlabel="round", xticks=rounds)
    for key, style in (("all", "o-"), ("kept", "s-")):
        means = [r["rewards"][key]["total"].get("mean", np.nan) for r in reports]
        reward_axes.plot(rounds, [np.nan if m is None else m for m in means], style, label=key)
    reward_axes.set(title="mean weighted reward", xlabel="round", xticks=rounds)
    reward_axes.legend()
    bottom = np.zeros(len(reports))
    for label in sorted({c for r in reports for c in r["class_balance"]}):
        counts = np.array([r["class_balance"].get(label, 0) for r in reports], dtype=float)
        class_axes.bar(rounds, counts, bottom=bottom, label=label)
        bottom += counts
    class_axes.set(title="kept per class", xlabel="round", xticks=rounds)
    if bottom.any():
        class_axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()
