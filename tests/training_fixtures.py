"""Launch helpers and session fixtures of the training tests: the recipe scripts run as a user runs them, in one
process or under torchrun (gloo on CPU), and the one-process GRPO run that several-process runs are compared with.

Loaded by `pytest_plugins = ["training_fixtures"]` in the training test modules, so the reference run happens
once per session however many modules use it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# one thread per process: deterministic, and two ranks do not fight over the 2 cores
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def free_port() -> int:
    """A TCP port nobody listens on now (torchrun's rendezvous; two runs must not share one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launcher(processes: int) -> list[str]:
    """The command prefix that starts `processes` ranks of a module (`python -m` for one)."""
    if processes == 1:
        return [sys.executable]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
            "--master_port", str(free_port())]


def run_stage(stage: str, args: list[str], processes: int = 1, timeout: int = 600,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `training.<stage>` with recipe flags in `processes` processes; the caller checks the return code."""
    return subprocess.run([*launcher(processes), "-m", f"training.{stage}", *args], cwd=REPO, env=env or ENV,
                          capture_output=True, text=True, timeout=timeout)


def grpo_args(model: Path, manifest: Path, out: Path, steps: int, save_steps: int = 1000) -> list[str]:
    """A short GRPO run of the tiny omni model on SynthFACS (CPU, fp32, no dropout in the LoRA)."""
    return ["--model_name_or_path", str(model), "--train_manifest", str(manifest), "--output_dir", str(out),
            "--tasks", "ov_emotion", "au_reasoning", "--reward_funcs", "format_reward", "emotion_wheel_f1_reward",
            "au_f1_reward", "consistency_reward", "--reward_weights", "0.5", "1.0", "0.5", "0.5",
            "--num_generations", "2", "--per_device_train_batch_size", "4", "--max_completion_length", "16",
            "--max_steps", str(steps), "--save_steps", str(save_steps), "--logging_steps", "1", "--lora_r", "8",
            "--lora_dropout", "0.0", "--learning_rate", "1e-3", "--use_cpu", "true", "--bf16", "false",
            "--report_to", "none", "--seed", "5"]


def sft_args(model: Path, manifest: Path, out: Path, steps: int, save_steps: int = 1000,
             batch: int = 4) -> list[str]:
    """A short LoRA SFT run of the tiny omni model on SynthFACS (CPU, fp32, no dropout in the LoRA)."""
    return ["--model_name_or_path", str(model), "--train_manifest", str(manifest), "--output_dir", str(out),
            "--tasks", "ov_emotion", "categorical", "au_reasoning", "--per_device_train_batch_size", str(batch),
            "--max_steps", str(steps), "--save_steps", str(save_steps), "--logging_steps", "1",
            "--learning_rate", "2e-3", "--lora_r", "8", "--lora_dropout", "0.0", "--use_cpu", "true",
            "--bf16", "false", "--report_to", "none", "--seed", "3", "--dataloader_num_workers", "0",
            "--media_cache_clips", "64"]


# The several-process comparisons: 4 completions per step, one prompt's group of 4 in one process of 4 rows, or
# split over 2 processes of 2 rows. Started from the session's SFT adapter and sampled at temperature 0.7 with
# room for the answer, so rewards differ within a group and the adapter moves (at 1.0 and 48 tokens the tiny
# model's completions all scored -0.5: zero advantages, nothing learnt, an equality that proves nothing).
GLOBAL_BATCH, GROUP = 4, 4


def grpo_equality_args(tiny_sft: dict, manifest: Path, out: Path, processes: int) -> list[str]:
    """GRPO from the SFT adapter, 2 steps, the same global batch and seed whatever the number of processes."""
    args = grpo_args(tiny_sft["base"], manifest, out, steps=2)
    args[args.index("--per_device_train_batch_size") + 1] = str(GLOBAL_BATCH // processes)
    args[args.index("--num_generations") + 1] = str(GROUP)
    args[args.index("--max_completion_length") + 1] = "64"
    return [*args, "--adapter_path", str(tiny_sft["adapter"]), "--temperature", "0.7"]


@pytest.fixture(scope="session")
def grpo_one_process(tmp_path_factory, tiny_sft, synthfacs_small) -> Path:
    """The one-process GRPO run (HF rollouts) that several processes must reproduce."""
    out = tmp_path_factory.mktemp("grpo_one") / "run"
    proc = run_stage("grpo", grpo_equality_args(tiny_sft, synthfacs_small["train"], out, processes=1))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


VLLM_ROLLOUTS = ["--use_vllm", "true"]  # each engine's KV cache sized for its batch: several fit here


@pytest.fixture(scope="session")
def grpo_vllm_one_process(tmp_path_factory, tiny_sft, synthfacs_small) -> tuple[Path, str]:
    """The one-process GRPO run with colocated vLLM rollouts: (output folder, its stdout)."""
    out = tmp_path_factory.mktemp("grpo_vllm_one") / "run"
    proc = run_stage("grpo", [*grpo_equality_args(tiny_sft, synthfacs_small["train"], out, 1), *VLLM_ROLLOUTS])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def logged(run: Path, key: str) -> list[float]:
    """A logged metric per step of a finished run (its last checkpoint's log history)."""
    checkpoint = max(run.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    return [entry[key] for entry in history if key in entry and "train_runtime" not in entry]


def completions(run: Path) -> list[dict]:
    """Every saved completion of a GRPO run, step by step, in global batch order."""
    return [json.loads(line) for path in sorted((run / "completions").glob("step_*.jsonl"))
            for line in path.read_text().splitlines()]


def assert_same_logs(first: Path, second: Path, keys: tuple[str, ...]) -> None:
    """The same logged metrics per step, to float tolerance (the reductions run in another order)."""
    for key in keys:
        ours, theirs = logged(first, key), logged(second, key)
        assert ours and len(ours) == len(theirs), key
        torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs), rtol=1e-5, atol=1e-6, msg=key)
