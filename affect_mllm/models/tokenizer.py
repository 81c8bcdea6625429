"""A small byte-level BPE tokenizer with the Qwen special tokens, trained offline on the project's vocabulary.

It is wrapped in the real `Qwen2Tokenizer` class and uses the same normalizer and pre-tokenizer (Qwen2's split
regex, then byte-level), so what it learns to merge is what Qwen2Tokenizer will produce. The corpus repeats each
label word in the contexts the answer grammar puts it in, so every label word ends up one token: the learnability
probe found a 4-token "surprise" slowed learning, and single-token labels make a categorical answer one decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SpecialTokens:
    """Special tokens of one architecture family, in id order (id 0 first), and their processor roles."""

    ordered: tuple[str, ...]
    roles: dict[str, str]  # extra_special_tokens: role -> token, read by the processors


OMNI_SPECIAL_TOKENS = SpecialTokens(
    ordered=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>",
             "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_bos|>", "<|vision_eos|>", "<|vision_pad|>",
             "<|IMAGE|>", "<|VIDEO|>"),
    roles={"image_token": "<|IMAGE|>", "audio_token": "<|AUDIO|>", "video_token": "<|VIDEO|>",
           "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
           "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>"},
)

VL_SPECIAL_TOKENS = SpecialTokens(
    ordered=("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
             "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
             "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"),
    roles={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
           "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>"},
)


def train_qwen_tokenizer(corpus: Iterable[str], specials: SpecialTokens, vocab_size: int = 8192):
    """Train a byte-level BPE on `corpus` and wrap it as a real `Qwen2Tokenizer`.

    Args:
        corpus: training texts (the project's vocabulary in context).
        specials: the architecture's special tokens; they take ids 0..len-1.
        vocab_size: upper bound; training stops earlier once every pair in the corpus is merged.

    Returns:
        A `transformers.Qwen2Tokenizer`.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=list(specials.ordered),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(list(corpus), trainer=trainer)
    model = bpe.to_str()
    import json

    state = json.loads(model)["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=state["vocab"], merges=merges, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>", unk_token=None, extra_special_tokens=specials.roles)
    tokenizer.add_special_tokens({"additional_special_tokens": list(specials.ordered[1:])},
                                 replace_extra_special_tokens=False)
    return tokenizer
