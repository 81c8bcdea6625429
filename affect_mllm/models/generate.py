"""HF `generate` over a batch of conversations: the reference generation path (and the CPU fallback engine)."""

from __future__ import annotations

from collections.abc import Sequence

from affect_mllm.models.inputs import Conversation, encode
from affect_mllm.models.registry import ModelSpec


def generate_texts(model, processor, spec: ModelSpec, conversations: Sequence[Conversation], *,
                   max_new_tokens: int = 128, do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                   num_return_sequences: int = 1, audio_in_video: bool = False) -> list[str]:
    """Generate completions for a batch.

    Args:
        model: a loaded model (eval mode).
        processor: its processor.
        spec: its ModelSpec.
        conversations: prompts with their media.
        max_new_tokens: generation budget per completion.
        do_sample: sample (True) or greedy (False).
        temperature: sampling temperature.
        top_p: nucleus sampling mass.
        num_return_sequences: completions per conversation, returned consecutively.
        audio_in_video: Qwen2.5-Omni interleaved audio-in-video.

    Returns:
        Decoded completions (special tokens removed), len(conversations) * num_return_sequences of them.
    """
    import torch

    batch = encode(processor, spec, conversations, padding_side="left", audio_in_video=audio_in_video)
    batch = batch.to(model.device)
    kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, num_return_sequences=num_return_sequences,
                  pad_token_id=processor.tokenizer.pad_token_id, eos_token_id=processor.tokenizer.eos_token_id)
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p)
    if audio_in_video:
        kwargs["use_audio_in_video"] = True
    with torch.inference_mode():
        output = model.generate(**batch, **kwargs)
    completions = output[:, batch["input_ids"].shape[1]:]
    return processor.tokenizer.batch_decode(completions, skip_special_tokens=True)
