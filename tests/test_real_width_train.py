"""At real width (Qwen2.5-Omni-3B's, 2 layers): LoRA SFT in fp32 and in bf16 (bf16 weights, fp32 LoRA, autocast),
GRPO in bf16 with HF and with colocated vLLM rollouts (vLLM's offline engine generating with the live LoRA), the
adapter exported for vLLM and the served model answering one clip through the `openai` client. All on SynthFACS
clips at 448x448 through the real tokenizer and processor.

Run: flock /tmp/affect_heavy.lock pytest tests/test_real_width_train.py -q
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess

import pytest
from process_helpers import affect_mllm_command
from real_width_fixtures import BF16, CPU_HAS_BF16, TWO_THREADS, recipe_args
from safetensors.torch import load_file
from training_fixtures import run_stage

from affect_mllm.models.inputs import encode
from affect_mllm.processes import free_port, stop_process_group, wait_for_health

pytest_plugins = ["training_fixtures", "real_width_fixtures"]

needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
LM_LORA = 2 * 7 * 2  # layers x projections (q, k, v, o, gate, up, down) x (A, B)


def _losses(out) -> list[float]:
    history = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    return [row["loss"] for row in history if "loss" in row]


def _adapter_keys(out) -> list[str]:
    return list(load_file(out / "adapter_model.safetensors"))


@pytest.mark.integration
@pytest.mark.skipif(not CPU_HAS_BF16, reason="this CPU has no bf16 kernels: the runs are fp32 (real_width_fixtures)")
def test_lora_sft_in_fp32_matches_bf16(real_width_omni, synthfacs_448, real_width_sft, tmp_path):
    out = tmp_path / "fp32"
    proc = run_stage("sft", [*recipe_args(real_width_omni, synthfacs_448, out, 2), "--bf16", "false"],
                     timeout=900, env=TWO_THREADS)
    assert proc.returncode == 0, proc.stderr[-4000:]
    fp32, bf16 = _losses(out), _losses(real_width_sft)
    assert len(fp32) == len(bf16) == 2 and all(math.isfinite(x) for x in fp32 + bf16)
    # same seed, same first batch, same initial weights (bf16 on disk): bf16 changes the arithmetic, not the loss
    assert abs(fp32[0] - bf16[0]) < 0.02 * fp32[0]
    for run in (out, real_width_sft):
        keys = _adapter_keys(run)
        assert len(keys) == LM_LORA and all(".layers." in k for k in keys)
        assert not any("visual" in k or "audio_tower" in k for k in keys)


def _grpo_args(model, manifest, out) -> list[str]:
    args = recipe_args(model, manifest, out, 2)
    return [*args, "--reward_funcs", "format_reward", "--num_generations", "2", "--per_device_train_batch_size",
            "2", "--max_completion_length", "8", *BF16]


@pytest.mark.integration
@pytest.mark.parametrize("rollouts", ["hf", pytest.param("vllm", marks=needs_vllm)])
def test_grpo_two_steps(real_width_omni, synthfacs_448, tmp_path, rollouts):
    out = tmp_path / f"grpo-{rollouts}"
    # vLLM's offline engine in the trainer's process, its LoRA slot reloaded after each step (training/rollouts.py)
    extra = ["--use_vllm", "true", "--vllm_kv_cache_gib", "0.25", "--vllm_max_model_length", "1024"]
    extra = extra if rollouts == "vllm" else []
    env = {**TWO_THREADS, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    proc = run_stage("grpo", [*_grpo_args(real_width_omni, synthfacs_448, out), *extra], timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # vLLM generated (its engine took the policy adapter after each optimizer step), or it never started
    assert proc.stdout.count("loaded into vLLM") == (2 if rollouts == "vllm" else 0)
    for step in (0, 1):
        rows = [json.loads(line) for line in (out / "completions" / f"step_{step:06d}.jsonl").read_text().splitlines()]
        assert len(rows) == 2  # one prompt's group of 2 completions per step
        assert all(isinstance(row["completion"], str) and math.isfinite(row["reward"]) for row in rows)
    history = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    lengths = [row["completions/mean_length"] for row in history if "completions/mean_length" in row]
    assert len(lengths) == 2 and all(length >= 1 for length in lengths)  # the rollout source generated tokens
    assert len(_adapter_keys(out)) == LM_LORA


@needs_vllm
@pytest.mark.integration
def test_served_model_answers_one_clip_through_openai(real_width_omni, real_width_export, synthfacs_448, tmp_path):
    """The served adapter answers through the official client, with the prompt tokens our own pipeline counts for
    the same clip (the server decodes the file:// URLs itself)."""
    import openai

    from affect_mllm.media import load_sample_media
    from affect_mllm.models.inputs import Conversation, build_messages
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.registry import resolve
    from affect_mllm.prompts import SYSTEM_PROMPT
    from affect_mllm.schema import read_manifest
    from inference.client import Clip, clip_messages, clip_prompt

    manifest = read_manifest(synthfacs_448)
    clip = Clip.from_sample(manifest.samples[0], manifest)
    text, spec = clip_prompt(clip), resolve(str(real_width_omni))
    media = load_sample_media(video=clip.video, settings=spec.media)
    conversation = Conversation(build_messages(media, text, spec, SYSTEM_PROMPT), media)
    port, log = free_port(), tmp_path / "serve.log"
    command = [*affect_mllm_command(), "serve", "--model", str(real_width_omni), "--adapter",
               f"sft={real_width_export}", "--port", str(port), "--media-root", str(synthfacs_448.parent),
               "--dtype", "bfloat16", "--max-model-len", "1024", "--max-num-seqs", "2", "--api-key", "real-width"]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process, 600, log)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="real-width", max_retries=0,
                               timeout=300)
        reply = client.chat.completions.create(model="sft", max_tokens=8, temperature=0,
                                               messages=clip_messages(clip, text, "file"))
        assert reply.choices[0].message.content is not None and reply.usage.completion_tokens >= 1
        ours = encode(build_published_processor("qwen2.5-omni"), spec, [conversation])["input_ids"].shape[1]
        assert reply.usage.prompt_tokens == ours
    finally:
        stop_process_group(process)
