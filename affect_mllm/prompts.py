"""Instruction templates per task; each states which modalities the clip has and which answer fields to give.

Prompts build text and messages; they parse nothing (that is `answer.py`). A task names the answer fields it asks
for (`TASK_FIELDS`), which is also what the SFT targets render and what the rewards check. Each task has a few
phrasings (picked by index, so training can vary them and evaluation can fix one) and a chain-of-thought variant
in the "key observations -> interpretation -> conclusion" style that expression-CoT systems (ExpLLM) use.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "ov_emotion": ("emotions",),  # open-vocabulary emotions with a rationale
    "categorical": ("emotion",),
    "au": ("aus",),  # AU recognition
    "au_reasoning": ("emotion", "aus"),  # AU-grounded reasoning
    "valence_arousal": ("valence", "arousal"),
}
TASKS = tuple(TASK_FIELDS)


def task_fields(task: str | None) -> tuple[str, ...] | None:
    """The answer fields a task's prompt asks for; None for no task (any emotion answer will do)."""
    if task is None:
        return None
    if task not in TASK_FIELDS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASK_FIELDS)}")
    return TASK_FIELDS[task]


SYSTEM_PROMPT = "You are an expert in facial expressions, voice and emotion."

_FIELD_HINTS = {
    "emotion": "emotion: one of {categories}",
    "emotions": "emotions: the emotion words that fit, most salient first",
    "aus": "aus: the active facial action units, e.g. AU6, AU12",
    "valence": "valence: -1 to 1",
    "arousal": "arousal: -1 to 1",
}

_QUESTIONS: dict[str, tuple[str, ...]] = {
    "ov_emotion": ("How does the person feel? Explain what you see and hear.",
                   "Describe the person's emotional state and the cues behind it."),
    "categorical": ("Which emotion does the person show? Explain the cues.",
                    "Classify the person's emotion and say why."),
    "au": ("Which facial action units are active? Describe the face.",
           "List the active action units and the facial movements you see."),
    "au_reasoning": ("Name the facial action units you see, then infer the emotion they signal.",
                     "Reason from the action units to the emotion."),
    "valence_arousal": ("How pleasant (valence) and how intense (arousal) is the person's state?",
                        "Rate the valence and arousal of the person's state."),
}

NO_FACE_NOTE = "No face was found to crop to, so the frames show the whole picture."  # media face_crop
_COT_STYLE = ("In <think>, write Key observations (face, voice, words), then Interpretation, then Conclusion.")


@dataclass(frozen=True)
class Modalities:
    """What a clip offers the model."""

    video: bool = False
    image: bool = False
    audio: bool = False
    subtitle: bool = False

    def describe(self) -> str:
        """One sentence stating the inputs, and that audio is absent where it is."""
        visual = "a video" if self.video else ("an image" if self.image else None)
        if visual and self.audio:
            text = f"You are given {visual} of a person with its audio track."
        elif visual:
            text = f"You are given {visual} of a person. There is no audio."
        elif self.audio:
            text = "You are given an audio clip of a person speaking. There is no video."
        else:
            text = "You are given a transcript only."
        return text + (" The subtitle is given below." if self.subtitle else "")

    @classmethod
    def from_prompt(cls, prompt: str) -> Modalities | None:
        """The modalities a prompt built by `build_prompt` states (its `describe` sentence), None if it states none.

        Example:
            >>> Modalities.from_prompt(build_prompt("ov_emotion", Modalities(video=True)))
            Modalities(video=True, image=False, audio=False, subtitle=False)
        """
        for candidate in _STATED:
            if candidate.describe() in prompt:
                return candidate
        return None


# every modality set a prompt can state, the longer sentences first (one ends where a shorter one does)
_STATED = tuple(sorted((Modalities(video=v, image=i, audio=a, subtitle=t) for v in (False, True) for i in (False, True)
                        for a in (False, True) for t in (False, True) if not (v and i)),
                       key=lambda m: -len(m.describe())))


def format_instruction(fields: Sequence[str], categories: Collection[str]) -> str:
    """The sentence that states the answer grammar for the requested fields."""
    hints = "; ".join(_FIELD_HINTS[f].format(categories=", ".join(categories)) for f in fields)
    return f"Answer as <think>your reasoning</think><answer>{hints}</answer>."


def build_prompt(task: str, modalities: Modalities, *, subtitle: str | None = None, variant: int = 0,
                 cot: bool = False, categories: Collection[str] | None = None, face: bool | None = None) -> str:
    """The user-turn text for a task.

    Args:
        task: one of TASKS.
        modalities: the inputs the clip has.
        subtitle: the spoken words, if known.
        variant: which phrasing (wraps around).
        cot: ask for the key observations -> interpretation -> conclusion structure.
        categories: label set for the categorical fields (default: the project's 8 categories).
        face: False when face crops were asked and no face was found (the prompt then says the frames are whole).

    Returns:
        The prompt text.
    """
    if task not in TASK_FIELDS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if categories is None:
        from affect_mllm.knowledge import CATEGORIES

        categories = CATEGORIES
    questions = _QUESTIONS[task]
    parts = [modalities.describe(), *([NO_FACE_NOTE] if face is False else []), questions[variant % len(questions)]]
    if cot:
        parts.append(_COT_STYLE)
    parts.append(format_instruction(TASK_FIELDS[task], categories))
    if subtitle:
        parts.append(f"Subtitle: {subtitle}")
    return " ".join(parts)


def label_hint(emotion: str | None, aus: Collection[int] | None) -> str:
    """Ground-truth hints for rationale synthesis (as Facial-R1's data stage gives them)."""
    parts = []
    if aus:
        parts.append("The active action units are " + ", ".join(f"AU{n}" for n in sorted(aus)) + ".")
    if emotion:
        parts.append(f"The emotion is {emotion}.")
    return " ".join(parts) + " Explain the evidence for it; cite the action units." if parts else ""


def retry_feedback(problems: Sequence[str]) -> str:
    """Feedback appended to a prompt when a synthesized answer failed verification."""
    return "Your previous answer had problems: " + "; ".join(problems) + ". Answer again."


def all_template_texts() -> list[str]:
    """Every prompt text the templates can produce (for the tiny tokenizer's corpus)."""
    texts = [SYSTEM_PROMPT]
    combos = [Modalities(video=True, audio=True), Modalities(video=True), Modalities(audio=True),
              Modalities(image=True)]
    for task, questions in _QUESTIONS.items():
        for variant in range(len(questions)):
            for modalities in combos:
                texts.append(build_prompt(task, modalities, variant=variant))
        texts.append(build_prompt(task, combos[0], cot=True))
    texts.append(label_hint("happy", [6, 12]))
    texts.append(retry_feedback(["the answer names no emotion", "AU4 is cited but not active"]))
    return texts
