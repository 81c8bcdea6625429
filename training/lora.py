"""LoRA on the language model only, with switches to also train the merger or the encoders fully.

The target regex per architecture lives in the model registry (`ModelSpec.lora_target_regex`): a plain
`["q_proj", ...]` list would also hit the vision blocks (their MLPs have gate/up/down_proj) and the audio tower.
vLLM serves LoRA only on the language model (it rejects `modules_to_save` for Qwen2.5-Omni), so the
merger/encoder switches are for users who merge the adapter into the base before serving (`export --merge`).
"""

from __future__ import annotations

from affect_mllm.models.registry import ModelSpec
from training.configs import ModelArguments

# Suffixes peft matches in `modules_to_save` (the same in transformers 5.19 and 5.21+ module trees).
ENCODER_MODULES = r"(model\.)?(visual|audio_tower)\..*"
TOWER_MODULES = {"train_merger": "merger", "train_vision": "visual", "train_audio": "audio_tower"}


def lora_config(spec: ModelSpec, args: ModelArguments):
    """The peft LoraConfig for a model, or None when training all parameters."""
    if not args.use_lora:
        return None
    from peft import LoraConfig

    modules_to_save = [module for switch, module in TOWER_MODULES.items() if getattr(args, switch)]
    if args.train_vision and args.train_merger:  # the merger is part of the vision tower: save it once, with it
        modules_to_save.remove("merger")
    if args.train_audio and not spec.has_audio:
        raise ValueError(f"{spec.name} has no audio encoder to train")
    # exclude_modules guards the encoders: for MoE models peft 0.21 rewrites a regex target into bare names
    # (q_proj, ...), which would also hit the audio tower's attention (tests/test_lora_targets.py).
    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=spec.lora_target_regex, exclude_modules=ENCODER_MODULES,
                      modules_to_save=modules_to_save or None, task_type="CAUSAL_LM")

