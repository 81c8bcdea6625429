"""GRPO rollouts through a colocated vLLM engine: the policy's LoRA is reloaded after each update.

Run: .venv/bin/python -m pytest tests/test_grpo_vllm.py -q   (about two minutes: two vLLM engine starts)
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from training_fixtures import REPO, grpo_args

from affect_mllm.models.registry import load_model_and_processor
from affect_mllm.schema import read_manifest
from inference.engine import SamplingSettings, request_from_sample
from training.rollouts import HFRollouts, VLLMRollouts, check_lora_only

pytest_plugins = ["training_fixtures"]
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")


def _policy(model_dir):
    from peft import LoraConfig, get_peft_model

    model, processor, spec = load_model_and_processor(str(model_dir))
    torch.manual_seed(0)
    lora = LoraConfig(target_modules=spec.lora_target_regex, r=8, init_lora_weights=False)  # B != 0: it acts
    return get_peft_model(model, lora), processor, spec


@needs_vllm
def test_vllm_rollouts_follow_the_policy_after_each_update(tiny_omni_dir, synthfacs_small, monkeypatch):
    from vllm import envs

    # The engine core runs in its own process (vLLM's default): closing an in-process core would destroy vLLM's
    # global model-parallel groups, which the session's in-process engine (tests/engine_fixtures.py) still uses.
    # That engine set VLLM_ENABLE_V1_MULTIPROCESSING=0 for the session, and vLLM caches its environment once a core
    # has started, so the variable is set back and the cache dropped.
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    envs.disable_envs_cache()
    policy, processor, spec = _policy(tiny_omni_dir)
    policy.eval()
    manifest = read_manifest(synthfacs_small["val"])
    requests = [request_from_sample(s, manifest, "ov_emotion", spec) for s in manifest.samples[:4]]
    greedy = SamplingSettings(max_new_tokens=24)
    vllm_rollouts, hf_rollouts = VLLMRollouts(str(tiny_omni_dir), kv_cache_gib=0.25), HFRollouts()

    def tokens(source, step: int) -> list[tuple[int, ...]]:
        return [c[0].token_ids for c in source(policy, processor, spec, step).generate(requests, greedy)]

    try:
        before = tokens(vllm_rollouts, 0)
        assert before == tokens(hf_rollouts, 0)  # the engine serves the live adapter, not the base
        with torch.no_grad():  # an "update": every LoRA B flips sign
            for name, parameter in policy.named_parameters():
                if "lora_B" in name:
                    parameter.neg_()
        assert tokens(vllm_rollouts, 0) == before  # one sync per optimizer step: same step, same weights
        after = tokens(vllm_rollouts, 1)
        assert after == tokens(hf_rollouts, 1)  # reloaded: vLLM samples from the updated policy
        assert after != before
    finally:
        vllm_rollouts.close()


def test_vllm_rollouts_refuse_weights_they_cannot_sync(tiny_omni_dir):
    model, _, _ = load_model_and_processor(str(tiny_omni_dir))
    with pytest.raises(ValueError, match="train a LoRA"):
        check_lora_only(model)
    policy, _, _ = _policy(tiny_omni_dir)
    next(p for name, p in policy.named_parameters() if "visual" in name).requires_grad_(True)
    with pytest.raises(ValueError, match="sync only LoRA weights"):
        check_lora_only(policy)


@needs_vllm
@pytest.mark.integration
def test_grpo_recipe_runs_with_vllm_rollouts(grpo_vllm_one_process):
    out, stdout = grpo_vllm_one_process
    history = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    assert {"rewards/au_f1_reward/mean", "completions/mean_length"} <= set().union(*map(set, history))
    for step in (0, 1):
        rows = (out / "completions" / f"step_{step:06d}.jsonl").read_text().splitlines()
        assert len(rows) == 4
    assert stdout.count("loaded into vLLM") == 2  # one sync per optimizer step: steps 0 and 1


def test_server_mode_is_refused(tmp_path, synthfacs_small):
    from training.grpo import main

    args = grpo_args(REPO / "missing-model", synthfacs_small["train"], tmp_path / "x", 1)
    with pytest.raises(ValueError, match="only 'colocate'"):
        main([*args, "--use_vllm", "true", "--vllm_mode", "server"])
