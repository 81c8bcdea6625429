"""Every metric a corpus's labels allow, with bootstrap intervals: what `affect-mllm evaluate` reports.

Each section runs on the samples whose gold has the label it needs, and a missing prediction counts as an
empty one (it never drops a sample from the denominator):
- open vocabulary: the emotion-wheel F/P/R at level 1 and 2, under ``ovmer_level*`` on the official tables and
  under ``wheel_level*`` on the project's wheels (never mixed up). The gold set is the sample's ``emotions``
  (its open-vocabulary labels) and nothing else: a sample with only a categorical ``emotion`` is one-hot gold,
  which MER-UniBench scores by hit rate, so it is not turned into a one-word open set here;
- one-hot gold (``emotion``): MER-UniBench hit rate (``ovmer_hit_rate`` / ``wheel_hit_rate``) and categorical
  accuracy (= WAR, the "emotion accuracy" of the benchmarks), UAR, macro/weighted F1 and the confusion matrix,
  whose ``unmapped`` column holds predictions whose words name no class (`categorical.first_category`);
- gold ``valence``: MER-UniBench sentiment (binary weighted F1, accuracy) and, with predicted values, CCC;
- gold ``aus``: per-AU and mean F1 of the AUs the answer's ``aus`` field gives (``au``; a prediction without the
  field names no AU), intensity MAE/ICC where predictions carry intensities;
- the rationale: grounding of its cited AUs in the AU labels and their per-AU F1 (gold ``aus``), ROUGE-L F
  against a reference rationale (gold ``rationale``);
- the answer format (predictions that keep their ``raw`` completion): the share of samples whose completion
  follows the grammar exactly (`answer.WellFormed.all`: an emotion field holding rationale text fails) and gives
  the fields asked for (`answer.gives_fields`: every field of the task, or by default an emotion word). A missing
  prediction, or one without ``raw``, does not follow it.

Each ``*_section(gold, pred, ...)`` takes the aligned gold records and predictions (missing ones already
replaced by empty records) and returns its figures, or {} when the labels do not allow them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from affect_mllm.answer import gives_fields, parse_answer
from affect_mllm.knowledge import intensity_from_letter
from affect_mllm.metrics.agreement import ccc
from affect_mllm.metrics.au import (
    au_f1,
    au_matrix,
    grounding_counts,
    intensity_agreement,
    intensity_matrix,
    intensity_scores,
    per_au_f1_from_matrices,
)
from affect_mllm.metrics.bootstrap import DEFAULT_RESAMPLES, bootstrap_ci
from affect_mllm.metrics.categorical import (
    categorical_scores,
    categorical_statistic,
    category_of,
    first_category,
    label_polarity,
    sentiment_binary,
    sentiment_scores,
)
from affect_mllm.metrics.text import rouge_l
from affect_mllm.metrics.wheel import WheelTable, hit_rate, hit_table, wheel_scores, wheel_table
from affect_mllm.predictions import LabelRecord
from affect_mllm.schema import AU_PRESENCE_THRESHOLD
from affect_mllm.wheels import LEVELS, EmotionWheels, parse_label_list

Records = Sequence[LabelRecord]


@dataclass(frozen=True)
class BootstrapSettings:
    """How intervals are drawn: resamples, seed and coverage."""

    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    confidence: float = 0.95

    def interval(self, statistic: Callable[[np.ndarray], float], n: int) -> list[float] | None:
        """The interval of one statistic (see `bootstrap_ci`)."""
        return bootstrap_ci(statistic, n, n_resamples=self.n_resamples, seed=self.seed, confidence=self.confidence)


def evaluate_corpus(gold: Sequence[LabelRecord], pred: Sequence[LabelRecord | None], *,
                    project: EmotionWheels, official: EmotionWheels | None = None,
                    bootstrap: BootstrapSettings = BootstrapSettings(),
                    presence_threshold: float = AU_PRESENCE_THRESHOLD,
                    answer_fields: Sequence[str] | None = None) -> dict:
    """Compute every metric the gold labels allow.

    Args:
        gold: gold records.
        pred: predictions aligned with `gold` (None where a sample has none; it then scores as empty).
        project: the project's wheels (always reported as ``wheel_*``).
        official: the official OV-MER tables, or None (then no ``ovmer_*`` key is written).
        bootstrap: interval settings.
        presence_threshold: AU intensity at which an AU counts as present.
        answer_fields: the fields the prompt asked for (format rule), or None for "names an emotion".

    Returns:
        A JSON-ready dict (NaN where a figure is undefined); each headline figure has a ``ci95`` interval.
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} samples but pred has {len(pred)}")
    filled = [p if p is not None else LabelRecord(id=g.id) for g, p in zip(gold, pred, strict=True)]
    result: dict = {"n_samples": len(gold), "n_predicted": sum(p is not None for p in pred)}
    tables = ([("ovmer", official)] if official is not None else []) + [("wheel", project)]
    for prefix, wheels in tables:
        result.update(open_vocabulary_section(gold, filled, wheels, prefix, bootstrap))
        result.update(hit_rate_section(gold, filled, wheels, prefix, bootstrap))
    sections = {
        "categorical": categorical_section(gold, filled, bootstrap),
        "sentiment": sentiment_section(gold, filled, bootstrap),
        "valence_arousal": valence_arousal_section(gold, filled, bootstrap),
        "au": au_section(gold, filled, bootstrap, presence_threshold),
        "au_intensity": au_intensity_section(gold, filled, bootstrap),
        "rationale": rationale_section(gold, filled, bootstrap, presence_threshold),
        "format": format_section(filled, bootstrap, answer_fields),
    }
    result.update({name: section for name, section in sections.items() if section})
    return result


def _rows(gold: Sequence[LabelRecord], has_label: Callable[[LabelRecord], bool]) -> list[int]:
    return [i for i, record in enumerate(gold) if has_label(record)]


def _with_intervals(scores: dict, table: WheelTable, bootstrap: BootstrapSettings) -> dict:
    """Attach a ci95 to f, precision and recall of a wheel figure."""
    n = len(table.scored)
    scores["ci95"] = {key: bootstrap.interval(lambda idx, key=key: table.scores(idx)[key], n)
                      for key in ("f", "precision", "recall")}
    return scores


def open_vocabulary_section(gold: Records, pred: Records, wheels: EmotionWheels, prefix: str,
                            bootstrap: BootstrapSettings) -> dict:
    """``{prefix}_level1`` and ``{prefix}_level2``: `wheels.wheel_scores` on the gold ``emotions``."""
    rows = _rows(gold, lambda g: g.emotions is not None)
    if not rows:
        return {}
    gold_words = [list(gold[i].emotions) for i in rows]
    pred_words = [list(pred[i].emotion_words) for i in rows]
    out = {}
    for level in LEVELS:
        scores = {**wheel_scores(gold_words, pred_words, wheels, level), "n": len(rows), "tables": wheels.name}
        out[f"{prefix}_{level}"] = _with_intervals(scores, wheel_table(gold_words, pred_words, wheels, level),
                                                   bootstrap)
    return out


def hit_rate_section(gold: Records, pred: Records, wheels: EmotionWheels, prefix: str,
                     bootstrap: BootstrapSettings) -> dict:
    """``{prefix}_hit_rate``: MER-UniBench hit rate of one-hot gold ``emotion`` (wheels.hit_rate)."""
    rows = _rows(gold, lambda g: g.emotion is not None and len(parse_label_list(g.emotion)) == 1)
    if not rows:
        return {}
    gold_words = [gold[i].emotion for i in rows]
    pred_words = [list(pred[i].emotion_words) for i in rows]
    scores = {**hit_rate(gold_words, pred_words, wheels), "n": len(rows), "tables": wheels.name}
    table = hit_table(gold_words, pred_words, wheels)
    scores["ci95"] = {"hit_rate": bootstrap.interval(lambda idx: table.scores(idx)["precision"], len(rows))}
    return {f"{prefix}_hit_rate": scores}


def categorical_section(gold: Records, pred: Records, bootstrap: BootstrapSettings) -> dict:
    """Accuracy/WAR, UAR, F1s and the confusion matrix on gold ``emotion``, after lexicon normalisation."""
    rows = _rows(gold, lambda g: category_of(g.emotion) is not None)
    if not rows:
        return {}
    gold_labels = [category_of(gold[i].emotion) for i in rows]
    classes = set(gold_labels)
    pred_labels = [first_category(pred[i].emotion_words, classes) for i in rows]
    scores = categorical_scores(gold_labels, pred_labels)
    scores["ci95"] = {key: bootstrap.interval(categorical_statistic(gold_labels, pred_labels, key), len(rows))
                      for key in ("accuracy", "uar", "macro_f1", "weighted_f1")}
    return scores


def sentiment_section(gold: Records, pred: Records, bootstrap: BootstrapSettings) -> dict:
    """MER-UniBench sentiment: gold valence sign vs the lexicon polarity of the predicted words (gold 0 dropped)."""
    rows = _rows(gold, lambda g: g.valence is not None and g.valence != 0)
    if not rows:
        return {}
    gold_values = [gold[i].valence for i in rows]
    polarity = [label_polarity(pred[i].emotion_words) for i in rows]
    scores = sentiment_scores(gold_values, polarity)
    binary_gold, binary_pred = sentiment_binary(gold_values, polarity)
    scores["ci95"] = {key: bootstrap.interval(categorical_statistic(binary_gold, binary_pred, key), len(rows))
                      for key in ("weighted_f1", "accuracy")}
    return scores


def valence_arousal_section(gold: Records, pred: Records, bootstrap: BootstrapSettings) -> dict:
    """CCC of valence and of arousal over the samples where both gold and prediction give the value."""
    out = {}
    for name in ("valence", "arousal"):
        rows = [i for i in range(len(gold)) if getattr(gold[i], name) is not None
                and getattr(pred[i], name) is not None]
        if not rows:
            continue
        g = np.array([getattr(gold[i], name) for i in rows])
        p = np.array([getattr(pred[i], name) for i in rows])
        out[f"{name}_ccc"] = ccc(g, p)
        out[f"{name}_n"] = len(rows)
        out.setdefault("ci95", {})[f"{name}_ccc"] = bootstrap.interval(lambda idx, g=g, p=p: ccc(g[idx], p[idx]),
                                                                       len(rows))
    return out


def _au_f1_with_interval(gold_sets: list[set[int]], pred_sets: list[set[int]], bootstrap: BootstrapSettings,
                         key: str = "mean_f1") -> dict:
    """Per-AU and mean F1 (AUs: those present in some gold sample), the mean under `key` with its interval."""
    scores = au_f1(gold_sets, pred_sets)
    gold_m, pred_m = au_matrix(gold_sets, scores["aus"]), au_matrix(pred_sets, scores["aus"])

    def mean_f1(idx: np.ndarray) -> float:
        return float(per_au_f1_from_matrices(gold_m[idx], pred_m[idx]).mean()) if scores["aus"] else float("nan")

    scores[key] = scores.pop("mean_f1")
    scores["ci95"] = {key: bootstrap.interval(mean_f1, len(gold_sets))}
    return scores


def au_section(gold: Records, pred: Records, bootstrap: BootstrapSettings, threshold: float) -> dict:
    """Per-AU and mean F1 of the answer's ``aus`` field on gold ``aus`` (a prediction without the field: no AU)."""
    rows = _rows(gold, lambda g: g.aus is not None)
    if not rows:
        return {}
    gold_sets = [gold[i].au_set(threshold) for i in rows]
    pred_sets = [pred[i].au_set(threshold) or set() for i in rows]
    scores = _au_f1_with_interval(gold_sets, pred_sets, bootstrap)
    return {**scores, "source": "answer", "n_with_field": sum(pred[i].aus is not None for i in rows)}


def _predicted_intensities(record: LabelRecord) -> dict[int, float]:
    """Intensities the prediction states: in its ``aus`` records, else as letters cited in the rationale."""
    stated = {au: x for au, x in (record.aus or {}).items() if x is not None}
    if stated:
        return stated
    return {au: intensity_from_letter(letter) for au, letter in record.rationale_au_letters.items()}


def au_intensity_section(gold: Records, pred: Records, bootstrap: BootstrapSettings) -> dict:
    """Intensity MAE and ICC(3,1) where gold intensities exist and some prediction states intensities."""
    rows = _rows(gold, lambda g: g.aus is not None)
    predicted = [_predicted_intensities(pred[i]) for i in rows]
    if not rows or not any(predicted):
        return {}
    gold_maps = [dict(gold[i].aus) for i in rows]
    scores = intensity_scores(gold_maps, predicted)
    gold_m, pred_m = intensity_matrix(gold_maps, scores["aus"]), intensity_matrix(predicted, scores["aus"])

    def mean_of(idx: np.ndarray, which: int) -> float:
        values = intensity_agreement(gold_m[idx], pred_m[idx])[which]
        values = values[np.isfinite(values)]
        return float(values.mean()) if len(values) else float("nan")

    scores["ci95"] = {key: bootstrap.interval(lambda idx, which=which: mean_of(idx, which), len(rows))
                      for which, key in enumerate(("mae", "icc"))}
    return scores


def rationale_section(gold: Records, pred: Records, bootstrap: BootstrapSettings, threshold: float) -> dict:
    """AU F1 and grounding of the AUs the rationale cites, against the AU labels; ROUGE-L against references."""
    out: dict = {}
    au_rows = _rows(gold, lambda g: g.aus is not None)
    gold_sets = [gold[i].au_set(threshold) for i in au_rows]
    if au_rows and any(pred[i].rationale for i in au_rows):
        scores = _au_f1_with_interval(gold_sets, [set(pred[i].rationale_aus) for i in au_rows], bootstrap, "au_f1")
        out.update(au_f1=scores["au_f1"], au_per_au=scores["per_au"], au_n=scores["n"], ci95=scores["ci95"])
    grounded, cited = grounding_counts([pred[i].rationale_aus for i in au_rows], gold_sets)
    if cited.sum():
        out.update(grounding=float(grounded.sum() / cited.sum()), grounding_n_cited=int(cited.sum()))
        out.setdefault("ci95", {})["grounding"] = bootstrap.interval(
            lambda idx: float(grounded[idx].sum() / cited[idx].sum()) if cited[idx].sum() else float("nan"),
            len(au_rows))
    text_rows = _rows(gold, lambda g: bool(g.rationale))
    if text_rows and any(pred[i].rationale for i in text_rows):
        scores = np.array([rouge_l(pred[i].rationale, gold[i].rationale) for i in text_rows])
        out.update(rouge_l=float(scores.mean()), rouge_l_n=len(text_rows))
        out.setdefault("ci95", {})["rouge_l"] = bootstrap.interval(lambda idx: float(scores[idx].mean()),
                                                                   len(text_rows))
    return out


def format_section(pred: Records, bootstrap: BootstrapSettings, answer_fields: Sequence[str] | None) -> dict:
    """Share of samples whose raw completion follows the grammar and gives the fields asked for (see module doc)."""
    if not any(p.raw is not None for p in pred):
        return {}
    faults = dict.fromkeys(("no_completion", "think", "answer", "order", "fields", "fields_asked"), 0)
    ok = np.zeros(len(pred))
    for i, record in enumerate(pred):
        if record.raw is None:
            faults["no_completion"] += 1
            continue
        parsed = parse_answer(record.raw)
        well = parsed.well_formed
        for part in ("think", "answer", "order", "fields"):
            faults[part] += not getattr(well, part)
        asked = gives_fields(parsed, answer_fields)
        faults["fields_asked"] += not asked
        ok[i] = well.all and asked
    return {"rate": float(ok.mean()), "n": len(pred), "faults": faults,
            "fields_asked": list(answer_fields) if answer_fields is not None else "an emotion word",
            "ci95": {"rate": bootstrap.interval(lambda idx: float(ok[idx].mean()), len(pred))}}
