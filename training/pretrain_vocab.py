"""Vocabulary warm-up of a tiny base: text-only copy tasks in the answer grammar; no clip, so no emotion is learnt.

Why this stage exists: perception pretraining never asks the tiny base to write an emotion word, so every softmax
step pushes those words' output rows down. Measured once, with a script that was not kept, on the perception-only
`tiny-omni-base` (its weights at commit ea384c5): after 400 steps of LoRA SFT on 4000
SynthFACS clips the answer's first token (`>emotions`) still cost 7.2 nats and each emotion word 7-8.5 nats, and
greedy answers never named an emotion (0/48 parsed); LoRA on the attention and MLP projections could not lift rows
that pretraining had buried. A real pretrained LLM can write any word it is asked to. This stage gives the tiny base
that skill and nothing more: the user lists words drawn at random from the project's lexicon (and AU numbers), the
assistant writes them back in the answer grammar. No clip is ever shown, so no word is tied to a face or a voice:
which emotion a clip shows stays SFT's to teach, and row (b) of benchmarks/learning.py stays at chance. With
`two_field_share` some copy tasks write two fields (`emotion: X; aus: ...`), as au_reasoning answers do: bases
warmed up with one field only never wrote the second field after SFT (answer-field AU F1 0).

Only the language model trains (the towers and merger keep their perception weights). Each step also rehearses
the perception answer on fresh SynthFACS clips (the pretraining task, rendered online past its clip indices):
without it, 400 text-only steps made the base answer every clip with a copy-task rationale (held-out AU F1 0.78
-> 0.00). The held-out perception scores are measured again afterwards and written to the model card beside the
earlier ones.

    affect-mllm train pretrain-vocab --config recipes/tiny-omni/pretrain_vocab.yaml   (after pretrain-tiny)
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

logger = logging.getLogger(__name__)



@dataclass
class VocabArguments:
    """Text-only vocabulary warm-up of a perception-pretrained tiny base, saved in place."""

    base: str = field(default="affect_mllm/models/bases/tiny-omni-base", metadata={"help": "The base folder."})
    steps: int = field(default=300, metadata={"help": "Optimizer steps."})
    batch_size: int = field(default=32, metadata={"help": "Conversations per step."})
    learning_rate: float = field(default=5e-4, metadata={"help": "AdamW rate (constant after a short warm-up)."})
    warmup_steps: int = field(default=20, metadata={"help": "Linear warm-up."})
    seed: int = field(default=0, metadata={"help": "Seed of the word draws."})
    threads: int = field(default=1, metadata={"help": "torch threads."})
    eval_dir: str = field(default="runs/pretrain-eval", metadata={"help": "Held-out clips (as pretraining made)."})
    rehearsal_batch: int = field(default=8, metadata={"help": "Perception clips rehearsed per step."})
    rehearsal_level: int = field(default=2, metadata={"help": "SynthFACS difficulty of the rehearsed clips."})
    two_field_share: float = field(
        default=0.0, metadata={"help": "Share of copy tasks with two fields (emotion or emotions, then aus), as "
                                       "au_reasoning answers have. The committed bases use 0.5 (their recipes); "
                                       "at 0 a base never writes `emotion: X; aus: ...` (answer AU F1 0 after SFT)."})


def copy_conversation(rng: random.Random, words: list[str], categories: list[str],
                      two_field_share: float = 0.0) -> tuple[str, str]:
    """(user text, assistant answer): copy a list of words, one category, or AU numbers, in the answer grammar;
    with `two_field_share`, sometimes an emotion (or words) and AU numbers in one answer."""
    from affect_mllm.answer import AnswerFields, render_answer

    if two_field_share and rng.random() < two_field_share:  # no draw at 0: the committed bases' stream stays
        return two_field_conversation(rng, words, categories)
    kind = rng.choice(("emotions", "emotion", "aus"))
    if kind == "emotions":
        chosen = tuple(dict.fromkeys(rng.sample(words, rng.randint(1, 5))))
        fields = AnswerFields(rationale="The words to write back.", emotions=chosen)
        listed = ", ".join(chosen)
    elif kind == "emotion":
        chosen_word = rng.choice(categories)
        fields = AnswerFields(rationale="The word to write back.", emotion=chosen_word)
        listed = chosen_word
    else:
        from affect_mllm.knowledge import all_aus

        aus = tuple(sorted(rng.sample(list(all_aus()), rng.randint(1, 4))))
        fields = AnswerFields(rationale="The action units to write back.", aus=aus)
        listed = ", ".join(f"AU{au}" for au in aus)
    return f"Write back, in the answer format, as `{kind}`: {listed}.", render_answer(fields)


def two_field_conversation(rng: random.Random, words: list[str], categories: list[str]) -> tuple[str, str]:
    """(user text, answer) with two fields, as au_reasoning answers: `emotion: X; aus: ...` (or `emotions:`)."""
    from affect_mllm.answer import AnswerFields, render_answer
    from affect_mllm.knowledge import all_aus

    aus = tuple(sorted(rng.sample(list(all_aus()), rng.randint(1, 4))))
    listed_aus = ", ".join(f"AU{au}" for au in aus)
    if rng.random() < 0.5:
        word = rng.choice(categories)
        fields = AnswerFields(rationale="The fields to write back.", emotion=word, aus=aus)
        question = f"Write back, in the answer format, as `emotion` and `aus`: {word}; {listed_aus}."
        return question, render_answer(fields)
    chosen = tuple(dict.fromkeys(rng.sample(words, rng.randint(1, 4))))
    fields = AnswerFields(rationale="The fields to write back.", emotions=chosen, aus=aus)
    question = f"Write back, in the answer format, as `emotions` and `aus`: {', '.join(chosen)}; {listed_aus}."
    return question, render_answer(fields)


def copy_batch(processor, spec, rng: random.Random, n: int, words: list[str], categories: list[str],
               two_field_share: float = 0.0):
    """A text-only training batch (labels on the answer and the end token)."""
    from affect_mllm.media import SampleMedia
    from affect_mllm.models.inputs import Conversation, build_messages, encode_for_training

    conversations, answers = [], []
    for _ in range(n):
        question, answer = copy_conversation(rng, words, categories, two_field_share)
        media = SampleMedia()
        conversations.append(Conversation(build_messages(media, question, spec), media))
        answers.append(answer)
    return encode_for_training(processor, spec, conversations, answers)


REHEARSAL_OFFSET = 10_000_000  # clip indices past any pretraining run's: fresh clips


def rehearsal_batch(processor, spec, args: VocabArguments, data_seed: int, step: int):
    """The perception-pretraining batch (AU answer with a perception rationale) on fresh clips."""
    from affect_mllm.synthfacs.generate import GeneratorSettings
    from training.pretrain_tiny import perception_batch

    settings = GeneratorSettings(seed=data_seed, split="train", difficulty=args.rehearsal_level)
    first = REHEARSAL_OFFSET + step * args.rehearsal_batch
    return perception_batch(processor, spec, settings, range(first, first + args.rehearsal_batch))[1]


def run_vocab_warmup(args: VocabArguments, argv: list[str]) -> Path:
    """Train the language model on copy tasks, re-measure perception, save the base and update its card."""
    from affect_mllm.jsonl import atomic_write_json, atomic_write_text
    from affect_mllm.knowledge import CATEGORIES
    from affect_mllm.lexicon import all_surface_words
    from affect_mllm.models.registry import load_model_and_processor
    from affect_mllm.models.tiny import save_omni
    from training.lora import ENCODER_MODULES
    from training.pretrain_eval import evaluate_perception, make_eval_sets
    from training.pretrain_loop import card_markdown

    folder = Path(args.base)
    card = json.loads((folder / "model_card.json").read_text())
    if "vocabulary_warmup" in card:
        raise ValueError(f"{folder}: the vocabulary warm-up has already run on this base (see its model_card.json)")
    model, processor, spec = load_model_and_processor(str(folder), dtype="float32")
    trained = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad = re.fullmatch(ENCODER_MODULES, name) is None  # words, not perception
        if parameter.requires_grad:
            trained.append(parameter)
    optimizer = torch.optim.AdamW(trained, lr=args.learning_rate, betas=(0.9, 0.98), weight_decay=0.0)
    rng = random.Random(args.seed)
    words, categories = sorted(all_surface_words()), list(CATEGORIES)
    model.train()
    started, losses = time.time(), []
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.learning_rate * min(1.0, (step + 1) / max(args.warmup_steps, 1))
        batch = copy_batch(processor, spec, rng, args.batch_size, words, categories, args.two_field_share)
        loss = model(**batch, use_cache=False).loss
        if args.rehearsal_batch:
            rehearsal = rehearsal_batch(processor, spec, args, card["arguments"]["data_seed"], step)
            loss = loss + model(**rehearsal, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 25 == 0 or step + 1 == args.steps:
            logger.info("vocabulary step %d/%d loss %.3f", step, args.steps, loss.item())
    arguments = card["arguments"]
    eval_sets = make_eval_sets(Path(args.eval_dir), arguments["levels"], arguments["eval_clips"],
                               arguments["data_seed"])
    after = evaluate_perception(model, processor, spec, eval_sets)
    logger.info("held-out perception after the warm-up: %s", json.dumps(after))
    model = model.eval()
    if spec.arch == "qwen2_5_omni":
        save_omni(model, processor, folder)
    else:
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    card["held_out_before_vocabulary_warmup"] = card["held_out"]
    card["held_out"] = {k: v for k, v in after.items() if k.startswith(("au_f1", "voice"))}
    card["vocabulary_warmup"] = {
        "command": "affect-mllm train pretrain-vocab " + " ".join(argv),
        "why": "text-only copy tasks so that the answer grammar and the lexicon's words can be written at all; "
               "no clip shown, no emotion linked to a face or voice (training/pretrain_vocab.py)",
        "first_loss": round(losses[0], 4), "last_loss": round(sum(losses[-10:]) / len(losses[-10:]), 4),
        "train_seconds": round(time.time() - started), "arguments": asdict(args)}
    atomic_write_json(folder / "model_card.json", card)
    atomic_write_text(folder / "README.md", card_markdown(card) + (
        "\n\nThen the vocabulary warm-up (text only, no clips):\n\n```\n"
        f"{card['vocabulary_warmup']['command']}\n```\n"))
    return folder


def main(argv: list[str] | None = None) -> Path:
    """Run the warm-up on a tiny base; return its folder."""
    from trl import TrlParser

    from training.common import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    (args,) = TrlParser((VocabArguments,)).parse_args_and_config(args=argv)
    setup_logging()
    torch.set_num_threads(args.threads)
    return run_vocab_warmup(args, argv)


if __name__ == "__main__":
    main()
