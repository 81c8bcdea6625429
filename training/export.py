"""`affect-mllm export`: merge a LoRA adapter into its base, or write it in the layout vLLM's loader needs.

    affect-mllm export --base tiny-omni --adapter runs/sft/adapter --out runs/sft/vllm-adapter
    affect-mllm export --base tiny-omni --adapter runs/sft/adapter --out runs/sft/merged --merge

The renaming that keeps vLLM from silently ignoring an omni-thinker adapter lives in
`affect_mllm/models/adapter_export.py` (serving uses it too); this module adds the merge and the command.
"""

from __future__ import annotations

import logging
from pathlib import Path

from affect_mllm.models.adapter_export import (
    THINKER_ARCHS,
    VLLM_THINKER_KEY_PREFIX,
    AdapterExportError,
    adapter_keys,
    export_adapter_for_vllm,
)

logger = logging.getLogger(__name__)


def _save_omni_full_layout(thinker, processor, base_source: str, out_dir: Path, dtype) -> None:
    """Save a merged omni thinker in the full `Qwen2_5OmniForConditionalGeneration` layout vLLM loads.

    The wrapper is built on the meta device with the base's own config (audio output off, so no talker), and
    the merged thinker is put in it: no second copy of the weights is allocated, whatever the model's size.
    A thinker-only base has no full config to reuse; `models.tiny.save_omni` wraps it instead.
    """
    import torch
    from transformers import AutoConfig, Qwen2_5OmniForConditionalGeneration

    from affect_mllm.models.tiny import save_omni

    config = AutoConfig.from_pretrained(base_source)
    if config.model_type != "qwen2_5_omni":
        save_omni(thinker, processor, out_dir)
        return
    config.enable_audio_output = False
    config.dtype = dtype
    with torch.device("meta"):
        full = Qwen2_5OmniForConditionalGeneration(config)
    full.thinker = thinker
    full.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def merge_adapter(base: str, adapter_dir: str | Path, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Merge a peft LoRA into its base and save the result in the official layout HF and vLLM load.

    Args:
        base: the base model (registry name, folder or hub id) the adapter was trained on.
        adapter_dir: the adapter as peft saved it from the HF model class.
        out_dir: destination folder.
        dtype: weights dtype for the merge and the saved model.

    Returns:
        out_dir.
    """
    import torch
    from peft import PeftModel
    from transformers import GenerationConfig

    from affect_mllm.models.registry import load_model_and_processor, resolve

    out_dir = Path(out_dir)
    arch = resolve(base).arch
    if arch in THINKER_ARCHS and arch != "qwen2_5_omni":
        raise NotImplementedError(f"merging into a {arch} base is not supported; export the adapter for vLLM "
                                  "instead (affect-mllm export without --merge)")
    if any(key.startswith(VLLM_THINKER_KEY_PREFIX) for key in adapter_keys(adapter_dir)):
        raise AdapterExportError(adapter_dir, "the adapter has vLLM's `thinker.` names (already exported); "
                                 "merge the adapter as training saved it")
    model, processor, spec = load_model_and_processor(base, dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    if spec.arch == "qwen2_5_omni":
        _save_omni_full_layout(merged, processor, spec.source, out_dir, getattr(torch, dtype))
    else:
        merged.save_pretrained(out_dir)
        processor.save_pretrained(out_dir)
    GenerationConfig.from_pretrained(spec.source).save_pretrained(out_dir)
    logger.info("merged %s + %s -> %s", base, adapter_dir, out_dir)
    return out_dir


def register(app) -> None:
    """Add the `export` command."""
    import typer

    @app.command("export")
    def export_command(
        base: str = typer.Option(..., "--base", help="Base model the adapter was trained on (name, folder, hub id)."),
        adapter: str = typer.Option(..., "--adapter", help="Adapter folder as peft saved it."),
        out: str = typer.Option(..., "--out", help="Destination folder."),
        merge: bool = typer.Option(False, "--merge", help="Merge into the base instead of exporting the adapter."),
        dtype: str = typer.Option("float32", help="Weights dtype of the merged model."),
    ) -> None:
        """Write an adapter vLLM applies (not silently ignores), or a merged model HF and vLLM load."""
        from affect_mllm.models.registry import resolve

        if merge:
            path = merge_adapter(base, adapter, out, dtype=dtype)
            typer.echo(f"merged model in {path}")
            return
        path = export_adapter_for_vllm(adapter, out, resolve(base).arch)
        typer.echo(f"adapter for vLLM in {path}")
