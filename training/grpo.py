"""Stage 2, RL: GRPO with verifiable emotion and AU rewards, on video+audio (the media reach the loss).

    # 1 CPU process (tiny model, from the SFT adapter)
    affect-mllm train grpo --config recipes/tiny-omni/grpo.yaml
    # 2 CPU processes (gloo DDP)
    torchrun --nproc_per_node 2 -m training.grpo --config recipes/tiny-omni/grpo.yaml
    # 8 GPUs
    accelerate launch --config_file training/accelerate/zero2.yaml -m training.grpo \\
        --config recipes/qwen2.5-omni-7b/grpo.yaml

Starts from the SFT adapter (`adapter_path`, continued) or a fresh LoRA; rewards are the registered functions named
in the recipe with TRL's `reward_weights`, the same names and weights the synthesis filter uses. Rollouts go
through the inference engine: HF generate on the live weights, or with `use_vllm: true` a colocated vLLM engine
whose LoRA is reloaded after each update (`training/rollouts.py`). Why a compact trainer of our own rather than
TRL's GRPOTrainer: see `training/grpo_trainer.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from affect_mllm.schema import Sample


def parse_args(argv: list[str] | None = None):
    """Parse a YAML recipe plus CLI overrides into (data, model, rewards, training) configs; reward names, their
    settings and weights are checked here."""
    from trl import TrlParser

    from training.configs import AffectGRPOConfig, DataArguments, ModelArguments, RewardArguments

    parser = TrlParser((DataArguments, ModelArguments, RewardArguments, AffectGRPOConfig))
    data_args, model_args, reward_args, config = parser.parse_args_and_config(args=argv)
    if config.reward_weights is not None and len(config.reward_weights) != len(reward_args.reward_funcs):
        raise ValueError(f"{len(config.reward_weights)} reward_weights for {len(reward_args.reward_funcs)} "
                         f"reward_funcs {reward_args.reward_funcs}")
    return data_args, model_args, reward_args, config


def check_group_layout(config) -> None:
    """Each global micro-batch (per_device_train_batch_size x processes) must hold whole groups of
    `num_generations` completions; a group may span ranks (its rewards are gathered)."""
    from training.preflight import PreflightError

    rows = config.per_device_train_batch_size * config.world_size
    if rows % config.num_generations:
        raise PreflightError(f"num_generations={config.num_generations} must divide the global micro-batch "
                             f"per_device_train_batch_size={config.per_device_train_batch_size} x "
                             f"{config.world_size} process(es) = {rows} (one generation per micro-batch)")
    if config.num_iterations != 1:
        raise PreflightError("num_iterations > 1 (reusing rollouts) is not supported; use 1")


def make_conversation_builder(collator):
    """rows -> (samples, conversations), decoding media with the SFT collator's decoder (and its cache)."""
    from affect_mllm.models.inputs import conversation_for

    def build(rows: list[dict]):
        samples, conversations = [], []
        for row in rows:
            sample = Sample.from_record(json.loads(row["sample"]))
            media = collator.media(sample, row["manifest"])
            samples.append(sample)
            conversations.append(conversation_for(sample, media, row["task"], collator.spec, variant=row["variant"],
                                                  cot=row["cot"]))
        return samples, conversations

    return build


def main(argv: list[str] | None = None) -> Path | None:
    """Run GRPO; return the output folder (None for a dry run)."""
    from training.common import check_sharding, finish, last_checkpoint, setup_logging
    from training.preflight import parse_recipe, preflight
    from training.rollouts import rollout_source

    argv = list(sys.argv[1:] if argv is None else argv)
    data_args, model_args, reward_args, config = parse_recipe(parse_args, argv)
    setup_logging(config.process_index == 0)
    check_group_layout(config)
    rollouts = rollout_source(config, model_args)  # refuses unsupported modes before any weight is loaded
    if config.dry_run:
        preflight(data_args, model_args, config, stage="grpo", num_generations=config.num_generations,
                  reward_args=reward_args)
        return None
    check_sharding(config)
    trainer = build_trainer(data_args, model_args, reward_args, config, rollouts)
    try:
        trainer.train(resume_from_checkpoint=last_checkpoint(config.output_dir))
    finally:
        rollouts.close()  # a colocated vLLM engine runs in its own process
    return finish(trainer, config, argv, stage="grpo")


def build_trainer(data_args, model_args, reward_args, config, rollouts):
    """Policy (SFT adapter continued, or a new LoRA), prompts, rewards, rollout source -> a ready MediaGRPOTrainer."""
    from transformers import set_seed

    from affect_mllm.face import with_face_crop
    from affect_mllm.models.registry import load_model_and_processor
    from affect_mllm.rewards import get_reward_funcs
    from training.data import MediaChatCollator, build_dataset
    from training.grpo_trainer import MediaGRPOTrainer
    from training.lora import lora_config

    model, processor, spec = load_model_and_processor(model_args.model_name_or_path, dtype=model_args.dtype)
    spec = with_face_crop(spec, data_args.face_crop)  # the collator and rollouts read spec.media
    set_seed(config.seed)  # a new LoRA's random init must not depend on what ran before
    if model_args.adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, model_args.adapter_path, is_trainable=True)
    elif model_args.use_lora:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(spec, model_args))
    train = build_dataset(data_args.train_manifest, data_args.tasks, data_args.task_weights,
                          seed=data_args.seed_data, prompt_variants=data_args.prompt_variants,
                          cot_share=data_args.cot_share, limit=data_args.max_train_samples)
    collator = MediaChatCollator(processor, spec, cache_clips=data_args.media_cache_clips)
    rewards = get_reward_funcs(reward_args.reward_funcs, reward_args.reward_kwargs)
    return MediaGRPOTrainer(model=model, args=config, train_dataset=train, processor=processor, spec=spec,
                            reward_funcs=rewards, engine_factory=rollouts,
                            conversation_builder=make_conversation_builder(collator))


if __name__ == "__main__":
    main()
