"""Verifiable rewards for GRPO and the synthesis filter: one plain function per reward, registered by name.

Contract (TRL `GRPOTrainer`): ``reward(completions, **dataset_columns) -> list[float | None]``. Completions are
plain strings or conversations (``[{"role": "assistant", "content": ...}]``); label columns are the schema's
names (``emotion``, ``emotions``, ``aus``); ``None`` means the sample has no label this reward needs (TRL then
leaves it out). A reward never raises on model output; it raises ValueError on bad configuration. Each
reward's ``__name__`` is its registry key, its YAML name and its TRL log key ``rewards/<name>/mean``.

Ranges: format [0, 1]; emotion_accuracy {0, 1}; emotion_wheel_f1 [0, 1]; au_f1 [-1, 1];
consistency [-hallucination_weight, 1]; length_penalty [-1, 0]; modality_grounding [-1, 0].

Rewards are per-sample views of `affect_mllm.metrics`: the same parser, lexicon and F1 formulas.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from affect_mllm.answer import ParsedAnswer, gives_fields, parse_answer
from affect_mllm.knowledge import CATEGORIES, au_support
from affect_mllm.lexicon import project_wheels
from affect_mllm.metrics.au import sample_au_f1
from affect_mllm.metrics.categorical import category_of, first_category
from affect_mllm.metrics.wheel import sample_wheel_f
from affect_mllm.prompts import task_fields
from affect_mllm.schema import AU_PRESENCE_THRESHOLD, LABEL_FIELDS, AUIntensity, present_aus
from affect_mllm.voice_cues import voice_claim_agreement, voice_cues_in
from affect_mllm.wheels import LEVELS, EmotionWheels, parse_label_list

LENGTH_PENALTIES = ("none", "inverse", "ratio", "log")
AU_SOURCES = ("rationale", "answer")
_TRL_CALL_KEYS = ("prompt", "completion", "completion_ids")  # columns TRL does not pass as keyword arguments


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, or the last assistant message of a conversation ("" otherwise).

    Example:
        >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "<think>hi</think>"}]}])
        '<think>hi</think>'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list | tuple) and completion:
        message = next((m for m in reversed(completion) if isinstance(m, dict) and m.get("role") == "assistant"),
                       completion[-1])
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    return ""


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> ParsedAnswer:
    """parse_answer, memoised: several rewards read the same completion (the parser is pure)."""
    return parse_answer(text)


def _parsed(completions: Sequence[Any]) -> list[ParsedAnswer]:
    return [_parse_text(completion_text(c)) for c in completions]


def _column(values: Sequence[Any] | None, n: int, name: str) -> list[Any]:
    """A label column as a list of n values (all None when the dataset has no such column)."""
    if values is None:
        return [None] * n
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return list(values)


def _gold_au_intensities(aus: Sequence[Any]) -> dict[int, float]:
    """AU -> intensity of a label column entry (list of {"au", "intensity"} records or AUIntensity)."""
    pairs = ((a.au, a.intensity) if isinstance(a, AUIntensity) else (a["au"], a["intensity"]) for a in aus)
    return {int(au): float(x) for au, x in pairs}


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 when the completion follows the answer grammar: one non-empty <think>, then one <answer> whose fields
    all parse and give at least one value, nothing else around them, and, where the `task` column names the
    sample's task, a value for every field that task's prompt asks for (`prompts.TASK_FIELDS`); else 0.0.
    Range {0, 1}. With the task this is the evaluation's format rule (`metrics.corpus.format_section`): without
    it, GRPO on the AU task was free to drop the `aus` field and did (format rate 0.85 -> 0.00 in 30 steps).

    Args:
        completions: model completions.
        **kwargs: dataset columns; `task` (the task each sample was prompted with; None or absent: any field
            will do) is read, the others are ignored. The task is no schema label column, so, like
            `modality_grounding_reward`'s inputs, it comes through ``**kwargs`` and is no setting.

    Returns:
        One reward per completion.

    Example:
        >>> format_reward(["<think>Smile (AU12).</think><answer>emotions: happy</answer>",
        ...                "<answer>happy</answer>", "<think>x</think><answer>emotions: </answer>"])
        [1.0, 0.0, 0.0]
        >>> format_reward(["<think>Frown (AU4).</think><answer>emotion: angry</answer>"] * 2,
        ...               task=["categorical", "au_reasoning"])
        [1.0, 0.0]
    """
    parsed = _parsed(completions)
    tasks = _column(kwargs.get("task"), len(parsed), "task")
    return [float(p.well_formed.all and (_gives_a_value(p) if t is None else gives_fields(p, task_fields(t))))
            for p, t in zip(parsed, tasks, strict=True)]


def _gives_a_value(parsed: ParsedAnswer) -> bool:
    fields = parsed.fields
    return bool(parsed.emotion_words or fields.aus) or fields.valence is not None or fields.arousal is not None


def emotion_accuracy_reward(completions: Sequence[Any], *, emotion: Sequence[str | None] | None = None,
                            **kwargs: Any) -> list[float | None]:
    """1.0 when the answered emotion and the gold `emotion` fall in the same category after lexicon normalisation
    (synonyms, forms, dataset codes; an unknown word must match itself), else 0.0; None without a gold label.

    The answered emotion is the `emotion` field, else the first word of `emotions` the lexicon places.
    Range {0, 1}.

    Args:
        completions: model completions.
        emotion: gold categorical labels.
        **kwargs: other dataset columns (ignored).

    Returns:
        One reward per completion.

    Example:
        >>> emotion_accuracy_reward(["<think>.</think><answer>emotion: Joyful</answer>", "garbage", "x"],
        ...                         emotion=["HAP", "sad", None])
        [1.0, 0.0, None]
    """
    golds = _column(emotion, len(completions), "emotion")
    out: list[float | None] = []
    for parsed, gold in zip(_parsed(completions), golds, strict=True):
        gold_category = category_of(None if gold is None else str(gold))
        out.append(None if gold_category is None
                   else float(first_category(parsed.emotion_words, {gold_category}) == gold_category))
    return out


def label_length_penalty(n_gold: int, n_pred: int, variant: str) -> float:
    """Multiplier for a predicted label list longer than the gold one (AffectGPT-R1's defence against padding).

    1 when n_pred <= n_gold; otherwise "inverse": 1 / (n_pred - n_gold + 1), "ratio": n_gold / n_pred,
    "log": log(n_gold) / log(n_pred) (0 for any padding of a one-word gold), "none": 1.

    Example:
        >>> [label_length_penalty(2, 4, variant) for variant in ("inverse", "ratio", "log", "none")]
        [0.3333333333333333, 0.5, 0.5, 1.0]
    """
    if variant not in LENGTH_PENALTIES:
        raise ValueError(f"length_penalty must be one of {LENGTH_PENALTIES}, not {variant!r}")
    if variant == "none" or n_pred <= n_gold:
        return 1.0
    if variant == "inverse":
        return 1.0 / (n_pred - n_gold + 1)
    if variant == "ratio":
        return n_gold / n_pred
    return math.log(n_gold) / math.log(n_pred)


def _wheels(ovmer_tables: str | None) -> EmotionWheels:
    if ovmer_tables is None:
        return project_wheels()
    from affect_mllm.ovmer_tables import load_ovmer_tables

    return load_ovmer_tables(ovmer_tables)


def emotion_wheel_f1_reward(completions: Sequence[Any], *, emotions: Sequence[Any] | None = None,
                            ovmer_tables: str | None = None, level: str = "level1", length_penalty: str = "none",
                            **kwargs: Any) -> list[float | None]:
    """Per-sample emotion-wheel F of the answered emotion words against the gold `emotions` (`wheels.sample_wheel_f`,
    the per-sample F that AffectGPT-R1-style rewards use), times an optional label-list length penalty.

    Range [0, 1]; None when the sample has no gold set or its gold maps onto no wheel.

    Args:
        completions: model completions.
        emotions: gold open-vocabulary sets (lists or label strings).
        ovmer_tables: folder of the official OV-MER tables; None uses the project's wheels.
        level: "level1" or "level2".
        length_penalty: one of LENGTH_PENALTIES (see `label_length_penalty`).
        **kwargs: other dataset columns; `log_extra` (TRL) receives the answered words.

    Returns:
        One reward per completion.

    Example:
        >>> emotion_wheel_f1_reward(["<think>.</think><answer>emotions: happy, sad</answer>", "garbage"],
        ...                         emotions=[["joyful"], "[happy]"])  # P = 1/2, R = 1 on both wheels
        [0.6666666666666666, 0.0]
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    label_length_penalty(1, 1, length_penalty)  # validates the variant before any completion is read
    wheels = _wheels(ovmer_tables)
    golds = _column(emotions, len(completions), "emotions")
    parsed = _parsed(completions)
    out: list[float | None] = []
    for answer, gold in zip(parsed, golds, strict=True):
        score = sample_wheel_f(gold, list(answer.emotion_words), wheels, level)
        if score is not None and length_penalty != "none":
            n_pred = len({word.lower().strip() for word in answer.emotion_words})
            score *= label_length_penalty(len(set(parse_label_list(gold))), n_pred, length_penalty)
        out.append(score)
    if callable(kwargs.get("log_extra")):
        kwargs["log_extra"]("answer_emotions", [", ".join(p.emotion_words) for p in parsed])
    return out


def au_f1_reward(completions: Sequence[Any], *, aus: Sequence[Any] | None = None, source: str = "rationale",
                 intensity_aware: bool = False, presence_threshold: float = AU_PRESENCE_THRESHOLD,
                 **kwargs: Any) -> list[float | None]:
    """Facial-R1's AU reward: 2 F1 - 1 of the cited AUs against the labelled ones (`metrics.sample_au_f1`).

    No AU cited gives F1 = 0, hence -1. A sample whose AU labels hold no present AU scores 0.0, as Facial-R1
    does (hallucinated AUs there are `consistency_reward`'s business). With `intensity_aware`, each hit counts
    1 - |cited letter level - gold level| / 4 (`AU12C`; no letter: half). Range [-1, 1]; None without AU labels.

    Args:
        completions: model completions.
        aus: gold AU labels per sample: lists of {"au", "intensity"} records (0-5 scale).
        source: "rationale" (AUs cited in <think>) or "answer" (the answer's `aus` field).
        intensity_aware: weight hits by the cited intensity letters (rationale only).
        presence_threshold: intensity at which a labelled AU counts as present.
        **kwargs: other dataset columns; `log_extra` (TRL) receives the cited AUs.

    Returns:
        One reward per completion.

    Example:
        >>> gold = [{"au": 6, "intensity": 3.0}, {"au": 12, "intensity": 4.0}]
        >>> au_f1_reward(["<think>Cheeks up (AU6), brows (AU4).</think>", "<think>AU6, AU12</think>", "no AUs", "x"],
        ...              aus=[gold, gold, gold, None])  # first: F1 = 2*1/(2+2) = 0.5 -> 0.0
        [0.0, 1.0, -1.0, None]
    """
    if source not in AU_SOURCES:
        raise ValueError(f"source must be one of {AU_SOURCES}, not {source!r}")
    if intensity_aware and source != "rationale":
        raise ValueError("intensity_aware needs source='rationale': the answer's aus field carries no letters")
    golds = _column(aus, len(completions), "aus")
    parsed = _parsed(completions)
    out: list[float | None] = []
    for answer, gold in zip(parsed, golds, strict=True):
        if gold is None:
            out.append(None)
            continue
        gold_set = present_aus(gold, presence_threshold)
        cited = answer.rationale_aus if source == "rationale" else (answer.fields.aus or ())
        if not gold_set:
            out.append(0.0)
            continue
        intensities = _gold_au_intensities(gold) if intensity_aware else None
        out.append(2.0 * sample_au_f1(gold_set, cited, intensities, answer.rationale_au_intensity) - 1.0)
    if callable(kwargs.get("log_extra")):
        kwargs["log_extra"]("cited_aus", [", ".join(f"AU{n}" for n in p.rationale_aus) for p in parsed])
    return out


def _evidence_support(answer: ParsedAnswer, category: str) -> float:
    """Mean of the AU support and the voice agreement the rationale offers for a category (knowledge base)."""
    cited = set(answer.rationale_aus)
    claims = voice_cues_in(answer.fields.rationale or "")
    evidence = ([au_support(cited, category)] if cited else []) + (
        [voice_claim_agreement(claims, category)] if claims else [])
    # No evidence at all supports only an emotion without core AUs (neutral), as au_support defines it.
    return float(np.mean(evidence)) if evidence else au_support(set(), category)


def consistency_reward(completions: Sequence[Any], *, aus: Sequence[Any] | None = None,
                       hallucination_weight: float = 1.0, presence_threshold: float = AU_PRESENCE_THRESHOLD,
                       **kwargs: Any) -> list[float]:
    """Does the rationale's evidence support the answer, and are its AUs real?

    support = mean of `knowledge.au_support(cited AUs, category)` (if AUs are cited) and
    `voice_cues.voice_claim_agreement(voice cues, category)` (if voice cues are cited), where category is the
    answered emotion's; an answer in no category gets 0. Then, where AU labels exist,
    reward = support - hallucination_weight * (share of cited AUs absent from the labels).
    Range [-hallucination_weight, 1]; never None (support needs no label).

    Args:
        completions: model completions.
        aus: gold AU labels per sample, or None.
        hallucination_weight: weight of the hallucinated-AU share (>= 0).
        presence_threshold: intensity at which a labelled AU counts as present.
        **kwargs: other dataset columns (ignored).

    Returns:
        One reward per completion.

    Example:
        >>> happy = "<think>Cheeks raised (AU6), lip corners up (AU12).</think><answer>emotion: {}</answer>"
        >>> consistency_reward([happy.format("happy"), happy.format("sad"), happy.format("happy")],
        ...                    aus=[None, None, [{"au": 6, "intensity": 2.0}]])  # AU12 unlabelled: 1 - 1/2
        [1.0, 0.0, 0.5]
    """
    if not (math.isfinite(hallucination_weight) and hallucination_weight >= 0):
        raise ValueError(f"hallucination_weight must be a finite number >= 0, not {hallucination_weight!r}")
    golds = _column(aus, len(completions), "aus")
    out = []
    for answer, gold in zip(_parsed(completions), golds, strict=True):
        category = first_category(answer.emotion_words)
        support = _evidence_support(answer, category) if category in CATEGORIES else 0.0
        cited = set(answer.rationale_aus)
        hallucinated = 0.0
        if gold is not None and cited:
            hallucinated = len(cited - present_aus(gold, presence_threshold)) / len(cited)
        out.append(support - hallucination_weight * hallucinated)
    return out


def length_penalty_reward(completions: Sequence[Any], *, min_words: int = 5, max_words: int = 200,
                          **kwargs: Any) -> list[float]:
    """Penalise rationales that are missing, too short or too long (word count of <think>).

    0 for min_words <= n <= max_words; -1 for a missing or empty rationale; -(min_words - n) / min_words below;
    -min(1, (n - max_words) / max_words) above (reaching -1 at twice the limit). Range [-1, 0].

    Args:
        completions: model completions.
        min_words: shortest rationale without penalty (>= 1).
        max_words: longest rationale without penalty (>= min_words).
        **kwargs: dataset columns (ignored).

    Returns:
        One reward per completion.

    Example:
        >>> length_penalty_reward(["<think>one two</think>", "<think>a b c d e f</think>", "none"], min_words=4,
        ...                       max_words=5)  # 2 words: -(4-2)/4; 6 words: -(6-5)/5; no rationale: -1
        [-0.5, -0.2, -1.0]
    """
    if not (isinstance(min_words, int) and isinstance(max_words, int) and 1 <= min_words <= max_words):
        raise ValueError(f"need integers 1 <= min_words <= max_words, got {min_words!r}, {max_words!r}")
    out = []
    for answer in _parsed(completions):
        n = len((answer.fields.rationale or "").split())
        if n == 0:
            out.append(-1.0)
        elif n < min_words:
            out.append(-(min_words - n) / min_words)
        else:
            out.append(-min(1.0, (n - max_words) / max_words) if n > max_words else 0.0)
    return out


def _sample_modalities(modalities: Any, prompt: Any) -> set[str] | None:
    """The modalities a sample has: its `modalities` column (names, or one comma-separated string), else the ones
    its prompt states (`prompts.Modalities.from_prompt`); None when neither says."""
    from affect_mllm.prompts import Modalities

    if modalities is not None:
        names = modalities.split(",") if isinstance(modalities, str) else modalities
        return {str(name).strip() for name in names}
    stated = Modalities.from_prompt(completion_text(prompt) if not isinstance(prompt, list) else
                                    " ".join(completion_text([m]) for m in prompt if m.get("role") == "user"))
    return None if stated is None else {n for n in ("video", "image", "audio") if getattr(stated, n)}


def modality_grounding_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """Penalise rationale cues of a modality the sample does not have (`modality.cited_cues`: AU numbers need a
    video or image, voice-cue phrases need audio): minus the share of cited cues that are such.

    0 when every cue is grounded or none is cited; -1 when all are ungrounded. Range [-1, 0]; None when neither a
    `modalities` column nor a prompt's modality sentence says what the sample has.

    The two inputs are not schema label columns, so they come through ``**kwargs`` (and the reward has no
    settings): ``modalities``, per sample the modalities it has ("video", "image", "audio"; e.g.
    `SampleMedia.modalities`), else ``prompts`` (TRL passes them), whose modality sentence is read.

    Args:
        completions: model completions.
        **kwargs: dataset columns: `modalities` and `prompts` are read, the others ignored.

    Returns:
        One reward per completion.

    Example:
        >>> text = "<think>Brows drawn (AU4), lids tight (AU7), a loud voice.</think><answer>emotions: angry</answer>"
        >>> modality_grounding_reward([text, text, text], modalities=[("video",), ("video", "audio"), ("audio",)])
        [-0.3333333333333333, 0.0, -0.6666666666666666]
    """
    from affect_mllm.modality import cited_cues

    columns = _column(kwargs.get("modalities"), len(completions), "modalities")
    asked = _column(kwargs.get("prompts"), len(completions), "prompts")
    out: list[float | None] = []
    for answer, names, prompt in zip(_parsed(completions), columns, asked, strict=True):
        present = _sample_modalities(names, prompt) if names is not None or prompt is not None else None
        if present is None:
            out.append(None)
            continue
        cues = cited_cues(answer.fields.rationale)
        cited = len(cues["video"]) + len(cues["audio"])
        ungrounded = (0 if present & {"video", "image"} else len(cues["video"])) + \
            (0 if "audio" in present else len(cues["audio"]))
        out.append(-ungrounded / cited if cited else 0.0)
    return out


REWARDS: dict[str, Callable[..., list[float | None]]] = {
    func.__name__: func for func in (format_reward, emotion_accuracy_reward, emotion_wheel_f1_reward, au_f1_reward,
                                     consistency_reward, length_penalty_reward, modality_grounding_reward)
}


def reward_options(func: Callable) -> dict[str, Any]:
    """The settings a reward takes (keyword-only parameters that are not label columns) and their defaults.

    Example:
        >>> reward_options(length_penalty_reward)
        {'min_words': 5, 'max_words': 200}
    """
    parameters = inspect.signature(func).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY and p.name not in LABEL_FIELDS}


def get_reward_funcs(names: Sequence[str], reward_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
                     ) -> list[Callable[..., list[float | None]]]:
    """Look rewards up by name and bind their settings (picklable, `__name__` kept for TRL's logs).

    Every setting is checked against the reward's signature, and each bound reward is called once on an empty
    batch so that bad values (an unknown length penalty, a missing tables folder) raise here, at config time.

    Args:
        names: reward names (keys of REWARDS), in the order of their weights.
        reward_kwargs: reward name -> {setting: value}.

    Returns:
        The reward functions.

    Raises:
        ValueError: an unknown reward or setting, settings for a reward not asked for, or a bad value.
        OvmerTablesError: `ovmer_tables` names a folder without readable tables.

    Example:
        >>> [f.__name__ for f in get_reward_funcs(["format_reward", "length_penalty_reward"],
        ...                                       {"length_penalty_reward": {"max_words": 120}})]
        ['format_reward', 'length_penalty_reward']
    """
    reward_kwargs = dict(reward_kwargs or {})
    unknown = [name for name in [*names, *reward_kwargs] if name not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; registered: {', '.join(REWARDS)}")
    unused = sorted(set(reward_kwargs) - set(names))
    if unused:
        raise ValueError(f"reward_kwargs given for reward(s) not in reward_funcs: {unused}")
    funcs = []
    for name in names:
        func, settings = REWARDS[name], dict(reward_kwargs.get(name) or {})
        bad = sorted(set(settings) - set(reward_options(func)))
        if bad:
            raise ValueError(f"{name} has no setting(s) {bad}; its settings: {sorted(reward_options(func))}")
        bound = functools.update_wrapper(functools.partial(func, **settings), func)
        bound(completions=[])
        funcs.append(bound)
    return funcs


def score_completions(completions: Sequence[Any], columns: Mapping[str, Sequence[Any]],
                      reward_funcs: Sequence[Callable], weights: Sequence[float] | None = None) -> dict:
    """Score completions as TRL's GRPOTrainer does (`_calculate_rewards`), for synthesis and benchmarks.

    Every column but prompt/completion/completion_ids goes to every reward as a keyword argument; None becomes
    NaN; the total is the weighted nansum over rewards, and NaN for a completion no reward could score.

    Args:
        completions: the completions.
        columns: dataset columns, each one value per completion (`prompt` is passed as `prompts`).
        reward_funcs: rewards (e.g. from `get_reward_funcs`), with unique names.
        weights: one weight per reward (default 1 each).

    Returns:
        {"names": [...], "rewards_per_func": {name: [float]}, "rewards": [float]} (NaN where unscored).

    Example:
        >>> funcs = get_reward_funcs(["format_reward", "emotion_accuracy_reward"])
        >>> score_completions(["<think>Smile (AU12).</think><answer>emotion: happy</answer>"],
        ...                   {"emotion": ["happy"]}, funcs, [0.5, 1.0])["rewards"]
        [1.5]
    """
    n = len(completions)
    names = [func.__name__ for func in reward_funcs]
    if len(set(names)) != len(names):
        raise ValueError(f"reward names must be unique, got {names}")
    weights = np.ones(len(names)) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (len(names),):
        raise ValueError(f"{weights.size} weights for {len(names)} reward functions")
    kwargs = {key: _column(values, n, key) for key, values in columns.items() if key not in _TRL_CALL_KEYS}
    prompts = _column(columns.get("prompt"), n, "prompt")
    matrix = np.full((n, len(names)), np.nan)
    for j, (name, func) in enumerate(zip(names, reward_funcs, strict=True)):
        rewards = func(prompts=prompts, completions=list(completions), **kwargs)
        if len(rewards) != n:
            raise ValueError(f"reward {name!r} returned {len(rewards)} rewards for {n} completions")
        matrix[:, j] = [np.nan if r is None else float(r) for r in rewards]
    totals = np.nansum(matrix * weights, axis=1)
    totals[np.isnan(matrix).all(axis=1)] = np.nan
    return {"names": names, "rewards_per_func": {name: matrix[:, j].tolist() for j, name in enumerate(names)},
            "rewards": totals.tolist()}
