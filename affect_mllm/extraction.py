"""Free text -> emotion label list (OV-MER step 0), so that any model's descriptions can be scored.

Two extractors, one interface (`extract(text) -> list[str]`, `settings() -> dict` for the report):
- `LexiconExtractor` (default): deterministic and local. It finds the lexicon's emotion words in the text,
  longest phrase first, in any surface form, and reports each as its head word ('furiously' -> furious). It
  skips a word negated within its clause ('not happy'), counts words with common non-emotional senses ('brows
  drawn down', 'a warm light') only after a feeling/appearance verb or a degree word ('she feels down'), and
  keeps the order of first mention without repeats.
- `LLMExtractor`: any OpenAI-compatible endpoint (the project's own server included), greedy decoding, a prompt
  in the spirit of the reference's (list only the emotions clearly identifiable, as a bracketed list, with an
  empty and a three-word example), cached on disk keyed by (model, text). It is the only networked piece of
  evaluation and is opt-in.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from affect_mllm.answer import ANSWER_OPEN
from affect_mllm.jsonl import AppendLog
from affect_mllm.lexicon import load_lexicon, normalize_word
from affect_mllm.predictions import LabelRecord
from affect_mllm.wheels import parse_label_list

NEGATORS = frozenset({"not", "no", "never", "without", "hardly", "barely", "nor", "neither", "cannot", "lacks",
                      "lacking", "absent", "free"})
NEGATION_WINDOW = 3  # tokens before a word, within its clause, that can negate it
# Lexicon words that often describe a face, a voice or a scene rather than a feeling.
CONTEXT_DEPENDENT = frozenset({"absorbed", "blank", "blue", "collected", "composed", "content", "cross", "down",
                               "empty", "focused", "keen", "lost", "moved", "relaxed", "safe", "secure", "steady",
                               "tense", "torn", "touched", "warm", "weak"})
CONTEXT_CUES = frozenset({"feel", "feels", "feeling", "felt", "seem", "seems", "seemed", "look", "looks", "looked",
                          "appear", "appears", "appeared", "sound", "sounds", "sounded", "is", "are", "was", "were",
                          "be", "been", "being", "become", "becomes", "became", "get", "gets", "got", "getting",
                          "very", "so", "quite", "rather", "somewhat", "slightly", "extremely", "really", "too",
                          "deeply", "more", "visibly", "clearly", "bit", "little"})
_CLAUSE_BREAK = re.compile(r"[.,;:!?()\[\]\n\"]|\bbut\b|\bthough\b|\balthough\b|\bhowever\b")
_TOKEN = re.compile(r"[a-z]+(?:['’-][a-z]+)*")
EXTRACTION_PROMPT = (
    "You are an expert in human emotion. Read the description of a person below and list the emotions that the "
    "person clearly feels, one or two words each. Leave out emotions that are denied, only possible, or felt by "
    "someone else. Reply with a bracketed, comma-separated list and nothing else; reply [] when no emotion can "
    "be identified.\n\n"
    "Description: The room is dim and a car drives past the window.\nEmotions: []\n\n"
    "Description: She laughs at first, then her voice breaks, and at last she shouts at him.\n"
    "Emotions: [happy, sad, angry]\n\n"
    "Description: {text}\nEmotions:"
)


class Extractor(Protocol):
    """What the evaluation needs from an extractor."""

    def extract(self, text: str) -> list[str]: ...

    def settings(self) -> dict[str, Any]: ...


class ExtractionError(RuntimeError):
    """The LLM endpoint could not be reached or refused the request (names the endpoint and the fault)."""


@functools.lru_cache(maxsize=1)
def _surface_forms() -> Mapping[str, str]:
    """Every single- or multi-word surface form the lexicon lists or derives -> its head word (codes left out)."""
    lexicon = load_lexicon()
    forms = (*lexicon.entries, *lexicon.synonyms, *lexicon.forms, *lexicon.derived)
    return MappingProxyType({form: head for form in forms if (head := normalize_word(form)) is not None})


def _is_negated(preceding: Sequence[str]) -> bool:
    window = preceding[-NEGATION_WINDOW:]
    return any(token in NEGATORS or token.endswith("n't") or token.endswith("n’t") for token in window)


def _clause_heads(tokens: list[str], forms: Mapping[str, str], longest: int) -> list[str]:
    """Head words found in one clause, longest phrase first at each position."""
    heads, i = [], 0
    while i < len(tokens):
        for size in range(min(longest, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i:i + size])
            if phrase in forms:
                break
        else:
            i += 1
            continue
        preceding = tokens[max(0, i - 2):i]
        contextual = phrase not in CONTEXT_DEPENDENT or any(t in CONTEXT_CUES for t in preceding)
        if contextual and not _is_negated(tokens[:i]):
            heads.append(forms[phrase])
        i += size
    return heads


@dataclass(frozen=True)
class LexiconExtractor:
    """Deterministic lexicon extractor (see the module doc)."""

    def extract(self, text: str) -> list[str]:
        """Emotion head words found in `text`, in order of first mention, without repeats.

        Args:
            text: a free-text description.

        Returns:
            The words (possibly none).

        Example:
            >>> LexiconExtractor().extract("Not happy at all: she looks down, furious, then FURIOUS again.")
            ['dejected', 'furious']
        """
        forms = _surface_forms()
        longest = max(len(form.split(" ")) for form in forms)
        heads: list[str] = []
        for clause in _CLAUSE_BREAK.split(text.lower() if isinstance(text, str) else ""):
            heads.extend(_clause_heads(_TOKEN.findall(clause), forms, longest))
        return list(dict.fromkeys(heads))

    def settings(self) -> dict[str, Any]:
        """Provenance for the report."""
        return {"extractor": "lexicon", "negation_window": NEGATION_WINDOW, "n_surface_forms": len(_surface_forms())}


def _prompt_sha256() -> str:
    return hashlib.sha256(EXTRACTION_PROMPT.encode()).hexdigest()


def parse_label_reply(reply: str) -> list[str]:
    """The label list of an LLM reply: the last bracketed list in it, else the whole reply split on commas.

    Example:
        >>> parse_label_reply("Sure! The emotions are [Happy, 'relieved'].")
        ['happy', 'relieved']
    """
    text = (reply or "").strip()
    lists = re.findall(r"\[[^\[\]]*\]", text)
    words = parse_label_list(lists[-1] if lists else (text.splitlines()[0] if text else ""))
    return list(dict.fromkeys(words))


@dataclass
class LLMExtractor:
    """Label extraction through an OpenAI-compatible chat endpoint, greedy, cached in a JSONL file."""

    base_url: str
    model: str
    cache_path: Path | None = None
    api_key: str | None = field(default=None, repr=False)  # default: $OPENAI_API_KEY, else "EMPTY" (local servers)
    max_tokens: int = 64
    timeout_s: float = 60.0
    _cache: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)
    _log: AppendLog | None = field(default=None, init=False, repr=False)
    _client: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.base_url or not self.model:
            raise ValueError("the LLM extractor needs a base URL and a model name")
        if self.cache_path is not None:
            self._log = AppendLog(self.cache_path, key="id")
            prompt = _prompt_sha256()
            self._cache = {r["id"]: r["labels"] for r in self._log.records() if r.get("prompt_sha256") == prompt}

    def _key(self, text: str) -> str:
        return hashlib.sha256(json.dumps([self.model, text, _prompt_sha256()]).encode()).hexdigest()

    def extract(self, text: str) -> list[str]:
        """The labels the model lists for `text` (from the cache when this model has seen the text).

        Raises:
            ExtractionError: the endpoint failed.
        """
        key = self._key(text)
        if key not in self._cache:
            labels = parse_label_reply(self._ask(text))
            self._cache[key] = labels
            if self._log is not None:
                self._log.append({"id": key, "model": self.model, "prompt_sha256": _prompt_sha256(), "labels": labels})
        return list(self._cache[key])

    def _ask(self, text: str) -> str:
        import openai

        if self._client is None:
            key = self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
            self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout_s, max_retries=1)
        try:
            response = self._client.chat.completions.create(
                model=self.model, temperature=0.0, max_tokens=self.max_tokens,
                messages=[{"role": "user", "content": EXTRACTION_PROMPT.format(text=text)}])
        except openai.OpenAIError as exc:
            raise ExtractionError(f"{self.base_url} (model {self.model}): {exc}") from exc
        return (response.choices[0].message.content or "") if response.choices else ""

    def settings(self) -> dict[str, Any]:
        """Provenance for the report (no API key)."""
        return {"extractor": "llm", "base_url": self.base_url, "model": self.model, "temperature": 0.0,
                "max_tokens": self.max_tokens, "prompt_sha256": _prompt_sha256(),
                "cache": None if self.cache_path is None else str(self.cache_path)}


def needs_extraction(record: LabelRecord) -> bool:
    """A prediction with no emotion field but free text (a raw completion or a rationale) to read labels from.

    An answer whose emotion field is present but empty stays empty, and so does a completion with an <answer>
    block that gives no emotion field (e.g. AUs only): the model answered, and named no emotion. Its rationale is
    not read for one.

    Example:
        >>> needs_extraction(LabelRecord("a", raw="She smiles; she looks happy."))
        True
        >>> needs_extraction(LabelRecord("a", raw="<think>Smile (AU12).</think><answer>aus: AU12</answer>"))
        False
    """
    if record.emotion is not None or record.emotions is not None:
        return False
    if record.raw is not None and ANSWER_OPEN in record.raw:
        return False
    return bool(record.raw or record.rationale)


def fill_emotions(records: Sequence[LabelRecord], extractor: Extractor) -> tuple[list[LabelRecord], int]:
    """Give every record that `needs_extraction` the labels extracted from its text (raw completion, else rationale).

    Args:
        records: predictions.
        extractor: a LexiconExtractor or LLMExtractor.

    Returns:
        (the records, how many were filled by extraction).

    Example:
        >>> out, n = fill_emotions([LabelRecord("a", rationale="He is clearly anxious.")], LexiconExtractor())
        >>> out[0].emotions, n
        (('anxious',), 1)
    """
    out, filled = [], 0
    for record in records:
        if needs_extraction(record):
            record = record.with_emotions(extractor.extract(record.raw or record.rationale or ""))
            filled += 1
        out.append(record)
    return out, filled
