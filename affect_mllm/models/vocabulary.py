"""The text the tiny models' tokenizer is trained on: the project's own vocabulary in the contexts it is used.

Label words, AU names, answer tags and prompt templates come from the modules that own them, so a word added
to the lexicon or a new prompt template is in the next tiny model's vocabulary. Label words are repeated in
each context the answer grammar puts them in (after a space, after a comma, at the start of an answer), so
that BPE merges each into a single token (checked by tests).
"""

from __future__ import annotations

from collections.abc import Iterator

# Contexts a label word appears in: Qwen2's pre-tokenizer glues one leading non-letter to a word
# (" happy", ",happy", ">happy"), so each context is a different token and each must be learned.
_LABEL_CONTEXTS = ("{w}", " {w}", ">{w}", ",{w}", "\n{w}", "({w}", '"{w}', "'{w}")
_LABEL_REPEATS = 4

_BASE_WORDS = (
    "user", "assistant", "system", "the", "person", "face", "voice", "video", "audio", "clip", "emotion",
    "emotions", "expression", "speaker", "looks", "sounds", "seems", "feels", "because", "while", "and", "with",
    "but", "not", "no", "none", "is", "are", "was", "a", "an", "of", "to", "in", "on", "at", "by", "from", "their",
    "his", "her", "this", "that", "brows", "eyes", "lids", "cheeks", "nose", "lips", "mouth", "jaw", "chin",
    "corners", "pitch", "loudness", "rate", "tremor", "rising", "falling", "flat", "high", "low", "mid", "normal",
    "loud", "quiet", "fast", "slow", "yes", "intensity", "valence", "arousal", "positive", "negative", "neutral",
)


def label_words() -> list[str]:
    """Every word that must be one token: the emotion categories and lexicon words.

    AU names cannot be single tokens: Qwen2's pre-tokenizer splits digits one by one ("AU12" -> AU, 1, 2), in
    the real models too. They are in the corpus (`template_texts`) so "AU" itself is one token.
    """
    from affect_mllm.lexicon import all_surface_words

    return sorted(all_surface_words())


def template_texts() -> list[str]:
    """Prompt templates, answer grammar examples and rationale templates, as plain text."""
    from affect_mllm.answer import AU_NAMES_FOR_VOCABULARY, grammar_examples
    from affect_mllm.knowledge import au_phrases
    from affect_mllm.prompts import all_template_texts
    from affect_mllm.voice_cues import voice_cue_vocabulary

    return [*all_template_texts(), *grammar_examples(), *au_phrases(), *voice_cue_vocabulary(),
            " ".join(AU_NAMES_FOR_VOCABULARY)]


def tokenizer_corpus() -> Iterator[str]:
    """Yield the training texts of the tiny tokenizer."""
    for word in label_words():
        for _ in range(_LABEL_REPEATS):
            yield " ".join(context.format(w=word) for context in _LABEL_CONTEXTS)
    for text in template_texts():
        yield text
        yield text
    for _ in range(_LABEL_REPEATS):
        yield " ".join(_BASE_WORDS)
        yield " ".join(f"{n}" for n in range(10)) + " 0.5 -0.25 1.0"
