"""Verify: score candidates with the registered rewards and the recipe's weights; keep the best one per clip, or none.

The scores come from `affect_mllm.rewards.score_completions`, the convention TRL's GRPOTrainer uses, with the
clip's own labels as the columns (`emotion`, `emotions`, `aus`): the same reward code, names and weights that GRPO
trains with. The consistency/hallucination check is `consistency_reward` (support of the answer by the cited AUs
and voice cues, minus the share of cited AUs that the labels lack). A candidate passes when

- it has a non-empty rationale,
- its weighted total reaches `min_reward`, and
- every reward named in `min_rewards` reaches its minimum (a reward that cannot score the clip, for want of that
  label, does not block it).

Among the passing candidates of a clip the highest total wins; ties go to the earlier (attempt, index), so the
choice is deterministic. A failed candidate's `problems` say what was wrong; the retry prompt feeds them back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from affect_mllm.answer import ParsedAnswer, parse_answer
from affect_mllm.schema import Sample

# The best value each reward can give: a reward below it names a problem for the retry prompt.
PERFECT = {
    "format_reward": 1.0,
    "emotion_accuracy_reward": 1.0,
    "emotion_wheel_f1_reward": 1.0,
    "au_f1_reward": 1.0,
    "consistency_reward": 1.0,
    "length_penalty_reward": 0.0,
}
_FORMAT_PROBLEM = "the reply must be <think>your reasoning</think><answer>the fields</answer>"
_SUPPORT_PROBLEM = "the reasoning's evidence does not support the answered emotion"
_LENGTH_PROBLEM = "the reasoning is too short or too long"


@dataclass(frozen=True)
class KeepRule:
    """When a candidate may be kept."""

    min_reward: float = 1.0
    min_rewards: Mapping[str, float] = field(default_factory=dict)

    def passes(self, total: float | None, rewards: Mapping[str, float | None], rationale: str | None) -> bool:
        """Whether a scored candidate passes (see the module docstring)."""
        if not rationale or total is None or total < self.min_reward:
            return False
        return all(rewards.get(name) is None or rewards[name] >= minimum for name, minimum in self.min_rewards.items())


@dataclass(frozen=True)
class CandidateScore:
    """A candidate's rewards (None: the reward could not score it), weighted total, verdict and problems."""

    rewards: dict[str, float | None]
    total: float | None
    passes: bool
    problems: tuple[str, ...]
    rationale: str | None

    def to_record(self) -> dict:
        """JSON form (rounded, so logs and shards stay byte-stable across platforms' float printing)."""
        return {
            "rewards": {k: _round(v) for k, v in self.rewards.items()},
            "total": _round(self.total),
            "passes": self.passes,
            "problems": list(self.problems),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def without_au_labels(sample: Sample) -> Sample:
    """The clip as a corpus with emotion labels only has it: no AU labels, no rationale, no provenance."""
    return sample.model_copy(update={"aus": None, "rationale": None, "source": None})


def verifiable(sample: Sample, task: str, au_labels: bool = True) -> bool:
    """Whether the clip has the labels the task's answer gives (with `au_labels` false, all of them but `aus`)."""
    from affect_mllm.targets import task_is_answerable

    return task_is_answerable(sample if au_labels else sample.model_copy(update={"aus": []}), task)


def label_columns(sample: Sample, n: int) -> dict[str, list]:
    """The clip's labels as reward columns, one value per completion (the schema's column names)."""
    aus = None if sample.aus is None else [a.model_dump() for a in sample.aus]
    return {"emotion": [sample.emotion] * n, "emotions": [sample.emotions] * n, "aus": [aus] * n}


class Verifier:
    """Scores a clip's candidates with the rewards and the keep rule."""

    def __init__(self, reward_funcs: Sequence[Callable], weights: Sequence[float] | None, rule: KeepRule,
                 task: str | None = None) -> None:
        """Args: reward_funcs from `rewards.get_reward_funcs`; weights as TRL's `reward_weights`; the keep rule;
        the task the candidates were prompted with (the `task` column: format_reward asks for its fields, as in
        GRPO; without it a candidate that dropped a field the prompt asked for was kept, and retraining on it
        taught the model to drop it)."""
        self.reward_funcs = list(reward_funcs)
        self.weights = None if weights is None else list(weights)
        self.rule = rule
        self.task = task

    @classmethod
    def from_config(cls, args, reward_args) -> Verifier:
        """Build from (SynthesisArguments, RewardArguments)."""
        from affect_mllm.rewards import get_reward_funcs

        funcs = get_reward_funcs(reward_args.reward_funcs, reward_args.reward_kwargs)
        return cls(funcs, args.reward_weights, KeepRule(args.min_reward, dict(args.min_rewards)), args.task)

    def score(self, sample: Sample, texts: Sequence[str]) -> list[CandidateScore]:
        """Score each candidate text against the sample's labels."""
        from affect_mllm.rewards import score_completions

        if not texts:
            return []
        columns = {**label_columns(sample, len(texts)), "task": [self.task] * len(texts)}
        scored = score_completions(list(texts), columns, self.reward_funcs, self.weights)
        out = []
        for i, text in enumerate(texts):
            rewards = {name: _finite_or_none(values[i]) for name, values in scored["rewards_per_func"].items()}
            total = _finite_or_none(scored["rewards"][i])
            parsed = parse_answer(text)
            rationale = parsed.fields.rationale
            passes = self.rule.passes(total, rewards, rationale)
            problems = () if passes else tuple(problems_of(parsed, sample, rewards))
            out.append(CandidateScore(rewards, total, passes, problems, rationale))
        return out


def problems_of(parsed: ParsedAnswer, sample: Sample, rewards: Mapping[str, float | None]) -> list[str]:
    """What a candidate got wrong, in words, from the rewards that fell short of their best value."""
    problems: list[str] = []
    short = {name for name, value in rewards.items() if value is not None and value < PERFECT.get(name, math.inf)}
    if "format_reward" in short:
        problems.append(_FORMAT_PROBLEM)
    if short & {"emotion_accuracy_reward", "emotion_wheel_f1_reward"}:
        answered = ", ".join(parsed.emotion_words) or "none"
        problems.append(f"the answered emotion ({answered}) does not fit the clip")
    if short & {"au_f1_reward", "consistency_reward"}:
        problems += _au_problems(parsed, sample)
    if "consistency_reward" in short and not _au_problems(parsed, sample):
        problems.append(_SUPPORT_PROBLEM)
    if "length_penalty_reward" in short:
        problems.append(_LENGTH_PROBLEM)
    return problems or [_SUPPORT_PROBLEM]


def _au_problems(parsed: ParsedAnswer, sample: Sample) -> list[str]:
    """AUs cited but not active, and active but not cited (Facial-R1's 'Previous Response Issues')."""
    gold = sample.au_set()
    if gold is None:
        return []
    cited = set(parsed.rationale_aus)
    if not cited:
        return ["no action unit was cited"] if gold else []
    extra = [f"AU{n} is cited but not active" for n in sorted(cited - gold)]
    missing = [f"AU{n} is active but not cited" for n in sorted(gold - cited)]
    return extra + missing


def choose_best(scores: Sequence[CandidateScore]) -> int | None:
    """Index of the passing candidate with the highest total (the first on ties); None when none passes.

    Example:
        >>> ok = CandidateScore({}, 1.5, True, (), "r")
        >>> choose_best([CandidateScore({}, 2.0, False, ("x",), "r"), ok, CandidateScore({}, 1.5, True, (), "s")])
        1
    """
    best: int | None = None
    for i, score in enumerate(scores):
        if score.passes and (best is None or score.total > scores[best].total):
            best = i
    return best


def verify_candidates(samples: Sequence[Sample], records: Sequence[dict], verifier: Verifier) -> list[dict]:
    """Score every logged candidate of each clip and pick the one to keep.

    Args:
        samples: the round's pool clips, in pool order.
        records: the round's candidates.jsonl records (any order).
        verifier: rewards, weights and keep rule.

    Returns:
        One verdict per clip, in pool order: {"id", "candidates": [{"attempt", "index", "seed", "rewards", "total",
        "passes"}], "kept": None or the chosen candidate with its "text", "rationale", "prompt" and "feedback"}.
    """
    by_clip: dict[str, list[dict]] = {}
    for record in sorted(records, key=lambda r: (r["id"], r["attempt"])):
        by_clip.setdefault(record["id"], []).append(record)
    verdicts = []
    for sample in samples:
        rows = [(record, candidate) for record in by_clip.get(sample.id, []) for candidate in record["candidates"]]
        scores = verifier.score(sample, [candidate["text"] for _, candidate in rows])
        entries = [
            {
                "attempt": record["attempt"],
                "index": candidate["index"],
                "seed": record["seed"] + candidate["index"],
                **score.to_record(),
            }
            for (record, candidate), score in zip(rows, scores, strict=True)
        ]
        best = choose_best(scores)
        kept = None
        if best is not None:
            record, candidate = rows[best]
            kept = {
                **entries[best],
                "text": candidate["text"],
                "rationale": scores[best].rationale,
                "prompt": record["prompt"],
                "feedback": record["feedback"],
            }
        verdicts.append({"id": sample.id, "candidates": entries, "kept": kept})
    return verdicts
