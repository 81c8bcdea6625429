"""Our GRPO loss against TRL's on a text-only batch: same completions, rewards and settings -> same loss and grads.

Our loss (`training/grpo_loss.py`) imports nothing from TRL; TRL's GRPOTrainer computes the reference value through
its own `compute_loss` on a tiny random Qwen2 model. Also hand-worked advantages.
Run: .venv/bin/python -m pytest tests/test_grpo_loss.py -q
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch

from training.grpo_loss import group_advantages, policy_loss
from training.grpo_trainer import loss_settings, token_logps

REPO = Path(__file__).resolve().parents[1]


def test_loss_module_does_not_import_trl():
    tree = ast.parse((REPO / "training" / "grpo_loss.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.split(".")[0] == "trl" for name in imported)


def test_group_advantages_hand_worked():
    # group 1: rewards 1, 0 -> mean 0.5, Bessel std sqrt(0.5) = 0.7071 -> A = +-0.5 / (0.7071 + 1e-4)
    # group 2: rewards 2, 2 -> std 0 -> A = 0 / 1e-4 = 0
    rewards = torch.tensor([1.0, 0.0, 2.0, 2.0])
    advantages, std = group_advantages(rewards, 2, "group")
    expected = 0.5 / (math.sqrt(0.5) + 1e-4)
    assert advantages.tolist() == pytest.approx([expected, -expected, 0.0, 0.0], rel=1e-6)
    assert std[2].item() == 0.0
    unscaled, _ = group_advantages(rewards, 2, "none")
    assert unscaled.tolist() == [0.5, -0.5, 0.0, 0.0]
    # batch: mean per group still, std over all 4 (mean 1.25, squares 0.0625+1.5625+0.5625+0.5625=2.75, /3)
    batch, _ = group_advantages(rewards, 2, "batch")
    assert batch[0].item() == pytest.approx(0.5 / (math.sqrt(2.75 / 3) + 1e-4), rel=1e-6)
    # a completion no reward judged (NaN): left out of its group's baseline, advantage 0
    with_nan, _ = group_advantages(torch.tensor([1.0, float("nan"), 0.0, 1.0]), 2, "none")
    assert with_nan.tolist() == [0.0, 0.0, -0.5, 0.5]


@pytest.fixture(scope="module")
def text_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                         pad_token_id=0, eos_token_id=1)
    return Qwen2ForCausalLM(config)


def _trl_trainer(model, tmp_path, **settings):
    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(64)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t2")),
                                        pad_token="t0", eos_token="t1")
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], per_device_train_batch_size=4,
                      num_generations=2, max_completion_length=6, **settings)
    if settings.get("beta"):  # TRL then builds its reference model from a path; our inputs carry the ref log-probs
        model.save_pretrained(tmp_path / "model")
        model = str(tmp_path / "model")
    trainer = GRPOTrainer(model=model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=args,
                          train_dataset=Dataset.from_list([{"prompt": "t5 t6"}] * 4), processing_class=tokenizer)
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def _batch():
    torch.manual_seed(1)
    prompt_ids = torch.randint(3, 64, (4, 5))
    prompt_mask = torch.ones_like(prompt_ids)
    prompt_mask[0, :2] = 0  # left padding
    completion_ids = torch.randint(3, 64, (4, 6))
    completion_mask = torch.ones_like(completion_ids)
    completion_mask[1, 4:] = 0  # a completion that ended early
    completion_mask[3, 2:] = 0
    rewards = torch.tensor([1.0, 0.2, 0.0, 0.9])
    return prompt_ids, prompt_mask, completion_ids, completion_mask, rewards


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    "settings",
    [
        {},  # TRL's defaults: loss_type dapo, beta 0, scale_rewards group, epsilon 0.2
        {"loss_type": "grpo", "beta": 0.1, "scale_rewards": "batch", "epsilon": 0.1, "epsilon_high": 0.3,
         "temperature": 0.7},
        {"loss_type": "bnpo", "importance_sampling_level": "sequence"},
    ],
)
def test_loss_and_gradients_equal_trl(text_model, tmp_path, settings):
    trainer = _trl_trainer(text_model, tmp_path, **settings)
    args = trainer.args
    prompt_ids, prompt_mask, completion_ids, completion_mask, rewards = _batch()
    advantages, _ = group_advantages(rewards, 2, args.scale_rewards)
    batch = {"input_ids": prompt_ids, "attention_mask": prompt_mask}
    ref_logps = None
    if args.beta:
        with torch.no_grad():  # any fixed reference will do: perturb the policy's own log-probs
            ref_logps = token_logps(trainer.model, batch, completion_ids, completion_mask, args.temperature) - 0.05
    model = trainer.model
    model.zero_grad()
    trl_inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
                  "completion_mask": completion_mask, "advantages": advantages,
                  "num_items_in_batch": completion_mask.sum(), "ref_per_token_logps": ref_logps}
    trl_loss = trainer.compute_loss(model, trl_inputs)
    trl_loss.backward()
    trl_grads = _grads(model)
    model.zero_grad()
    logps = token_logps(model, batch, completion_ids, completion_mask, args.temperature)
    ours = policy_loss(logps, logps.detach(), advantages, completion_mask,
                       loss_settings(args),
                       ref_logps=ref_logps, num_items_in_batch=completion_mask.sum())
    ours.loss.backward()
    our_grads = _grads(model)
    assert ours.loss.item() == pytest.approx(trl_loss.item(), rel=1e-5, abs=1e-7)
    assert trl_grads.keys() == our_grads.keys() and trl_grads
    for name in trl_grads:
        torch.testing.assert_close(our_grads[name], trl_grads[name], rtol=1e-4, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in our_grads.values())
