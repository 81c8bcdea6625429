"""Session fixtures for the real-width tests: ONE model with Qwen2.5-Omni-3B's widths at 2 layers, SynthFACS clips at
the real recipes' 448x448, and what the tests derive from them (an SFT adapter, its vLLM export).

Loaded with `pytest_plugins = ["real_width_fixtures"]`. The model (0.9 B parameters, 1.8 GB of bf16 weights) is
built once per session into a temporary folder; every test loads it in turn (in-process, in a recipe subprocess or
in a vLLM engine), never two at once, so a test run holds one copy of it (about 4-8 GB with its training state).
Run the modules that use it under the shared lock: `flock /tmp/affect_heavy.lock pytest tests/test_real_width*.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from training_fixtures import ENV, run_stage

LIKE = "qwen2.5-omni-3b"
LAYERS = 2
CLIP_SECONDS = 1.0  # 2 frames at 2 fps: one temporal patch, 256 visual tokens at 448x448, 25 audio tokens
FRAME_SIZE = 448  # REAL_MEDIA's per-frame cap is 256 * 28 * 28 = 448 * 448 pixels
# Weights in bf16, LoRA in fp32, autocast to bf16, where the CPU has bf16 kernels. Without them (an AVX2-only CPU,
# measured here: the 2-step bf16 SFT of the 3B width passed 15 minutes, emulated) these runs use fp32 instead,
# so the bf16 comparison is skipped there, not faked.
CPU_HAS_BF16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
BF16 = ["--dtype", "bfloat16", "--bf16", "true"] if CPU_HAS_BF16 else ["--dtype", "float32", "--bf16", "false"]
TWO_THREADS = {**ENV, "OMP_NUM_THREADS": "2"}  # one real-width process at a time: it gains from both cores


@pytest.fixture(scope="session")
def real_width_omni(tmp_path_factory) -> Path:
    """The real-width model folder (full Qwen2.5-Omni layout, real tokenizer and processor)."""
    from affect_mllm.models.real_width import build_real_width

    return build_real_width(tmp_path_factory.mktemp("real_width") / f"{LIKE}-width-{LAYERS}", LIKE, LAYERS)


@pytest.fixture(scope="session")
def synthfacs_448(tmp_path_factory) -> Path:
    """Four SynthFACS clips of 1 s at 448x448 with their voices (16 kHz), and their manifest."""
    from affect_mllm.schema import write_manifest
    from affect_mllm.synthfacs.generate import GeneratorSettings, write_clip

    out = tmp_path_factory.mktemp("synthfacs_448")
    settings = GeneratorSettings(seed=11, split="train", difficulty=1, duration_s=CLIP_SECONDS, size=FRAME_SIZE)
    samples = [write_clip(settings, out, index) for index in range(4)]
    return write_manifest(out / "train.jsonl", samples)


def recipe_args(model: Path, manifest: Path, out: Path, steps: int) -> list[str]:
    """Flags both recipes share: a few steps, one sample per step, one task, a rank vLLM serves."""
    return ["--model_name_or_path", str(model), "--train_manifest", str(manifest), "--output_dir", str(out),
            "--tasks", "ov_emotion", "--per_device_train_batch_size", "1", "--max_steps", str(steps),
            "--save_steps", "1000", "--logging_steps", "1", "--learning_rate", "1e-3", "--lora_r", "8",
            "--lora_dropout", "0.0", "--use_cpu", "true", "--report_to", "none", "--seed", "5",
            "--dataloader_num_workers", "0"]


@pytest.fixture(scope="session")
def real_width_sft(real_width_omni, synthfacs_448, tmp_path_factory) -> Path:
    """A LoRA adapter from 2 SFT steps of the recipe in bf16: bf16 weights, fp32 LoRA (peft keeps adapters in fp32),
    bf16 autocast. Half the memory of fp32 weights, which vLLM's colocated engine needs beside the policy."""
    out = tmp_path_factory.mktemp("real_width_sft") / "bf16"
    proc = run_stage("sft", [*recipe_args(real_width_omni, synthfacs_448, out, 2), *BF16], timeout=900,
                     env=TWO_THREADS)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="session")
def real_width_export(real_width_omni, real_width_sft, tmp_path_factory) -> Path:
    """The SFT adapter exported for vLLM (`thinker.` key prefix)."""
    from affect_mllm.models.adapter_export import export_adapter_for_vllm

    out = tmp_path_factory.mktemp("real_width_export") / "vllm"
    return export_adapter_for_vllm(real_width_sft, out, "qwen2_5_omni")
