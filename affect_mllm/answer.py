"""The answer grammar, written down once: render it, parse it (tolerantly), and turn it into JSON.

Grammar::

    <think>RATIONALE</think><answer>FIELD; FIELD; ...</answer>
    FIELD := "emotion: " WORD                    categorical label
           | "emotions: " WORD (", " WORD)*      open-vocabulary set
           | "aus: " [AU (", " AU)*]             AU = "AU" NUMBER [LETTER A-E for intensity]; empty: no active AU
           | "valence: " NUMBER | "arousal: " NUMBER   in [-1, 1], two decimals

Fields appear in that order, each at most once; the task decides which are present. Examples::

    <think>Cheeks raised (AU6), lip corners up (AU12).</think><answer>emotions: happy, delighted</answer>
    <think>Brows drawn together (AU4), lips pressed (AU24).</think><answer>emotion: angry; aus: AU4, AU24</answer>
    <think>Calm face, steady voice.</think><answer>valence: 0.10; arousal: -0.40</answer>

The parser never raises on model output. A bare answer without field names (`<answer>happy, relieved</answer>`,
as AffectGPT-R1 models write) is read as the `emotions` field. An emotion WORD is one to four words of letters
(hyphens and apostrophes allowed); anything else in an emotion field (rationale text such as "inner brows raised
(AU4)", digits, brackets) is kept as written but makes the answer malformed (`well_formed.fields` is False).
AUs cited in the rationale and AUs given in the answer are kept apart: rewards check the first against the
labels, AU recognition scores the second.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
FIELD_ORDER = ("emotion", "emotions", "aus", "valence", "arousal")
# Fields whose empty list is still an answer: a neutral face has no active AU. An empty emotion list names nothing.
MAY_BE_EMPTY = frozenset({"aus"})
FIELD_SEPARATOR = "; "
LIST_SEPARATOR = ", "
# AU numbers that can appear as tokens; the tiny tokenizer learns each "AU<n>" as one token.
AU_NAMES_FOR_VOCABULARY = tuple(f"AU{n}" for n in range(1, 47))

_AU_PATTERN = re.compile(r"\bAU\s?(\d{1,2})([A-E])?\b")
_FIELD_PATTERN = re.compile(r"^\s*(emotions?|aus|valence|arousal)\s*:\s*(.*?)\s*$", re.IGNORECASE | re.DOTALL)
_BLOCK = re.compile(r"<(think|answer)>(.*?)</\1>", re.DOTALL)
_WORD_TOKEN = re.compile(r"(?=.*[^\W\d_])(?:[^\W\d_]|['’-])+")  # letters, hyphens, apostrophes; one letter at least
MAX_TOKENS_PER_EMOTION = 4  # "on edge", "at ease", "sick and tired": longer is a sentence, not a label


@dataclass(frozen=True)
class AnswerFields:
    """The content of an answer, as the renderer takes it and the parser returns it."""

    rationale: str | None = None
    emotion: str | None = None
    emotions: tuple[str, ...] | None = None
    aus: tuple[int, ...] | None = None
    valence: float | None = None
    arousal: float | None = None


@dataclass(frozen=True)
class WellFormed:
    """Which parts of a completion followed the grammar."""

    think: bool = False  # one non-empty <think>...</think>
    answer: bool = False  # one <answer>...</answer>
    order: bool = False  # think before answer, nothing but whitespace around them
    fields: bool = False  # every answer field parsed

    @property
    def all(self) -> bool:
        return self.think and self.answer and self.order and self.fields


@dataclass(frozen=True)
class ParsedAnswer:
    """A parsed completion: the fields, the AUs cited in the rationale, and what was well-formed."""

    fields: AnswerFields
    rationale_aus: tuple[int, ...] = ()
    rationale_au_intensity: dict[int, str] = field(default_factory=dict)  # AU -> cited letter (e.g. "AU12C")
    well_formed: WellFormed = WellFormed()
    raw: str = ""

    @property
    def emotion_words(self) -> tuple[str, ...]:
        """Every emotion word the answer gives (categorical first, then the open set), without repeats."""
        words = ([self.fields.emotion] if self.fields.emotion else []) + list(self.fields.emotions or ())
        return tuple(dict.fromkeys(words))


def _format_number(value: float) -> str:
    return f"{value:.2f}"


def render_answer_body(fields: AnswerFields) -> str:
    """The text between <answer> and </answer>."""
    parts = []
    if fields.emotion is not None:
        parts.append(f"emotion: {fields.emotion}")
    if fields.emotions is not None:
        parts.append("emotions: " + LIST_SEPARATOR.join(fields.emotions))
    if fields.aus is not None:
        parts.append("aus: " + LIST_SEPARATOR.join(f"AU{n}" for n in fields.aus))
    if fields.valence is not None:
        parts.append(f"valence: {_format_number(fields.valence)}")
    if fields.arousal is not None:
        parts.append(f"arousal: {_format_number(fields.arousal)}")
    return FIELD_SEPARATOR.join(parts)


def render_answer(fields: AnswerFields) -> str:
    """Write a completion in the grammar.

    Example:
        >>> render_answer(AnswerFields(rationale="Cheeks raised (AU6).", emotions=("happy",)))
        '<think>Cheeks raised (AU6).</think><answer>emotions: happy</answer>'
    """
    return f"{THINK_OPEN}{fields.rationale or ''}{THINK_CLOSE}{ANSWER_OPEN}{render_answer_body(fields)}{ANSWER_CLOSE}"


def answer_regex(fields: Sequence[str], *, categories: Sequence[str] | None = None, max_rationale_chars: int = 400,
                 max_list_items: int = 8) -> str:
    """The grammar as one regex over a whole completion with these answer fields, in `FIELD_ORDER`, for guided
    decoding: what it matches, `parse_answer` reads as well-formed with exactly these fields.

    Args:
        fields: the answer's fields (e.g. `prompts.TASK_FIELDS[task]`).
        categories: the words the `emotion` field may take (None: any emotion word).
        max_rationale_chars: the rationale's bound, so that a looping model still closes its tags.
        max_list_items: the most words or AUs in a list field.

    Character classes are spelled out (no \\d or \\s), for every structured-output backend's regex dialect.
    """
    def literal(text: str) -> str:  # re.escape also escapes spaces, which not every backend's dialect reads
        return re.escape(text).replace("\\ ", " ")

    more = max_list_items - 1
    word = "[a-z][a-z'-]{0,23}"
    au = "AU[1-9][0-9]?[A-E]?"
    number = "-?(0\\.[0-9]{2}|1\\.00)"
    values = {"emotion": "(" + "|".join(literal(c) for c in categories) + ")" if categories else word,
              "emotions": f"{word}({literal(LIST_SEPARATOR)}{word}){{0,{more}}}",
              "aus": f"({au}({literal(LIST_SEPARATOR)}{au}){{0,{more}}})?",  # empty: no active AU (neutral)
              "valence": number, "arousal": number}
    unknown = [name for name in fields if name not in values]
    if unknown or not fields:
        raise ValueError(f"answer fields must be some of {FIELD_ORDER}, got {list(fields)}")
    body = literal(FIELD_SEPARATOR).join(f"{name}: {values[name]}" for name in FIELD_ORDER if name in fields)
    rationale = f"[^<> \\t\\n][^<>]{{0,{max_rationale_chars - 1}}}"
    return literal(THINK_OPEN) + rationale + literal(THINK_CLOSE) + literal(ANSWER_OPEN) + body + literal(ANSWER_CLOSE)


def cited_aus(text: str) -> tuple[tuple[int, ...], dict[int, str]]:
    """AU numbers cited in free text (`AU6`, `AU 12`, `AU12C`), in first-mention order, and cited intensities."""
    numbers: dict[int, None] = {}
    letters: dict[int, str] = {}
    for match in _AU_PATTERN.finditer(text):
        number = int(match.group(1))
        numbers.setdefault(number, None)
        if match.group(2):
            letters.setdefault(number, match.group(2))
    return tuple(numbers), letters


def _split_list(value: str) -> tuple[str, ...]:
    items = re.split(r"[,;]", value.strip().strip("[]"))
    words = (item.strip().strip("'\"").strip().lower() for item in items)
    return tuple(dict.fromkeys(w for w in words if w))


def is_emotion_word(word: str) -> bool:
    """Whether an emotion-field item is a label (one to four words of letters), not a sentence or a citation.

    Example:
        >>> is_emotion_word("happy"), is_emotion_word("at ease"), is_emotion_word("inner brows raised (au4")
        (True, True, False)
    """
    tokens = word.split()
    return 0 < len(tokens) <= MAX_TOKENS_PER_EMOTION and all(_WORD_TOKEN.fullmatch(t) for t in tokens)


def _parse_number(value: str) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _parse_body(body: str) -> tuple[dict, bool]:
    """Fields of an answer body, and whether all of it parsed."""
    chunks = [c for c in re.split(r";|\n", body) if c.strip()]
    values: dict = {}
    ok = bool(chunks)
    for chunk in chunks:
        match = _FIELD_PATTERN.match(chunk)
        if match is None:
            if values:  # text after named fields that is not a field
                ok = False
                continue
            values["emotions"] = _split_list(body)  # a bare label list
            return values, all(map(is_emotion_word, values["emotions"]))
        name, value = match.group(1).lower(), match.group(2)
        if name in values:
            ok = False
            continue
        if name == "emotion":
            words = _split_list(value)
            values[name] = words[0] if words else None
            ok = ok and len(words) == 1 and is_emotion_word(words[0])
        elif name == "emotions":
            values[name] = _split_list(value)
            ok = ok and all(map(is_emotion_word, values[name]))
        elif name == "aus":
            numbers, _ = cited_aus(value)
            values[name] = numbers
            ok = ok and (bool(numbers) or not value.strip())
        else:
            values[name] = _parse_number(value)
            ok = ok and values[name] is not None
    return values, ok


def parse_answer(text: str) -> ParsedAnswer:
    """Parse a completion; never raises.

    Example:
        >>> p = parse_answer("<think>Brows together (AU4).</think><answer>emotion: Angry; aus: AU4, AU24</answer>")
        >>> p.fields.emotion, p.fields.aus, p.rationale_aus, p.well_formed.all
        ('angry', (4, 24), (4,), True)
    """
    text = text if isinstance(text, str) else ""
    blocks = [(m.group(1), m.group(2), m.start(), m.end()) for m in _BLOCK.finditer(text)]
    thinks = [b for b in blocks if b[0] == "think"]
    answers = [b for b in blocks if b[0] == "answer"]
    rationale = thinks[0][1].strip() if thinks else None
    values, fields_ok = _parse_body(answers[-1][1]) if answers else ({}, False)
    order = (len(thinks) == 1 and len(answers) == 1 and thinks[0][2] < answers[0][2]
             and not text[: thinks[0][2]].strip() and not text[thinks[0][3]: answers[0][2]].strip()
             and not text[answers[0][3]:].strip())
    aus, letters = cited_aus(rationale or "")
    fields = AnswerFields(rationale=rationale, **{k: v for k, v in values.items() if k in FIELD_ORDER})
    well = WellFormed(think=len(thinks) == 1 and bool(rationale), answer=len(answers) == 1, order=order,
                      fields=fields_ok)
    return ParsedAnswer(fields=fields, rationale_aus=aus, rationale_au_intensity=letters, well_formed=well, raw=text)


def gives_fields(parsed: ParsedAnswer, fields: Sequence[str] | None = None) -> bool:
    """Whether the answer gives a value for every field in `fields`; None: whether it names an emotion at all.

    An empty list counts only in the fields of `MAY_BE_EMPTY` (a neutral face's `aus: `).

    Example:
        >>> p = parse_answer("<think>Frown (AU4).</think><answer>emotion: angry</answer>")
        >>> gives_fields(p), gives_fields(p, ("emotion",)), gives_fields(p, ("emotion", "aus"))
        (True, True, False)
        >>> gives_fields(parse_answer("<think>A still face.</think><answer>emotion: neutral; aus: </answer>"),
        ...              ("emotion", "aus"))
        True
    """
    if fields is None:
        return bool(parsed.emotion_words)
    values = asdict(parsed.fields)
    return all(values[name] is not None and (name in MAY_BE_EMPTY or values[name] != ()) for name in fields)


def answer_to_json(parsed: ParsedAnswer) -> dict:
    """The JSON form served to clients (same content as the tagged text)."""
    fields = asdict(parsed.fields)
    for key in ("emotions", "aus"):
        if fields[key] is not None:
            fields[key] = list(fields[key])
    return {**fields, "rationale_aus": list(parsed.rationale_aus), "well_formed": asdict(parsed.well_formed),
            "raw": parsed.raw}


def grammar_examples() -> list[str]:
    """Example completions in the grammar (for the tiny tokenizer's corpus and documentation)."""
    return [
        render_answer(AnswerFields(rationale="Cheeks raised (AU6) and lip corners pulled up (AU12).",
                                   emotions=("happy", "delighted"))),
        render_answer(AnswerFields(rationale="The brows draw together (AU4).", emotion="angry", aus=(4, 24))),
        render_answer(AnswerFields(rationale="Calm face, steady voice.", valence=0.1, arousal=-0.4)),
    ]
