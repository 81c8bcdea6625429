"""Pinned losses: the SFT and GRPO losses of fixed batches, to the digits they had when pinned.

The other loss tests compare our losses with references (TRL's GRPO, HF's cross-entropy); these catch a silent
change of any kind (normalisation, temperature, clipping, the KL term, token masks) as a changed number. The
batches are fixed tensors and a tiny Qwen2 text model whose random init is seeded; the numbers were computed on the
pinned stack (torch 2.13, transformers 5.19). A deliberate change of a loss re-pins them, and says why in its commit.

Run: .venv/bin/python -m pytest tests/test_loss_regression.py -q   (about 10 seconds)
"""

from __future__ import annotations

import pytest
import torch

from training.grpo_loss import LossSettings, policy_loss

# (settings, loss, kl, clip_ratio_low, clip_ratio_high) of `fixed_policy_batch`
PINNED_POLICY_LOSS = [
    (LossSettings(), -0.45838144421577454, None, 0.1666666716337204, 0.25),
    (LossSettings("grpo", beta=0.1, epsilon_low=0.1, epsilon_high=0.3), -0.31130820512771606, 0.013329614885151386,
     0.25, 0.1666666716337204),
    (LossSettings("bnpo", importance_sampling_level="sequence"), -0.47845184803009033, None, 0.25, 0.3333333432674408),
    (LossSettings("dr_grpo", beta=0.05, max_completion_length=5, use_bias_correction_kl=False), -0.36617204546928406,
     0.013329614885151386, 0.1666666716337204, 0.25),
]
# (GRPOConfig overrides, loss) of MediaGRPOTrainer.compute_loss on `fixed_completions`
PINNED_GRPO_TRAINER_LOSS = [
    ({}, -0.06363634765148163),
    ({"loss_type": "grpo", "beta": 0.1, "temperature": 0.7}, 0.00012290477752685547),
    ({"loss_type": "dr_grpo"}, -0.058333318680524826),
]
# num_items_in_batch -> (loss, mean token accuracy) of MediaSFTTrainer.compute_loss on `fixed_sft_batch`
PINNED_SFT_LOSS = {None: (4.144979000091553, 0.0), 20: (1.4507426023483276, 0.0)}
TOLERANCE = dict(rel=1e-5, abs=1e-7)


def fixed_policy_batch() -> dict[str, torch.Tensor]:
    """Log-probs of 3 completions x 5 tokens under the policy, the sampling policy and the reference."""
    generator = torch.Generator().manual_seed(11)
    logps = -torch.rand(3, 5, generator=generator) * 3
    return {"logps": logps, "old_logps": logps + (torch.rand(3, 5, generator=generator) - 0.5),
            "ref_logps": logps - 0.3 * torch.rand(3, 5, generator=generator),
            "advantages": torch.tensor([1.2, -0.7, 0.4]),
            "mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])}


@pytest.mark.parametrize("pinned", PINNED_POLICY_LOSS, ids=lambda p: f"{p[0].loss_type}-{p[0].beta}-"
                                                                     f"{p[0].importance_sampling_level}")
def test_policy_loss_is_pinned(pinned):
    settings, loss, kl, low, high = pinned
    batch = fixed_policy_batch()
    output = policy_loss(batch["logps"], batch["old_logps"], batch["advantages"], batch["mask"], settings,
                         ref_logps=batch["ref_logps"])
    assert output.loss.item() == pytest.approx(loss, **TOLERANCE)
    assert (output.kl is None) == (kl is None)
    if kl is not None:
        assert output.kl.item() == pytest.approx(kl, **TOLERANCE)
    assert output.clip_ratio_low.item() == pytest.approx(low, **TOLERANCE)
    assert output.clip_ratio_high.item() == pytest.approx(high, **TOLERANCE)


@pytest.fixture(scope="module")
def text_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                         pad_token_id=0, eos_token_id=1)
    return Qwen2ForCausalLM(config)


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(64)}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t2")),
                                   pad_token="t0", eos_token="t1")


def fixed_completions() -> dict:
    """Left-padded prompts, completions (one ended early), advantages of two groups of two."""
    generator = torch.Generator().manual_seed(5)
    prompt_ids = torch.randint(3, 64, (4, 5), generator=generator)
    prompt_mask = torch.ones_like(prompt_ids)
    prompt_mask[0, :2] = 0
    completion_ids = torch.randint(3, 64, (4, 6), generator=generator)
    completion_mask = torch.ones_like(completion_ids)
    completion_mask[1, 4:] = 0
    return {"batch": {"input_ids": prompt_ids, "attention_mask": prompt_mask}, "completion_ids": completion_ids,
            "completion_mask": completion_mask, "advantages": torch.tensor([0.7, -0.7, 1.1, -1.1])}


@pytest.mark.parametrize("pinned", PINNED_GRPO_TRAINER_LOSS, ids=lambda p: "-".join(map(str, p[0].values())) or
                         "defaults")
def test_grpo_trainer_loss_is_pinned(pinned, text_model, tokenizer, tmp_path):
    from datasets import Dataset

    from training.configs import AffectGRPOConfig
    from training.grpo_trainer import MediaGRPOTrainer, token_logps

    overrides, loss = pinned
    args = AffectGRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[],
                            per_device_train_batch_size=4, num_generations=2, max_completion_length=6, **overrides)
    trainer = MediaGRPOTrainer(model=text_model, args=args, train_dataset=Dataset.from_list([{"x": 0}] * 4),
                               processor=tokenizer, spec=None, reward_funcs=[], engine_factory=None,
                               conversation_builder=None)
    trainer.current_gradient_accumulation_steps = 1
    inputs = fixed_completions()
    if args.beta:  # a fixed reference: the policy's own log-probs, shifted
        with torch.no_grad():
            inputs["ref_logps"] = token_logps(text_model, inputs["batch"], inputs["completion_ids"],
                                              inputs["completion_mask"], args.temperature) - 0.05
    assert trainer.compute_loss(text_model, inputs).item() == pytest.approx(loss, **TOLERANCE)


def fixed_sft_batch() -> dict[str, torch.Tensor]:
    """Two sequences of 7 tokens; the prompt (first 3) and one trailing pad are masked out of the labels."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, 64, (2, 7), generator=generator)
    labels = input_ids.clone()
    labels[:, :3] = -100
    labels[1, 6] = -100
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}


@pytest.mark.parametrize("num_items", list(PINNED_SFT_LOSS))
def test_sft_trainer_loss_is_pinned(num_items, text_model, tokenizer, tmp_path):
    from datasets import Dataset

    from training.configs import AffectSFTConfig
    from training.sft import MediaSFTTrainer

    args = AffectSFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[])
    trainer = MediaSFTTrainer(model=text_model, args=args, train_dataset=Dataset.from_list([{"x": 0}]),
                              data_collator=lambda rows: rows, processing_class=tokenizer)
    batch = fixed_sft_batch()
    loss = trainer.compute_loss(text_model, dict(batch), num_items_in_batch=num_items)
    expected_loss, expected_accuracy = PINNED_SFT_LOSS[num_items]
    assert loss.item() == pytest.approx(expected_loss, **TOLERANCE)
    assert trainer._metrics["train"]["mean_token_accuracy"] == [pytest.approx(expected_accuracy, **TOLERANCE)]
    if num_items is None:  # the token mean is HF's own causal-LM loss
        assert loss.item() == pytest.approx(text_model(**batch).loss.item(), rel=1e-6)
