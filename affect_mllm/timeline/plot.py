"""timeline.png: the emotion band over time, the valence/arousal curves and an AU presence heat strip.

Top row: the smoothed segments (coloured by category, labelled) above a thin strip of the raw window labels,
each over the span the window speaks for, and, when the true segments are known (SynthFACS long clips), a strip of
those below. Middle: valence and arousal per window centre. Bottom: one row per AU
cited anywhere, dark where a window's answer gives or cites it; broken windows are hatched in every row.
Drawn on matplotlib's Agg canvas (no pyplot state), as the evaluation report's plots are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from affect_mllm.knowledge import CATEGORIES
from affect_mllm.report import _figure, _png
from affect_mllm.timeline.windows import Window, owned_spans

CATEGORY_COLOURS = {
    "neutral": "#b0b0b0", "happy": "#f2c12e", "sad": "#3b6fb6", "surprised": "#e67e22", "fearful": "#8e44ad",
    "angry": "#d62728", "disgusted": "#2ca02c", "contemptuous": "#8c564b",
}
OTHER_COLOUR = "#e8e8e8"  # a word outside the categories, or no label


def colour_of(label: str | None) -> str:
    """The band colour of a label."""
    return CATEGORY_COLOURS.get(label or "", OTHER_COLOUR)


def _band(axis, records, windows, segments, duration_s: float, truth=None) -> None:
    spans = owned_spans(list(windows), duration_s)
    for segment in segments:
        width = segment["end_s"] - segment["start_s"]
        axis.broken_barh([(segment["start_s"], width)], (0.35, 0.65), facecolors=colour_of(segment["emotion"]),
                         edgecolor="white")
        if width > duration_s / 40:
            axis.text(segment["start_s"] + width / 2, 0.67, segment["emotion"] or "?", ha="center", va="center",
                      fontsize=8, clip_on=True)
    for record, (start, end) in zip(records, spans, strict=True):
        broken = record.get("status") != "ok"
        axis.broken_barh([(start, end - start)], (0.0, 0.28), facecolors=colour_of(record.get("emotion")),
                         hatch="///" if broken else None, edgecolor="white")
    ticks, names = [0.14, 0.67], ["windows", "segments"]
    if truth:
        for segment in truth:
            width = segment["end_s"] - segment["start_s"]
            axis.broken_barh([(segment["start_s"], width)], (-0.4, 0.32), facecolors=colour_of(segment["emotion"]),
                             edgecolor="white")
            axis.text(segment["start_s"] + width / 2, -0.24, segment["emotion"], ha="center", va="center",
                      fontsize=7, clip_on=True)
        ticks, names = [-0.24, *ticks], ["truth", *names]
    axis.set_ylim(-0.42 if truth else 0, 1)
    axis.set_yticks(ticks, names)
    axis.set_title("emotion over time")


def _curves(axis, records, windows) -> None:
    centres = np.array([w.centre_s for w in windows])
    for key, colour in (("valence", "#1f77b4"), ("arousal", "#d62728")):
        values = np.array([np.nan if r.get(key) is None else float(r[key]) for r in records])
        axis.plot(centres, values, marker=".", color=colour, label=key)
    axis.axhline(0.0, color="#999999", linewidth=0.5)
    axis.set_ylim(-1.05, 1.05)
    axis.legend(loc="upper right", fontsize=8)
    axis.set_ylabel("-1 .. 1")


def _au_strip(axis, records, windows, duration_s: float) -> None:
    spans = owned_spans(list(windows), duration_s)
    aus = sorted({au for r in records for au in r.get("aus") or []})
    for row, au in enumerate(aus):
        for record, (start, end) in zip(records, spans, strict=True):
            if au in (record.get("aus") or []):
                axis.broken_barh([(start, end - start)], (row, 0.9), facecolors="#333333")
    for record, (start, end) in zip(records, spans, strict=True):
        if record.get("status") != "ok":
            axis.broken_barh([(start, end - start)], (0, max(len(aus), 1)), facecolors="none", hatch="///",
                             edgecolor="#bbbbbb")
    axis.set_ylim(0, max(len(aus), 1))
    axis.set_yticks([row + 0.45 for row in range(len(aus))], [f"AU{au}" for au in aus], fontsize=7)
    axis.set_xlabel("seconds")
    axis.set_title("action units cited" if aus else "action units cited: none", fontsize=9)


def timeline_png(records: Sequence[Mapping], windows: Sequence[Window], segments: Sequence[Mapping],
                 duration_s: float, truth: Sequence[Mapping] | None = None) -> bytes:
    """PNG bytes of the timeline figure (records in window order, one per window; `truth`: the true segments)."""
    n_aus = len({au for r in records for au in r.get("aus") or []})
    figure = _figure(12.0, 4.5 + 0.18 * n_aus)
    grid = figure.add_gridspec(3, 1, height_ratios=[1.0, 1.6, 0.6 + 0.15 * n_aus], hspace=0.45)
    band, curves, strip = (figure.add_subplot(grid[i]) for i in range(3))
    _band(band, records, windows, segments, duration_s, truth)
    _curves(curves, records, windows)
    _au_strip(strip, records, windows, duration_s)
    for axis in (band, curves, strip):
        axis.set_xlim(0, duration_s)
    handles = [band.bar(0, 0, color=CATEGORY_COLOURS[c], label=c) for c in CATEGORIES]
    band.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1.65), ncol=len(CATEGORIES), fontsize=7,
                frameon=False)
    return _png(figure)
