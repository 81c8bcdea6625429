"""HF `generate` over a batch of conversations: the one HF generation path.

`inference.hf_engine.HFEngine` (the HF backend of predict, chat, GRPO rollouts and synthesis), the perception
evaluation of the tiny bases and the rewards benchmark all generate through `generate_from_batch`, so they stop on
the same tokens and decode with the same knobs:

- every decoding setting is passed explicitly: HF would otherwise fill unset ones from the checkpoint's
  generation_config (top_k=50, a repetition penalty, ...), which vLLM does not apply to our requests;
- generation stops at the tokenizer's end token and at the generation config's (vLLM stops at both as well), and
  each row is cut after its first end token (the rest is padding).
"""

from __future__ import annotations

from collections.abc import Sequence

from affect_mllm.models.inputs import Conversation, encode
from affect_mllm.models.registry import ModelSpec


def stop_token_ids(model, tokenizer) -> list[int]:
    """End tokens: the tokenizer's and the generation config's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    configured = configured if isinstance(configured, list) else [configured]
    return sorted({i for i in (tokenizer.eos_token_id, *configured) if i is not None})


def generate_from_batch(model, tokenizer, batch, *, max_new_tokens: int = 128, do_sample: bool = False,
                        temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, num_return_sequences: int = 1,
                        audio_in_video: bool = False) -> list[tuple[list[int], str]]:
    """One `generate` call on an encoded batch (left-padded, on the model's device).

    Args:
        model: a loaded model (its train/eval mode is left as the caller set it).
        tokenizer: its tokenizer (pad and end tokens).
        batch: `models.inputs.encode(...)` output.
        max_new_tokens: generation budget per completion.
        do_sample: sample (True) or greedy (False; temperature, top_p and top_k are then ignored).
        temperature, top_p, top_k: sampling settings (top_k 0: off, as in vLLM).
        num_return_sequences: completions per prompt, returned consecutively.
        audio_in_video: Qwen2.5-Omni interleaved audio-in-video.

    Returns:
        (completion ids cut after the first end token, "stop" or "length") per completion.
    """
    import torch

    stop_ids = stop_token_ids(model, tokenizer)
    kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, num_return_sequences=num_return_sequences,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_ids, repetition_penalty=1.0)
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k)
    if audio_in_video:
        kwargs["use_audio_in_video"] = True
    with torch.inference_mode():
        output = model.generate(**batch, **kwargs)
    return [_cut(row, stop_ids) for row in output[:, batch["input_ids"].shape[1]:].tolist()]


def _cut(row: list[int], stop_ids: Sequence[int]) -> tuple[list[int], str]:
    for position, token in enumerate(row):
        if token in stop_ids:
            return row[:position + 1], "stop"
    return row, "length"


def generate_texts(model, processor, spec: ModelSpec, conversations: Sequence[Conversation], *,
                   audio_in_video: bool = False, **decoding) -> list[str]:
    """Generate completions for a batch of conversations and decode them (special tokens removed).

    Args:
        model: a loaded model (eval mode).
        processor: its processor.
        spec: its ModelSpec.
        conversations: prompts with their media.
        audio_in_video: Qwen2.5-Omni interleaved audio-in-video.
        **decoding: `generate_from_batch`'s settings (max_new_tokens, do_sample, temperature, ...).

    Returns:
        len(conversations) * num_return_sequences completions, those of a conversation consecutive.
    """
    batch = encode(processor, spec, conversations, padding_side="left", audio_in_video=audio_in_video)
    rows = generate_from_batch(model, processor.tokenizer, batch.to(model.device), audio_in_video=audio_in_video,
                               **decoding)
    return [processor.tokenizer.decode(ids, skip_special_tokens=True) for ids, _ in rows]
