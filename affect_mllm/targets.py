"""Training targets: what the assistant should answer for a labelled sample and a task, in the answer grammar.

SFT renders these as the assistant turn; GRPO and synthesis score against the same labels through the rewards.
The categorical label is normalised to the project's categories, the open-vocabulary set keeps its words.
"""

from __future__ import annotations

from affect_mllm.answer import AnswerFields, render_answer
from affect_mllm.prompts import TASK_FIELDS
from affect_mllm.schema import Sample


def task_is_answerable(sample: Sample, task: str) -> bool:
    """Whether the sample has the labels a task's answer needs."""
    needs = TASK_FIELDS[task]
    available = {
        "emotion": sample.emotion is not None,
        "emotions": bool(sample.emotions) or sample.emotion is not None,
        "aus": sample.aus is not None,
        "valence": sample.valence is not None,
        "arousal": sample.arousal is not None,
    }
    return all(available[field] for field in needs)


def answer_fields(sample: Sample, task: str, rationale: str | None = None) -> AnswerFields:
    """The answer a task asks for, filled from the sample's labels.

    Args:
        sample: a labelled sample.
        task: one of prompts.TASKS.
        rationale: the <think> text; default: the sample's reference rationale.

    Returns:
        AnswerFields with the task's fields set (raises ValueError if the labels are missing).
    """
    if not task_is_answerable(sample, task):
        raise ValueError(f"sample {sample.id!r} lacks the labels task {task!r} needs ({TASK_FIELDS[task]})")
    from affect_mllm.lexicon import to_category

    values: dict = {}
    for field in TASK_FIELDS[task]:
        if field == "emotion":
            values["emotion"] = to_category(sample.emotion) or sample.emotion
        elif field == "emotions":
            words = sample.emotions or [sample.emotion]
            values["emotions"] = tuple(dict.fromkeys(w.strip().lower() for w in words if w and w.strip()))
        elif field == "aus":
            values["aus"] = tuple(sorted(sample.au_set() or ()))
        else:
            values[field] = round(float(getattr(sample, field)), 2)
    return AnswerFields(rationale=rationale if rationale is not None else sample.rationale, **values)


def target_text(sample: Sample, task: str, rationale: str | None = None) -> str:
    """The assistant turn for SFT (without the end token, which the encoder appends)."""
    return render_answer(answer_fields(sample, task, rationale))


# SynthFACS names its voice attributes as the renderer measures them; the knowledge base's phrase table
# calls the pitch attribute `pitch_level`.
_VOICE_ATTRIBUTE_NAMES = {"pitch": "pitch_level", "loudness": "loudness", "rate": "rate", "contour": "contour",
                          "tremor": "tremor"}


def perception_rationale(aus: dict[int, float], voice: dict[str, str] | None) -> str:
    """What the face and the voice do, in words that never name an emotion (the tiny base's pretraining text).

    Args:
        aus: present AUs -> intensity (0-5).
        voice: categorical voice attributes (pitch, loudness, rate, contour, tremor), or None without audio.

    Returns:
        e.g. "Face: inner brows raised (AU1C), jaw dropped (AU26B). Voice: high-pitched voice, loud voice."
    """
    from affect_mllm.knowledge import au_cue, intensity_letter
    from affect_mllm.voice_cues import voice_phrase

    face = ", ".join(f"{au_cue(au)} (AU{au}{intensity_letter(value)})" for au, value in sorted(aus.items()))
    parts = [f"Face: {face or 'no action unit above trace'}."]
    if voice:
        phrases = [voice_phrase(_VOICE_ATTRIBUTE_NAMES[k], v) for k, v in voice.items() if k in _VOICE_ATTRIBUTE_NAMES]
        parts.append(f"Voice: {', '.join(phrases)}.")
    return " ".join(parts)


def sample_perception_rationale(sample: Sample, with_voice: bool = True) -> str:
    """The perception rationale of a labelled sample: its present AUs and, where recorded, its voice attributes."""
    from affect_mllm.schema import AU_PRESENCE_THRESHOLD

    present = {a.au: a.intensity for a in sample.aus or () if a.intensity >= AU_PRESENCE_THRESHOLD}
    voice = (sample.source or {}).get("voice") if with_voice else None
    return perception_rationale(present, voice)


def perception_target(sample: Sample, with_voice: bool = True) -> str:
    """The AU-recognition answer with a perception-only rationale, for pretraining the tiny bases."""
    return render_answer(AnswerFields(rationale=sample_perception_rationale(sample, with_voice),
                                      aus=tuple(sorted(sample.au_set() or ()))))
