"""Stage 1, instruction tuning: LoRA SFT of a video+audio LLM on `<think>rationale</think><answer>...</answer>`.

    # 1 CPU process (tiny model, SynthFACS)
    affect-mllm train sft --config recipes/tiny-omni/sft.yaml
    # 2 CPU processes (gloo DDP; `accelerate launch --cpu` was seen to start only one)
    torchrun --nproc_per_node 2 -m training.sft --config recipes/tiny-omni/sft.yaml
    # 8 GPUs
    accelerate launch --config_file training/accelerate/ddp.yaml -m training.sft \\
        --config recipes/qwen2.5-omni-7b/sft.yaml

TRL's SFTTrainer with our media collator (TRL's collators ignore video and audio) and one override, `compute_loss`:
TRL 1.16 always computes the loss through a fused LM head that calls `model.base_model(...)` and reads
`last_hidden_state`; on transformers 5.19 (pinned by vLLM 0.32) the Qwen2.5-Omni thinker's `base_model` is the
thinker itself, which returns logits, not hidden states, so the stock loss crashes. We take the plain forward's
logits and compute the same token-mean cross-entropy (and the token accuracy TRL logs).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from trl import SFTTrainer

from affect_mllm.models.inputs import IGNORE_INDEX

logger = logging.getLogger(__name__)


class MediaSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss comes from the model's plain forward (see the module docstring for why)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs, use_cache=False)
        logits = outputs.logits[:, :-1].float()
        targets = labels[:, 1:].to(logits.device)
        mask = targets != IGNORE_INDEX
        token_loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
        )
        count = num_items_in_batch if num_items_in_batch is not None else mask.sum()
        loss = token_loss / torch.as_tensor(count, device=logits.device).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # like Trainer: DDP averages, the count is global
        mode = "train" if model.training else "eval"
        with torch.no_grad():  # over every rank's tokens, as TRL logs it
            counts = torch.stack([((logits.argmax(-1) == targets) & mask).sum(), mask.sum()])
            correct, total = self.accelerator.gather(counts.reshape(1, -1)).sum(dim=0).tolist()
            self._metrics[mode]["mean_token_accuracy"].append(correct / max(total, 1))
        inputs["labels"] = labels
        return (loss, outputs) if return_outputs else loss


def parse_args(argv: list[str] | None = None):
    """Parse a YAML recipe plus CLI overrides into (data, model, training) configs."""
    from trl import TrlParser

    from training.configs import AffectSFTConfig, DataArguments, ModelArguments

    parser = TrlParser((DataArguments, ModelArguments, AffectSFTConfig))
    return parser.parse_args_and_config(args=argv)


def main(argv: list[str] | None = None) -> Path | None:
    """Run SFT; return the output folder (None for a dry run)."""
    from training.common import check_sharding, finish, last_checkpoint, setup_logging
    from training.preflight import parse_recipe, preflight

    argv = list(sys.argv[1:] if argv is None else argv)
    data_args, model_args, config = parse_recipe(parse_args, argv)
    setup_logging(config.process_index == 0)
    if config.dry_run:
        preflight(data_args, model_args, config, stage="sft")
        return None
    check_sharding(config)
    trainer = build_trainer(data_args, model_args, config)
    trainer.train(resume_from_checkpoint=last_checkpoint(config.output_dir))
    return finish(trainer, config, argv)


def build_trainer(data_args, model_args, config) -> MediaSFTTrainer:
    """Model, processor, datasets, collator and LoRA -> a ready trainer."""
    from affect_mllm.face import with_face_crop
    from affect_mllm.models.registry import load_model_and_processor
    from training.data import MediaChatCollator, build_dataset
    from training.lora import lora_config

    model, processor, spec = load_model_and_processor(model_args.model_name_or_path, dtype=model_args.dtype)
    spec = with_face_crop(spec, data_args.face_crop)  # the collator and rollouts read spec.media
    dataset_kwargs = dict(
        seed=data_args.seed_data, prompt_variants=data_args.prompt_variants, cot_share=data_args.cot_share
    )
    train = build_dataset(
        data_args.train_manifest,
        data_args.tasks,
        data_args.task_weights,
        limit=data_args.max_train_samples,
        **dataset_kwargs,
    )
    evaluation = None
    if data_args.eval_manifest:
        evaluation = build_dataset(
            data_args.eval_manifest,
            data_args.tasks,
            data_args.task_weights,
            limit=data_args.max_eval_samples,
            **dataset_kwargs,
        )
    collator = MediaChatCollator(
        processor, spec, cache_clips=data_args.media_cache_clips, audio_in_video=data_args.audio_in_video,
        rationale_style=data_args.rationale_style,
    )
    peft_config = None
    if model_args.adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, model_args.adapter_path, is_trainable=True)
    else:
        peft_config = lora_config(spec, model_args)
    return MediaSFTTrainer(
        model=model,
        args=config,
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=collator,
        processing_class=processor,
        peft_config=peft_config,
    )


if __name__ == "__main__":
    main()
