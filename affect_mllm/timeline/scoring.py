"""How well a timeline matches known segments (SynthFACS long clips): per window, over time, at the boundaries.

- `window_accuracy`: each answered window's label against the true label at the window's centre.
- `time_accuracy`: the share of the clip's time (sampled every `step_s`, at the step midpoints) where the
  segment list's label equals the true one; time under an unlabelled segment counts as wrong.
- `boundary_errors`: for each true boundary (a label change), the distance in seconds to the nearest predicted one;
  the clip's two ends count as predicted boundaries, so a timeline that predicts none still gets a finite error.
  It does not see extra boundaries (a timeline that changes label at every window scores well), hence
- `boundary_matches`: predicted and true boundaries paired one to one within a tolerance (closest pairs first), for
  a boundary precision, recall and F1 that count extra and missed boundaries alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def label_at(segments: Sequence[Mapping], t: float) -> str | None:
    """The label of the segment holding time t (None outside every segment).

    Example:
        >>> label_at([{"start_s": 0.0, "end_s": 6.0, "emotion": "sad"}, {"start_s": 6.0, "end_s": 9.0,
        ...           "emotion": "happy"}], 6.0)
        'happy'
    """
    return next((s["emotion"] for s in segments if s["start_s"] <= t < s["end_s"]), None)


def boundaries(segments: Sequence[Mapping]) -> list[float]:
    """Times where the label changes between consecutive segments.

    Example:
        >>> boundaries([{"start_s": 0, "end_s": 4, "emotion": "sad"}, {"start_s": 4, "end_s": 6, "emotion": "sad"},
        ...             {"start_s": 6, "end_s": 9, "emotion": "happy"}])
        [6]
    """
    return [b["start_s"] for a, b in zip(segments, segments[1:], strict=False) if a["emotion"] != b["emotion"]]


def boundary_errors(predicted: Sequence[float], truth: Sequence[float], duration_s: float) -> list[float]:
    """Per true boundary, the distance (s) to the nearest predicted boundary or clip end.

    Example:
        >>> boundary_errors([5.0, 20.0], [6.0, 12.0], 30.0)
        [1.0, 7.0]
    """
    candidates = np.array([0.0, duration_s, *predicted])
    return [float(np.min(np.abs(candidates - t))) for t in truth]


def boundary_matches(predicted: Sequence[float], truth: Sequence[float], tolerance_s: float) -> int:
    """How many predicted and true boundaries pair up one to one within `tolerance_s` (closest pairs first).

    Example:
        >>> boundary_matches([5.0, 6.5, 20.0], [6.0, 12.0], 2.0)  # 6.5 takes 6.0 (closer than 5.0); 12 has none
        1
    """
    pairs = sorted((abs(p - t), i, j) for i, p in enumerate(predicted) for j, t in enumerate(truth)
                   if abs(p - t) <= tolerance_s)
    used_p, used_t = set(), set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    return len(used_p)


def time_accuracy(predicted: Sequence[Mapping], truth: Sequence[Mapping], duration_s: float,
                  step_s: float = 0.1) -> float:
    """Share of the clip's time where the predicted label equals the true one.

    Example:
        >>> truth = [{"start_s": 0.0, "end_s": 6.0, "emotion": "sad"}, {"start_s": 6.0, "end_s": 10.0,
        ...          "emotion": "happy"}]
        >>> time_accuracy([{"start_s": 0.0, "end_s": 7.0, "emotion": "sad"}, {"start_s": 7.0, "end_s": 10.0,
        ...                "emotion": "happy"}], truth, 10.0)  # 6-7 s is wrong
        0.9
    """
    times = (np.arange(int(round(duration_s / step_s))) + 0.5) * step_s
    hits = [label_at(predicted, t) is not None and label_at(predicted, t) == label_at(truth, t) for t in times]
    return float(np.mean(hits)) if hits else 0.0


def window_accuracy(records: Sequence[Mapping], truth: Sequence[Mapping]) -> tuple[int, int]:
    """(correct, answered) windows: a window's label against the true label at its centre (broken ones left out).

    Example:
        >>> truth = [{"start_s": 0.0, "end_s": 6.0, "emotion": "sad"}, {"start_s": 6.0, "end_s": 10.0,
        ...          "emotion": "happy"}]
        >>> window_accuracy([{"status": "ok", "emotion": "sad", "start_s": 0, "end_s": 4},
        ...                  {"status": "ok", "emotion": "sad", "start_s": 5, "end_s": 9},
        ...                  {"status": "broken", "emotion": None, "start_s": 6, "end_s": 10}], truth)
        (1, 2)
    """
    answered = [r for r in records if r.get("status") == "ok"]
    correct = sum(r.get("emotion") == label_at(truth, (r["start_s"] + r["end_s"]) / 2) for r in answered)
    return correct, len(answered)
