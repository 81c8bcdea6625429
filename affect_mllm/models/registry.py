"""Model registry: names -> where the weights are, which architecture, which media settings, where LoRA goes.

A registry name (`tiny-omni`, `qwen2.5-omni-7b`, ...), a hub id or a local folder all resolve to a `ModelSpec`.
Real checkpoints load from the hub or a local folder on machines that have them; `tiny-*` models are built
offline on first use into the cache folder (`AFFECT_MLLM_CACHE`, default `~/.cache/affect-mllm`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from affect_mllm.media import MediaSettings

logger = logging.getLogger(__name__)

_ATTN_MLP = r"(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"

# LoRA goes on the language model's attention and MLP projections only. A bare `q_proj` list would also match
# the vision tower's blocks (their MLPs have gate/up/down_proj too) and the audio tower's attention, so each
# architecture's language-model path is spelled out; tests check these on the real module trees.
LORA_TARGETS = {
    # transformers 5.19 thinker: model.layers.N; >= 5.21: model.language_model.layers.N
    "qwen2_5_omni": rf"^model\.(language_model\.)?layers\.\d+\.{_ATTN_MLP}$",
    "qwen2_5_vl": rf"^model\.language_model\.layers\.\d+\.{_ATTN_MLP}$",
    "qwen3_vl": rf"^model\.language_model\.layers\.\d+\.{_ATTN_MLP}$",
    # MoE experts are left out: LoRA on attention only, as is usual for MoE fine-tuning
    "qwen3_omni_moe": r"^model\.(language_model\.)?layers\.\d+\.self_attn\.(q|k|v|o)_proj$",
}

HAS_AUDIO = {"qwen2_5_omni": True, "qwen3_omni_moe": True, "qwen2_5_vl": False, "qwen3_vl": False}

# config.json model_type -> architecture key used here
MODEL_TYPES = {"qwen2_5_omni": "qwen2_5_omni", "qwen2_5_omni_thinker": "qwen2_5_omni",
               "qwen2_5_vl": "qwen2_5_vl", "qwen3_omni_moe": "qwen3_omni_moe", "qwen3_vl": "qwen3_vl"}

# Per-frame pixel caps for real checkpoints: a 448x448 face crop is 256 visual tokens per 2 frames at 14 px
# patches with 2x2 merging; Qwen's own default (768*28*28) is far more than a face needs.
REAL_MEDIA = MediaSettings(fps=2.0, max_frames=32, min_pixels=128 * 28 * 28, max_pixels=256 * 28 * 28)


@dataclass(frozen=True)
class ModelSpec:
    """What the code needs to know about a model."""

    name: str
    arch: str
    source: str  # hub id, local folder, or "tiny" (built offline)
    media: MediaSettings = field(default_factory=MediaSettings)
    notes: str = ""

    @property
    def has_audio(self) -> bool:
        return HAS_AUDIO[self.arch]

    @property
    def lora_target_regex(self) -> str:
        return LORA_TARGETS[self.arch]


MODEL_REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("tiny-omni", "qwen2_5_omni", "tiny", notes="random-init ~1 MB thinker, built offline"),
        ModelSpec("tiny-vl", "qwen2_5_vl", "tiny", notes="random-init ~1 MB Qwen2.5-VL, built offline"),
        ModelSpec("tiny-omni-base", "qwen2_5_omni", "bundled",
                  notes="tiny thinker pretrained on SynthFACS perception (AUs, voice); see its model card"),
        ModelSpec("tiny-vl-base", "qwen2_5_vl", "bundled", notes="tiny Qwen2.5-VL pretrained on SynthFACS AUs"),
        ModelSpec("qwen2.5-omni-3b", "qwen2_5_omni", "Qwen/Qwen2.5-Omni-3B", REAL_MEDIA),
        ModelSpec("qwen2.5-omni-7b", "qwen2_5_omni", "Qwen/Qwen2.5-Omni-7B", REAL_MEDIA),
        ModelSpec("qwen2.5-vl-3b", "qwen2_5_vl", "Qwen/Qwen2.5-VL-3B-Instruct", REAL_MEDIA),
        ModelSpec("qwen2.5-vl-7b", "qwen2_5_vl", "Qwen/Qwen2.5-VL-7B-Instruct", REAL_MEDIA),
        ModelSpec("qwen3-vl-8b", "qwen3_vl", "Qwen/Qwen3-VL-8B-Instruct", REAL_MEDIA),
        ModelSpec("qwen3-omni-30b-a3b", "qwen3_omni_moe", "Qwen/Qwen3-Omni-30B-A3B-Instruct", REAL_MEDIA),
    )
}


def cache_dir() -> Path:
    """Where tiny models are built on first use."""
    return Path(os.environ.get("AFFECT_MLLM_CACHE", Path.home() / ".cache" / "affect-mllm"))


def arch_of_folder(folder: Path) -> str:
    """The architecture key of a saved model folder, from its config.json."""
    config = folder / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{folder}: no config.json (not a saved model folder)")
    model_type = json.loads(config.read_text()).get("model_type", "")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"{config}: model_type {model_type!r} is not supported; supported: {sorted(MODEL_TYPES)}")
    return MODEL_TYPES[model_type]


def resolve(name_or_path: str) -> ModelSpec:
    """Resolve a registry name, a local folder or a hub id to a ModelSpec (building tiny models if needed)."""
    if name_or_path in MODEL_REGISTRY:
        spec = MODEL_REGISTRY[name_or_path]
        if spec.source == "tiny":
            return replace(spec, source=str(ensure_tiny(spec)))
        if spec.source == "bundled":
            return replace(spec, source=str(bundled_base(spec.name)))
        return spec
    folder = Path(name_or_path)
    if folder.is_dir():
        arch = arch_of_folder(folder)
        tiny = _is_tiny(folder)
        return ModelSpec(folder.name, arch, str(folder), MediaSettings() if tiny else REAL_MEDIA)
    for spec in MODEL_REGISTRY.values():
        if spec.source == name_or_path:
            return spec
    raise ValueError(f"unknown model {name_or_path!r}: not a registry name ({', '.join(MODEL_REGISTRY)}), "
                     "not a local folder, not a registered hub id")


def _is_tiny(folder: Path) -> bool:
    config = json.loads((folder / "config.json").read_text())
    text = config.get("thinker_config", config).get("text_config", {})
    return text.get("hidden_size", 10_000) <= 512


def bundled_base(name: str) -> Path:
    """The folder of a tiny base committed with the package (`make tiny-base` rebuilds it)."""
    folder = Path(__file__).with_name("bases") / name
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: the {name} base is not built; run `make tiny-base`")
    return folder


def ensure_tiny(spec: ModelSpec) -> Path:
    """Build a tiny model into the cache folder once; later calls reuse it."""
    from affect_mllm.models.tiny import build_tiny_omni, build_tiny_vl

    folder = cache_dir() / spec.name
    if not (folder / "config.json").is_file():
        builder = build_tiny_omni if spec.arch == "qwen2_5_omni" else build_tiny_vl
        building = folder.with_name(folder.name + ".building")
        builder(building)
        building.replace(folder)  # a half-built folder never looks finished
    return folder


def model_class(arch: str):
    """The transformers class that loads an architecture for generation and training."""
    import transformers

    names = {"qwen2_5_omni": "Qwen2_5OmniThinkerForConditionalGeneration",
             "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
             "qwen3_vl": "Qwen3VLForConditionalGeneration",
             "qwen3_omni_moe": "Qwen3OmniMoeThinkerForConditionalGeneration"}
    return getattr(transformers, names[arch])


def load_model_and_processor(name_or_path: str, dtype: str = "float32", device: str = "cpu"):
    """Load a model and its processor.

    Args:
        name_or_path: registry name, local folder or hub id.
        dtype: torch dtype name.
        device: torch device ("cpu", "cuda", ...).

    Returns:
        (model in eval mode, processor, ModelSpec).
    """
    import torch
    from transformers import AutoProcessor

    from affect_mllm.models.upstream_warnings import quiet_default_talker_warnings

    quiet_default_talker_warnings()
    spec = resolve(name_or_path)
    model = model_class(spec.arch).from_pretrained(spec.source, dtype=getattr(torch, dtype)).to(device).eval()
    processor = AutoProcessor.from_pretrained(spec.source)
    return model, processor, spec
