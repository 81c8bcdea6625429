"""The HF transformers backend: the reference for parity and the fallback where vLLM is absent.

It wraps a loaded model (GRPO's policy, say) or loads one by name. Inputs go through `models.inputs.encode`,
the same code path training uses, and generation through the library's one HF path
(`models.generate.generate_from_batch`: explicit decoding knobs, the same end tokens as vLLM). What this engine
adds: LoRA adapters (peft) switched per request, batching, and per-request seeds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from affect_mllm.models.generate import generate_from_batch
from affect_mllm.models.inputs import encode
from affect_mllm.models.registry import ModelSpec, load_model_and_processor
from inference.engine import Generation, GenerationRequest, SamplingSettings, make_generation

logger = logging.getLogger(__name__)


def _attach_adapters(model, adapters: Mapping[str, str]):
    """Load each adapter into a peft wrapper; returns (model, whether this engine created the wrapper)."""
    if not adapters:
        return model, False
    from peft import PeftModel

    items = list(adapters.items())
    created = not isinstance(model, PeftModel)
    if created:
        name, path = items.pop(0)
        model = PeftModel.from_pretrained(model, path, adapter_name=name, is_trainable=False)
    for name, path in items:
        model.load_adapter(path, adapter_name=name, is_trainable=False)
    logger.info("loaded LoRA adapters: %s", ", ".join(adapters))
    return model, created


class HFEngine:
    """Generation with `model.generate` over batches of requests."""

    def __init__(self, model, processor, spec: ModelSpec, adapters: Mapping[str, str] | None = None,
                 max_batch_size: int = 8) -> None:
        """Wrap a loaded model.

        Args:
            model: a transformers model, or a peft model (e.g. a policy being trained). Its train/eval mode is
                left as the caller set it.
            processor: its processor.
            spec: its ModelSpec.
            adapters: LoRA adapters to load, name -> folder saved by peft from this model class.
            max_batch_size: prompts per `generate` call.
        """
        self.spec = spec
        self.processor = processor
        self.max_batch_size = max_batch_size
        self.max_model_len = None  # HF generates past any length; only vLLM refuses long prompts
        self.model, self._created_wrapper = _attach_adapters(model, dict(adapters or {}))
        # every adapter of the peft model counts, also those a caller's policy had before
        self.adapter_names = tuple(getattr(self.model, "peft_config", None) or ())

    @classmethod
    def load(cls, model: str, adapters: Mapping[str, str] | None = None, dtype: str = "float32",
             device: str = "cpu", max_batch_size: int = 8) -> HFEngine:
        """Load a model by registry name, folder or hub id."""
        loaded, processor, spec = load_model_and_processor(model, dtype=dtype, device=device)
        return cls(loaded, processor, spec, adapters=adapters, max_batch_size=max_batch_size)

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[list[Generation]]:
        """Complete each request; `sampling.n` candidates per request, in request order."""
        unknown = {r.adapter for r in requests if r.adapter is not None} - set(self.adapter_names)
        if unknown:
            raise ValueError(f"unknown adapter(s) {sorted(unknown)}; this engine has {list(self.adapter_names)}")
        results: list[list[Generation] | None] = [None] * len(requests)
        for (adapter, interleave), indices in _group(requests).items():
            with self._adapter_scope(adapter):
                for index, generations in self._generate_group(requests, indices, sampling, interleave):
                    results[index] = generations
        return results

    def close(self) -> None:
        """Drop the model reference (memory is freed when the caller drops theirs too)."""
        self.model = None

    def _generate_group(self, requests, indices: list[int], sampling: SamplingSettings,
                        interleave: bool) -> Iterator[tuple[int, list[Generation]]]:
        seeded = [i for i in indices if requests[i].seed is not None and not sampling.greedy]
        batched = [i for i in indices if i not in seeded]
        for start in range(0, len(batched), self.max_batch_size):
            chunk = batched[start:start + self.max_batch_size]
            batch = self._encode([requests[i].conversation for i in chunk], interleave)
            yield from zip(chunk, self._generate_batch(batch, sampling, sampling.n, interleave), strict=True)
        for index in seeded:
            yield index, self._seeded_candidates(requests[index], sampling, interleave)

    def _seeded_candidates(self, request: GenerationRequest, sampling: SamplingSettings,
                           interleave: bool) -> list[Generation]:
        """Sample candidate k alone after seeding torch with seed + k.

        HF draws every row of a batch from one global random stream, so a row's samples depend on its batch
        neighbours and its position. Generating each (request, candidate) alone from its own seed makes it
        the same whatever the batching, and seed + k is the per-candidate seed vLLM uses for n > 1. The
        caller's random state is restored afterwards (fork_rng), so seeding here does not disturb training.
        """
        import torch

        batch = self._encode([request.conversation], interleave)
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        candidates = []
        for k in range(sampling.n):
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(request.seed + k)
                candidates.extend(self._generate_batch(batch, sampling, 1, interleave)[0])
        return candidates

    def _encode(self, conversations, interleave: bool):
        batch = encode(self.processor, self.spec, conversations, padding_side="left", audio_in_video=interleave)
        return batch.to(self.model.device)

    def _generate_batch(self, batch, sampling: SamplingSettings, n: int, interleave: bool) -> list[list[Generation]]:
        """One `generate` call; n candidates per prompt of the encoded batch."""
        tokenizer = self.processor.tokenizer
        rows = generate_from_batch(self.model, tokenizer, batch, max_new_tokens=sampling.max_new_tokens,
                                   do_sample=not sampling.greedy, temperature=sampling.temperature,
                                   top_p=sampling.top_p, top_k=sampling.top_k, num_return_sequences=n,
                                   audio_in_video=interleave)
        generations = [make_generation(tokenizer, ids, finish) for ids, finish in rows]
        return [generations[i * n:(i + 1) * n] for i in range(batch["input_ids"].shape[0])]

    @contextmanager
    def _adapter_scope(self, name: str | None) -> Iterator[None]:
        """Activate one adapter for a group of requests, then restore the previous one.

        No adapter (None) means the base model when this engine added the adapters, and the model exactly as
        given when the caller passed a peft model (a policy being trained is used with its current adapter).
        """
        if name is None:
            if self._created_wrapper:
                with self.model.disable_adapter():
                    yield
            else:
                yield
            return
        previous = self.model.active_adapter
        self.model.set_adapter(name)
        try:
            yield
        finally:
            self.model.set_adapter(previous)


def _group(requests: Sequence[GenerationRequest]) -> dict[tuple[str | None, bool], list[int]]:
    """Request indices by (adapter, audio-in-video layout), in first-seen order: one peft state per group."""
    groups: dict[tuple[str | None, bool], list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault((request.adapter, request.audio_in_video), []).append(index)
    return groups
