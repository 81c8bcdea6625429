"""The published processors of Qwen2.5-Omni and Qwen2.5-VL, built offline around the real tokenizer.

Settings are those of the published `preprocessor_config.json` files (Qwen2.5-Omni-3B, verbatim copy in
github.com/xygu/MusicQnA `models/Qwen2.5-Omni-3B/preprocessor_config.json`, commit 37bf9fc1; the Qwen2.5-Omni-7B
fine-tune cited in `qwen_tokenizer.py` lists the same values; Qwen2.5-VL-7B-Instruct's, e.g. huggingface.co/unsloth/
Qwen2.5-VL-7B-Instruct-bnb-4bit `preprocessor_config.json`, has the same vision values): 14 px patches, 2-frame
temporal patches, 2x2 merging, 3136 to 12845056 pixels per image (4 to 16384 merged tokens), CLIP mean/std, and for
Omni a Whisper log-mel front end (128 bins, 16 kHz, hop 160, n_fft 400, padded to 300 s). The published files have
no video-processor file of their own, so the video processor takes the image processor's pixel range, as
transformers does when it loads them. Our media settings (`REAL_MEDIA`) still apply per call
(`affect_mllm.models.inputs`), as they do for a real checkpoint.
"""

from __future__ import annotations

from affect_mllm.models.qwen_tokenizer import build_qwen_tokenizer, family_of, published_chat_template

PATCHES = {"patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
PUBLISHED_PIXELS = {"min_pixels": 3136, "max_pixels": 12845056}
WHISPER = {"feature_size": 128, "sampling_rate": 16000, "hop_length": 160, "chunk_length": 300, "n_fft": 400,
           "padding_value": 0.0, "return_attention_mask": True, "dither": 0.0}


def build_published_processor(family: str, tokenizer=None):
    """The family's processor with the published settings, the real tokenizer and the published chat template.

    Args:
        family: "qwen2.5-omni" or "qwen2.5-vl".
        tokenizer: the tokenizer to wrap; default `build_qwen_tokenizer(family)`.

    Returns:
        A `Qwen2_5OmniProcessor` or `Qwen2_5_VLProcessor`.
    """
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    family_of(family)  # a clear error for an unknown family before anything is built
    tokenizer = tokenizer if tokenizer is not None else build_qwen_tokenizer(family)
    image = Qwen2VLImageProcessor(**PUBLISHED_PIXELS, **PATCHES)
    # frames come pre-sampled by our decoder; transformers 5.19's own per-frame behaviour, stated so it does not
    # warn on every call (REAL_MEDIA's per-frame cap is below the reference cap, so both give the same tokens)
    video = Qwen2VLVideoProcessor(**PUBLISHED_PIXELS, **PATCHES, do_sample_frames=False, cap_pixels_per_frame=False)
    template = published_chat_template(family)
    if family == "qwen2.5-omni":
        from transformers import Qwen2_5OmniProcessor, WhisperFeatureExtractor

        return Qwen2_5OmniProcessor(image_processor=image, video_processor=video,
                                    feature_extractor=WhisperFeatureExtractor(**WHISPER), tokenizer=tokenizer,
                                    chat_template=template)
    from transformers import Qwen2_5_VLProcessor

    return Qwen2_5_VLProcessor(image_processor=image, video_processor=video, tokenizer=tokenizer,
                               chat_template=template)
