"""Evaluation metrics: numpy only, deterministic, local (no network, no model).

- `categorical`: accuracy (= WAR), UAR, macro/weighted F1, confusion matrix; MER-UniBench sentiment scoring.
- `au`: per-sample and per-AU F1 (one formula), intensity MAE / ICC(3,1), rationale grounding.
- `agreement`: Lin's CCC (valence/arousal) and ICC(3,1).
- `text`: ROUGE-L F on word tokens.
- `wheel`: the OV-MER emotion-wheel metric, its per-sample variant and the hit rate, with per-sample tables for
  resampling (the wheels and the mapping of words onto them are `affect_mllm.wheels`).
- `bootstrap`: seeded percentile intervals.
- `corpus`: every metric a corpus's labels allow (what `affect-mllm evaluate` reports).

Rewards (`affect_mllm.rewards`) are per-sample views of these metrics.
"""

from affect_mllm.metrics.agreement import ccc, icc_3_1
from affect_mllm.metrics.au import au_f1, f1_from_counts, grounding, intensity_scores, sample_au_f1
from affect_mllm.metrics.bootstrap import bootstrap_ci
from affect_mllm.metrics.categorical import (
    categorical_scores,
    category_of,
    first_category,
    label_polarity,
    sentiment_scores,
)
from affect_mllm.metrics.text import rouge_l
from affect_mllm.metrics.wheel import hit_rate, sample_wheel_f, wheel_scores

__all__ = [
    "au_f1", "bootstrap_ci", "categorical_scores", "category_of", "ccc", "f1_from_counts", "first_category",
    "grounding", "hit_rate", "icc_3_1", "intensity_scores", "label_polarity", "rouge_l", "sample_au_f1",
    "sample_wheel_f", "sentiment_scores", "wheel_scores",
]
