"""LoRA export: the vLLM key-prefix trap, the merged model, and the `affect-mllm export` command.

Run: .venv/bin/python -m pytest tests/test_engine.py tests/test_export.py -q
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

pytest.register_assert_rewrite("engine_fixtures")  # also a plugin (below): rewrite it before the import does

from engine_fixtures import clip_requests, make_adapter  # noqa: E402

from affect_mllm.models.adapter_export import (  # noqa: E402
    VLLM_THINKER_KEY_PREFIX,
    AdapterExportError,
    export_adapter_for_vllm,
    needs_vllm_export,
    read_adapter,
)
from affect_mllm.models.registry import resolve  # noqa: E402
from inference.engine import SamplingSettings  # noqa: E402
from training.export import merge_adapter  # noqa: E402

pytest_plugins = ["engine_fixtures"]

GREEDY = SamplingSettings(max_new_tokens=24)


def test_export_rewrites_keys_and_target_modules(omni_adapter_dir, tmp_path):
    config, tensors = read_adapter(omni_adapter_dir)
    assert all(k.startswith("base_model.model.model.") for k in tensors)  # peft's names on the HF thinker
    out = export_adapter_for_vllm(omni_adapter_dir, tmp_path / "vllm", "qwen2_5_omni")
    new_config, new_tensors = read_adapter(out)
    # 2 layers x 7 projections x (A, B)
    assert len(new_tensors) == len(tensors) == 28 and all(k.startswith(VLLM_THINKER_KEY_PREFIX) for k in new_tensors)
    for key, value in tensors.items():
        renamed = key.replace("base_model.model.model.", "base_model.model.thinker.model.", 1)
        assert new_tensors[renamed].equal(value)
    assert config["target_modules"].startswith(r"^model\.(language_model\.)?layers\.")
    assert new_config["target_modules"] == config["target_modules"].replace(
        r"^model\.(language_model\.)?layers\.", r"^thinker\.model\.layers\.")
    assert needs_vllm_export(omni_adapter_dir, "qwen2_5_omni") and not needs_vllm_export(out, "qwen2_5_omni")
    again = export_adapter_for_vllm(out, tmp_path / "again", "qwen2_5_omni")  # exporting twice changes nothing
    assert read_adapter(again)[1].keys() == new_tensors.keys()


def test_vl_adapter_keys_pass_through(tiny_vl_dir, tmp_path):
    adapter = make_adapter(tiny_vl_dir, tmp_path / "vl-lora")
    config, tensors = read_adapter(adapter)
    new_config, new_tensors = read_adapter(export_adapter_for_vllm(adapter, tmp_path / "out", "qwen2_5_vl"))
    assert new_tensors.keys() == tensors.keys() and new_config == config
    assert not needs_vllm_export(adapter, "qwen2_5_vl")


def test_export_refuses_what_vllm_cannot_serve(omni_adapter_dir, tmp_path):
    with_saved = shutil.copytree(omni_adapter_dir, tmp_path / "modules_to_save")
    config = json.loads((with_saved / "adapter_config.json").read_text())
    (with_saved / "adapter_config.json").write_text(json.dumps({**config, "modules_to_save": ["lm_head"]}))
    with pytest.raises(AdapterExportError, match="modules_to_save"):
        export_adapter_for_vllm(with_saved, tmp_path / "out1", "qwen2_5_omni")

    from safetensors.torch import save_file

    _, tensors = read_adapter(omni_adapter_dir)
    tower = shutil.copytree(omni_adapter_dir, tmp_path / "tower")
    some = next(iter(tensors.values())).clone()  # safetensors refuses two names for one tensor
    save_file({**tensors, "base_model.model.visual.blocks.0.attn.qkv.lora_A.weight": some},
              str(tower / "adapter_model.safetensors"))
    with pytest.raises(AdapterExportError, match="outside the language model"):
        export_adapter_for_vllm(tower, tmp_path / "out2", "qwen2_5_omni")
    with pytest.raises(AdapterExportError, match="another folder"):
        export_adapter_for_vllm(omni_adapter_dir, omni_adapter_dir, "qwen2_5_omni")


def test_merged_model_equals_base_plus_adapter(hf_omni_engine, omni_adapter_dir, tiny_omni_dir, tmp_path, clips):
    from safetensors import safe_open

    from inference.hf_engine import HFEngine

    merged_dir = merge_adapter(str(tiny_omni_dir), omni_adapter_dir, tmp_path / "merged")
    config = json.loads((merged_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen2_5OmniForConditionalGeneration"]  # the layout vLLM loads
    with safe_open(str(merged_dir / "model.safetensors"), "pt") as handle:
        assert all(k.startswith("thinker.") and "lora" not in k for k in handle.keys())  # noqa: SIM118
    requests = clip_requests(resolve(str(merged_dir)), clips, ("av_16k", "odd_fps"))
    merged = HFEngine.load(str(merged_dir)).generate(requests, GREEDY)
    with_adapter = hf_omni_engine.generate([replace(r, adapter="lora") for r in requests], GREEDY)
    assert [g[0].token_ids for g in merged] == [g[0].token_ids for g in with_adapter]


def test_export_command(omni_adapter_dir, tiny_omni_dir, tmp_path):
    from typer.testing import CliRunner

    from affect_mllm.cli import build_app

    out = tmp_path / "cli"
    result = CliRunner().invoke(build_app(), ["export", "--base", str(tiny_omni_dir), "--adapter",
                                              str(omni_adapter_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert all(k.startswith(VLLM_THINKER_KEY_PREFIX) for k in read_adapter(out)[1])


def _vllm_greedy_ids(engine, requests, lora_request=None) -> list[tuple[int, ...]]:
    """Generate through the engine's `vllm.LLM` with an adapter folder handed to vLLM as it is."""
    prompts = [engine.prompt(r) for r in requests]
    outputs = engine.llm.generate(prompts, engine.sampling_params(GREEDY, None), lora_request=lora_request,
                                  use_tqdm=False)
    return [tuple(o.outputs[0].token_ids) for o in outputs]


@pytest.mark.vllm
def test_vllm_applies_the_exported_adapter_and_silently_ignores_the_raw_one(vllm_omni_engine, omni_adapter_dir,
                                                                          tmp_path, clips):
    from vllm.lora.request import LoRARequest

    requests = clip_requests(vllm_omni_engine.spec, clips)
    exported = export_adapter_for_vllm(omni_adapter_dir, tmp_path / "exported", "qwen2_5_omni")
    base = _vllm_greedy_ids(vllm_omni_engine, requests)
    adapters = {901: LoRARequest("raw", 901, str(omni_adapter_dir)), 902: LoRARequest("exported", 902, str(exported))}
    try:
        raw_ids = _vllm_greedy_ids(vllm_omni_engine, requests, adapters[901])
        exported_ids = _vllm_greedy_ids(vllm_omni_engine, requests, adapters[902])
    finally:  # free the slots: the engine's spare LoRA slot must stay empty for the other tests
        for lora_id in adapters:
            vllm_omni_engine.llm.llm_engine.remove_lora(lora_id)
    assert raw_ids == base  # the trap: loaded without an error, applied nowhere
    changed = sum(a != b for ids_a, ids_b in zip(base, exported_ids, strict=True)
                  for a, b in zip(ids_a, ids_b, strict=True))
    assert changed >= len(requests) * GREEDY.max_new_tokens // 2, changed
    engine_ids = [g[0].token_ids for g in vllm_omni_engine.generate([replace(r, adapter="lora") for r in requests],
                                                                    GREEDY)]
    assert engine_ids == exported_ids  # the engine exports raw adapters itself
