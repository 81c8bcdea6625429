"""From window records to a segment list: the smoothing, written down once.

1. Label: each window's label is its record's `emotion` (the leading answered word's category); broken windows
   and answers without an emotion have none.
2. Mode filter: a window takes the most frequent label among itself and its `smooth_windows // 2` neighbours on
   each side (windows without a label do not vote); a tie keeps the window's own label if it is among the tied,
   else the tied label of the nearest window (earlier first). A window with no labelled window in reach keeps
   none. With the default of 3 windows, a one-window blip between two agreeing neighbours is removed.
3. Merge: runs of equal labels become segments. Each window speaks for its owned span (`windows.owned_spans`:
   halfway between window centres), so segments tile the clip without overlap.
4. Minimum length: a labelled segment shorter than `min_segment_s` is absorbed into its longer labelled neighbour
   (shortest first; equal neighbours then merge). Unlabelled segments (broken or unparsed stretches) are kept as
   they are, so a gap is never hidden.

Each segment carries its windows, the share of them whose raw label agrees with the segment's (`agreement`), the
most frequent words, the AUs cited in at least half of its answered windows, mean valence/arousal and the rationale
of its most central agreeing window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from affect_mllm.timeline.windows import Window, owned_spans


@dataclass(frozen=True)
class SmoothingSettings:
    """How windows become segments (see the module docstring)."""

    smooth_windows: int = 3  # span of the mode filter, in windows (1: no filtering)
    min_segment_s: float = 4.0  # shorter labelled segments are absorbed (0: keep all)

    def __post_init__(self) -> None:
        if self.smooth_windows < 1 or self.smooth_windows % 2 == 0:
            raise ValueError(f"smooth_windows must be an odd number >= 1, got {self.smooth_windows}")
        if self.min_segment_s < 0:
            raise ValueError(f"min_segment_s must be >= 0, got {self.min_segment_s}")


def window_label(record: Mapping) -> str | None:
    """A record's label: its emotion category when answered, else None."""
    return record.get("emotion") if record.get("status") == "ok" else None


def mode_filter(labels: Sequence[str | None], span: int) -> list[str | None]:
    """Step 2 of the smoothing.

    Example:
        >>> mode_filter(["sad", "happy", "sad", None, "angry", "angry"], 3)
        ['sad', 'sad', 'sad', 'sad', 'angry', 'angry']
    """
    half = span // 2
    out: list[str | None] = []
    for i, own in enumerate(labels):
        lo, hi = max(0, i - half), min(len(labels), i + half + 1)
        counts = Counter(label for label in labels[lo:hi] if label is not None)
        if not counts:
            out.append(None)
            continue
        best = max(counts.values())
        tied = {label for label, n in counts.items() if n == best}
        if own in tied:
            out.append(own)
            continue
        nearest = sorted(range(lo, hi), key=lambda j: (abs(j - i), j))
        out.append(next(labels[j] for j in nearest if labels[j] in tied))
    return out


def _runs(labels: Sequence[str | None]) -> list[tuple[int, int, str | None]]:
    """(first, last, label) of each run of equal labels."""
    runs: list[tuple[int, int, str | None]] = []
    for i, label in enumerate(labels):
        if runs and runs[-1][2] == label:
            runs[-1] = (runs[-1][0], i, label)
        else:
            runs.append((i, i, label))
    return runs


def _absorb_short(runs: list[tuple[int, int, str | None]], spans: Sequence[tuple[float, float]],
                  min_s: float) -> list[tuple[int, int, str | None]]:
    """Step 4: absorb short labelled runs into their longer labelled neighbour, shortest first."""
    def length(run):
        return spans[run[1]][1] - spans[run[0]][0]

    runs = list(runs)
    while True:
        short = [k for k, run in enumerate(runs) if run[2] is not None and length(run) < min_s
                 and any(0 <= j < len(runs) and runs[j][2] is not None for j in (k - 1, k + 1))]
        if not short:
            return runs
        k = min(short, key=lambda k: (length(runs[k]), k))
        neighbours = [j for j in (k - 1, k + 1) if 0 <= j < len(runs) and runs[j][2] is not None]
        into = max(neighbours, key=lambda j: (length(runs[j]), -j))
        label = runs[into][2]
        runs[k] = (runs[k][0], runs[k][1], label)
        merged: list[tuple[int, int, str | None]] = []
        for run in runs:
            if merged and merged[-1][2] == run[2]:
                merged[-1] = (merged[-1][0], run[1], run[2])
            else:
                merged.append(run)
        runs = merged


def smooth_labels(records: Sequence[Mapping], windows: Sequence[Window], duration_s: float,
                  settings: SmoothingSettings = SmoothingSettings()) -> list[tuple[int, int, str | None]]:
    """Steps 1-4: (first window, last window, label) of each segment."""
    if len(records) != len(windows):
        raise ValueError(f"{len(records)} records for {len(windows)} windows")
    labels = mode_filter([window_label(r) for r in records], settings.smooth_windows)
    spans = owned_spans(list(windows), duration_s)
    return _absorb_short(_runs(labels), spans, settings.min_segment_s)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 3) if values else None


def _describe(number: int, first: int, last: int, label: str | None, records: Sequence[Mapping],
              spans: Sequence[tuple[float, float]]) -> dict:
    members = records[first:last + 1]
    answered = [r for r in members if r.get("status") == "ok"]
    agreeing = [r for r in answered if r.get("emotion") == label and label is not None]
    centre = (spans[first][0] + spans[last][1]) / 2
    central = min(agreeing, key=lambda r: abs((r["start_s"] + r["end_s"]) / 2 - centre), default=None)
    words = Counter(w for r in answered for w in r.get("emotions") or [])
    au_counts = Counter(au for r in answered for au in r.get("aus") or [])
    return {
        "segment": number, "start_s": spans[first][0], "end_s": spans[last][1], "emotion": label,
        "windows": [first, last], "n_windows": last - first + 1,
        "agreement": round(len(agreeing) / len(members), 3),
        "emotions": [w for w, _ in words.most_common(3)],
        "aus": sorted(au for au, n in au_counts.items() if n * 2 >= len(answered)),
        "valence": _mean(r.get("valence") for r in answered), "arousal": _mean(r.get("arousal") for r in answered),
        "rationale": central.get("rationale") if central else None,
        "broken_windows": sum(r.get("status") == "broken" for r in members),
    }


def segment_list(records: Sequence[Mapping], windows: Sequence[Window], duration_s: float,
                 settings: SmoothingSettings = SmoothingSettings()) -> list[dict]:
    """The smoothed segments of a timeline (records in window order, one per window).

    Example:
        >>> from affect_mllm.timeline.windows import plan_windows, snap_grid
        >>> windows = plan_windows(12.0, snap_grid(4, 2, fps=2.0))  # 5 windows, centres 2, 4, ..., 10 s
        >>> records = [{"status": "ok", "emotion": e, "start_s": w.start_s, "end_s": w.end_s}
        ...            for e, w in zip(["sad", "sad", "happy", "sad", "sad"], windows)]
        >>> [(s["start_s"], s["end_s"], s["emotion"]) for s in segment_list(records, windows, 12.0)]
        [(0.0, 12.0, 'sad')]
    """
    spans = owned_spans(list(windows), duration_s)
    runs = smooth_labels(records, windows, duration_s, settings)
    return [_describe(n, first, last, label, records, spans) for n, (first, last, label) in enumerate(runs)]
