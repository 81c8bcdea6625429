"""Reward cost against generation cost: every registered reward per completion vs a tiny-model generate step.

Run: .venv/bin/python benchmarks/rewards.py [--completions 512] [--batch 4] [--max-new-tokens 64] [--threads 1]

A tiny random-init Qwen2.5-Omni thinker is built into a temporary folder and generates (sampling, as GRPO
does) from a random clip of 8 frames of 112x112 with 4 s of audio; the rewards score realistic completions
(grammar answers with AU- and voice-citing rationales, plus the tiny model's own garbage) through
`rewards.score_completions`, the call the trainer and the synthesis filter make. Both sides run on the same
number of torch threads and are timed in CPU seconds of this process (robust to other work on a shared
machine); wall times are printed too. A real model generates far slower than the tiny one, so the ratio is an
upper bound of the share rewards take. The last line is JSON:
{"rewards_ms_per_completion", "generate_ms_per_completion", "ratio"}.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from affect_mllm.answer import AnswerFields, render_answer
from affect_mllm.knowledge import CATEGORIES, au_cue, intensity_letter, prototype
from affect_mllm.lexicon import fine_words
from affect_mllm.rewards import REWARDS, get_reward_funcs, score_completions
from affect_mllm.voice_cues import voice_cue_phrases


def timed(function, *args, **kwargs):
    """Run a function; return (result, CPU seconds, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def time_generation(batch: int, max_new_tokens: int, rounds: int) -> tuple[list[str], float, float]:
    """Build the tiny model, generate `rounds` batches; return texts and CPU / wall ms per completion."""
    from affect_mllm.media import SampleMedia
    from affect_mllm.models.generate import generate_texts
    from affect_mllm.models.inputs import Conversation, build_messages
    from affect_mllm.models.registry import load_model_and_processor
    from affect_mllm.models.tiny import build_tiny_omni
    from affect_mllm.prompts import Modalities, build_prompt

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        model, processor, spec = load_model_and_processor(str(build_tiny_omni(Path(folder) / "tiny-omni")))
    media = SampleMedia(video=rng.integers(0, 256, (8, 112, 112, 3), dtype=np.uint8),
                        audio=(0.1 * rng.standard_normal(4 * 16000)).astype(np.float32))
    prompt = build_prompt("ov_emotion", Modalities(video=True, audio=True))
    conversations = [Conversation(build_messages(media, prompt, spec), media)] * batch
    generate_texts(model, processor, spec, conversations[:1], max_new_tokens=4)  # warm-up
    texts, cpu, wall = [], 0.0, 0.0
    for _ in range(rounds):
        out, round_cpu, round_wall = timed(generate_texts, model, processor, spec, conversations,
                                           max_new_tokens=max_new_tokens, do_sample=True)
        texts += out
        cpu, wall = cpu + round_cpu, wall + round_wall
    return texts, 1000 * cpu / len(texts), 1000 * wall / len(texts)


def synthetic_batch(n: int, garbage: list[str], seed: int = 0) -> tuple[list[str], dict[str, list]]:
    """n unique completions (one in five is the tiny model's garbage) and their label columns."""
    rng = random.Random(seed)
    completions, columns = [], {"emotion": [], "emotions": [], "aus": []}
    for i in range(n):
        category = rng.choice(CATEGORIES)
        core = sorted(prototype(category).core)
        intensities = {au: rng.uniform(1.0, 5.0) for au in core}
        if i % 5 == 4 and garbage:
            completions.append(f"{garbage[i % len(garbage)]} #{i}")
        else:
            cited = ", ".join(f"{au_cue(au)} (AU{au}{intensity_letter(x)})" for au, x in intensities.items())
            voice = ", ".join(voice_cue_phrases(category)[:2])
            rationale = f"Clip {i}: {cited or 'a relaxed face'}; the voice is {voice or 'even'}."
            words = (category, *fine_words(category, 0.5, 0.0, k=2, rng=rng))
            completions.append(render_answer(AnswerFields(rationale=rationale, emotions=words)))
        columns["emotion"].append(category)
        columns["emotions"].append([category, *fine_words(category, 0.6, 0.2, k=1)])
        columns["aus"].append([{"au": au, "intensity": x} for au, x in intensities.items()])
    return completions, columns


def main(argv: list[str] | None = None) -> dict:
    """Measure both sides, print the figures and the JSON line; return the JSON dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=512, help="completions the rewards score")
    parser.add_argument("--batch", type=int, default=4, help="conversations per generate call")
    parser.add_argument("--rounds", type=int, default=2, help="generate calls timed")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for generation")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    generated, generate_cpu_ms, generate_wall_ms = time_generation(args.batch, args.max_new_tokens, args.rounds)
    funcs = get_reward_funcs(list(REWARDS))
    warm_completions, warm_columns = synthetic_batch(64, generated, seed=1)
    score_completions(warm_completions, warm_columns, funcs)  # loads the lexicon and knowledge tables once
    completions, columns = synthetic_batch(args.completions, generated)
    scored, cpu, wall = timed(score_completions, completions, columns, funcs)
    rewards_cpu_ms, rewards_wall_ms = 1000 * cpu / len(completions), 1000 * wall / len(completions)
    print(f"rewards ({', '.join(REWARDS)}) on {len(completions)} completions: "
          f"{rewards_cpu_ms:.3f} ms CPU / {rewards_wall_ms:.3f} ms wall per completion")
    print(f"tiny-omni generate ({args.batch} x {args.rounds} completions, up to {args.max_new_tokens} new tokens, "
          f"{args.threads} thread(s)): {generate_cpu_ms:.1f} ms CPU / {generate_wall_ms:.1f} ms wall per completion")
    print("mean reward per function: " + ", ".join(
        f"{name} {np.nanmean(values):.3f}" for name, values in scored["rewards_per_func"].items()))
    result = {"rewards_ms_per_completion": round(rewards_cpu_ms, 4),
              "generate_ms_per_completion": round(generate_cpu_ms, 2),
              "ratio": round(rewards_cpu_ms / generate_cpu_ms, 5)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
