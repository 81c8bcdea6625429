"""Every recipe (recursively) parses with its stage's TrlParser (training and pretraining); reward names resolve and
their typos fail at parse time; headers give the commands.

Run: .venv/bin/python -m pytest tests/test_recipes.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").rglob("*.yaml"))
TRAINING_STAGES = {"sft", "grpo"}
# pretraining recipes: their arguments class (owned by the pretraining scripts) and the verb in their header
PRETRAIN_STAGES = {"pretrain": ("training.pretrain_tiny", "PretrainArguments", "train pretrain-tiny"),
                   "pretrain_vocab": ("training.pretrain_vocab", "VocabArguments", "train pretrain-vocab")}
# GPU recipes ask for bf16, which TrainingArguments refuses on a CPU-only machine: parse them with the CLI override
CPU_OVERRIDES = ["--bf16", "false", "--use_cpu", "true"]


def recipe_args(path: Path) -> list[str]:
    return ["--config", str(path), *(CPU_OVERRIDES if "bf16: true" in path.read_text() else [])]


def test_recipes_exist_for_every_registered_model_and_stage():
    found = {(p.parent.name, p.stem) for p in RECIPES}
    for model in ("tiny-omni", "tiny-vl", "qwen2.5-omni-3b", "qwen2.5-omni-7b", "qwen2.5-vl-7b"):
        assert {(model, "sft"), (model, "grpo")} <= found, model


@pytest.mark.parametrize("path", [p for p in RECIPES if p.stem in TRAINING_STAGES], ids=lambda p: str(p.parent.name))
def test_training_recipe_parses(path):
    import importlib

    module = importlib.import_module(f"training.{path.stem}")
    configs = module.parse_args(recipe_args(path))
    data_args, model_args, config = configs[0], configs[1], configs[-1]
    assert data_args.train_manifest and model_args.model_name_or_path and config.output_dir
    header = path.read_text().splitlines()[:15]
    assert any(f"train {path.stem}" in line or f"training.{path.stem}" in line for line in header), path


@pytest.mark.parametrize("path", [p for p in RECIPES if p.stem in PRETRAIN_STAGES],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_pretraining_recipe_parses(path):
    import importlib

    from trl import TrlParser

    module, name, verb = PRETRAIN_STAGES[path.stem]
    (args,) = TrlParser((getattr(importlib.import_module(module), name),)).parse_args_and_config(
        args=["--config", str(path)])
    assert args.seed is not None
    if hasattr(args, "base"):  # the warm-up updates a base that must exist
        assert (REPO / args.base).is_dir(), args.base
    assert any(verb in line for line in path.read_text().splitlines()[:15]), path


def test_every_recipe_is_checked():
    others = {p.stem for p in RECIPES} - TRAINING_STAGES - set(PRETRAIN_STAGES)
    assert all(stem.startswith("synthesis") for stem in others), others  # those are tests/test_synthesis.py's


@pytest.mark.parametrize("path", [p for p in RECIPES if p.stem == "grpo"], ids=lambda p: str(p.parent.name))
def test_grpo_rewards_resolve(path):
    from affect_mllm.rewards import get_reward_funcs
    from training.grpo import check_group_layout, parse_args

    _, _, rewards, config = parse_args(recipe_args(path))
    funcs = get_reward_funcs(rewards.reward_funcs, rewards.reward_kwargs)
    assert [f.__name__ for f in funcs] == rewards.reward_funcs
    assert len(config.reward_weights) == len(funcs)
    check_group_layout(config)


def test_unknown_recipe_key_is_rejected(tmp_path):
    from training.sft import parse_args

    bad = tmp_path / "bad.yaml"
    bad.write_text("train_manifest: x.jsonl\noutput_dir: out\nlearning_rat: 0.1\n")
    with pytest.raises((ValueError, SystemExit)):
        parse_args(["--config", str(bad)])


@pytest.mark.parametrize("override, error", [
    ("reward_funcs: [format_reward, emotion_wheel_f1_rewrd]\nreward_weights: [1.0, 1.0]\n", "unknown reward"),
    ("reward_funcs: [length_penalty_reward]\nreward_weights: [1.0]\n"
     "reward_kwargs: {length_penalty_reward: {max_word: 10}}\n", "no setting"),
    ("reward_weights: [1.0]\n", "1 reward_weights for 4 reward_funcs"),
])
def test_grpo_reward_typos_fail_when_the_recipe_is_parsed(override, error, tmp_path):
    from training.grpo import parse_args

    recipe = tmp_path / "grpo.yaml"
    recipe.write_text((REPO / "recipes" / "tiny-omni" / "grpo.yaml").read_text() + "\n" + override)
    with pytest.raises(ValueError, match=error):
        parse_args(["--config", str(recipe)])
