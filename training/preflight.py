"""`--dry-run`: check a recipe before any weights load: data, tokens per sample, memory per device, batch sizes.

Token counts come from the real processor where it is at hand (tiny models, downloaded checkpoints) and from the
media settings otherwise (video: frames/2 x merged 28-px patches; audio: 25 tokens per second). Memory is an
estimate: weights + trainable-parameter state (fp32 weights, grads, Adam moments) + activations
(tokens x hidden x layers x a factor of ~18 bytes for bf16 attention/MLP intermediates with eager attention).
"""

from __future__ import annotations

import logging
import math

from affect_mllm.media import MediaSettings
from affect_mllm.models.registry import ModelSpec, resolve

logger = logging.getLogger(__name__)

ACTIVATION_BYTES_PER_TOKEN_LAYER_HIDDEN = 18
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


class PreflightError(ValueError):
    """A recipe that cannot run as configured."""


def world_size() -> int:
    """Processes of this launch (torchrun/accelerate set WORLD_SIZE)."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1"))


def check_batch(per_device: int, accumulation: int, processes: int, num_generations: int | None = None) -> int:
    """Global batch size; raises when GRPO's generations do not divide it."""
    if per_device < 1 or accumulation < 1:
        raise PreflightError("per_device_train_batch_size and gradient_accumulation_steps must be >= 1")
    global_batch = per_device * accumulation * processes
    if num_generations is not None and global_batch % num_generations:
        raise PreflightError(f"num_generations={num_generations} must divide the global batch "
                             f"{per_device} x {accumulation} x {processes} processes = {global_batch}")
    return global_batch


def estimated_media_tokens(settings: MediaSettings, seconds: float, width: int, height: int) -> dict[str, int]:
    """Video and audio placeholder tokens for a clip, from the media settings alone."""
    frames = min(settings.max_frames, max(settings.min_frames, math.floor(seconds * settings.fps / 2) * 2))
    scale = min(1.0, math.sqrt(settings.max_pixels / (width * height)))
    grid_h = max(2, round(height * scale / 28) * 2)
    grid_w = max(2, round(width * scale / 28) * 2)
    return {"video": frames // 2 * grid_h * grid_w // 4, "audio": int(seconds * 25)}


def parameter_counts(spec: ModelSpec) -> tuple[int, int]:
    """(all parameters, language-model decoder parameters) of the model, counted on the meta device."""
    import torch

    from affect_mllm.models.registry import model_class

    with torch.device("meta"):
        model = _meta_model(spec, model_class(spec.arch))
    total = sum(p.numel() for p in model.parameters())
    decoder = sum(p.numel() for name, p in model.named_parameters() if ".layers." in name
                  and "visual" not in name and "audio" not in name)
    return total, decoder


def _meta_model(spec: ModelSpec, cls):
    from pathlib import Path

    if Path(spec.source).is_dir():
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(spec.source)
        config = getattr(config, "thinker_config", config)
        return cls._from_config(config)
    from affect_mllm.models.published import meta_model

    return meta_model(spec.name)


def estimate_memory_gb(spec: ModelSpec, dtype: str, tokens_per_sample: int, per_device_batch: int,
                       lora_fraction: float, text_hidden: int, text_layers: int) -> dict[str, float]:
    """Memory per device in GiB: weights, trainable state, activations."""
    total, _ = parameter_counts(spec)
    weights = total * BYTES[dtype]
    trainable = total * lora_fraction
    state = trainable * (4 + 4 + 8)  # fp32 master weight, gradient, two Adam moments
    activations = tokens_per_sample * per_device_batch * text_hidden * text_layers
    activations *= ACTIVATION_BYTES_PER_TOKEN_LAYER_HIDDEN
    gib = 2**30
    return {"weights": weights / gib, "trainable_state": state / gib, "activations": activations / gib,
            "total": (weights + state + activations) / gib}


def preflight(data_args, model_args, config, stage: str, num_generations: int | None = None) -> dict:
    """Run every check; log a summary; raise PreflightError on the first fault."""
    from affect_mllm.schema import read_manifest
    from training.data import training_rows

    spec = resolve(model_args.model_name_or_path)
    manifest = read_manifest(data_args.train_manifest)
    rows = training_rows(manifest, data_args.tasks, data_args.task_weights, limit=data_args.max_train_samples)
    if not rows:
        raise PreflightError(f"{data_args.train_manifest}: no sample has labels for {data_args.tasks}")
    global_batch = check_batch(config.per_device_train_batch_size, config.gradient_accumulation_steps,
                               world_size(), num_generations)
    tokens = estimated_media_tokens(spec.media, seconds=4.0, width=112, height=112)
    text_tokens = 160  # prompt + answer of the templates, measured on the tiny tokenizer
    per_sample = tokens["video"] + tokens["audio"] * spec.has_audio + text_tokens
    summary = {"stage": stage, "model": spec.name, "samples": len(rows), "global_batch": global_batch,
               "tokens_per_sample": {**tokens, "text": text_tokens, "total": per_sample}}
    logger.info("preflight: %s", summary)
    return summary
