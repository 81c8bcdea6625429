"""Real-width models at reduced depth: every width, head count, vocabulary and token id of a published checkpoint,
N decoder layers, N vision blocks (the last one full attention) and N audio layers, random init, built offline.

They run the code paths a real checkpoint runs (151k-token embeddings, 128-wide attention heads, the published
tokenizer, processor and chat template) at a cost these CPUs can pay: a 2-layer Qwen2.5-Omni-3B width is about
0.9 B parameters (the 151,936 x 2048 embedding and LM head are two thirds of it). The folder has the layout HF and
vLLM both load: the full Qwen2.5-Omni layout (`thinker.` keys, no talker: `enable_audio_output` false,
which vLLM's CPU build needs), or Qwen2.5-VL's own. Weights are saved in bf16, as published.

The shapes come from `published_configs/` (published.py); `qwen2.5-omni-7b.json` is reconstructed from cited
values rather than copied, and the folder's `real_width.json` says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from affect_mllm.models.published import RECONSTRUCTED, loaded_part, published_config
from affect_mllm.models.registry import MODEL_REGISTRY

if TYPE_CHECKING:
    from transformers import PretrainedConfig

logger = logging.getLogger(__name__)

LIKE = ("qwen2.5-omni-3b", "qwen2.5-omni-7b", "qwen2.5-vl-7b")
FAMILY = {"qwen2_5_omni": "qwen2.5-omni", "qwen2_5_vl": "qwen2.5-vl"}
DEFAULT_LAYERS = 2
BUILD_RECORD = "real_width.json"


def _check(like: str, layers: int) -> str:
    if like not in LIKE:
        raise ValueError(f"--like {like!r}: choose one of {', '.join(LIKE)}")
    if layers < 1:
        raise ValueError(f"--layers {layers}: at least one layer")
    return MODEL_REGISTRY[like].arch


def reduced_config(like: str, layers: int = DEFAULT_LAYERS) -> PretrainedConfig:
    """The published config of `like` with `layers` decoder layers, vision blocks and audio layers.

    The last vision block is a full-attention block (the published towers have one every 8 blocks), so both the
    windowed and the full attention paths run. Omni checkpoints keep the thinker only (`enable_audio_output`
    false: no talker or token2wav is built or saved).
    """
    _check(like, layers)
    config = published_config(like)
    part = loaded_part(config)
    text = part.text_config
    text.num_hidden_layers = layers
    text.layer_types = text.layer_types[:layers]
    text.max_window_layers = min(text.max_window_layers, layers)
    part.vision_config.depth = layers
    part.vision_config.fullatt_block_indexes = [layers - 1]
    if hasattr(part, "audio_config"):
        part.audio_config.encoder_layers = layers
        part.audio_config.num_hidden_layers = layers
    if hasattr(config, "enable_audio_output"):
        config.enable_audio_output = False
    return config


def _model_class(arch: str):
    import transformers

    names = {"qwen2_5_omni": "Qwen2_5OmniForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}
    return getattr(transformers, names[arch])


def _write_build_record(out_dir: Path, like: str, layers: int, seed: int, parameters: int) -> None:
    from affect_mllm.jsonl import atomic_write_json

    record = {"like": like, "layers": layers, "seed": seed, "parameters": parameters, "init": "random",
              "config_source": "reconstructed (published_configs/SOURCES.md)" if like in RECONSTRUCTED
              else "published config.json (published_configs/SOURCES.md)"}
    atomic_write_json(out_dir / BUILD_RECORD, record)


def build_real_width(out_dir: str | Path, like: str, layers: int = DEFAULT_LAYERS, seed: int = 0) -> Path:
    """Build, save and return a random-init real-width model folder with its real tokenizer and processor.

    Args:
        out_dir: destination folder.
        like: the published checkpoint whose shapes are copied (`LIKE`).
        layers: decoder layers (and vision blocks, audio layers).
        seed: torch seed for the random init.

    Returns:
        The folder.
    """
    import torch

    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.tiny import write_generation_config

    arch = _check(like, layers)
    out_dir = Path(out_dir)
    config = reduced_config(like, layers)
    torch.manual_seed(seed)
    model = _model_class(arch)._from_config(config, dtype=torch.bfloat16).eval()
    parameters = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out_dir)
    del model
    processor = build_published_processor(FAMILY[arch])
    processor.save_pretrained(out_dir)
    write_generation_config(out_dir, processor.tokenizer)
    _write_build_record(out_dir, like, layers, seed, parameters)
    logger.info("%s-width, %d layers: %d parameters -> %s", like, layers, parameters, out_dir)
    return out_dir
