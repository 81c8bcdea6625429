"""GRPO on video+audio: the media reach the loss pass, encoders get gradients, the recipe runs and resumes.

Run: .venv/bin/python -m pytest tests/test_grpo.py -q   (about a minute)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from process_helpers import assert_same_adapter, kill_when
from safetensors.torch import load_file
from training_fixtures import ENV, REPO, grpo_args, grpo_equality_args, run_stage

from affect_mllm.media import load_sample_media
from affect_mllm.models.inputs import conversation_for, encode
from affect_mllm.models.registry import load_model_and_processor
from affect_mllm.rewards import format_reward
from affect_mllm.schema import read_manifest
from training.grpo_trainer import token_logps

pytest_plugins = ["training_fixtures"]


def _encoded_pair(model_dir, manifest_path, swap: str):
    model, processor, spec = load_model_and_processor(str(model_dir))
    manifest = read_manifest(manifest_path)
    first, second = manifest.samples[0], manifest.samples[1]
    media_a = load_sample_media(video=manifest.media_path(first, "video"), settings=spec.media)
    media_b = load_sample_media(video=manifest.media_path(second, "video"), settings=spec.media)
    swapped = type(media_a)(video=media_b.video if swap == "video" else media_a.video,
                            audio=media_b.audio if swap == "audio" else media_a.audio)
    prompt = [conversation_for(first, media, "ov_emotion", spec) for media in (media_a, swapped)]
    batches = [encode(processor, spec, [c]) for c in prompt]
    assert torch.equal(batches[0]["input_ids"], batches[1]["input_ids"])  # same text, only the media differ
    completion = processor.tokenizer("<think>Cheeks raised (AU6).</think><answer>emotions: happy</answer><|im_end|>",
                                     add_special_tokens=False, return_tensors="pt")["input_ids"]
    return model, batches, completion


@pytest.mark.parametrize("swap", ["video", "audio"])
def test_media_reach_the_loss_pass(tiny_omni_dir, synthfacs_small, swap):
    model, batches, completion = _encoded_pair(tiny_omni_dir, synthfacs_small["train"], swap)
    mask = torch.ones_like(completion)
    with torch.no_grad():
        own, other = (token_logps(model, dict(b), completion, mask) for b in batches)
    assert not torch.allclose(own, other)  # the same completion is scored differently with the other clip's media


def test_encoders_receive_gradients_when_unfrozen(tiny_omni_dir, synthfacs_small):
    from training.grpo_loss import LossSettings, policy_loss

    model, batches, completion = _encoded_pair(tiny_omni_dir, synthfacs_small["train"], "video")
    model.train()
    mask = torch.ones_like(completion)
    logps = token_logps(model, dict(batches[0]), completion, mask)
    policy_loss(logps, logps.detach(), torch.tensor([1.0]), mask, LossSettings()).loss.backward()
    for tower in ("visual", "audio_tower"):
        grads = [p.grad for name, p in model.named_parameters() if name.startswith(tower) and p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), tower


@pytest.mark.integration
def test_grpo_recipe_runs_logs_rewards_and_saves_completions(grpo_one_process):
    history = json.loads((grpo_one_process / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    logged = set().union(*map(set, history))
    for name in ("format_reward", "emotion_wheel_f1_reward", "au_f1_reward", "consistency_reward"):
        assert {f"rewards/{name}/mean", f"rewards/{name}/std"} <= logged
    assert {"reward", "reward_std", "completions/mean_length", "clip_ratio/low_mean", "frac_reward_zero_std"} <= logged
    rows = [json.loads(line) for line in (grpo_one_process / "completions" / "step_000000.jsonl").read_text()
            .splitlines()]
    assert len(rows) == 4 and {"completion", "reward", "au_f1_reward", "task"} <= set(rows[0])
    # The format reward is the evaluation's rule for the sample's own task (it asks for each field of that task).
    for row in rows:
        assert row["format_reward"] == format_reward([row["completion"]], task=[row["task"]])[0], row


@pytest.mark.integration
def test_grpo_killed_mid_run_resumes_to_the_same_adapter(tmp_path, tiny_sft, synthfacs_small):
    """From the SFT adapter, so that rewards differ within groups and the adapter moves at every step."""
    straight = tmp_path / "straight"
    args = [*grpo_equality_args(tiny_sft, synthfacs_small["train"], straight, 1), "--max_steps", "4",
            "--save_steps", "2"]
    assert run_stage("grpo", args).returncode == 0
    resumed = tmp_path / "resumed"
    args = [*grpo_equality_args(tiny_sft, synthfacs_small["train"], resumed, 1), "--max_steps", "4",
            "--save_steps", "2"]
    marker = resumed / "checkpoint-2" / "trainer_state.json"
    kill_when([sys.executable, "-m", "training.grpo", *args], marker, cwd=REPO, env=ENV)
    again = run_stage("grpo", args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((resumed / "run_card.json").read_text())["metrics"]["global_step"] == 4
    assert_same_adapter(straight, resumed)
    first = load_file(tiny_sft["adapter"] / "adapter_model.safetensors")
    last = load_file(resumed / "adapter_model.safetensors")
    assert any(not torch.equal(first[key], last[key]) for key in first)  # GRPO moved the adapter


def test_dry_run_checks_groups_before_loading_weights(tmp_path, synthfacs_small):
    from training.grpo import main
    from training.preflight import PreflightError

    args = grpo_args(Path("tiny-omni"), synthfacs_small["train"], tmp_path / "x", 1)
    with pytest.raises(ValueError, match="divisible by num_generations"):  # TRL's GRPOConfig check, at parse time
        main([*args, "--num_generations", "3", "--dry_run", "true"])
    # TRL accepts 8 generations over 2 accumulated micro-batches of 4; our trainer needs whole groups per micro-batch
    with pytest.raises(PreflightError, match="num_generations=8 must divide the global micro-batch"):
        main([*args, "--num_generations", "8", "--gradient_accumulation_steps", "2", "--dry_run", "true"])
    summary = main([*args, "--dry_run", "true"])
    assert summary is None and not (tmp_path / "x").exists()  # nothing trained, nothing written


def test_sampler_draws_a_new_order_each_epoch_and_replays_it_on_resume():
    from training.grpo_trainer import RepeatedPromptSampler

    sampler = RepeatedPromptSampler(12, 2, seed=5)
    first, second = list(sampler), list(sampler)  # two passes, as a loader that never calls set_epoch makes
    assert first != second and sorted(first) == sorted(second) == sorted(list(range(12)) * 2)
    assert all(first[i] == first[i + 1] for i in range(0, 24, 2))  # each group's completions sit together
    resumed = RepeatedPromptSampler(12, 2, seed=5)  # a run resumed in epoch 1: Trainer calls set_epoch(1)
    resumed.set_epoch(1)
    assert list(resumed) == second
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_trainer_dataloader_shuffles_each_epoch_anew(tmp_path):
    """Through Trainer's own dataloader (accelerate wraps it and forwards set_epoch to our sampler)."""
    from datasets import Dataset
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from training.configs import AffectGRPOConfig
    from training.grpo_trainer import MediaGRPOTrainer

    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=16, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                         num_attention_heads=1, num_key_value_heads=1))
    args = AffectGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[],
                            per_device_train_batch_size=4, num_generations=2, seed=5)
    trainer = MediaGRPOTrainer(model=model, args=args, train_dataset=Dataset.from_list([{"x": i} for i in range(10)]),
                               processor=None, spec=None, reward_funcs=[], engine_factory=None,
                               conversation_builder=None)
    loader = trainer.get_train_dataloader()
    epochs = []
    for epoch in (0, 1, 0):
        loader.set_epoch(epoch)
        epochs.append([row["x"] for batch in loader for row in batch])
    assert epochs[0] != epochs[1] and epochs[0] == epochs[2]
    assert sorted(epochs[0]) == sorted(epochs[1]) == sorted(list(range(10)) * 2)
