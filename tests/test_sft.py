"""LoRA SFT end to end on the tiny omni model and SynthFACS: the real recipe script, resume after kill -9, the
tower switches; 2 CPU processes are in tests/test_distributed.py.

Run: .venv/bin/python -m pytest tests/test_sft.py -q   (about a minute)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from process_helpers import assert_same_adapter, kill_when
from safetensors.torch import load_file
from training_fixtures import ENV, REPO, run_stage, sft_args

pytest_plugins = ["training_fixtures"]


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory, tiny_omni_base, synthfacs_small) -> Path:
    out = tmp_path_factory.mktemp("sft") / "run"
    args = [*sft_args(tiny_omni_base, synthfacs_small["train"], out, steps=8), "--report_to", "tensorboard"]
    proc = run_stage("sft", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.integration
def test_sft_trains_a_language_model_lora_and_writes_its_record(sft_run):
    card = json.loads((sft_run / "run_card.json").read_text())
    assert card["metrics"]["global_step"] == 8
    history = json.loads((sft_run / "checkpoint-8" / "trainer_state.json").read_text())["log_history"]
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert len(losses) == 8 and min(losses[-3:]) < losses[0]  # it learns the answer format at least
    keys = load_file(sft_run / "adapter_model.safetensors").keys()
    assert keys and all(".layers." in k and "visual" not in k and "audio" not in k for k in keys)
    assert (sft_run / "learning_curves.png").is_file() and list(sft_run.rglob("events.out.tfevents*"))


@pytest.mark.integration
def test_sft_killed_mid_run_resumes_to_the_same_adapter(tmp_path, tiny_omni_base, synthfacs_small):
    straight = tmp_path / "straight"
    assert run_stage("sft", sft_args(tiny_omni_base, synthfacs_small["train"], straight, 6, 2)).returncode == 0
    resumed = tmp_path / "resumed"
    args = sft_args(tiny_omni_base, synthfacs_small["train"], resumed, 6, save_steps=2)
    marker = resumed / "checkpoint-4" / "trainer_state.json"
    kill_when([sys.executable, "-m", "training.sft", *args], marker, cwd=REPO, env=ENV)
    assert not (resumed / "run_card.json").exists(), "the run finished before it was killed"
    again = run_stage("sft", args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((resumed / "run_card.json").read_text())["metrics"]["global_step"] == 6
    assert_same_adapter(straight, resumed)


@pytest.mark.parametrize("style", ["reference", "perception"])
def test_collator_trains_on_the_chosen_rationale(style, tiny_omni_dir, synthfacs_small):
    from affect_mllm.models.registry import load_model_and_processor
    from affect_mllm.schema import Sample, read_manifest
    from training.data import MediaChatCollator, training_rows

    _, processor, spec = load_model_and_processor(str(tiny_omni_dir))
    rows = training_rows(read_manifest(synthfacs_small["train"]), ["ov_emotion"])[:2]
    batch = MediaChatCollator(processor, spec, rationale_style=style)(rows)
    for row, ids, labels in zip(rows, batch["input_ids"], batch["labels"], strict=True):
        sample = Sample.from_record(json.loads(row["sample"]))
        trained = processor.tokenizer.decode(ids[labels != -100])
        rationale = trained.split("<think>")[1].split("</think>")[0]
        if style == "reference":
            assert rationale == sample.rationale
        else:  # the labelled AUs, each cited, and the voice attributes: no emotion word in the rationale
            assert rationale.startswith("Face: ") and "Voice: " in rationale
            assert all(f"AU{au}" in rationale for au in sample.au_set())
            assert sample.emotion not in rationale
        assert f"emotions: {sample.emotions[0]}" in trained and trained.endswith("<|im_end|>")


# Each switch of ModelArguments and the parameters it must train fully (module names of the 5.19 omni thinker).
TOWER_PREFIXES = {"train_vision": "visual.", "train_audio": "audio_tower.", "train_merger": "visual.merger."}


def _saved_name(name: str) -> str:
    """A peft parameter name as the base model names it (the trained copy of a modules_to_save module)."""
    return name.removeprefix("base_model.model.").replace(".modules_to_save.default", "")


@pytest.mark.parametrize("switches", [("train_vision",), ("train_audio",), ("train_merger",),
                                      ("train_vision", "train_merger")], ids="+".join)
def test_tower_switches_train_exactly_their_tower(switches, tiny_omni_dir):
    from peft import get_peft_model

    from affect_mllm.models.registry import load_model_and_processor
    from training.configs import ModelArguments
    from training.lora import lora_config

    model, _, spec = load_model_and_processor(str(tiny_omni_dir))
    expected = {name for name, _ in model.named_parameters()
                if any(name.startswith(TOWER_PREFIXES[switch]) for switch in switches)}
    policy = get_peft_model(model, lora_config(spec, ModelArguments(**dict.fromkeys(switches, True))))
    trainable = [name for name, p in policy.named_parameters() if p.requires_grad]
    assert expected and {_saved_name(n) for n in trainable if "lora_" not in n} == expected
    lora = [name for name in trainable if "lora_" in name]
    assert lora and not any("visual" in name or "audio_tower" in name for name in lora)  # LoRA stays on the LM


def test_audio_switch_refused_for_a_video_only_model(tiny_vl_dir):
    from affect_mllm.models.registry import resolve
    from training.configs import ModelArguments
    from training.lora import lora_config

    with pytest.raises(ValueError, match="no audio encoder"):
        lora_config(resolve(str(tiny_vl_dir)), ModelArguments(train_audio=True))


@pytest.mark.integration
def test_sft_script_trains_the_switched_towers(tmp_path, tiny_omni_dir, synthfacs_small):
    """Through the recipe script: the saved adapter holds the vision and audio towers, trained, beside the LoRA."""
    from affect_mllm.models.registry import load_model_and_processor

    out = tmp_path / "towers"
    args = [*sft_args(tiny_omni_dir, synthfacs_small["train"], out, 2), "--train_vision", "true",
            "--train_audio", "true"]
    proc = run_stage("sft", args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = {_saved_name(k): v for k, v in load_file(out / "adapter_model.safetensors").items()}
    base = dict(load_model_and_processor(str(tiny_omni_dir))[0].named_parameters())
    for prefix in ("visual.", "audio_tower."):
        tower = {name for name in base if name.startswith(prefix)}
        assert tower <= saved.keys(), prefix  # every weight of the tower is saved, not only the LoRA
        changed = [name for name in tower if not torch.equal(saved[name], base[name].detach())]
        assert len(changed) > len(tower) // 2, prefix  # and trained
    assert any("lora_A" in name for name in saved)
