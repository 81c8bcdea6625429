"""The vocabulary warm-up's copy tasks: answers in the grammar that give back exactly the listed words."""

from __future__ import annotations

import random

from affect_mllm.answer import parse_answer
from affect_mllm.knowledge import CATEGORIES
from affect_mllm.lexicon import all_surface_words
from training.pretrain_vocab import copy_conversation


def test_copy_answers_parse_to_the_listed_words():
    rng, words = random.Random(0), sorted(all_surface_words())
    kinds = set()
    for _ in range(200):
        question, answer = copy_conversation(rng, words, list(CATEGORIES))
        parsed = parse_answer(answer)
        assert parsed.well_formed.all, answer
        listed = question.split(": ", 1)[1].rstrip(".")
        if "as `emotions`" in question:
            assert ", ".join(parsed.fields.emotions) == listed
        elif "as `emotion`" in question:
            assert parsed.fields.emotion == listed
        else:
            assert ", ".join(f"AU{au}" for au in parsed.fields.aus) == listed
        assert not parsed.rationale_aus  # the rationale names no AU and no clip: nothing perceptual is taught
        kinds.add(question.split("`")[1])
    assert kinds == {"emotions", "emotion", "aus"}


def test_two_field_copies_parse_to_both_fields():
    rng, words = random.Random(1), sorted(all_surface_words())
    kinds = set()
    for _ in range(100):
        question, answer = copy_conversation(rng, words, list(CATEGORIES), two_field_share=1.0)
        parsed = parse_answer(answer)
        assert parsed.well_formed.all, answer
        listed_words, listed_aus = question.split(": ", 1)[1].rstrip(".").split("; ")
        assert ", ".join(f"AU{au}" for au in parsed.fields.aus) == listed_aus
        if "as `emotion` and" in question:
            assert parsed.fields.emotion == listed_words
        else:
            assert ", ".join(parsed.fields.emotions) == listed_words
        kinds.add(question.split("`")[1])
    assert kinds == {"emotion", "emotions"}


def test_share_zero_keeps_the_committed_bases_draws():
    words = sorted(all_surface_words())
    plain, zero = random.Random(3), random.Random(3)
    for _ in range(50):
        categories = list(CATEGORIES)
        assert copy_conversation(plain, words, categories) == copy_conversation(zero, words, categories, 0.0)


def test_vocab_recipes_parse_and_name_a_committed_base():
    from pathlib import Path

    from trl import TrlParser

    from training.pretrain_vocab import VocabArguments

    repo = Path(__file__).resolve().parents[1]
    recipes = sorted((repo / "recipes").glob("*/pretrain_vocab.yaml"))
    assert {p.parent.name for p in recipes} == {"tiny-omni", "tiny-vl"}
    for path in recipes:
        (args,) = TrlParser((VocabArguments,)).parse_args_and_config(args=["--config", str(path)])
        assert (repo / args.base / "model_card.json").is_file(), path
