"""Several processes proven equal to one: GRPO and LoRA SFT on 2 CPU processes (torchrun, gloo DDP) with the same
global batch and seed end with the same losses, metrics, completions and adapter as 1 process; GRPO with a colocated
vLLM engine per rank likewise. FSDP cannot run on CPU processes here (accelerate would train plain DDP instead,
measured), so the recipe scripts refuse it, and the test shows they do with `training/accelerate/fsdp.yaml`.

Why equality is well defined although GRPO samples its rollouts: each completion's sampling seed is a hash of the
run seed, the step and the completion's position in the global batch (`training.grpo_trainer.rollout_seed`), never
of the rank that draws it, and both engines sample a seeded request the same whatever its batch neighbours (the HF
engine generates each seeded request alone from its own seed; vLLM gives each request its own generator). So 2
processes draw exactly the completions 1 process draws; what follows is arithmetic whose only difference is the
order of the sums (gloo's all-reduce, per-rank padding), hence a float tolerance. The group of 4 completions of each
step's prompt is split over the 2 ranks (2 rows each), so equal advantages prove that the rewards were gathered
before the baseline. LoRA dropout is off: its masks come from each rank's own random stream.

Run: pytest tests/test_distributed.py -q   (about 2 minutes; torchrun on 2 processes)
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from process_helpers import assert_same_adapter
from safetensors.torch import load_file
from training_fixtures import (
    ENV,
    GLOBAL_BATCH,
    GROUP,
    REPO,
    VLLM_ROLLOUTS,
    assert_same_logs,
    completions,
    free_port,
    grpo_equality_args,
    run_stage,
    sft_args,
)

pytest_plugins = ["training_fixtures"]

# Measured after 2 steps, 1 vs 2 processes (32768 adapter weights each): the largest difference is 2.3e-5 (GRPO, HF
# rollouts: one weight; the next is below 1e-5, 4 exceed 1e-6), 2.9e-6 (GRPO, vLLM rollouts) and 8.9e-6 (SFT), where
# a step moves a weight by about the learning rate (1e-3 GRPO, 2e-3 SFT). Adam divides each gradient by its own
# size, so a weight whose gradient is nearly 0 turns the sums' rounding into a visible step: the bound is 5 % of
# one GRPO Adam step (2x the largest measured), and nearly every weight must agree 5x tighter. A wrong gradient
# scale, which Adam would hide, shows in grad_norm, compared to 1e-5.
ADAPTER_TOLERANCE = dict(rtol=1e-4, atol=5e-5)
TIGHT_ATOL, LOOSE_SHARE = 1e-5, 1e-3  # at most 0.1 % of the weights differ by more than TIGHT_ATOL (measured: 1)
GRPO_LOGS = ("loss", "reward", "reward_std", "frac_reward_zero_std", "rewards/au_f1_reward/mean",
             "rewards/format_reward/mean", "completions/mean_length", "grad_norm")


def _two_process_run(stage: str, args: list[str]):
    proc = run_stage(stage, args, processes=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _assert_same_rollouts(one, two) -> None:
    """The same completions, prompts and rewards, in global batch order, each saved once."""
    first, second = completions(one), completions(two)
    assert len(first) == len(second) == 2 * GLOBAL_BATCH
    for a, b in zip(first, second, strict=True):
        assert (a["step"], a["id"], a["completion"]) == (b["step"], b["id"], b["completion"])
        assert a["reward"] == pytest.approx(b["reward"], abs=1e-9)
    assert first[0]["id"] != first[GLOBAL_BATCH]["id"]  # the second step's prompt is another one
    groups = [first[start:start + GROUP] for start in range(0, len(first), GROUP)]
    assert any(len({row["reward"] for row in group}) > 1 for group in groups)  # non-zero advantages: it learns


def _assert_same_adapter(one, two) -> None:
    """Equal to ADAPTER_TOLERANCE, and all but a few weights to TIGHT_ATOL."""
    assert_same_adapter(one, two, **ADAPTER_TOLERANCE)
    first, second = load_file(one / "adapter_model.safetensors"), load_file(two / "adapter_model.safetensors")
    differences = torch.cat([(first[key] - second[key]).abs().flatten() for key in first])
    assert (differences > TIGHT_ATOL).sum().item() <= LOOSE_SHARE * differences.numel()


def _assert_moved(start, run) -> None:
    """The typical weight moved well beyond the tolerance (else equality would say nothing)."""
    first = load_file(start / "adapter_model.safetensors")
    last = load_file(run / "adapter_model.safetensors")
    moves = torch.cat([(first[key] - last[key]).abs().flatten() for key in first])
    assert moves.median().item() > 10 * ADAPTER_TOLERANCE["atol"]  # measured: 1.3e-3


def _assert_two_ranks_trained(run) -> None:
    card = json.loads((run / "run_card.json").read_text())
    assert card["world_size"] == 2 and card["steps_per_process"] == [2, 2]


def _assert_grpo_runs_equal(one, two, start_adapter) -> None:
    """The 2-process GRPO run reproduces the 1-process one: rollouts, logs and adapter, which moved from its start."""
    _assert_same_rollouts(one, two)
    assert_same_logs(one, two, GRPO_LOGS)
    _assert_same_adapter(one, two)
    _assert_moved(start_adapter, two)
    _assert_two_ranks_trained(two)


@pytest.mark.distributed
def test_grpo_on_two_processes_equals_one(tmp_path, grpo_one_process, tiny_sft, synthfacs_small):
    two = tmp_path / "two"
    _two_process_run("grpo", grpo_equality_args(tiny_sft, synthfacs_small["train"], two, processes=2))
    _assert_grpo_runs_equal(grpo_one_process, two, tiny_sft["adapter"])


@pytest.mark.distributed
def test_sft_on_two_processes_equals_one(tmp_path, tiny_omni_base, synthfacs_small):
    runs = {}
    for processes in (1, 2):
        runs[processes] = tmp_path / f"sft-{processes}"
        args = sft_args(tiny_omni_base, synthfacs_small["train"], runs[processes], steps=2,
                        batch=GLOBAL_BATCH // processes)
        proc = run_stage("sft", args, processes=processes)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_logs(runs[1], runs[2], ("loss", "mean_token_accuracy", "grad_norm"))
    _assert_same_adapter(runs[1], runs[2])
    _assert_two_ranks_trained(runs[2])
    assert not list(runs[2].glob("adapter_model*.safetensors"))[1:]  # one adapter, saved once


@pytest.mark.distributed
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_vllm_rollouts_on_two_processes_equal_one(tmp_path, grpo_vllm_one_process, tiny_sft, synthfacs_small):
    """One colocated vLLM engine per rank, each reloading the policy's adapter after every update."""
    one, _ = grpo_vllm_one_process
    two = tmp_path / "two-vllm"
    proc = _two_process_run("grpo", [*grpo_equality_args(tiny_sft, synthfacs_small["train"], two, processes=2),
                                     *VLLM_ROLLOUTS])
    assert proc.stdout.count("loaded into vLLM") == 2  # rank 0's log: its engine synced at steps 0 and 1
    _assert_grpo_runs_equal(one, two, tiny_sft["adapter"])


@pytest.mark.distributed
def test_fsdp_config_on_cpu_processes_is_refused(tmp_path, tiny_omni_dir, synthfacs_small):
    """`accelerate launch --config_file training/accelerate/fsdp.yaml` on 2 CPU processes: accelerate 1.16 keeps the
    gloo state MULTI_CPU and trains DDP (measured: the run finished, with DDP's reducer and unsharded weights), so
    the script stops with the reason before it loads the model."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "training" / "accelerate" / "fsdp.yaml"), "--num_processes", "2", "--mixed_precision",
               "no", "--main_process_port", str(free_port()), "-m", "training.sft",
               *sft_args(tiny_omni_dir, synthfacs_small["train"], tmp_path / "fsdp", steps=1, batch=2)]
    proc = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "FSDP was asked for, but these processes run on CPU" in proc.stderr
    assert not (tmp_path / "fsdp" / "adapter_model.safetensors").exists()


@pytest.mark.parametrize("asked, env", [({"fsdp": "full_shard"}, {}), ({}, {"ACCELERATE_USE_FSDP": "true"}),
                                        ({"deepspeed": "zero2.json"}, {}), ({}, {"ACCELERATE_USE_DEEPSPEED": "true"})])
def test_sharding_is_refused_on_cpu_and_left_alone_otherwise(asked, env, monkeypatch):
    from training.common import check_sharding

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = {"fsdp": "", "deepspeed": None, **asked}
    with pytest.raises(ValueError, match="accelerate would train with plain DDP"):
        check_sharding(SimpleNamespace(**config, device=torch.device("cpu")))
    check_sharding(SimpleNamespace(**config, device=torch.device("cuda")))
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    check_sharding(SimpleNamespace(fsdp="", deepspeed=None, device=torch.device("cpu")))  # DDP on CPU: fine
