"""`--dry_run true`: check a recipe before any weight loads, and size it.

    affect-mllm train sft --config recipes/qwen2.5-omni-7b/sft.yaml --dry_run true --launch zero3:8
    affect-mllm train grpo --config recipes/qwen2.5-omni-7b/grpo.yaml --dry_run true --launch zero2

Checks: the manifest has trainable rows; batch sizes and GRPO's groups divide as the trainer needs; GRPO's rewards
and their settings resolve (a typo fails here, not after the weights load). Sizes: tokens per sample from the
manifest's own clips (`training/token_counts.py`: headers only, real processor formulas, real tokenizer) and
memory per device for the launch (`affect_mllm/memory_model.py`), at the worst micro-batch the data can produce:
`per_device_train_batch_size` copies of the longest sample (padding makes every row that long). Prints a table and
ends with one JSON line; `benchmarks/preflight_check.py` compares the estimates with measured peaks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from affect_mllm import memory_model as mm
from affect_mllm.models.registry import ModelSpec, resolve

logger = logging.getLogger(__name__)

ASSUMED_DEVICE_GIB = 80.0  # an 80 GB H100/A100 when no GPU is visible to the dry run
TRAINED_PARTS = {"train_vision": "vision", "train_audio": "audio", "train_merger": "merger"}


class PreflightError(ValueError):
    """A recipe that cannot run as configured."""


def parse_recipe(parse_args, argv: list[str]):
    """Parse a recipe's arguments; a dry run of a bf16 GPU recipe parses on a machine without a GPU too.

    TrainingArguments refuses bf16 without a bf16 GPU unless `use_cpu` is set. A dry run is meant to run before
    the GPU hour (on a login node, say), so it passes that check with `use_cpu` and then restores the recipe's
    value: the preflight sizes the run the recipe describes. Any other run, or error, is left as it is.
    """
    try:
        return parse_args(argv)
    except ValueError as exc:
        if "support bf16/gpu" not in str(exc) or not asks_dry_run(argv):
            raise
    *configs, training = parse_args([*argv, "--use_cpu", "true"])
    training.use_cpu = False
    return (*configs, training)


def asks_dry_run(argv: list[str]) -> bool:
    """Whether the command line asks for a dry run (`--dry_run`, `--dry_run true`, `--dry_run=true`)."""
    for index, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if name != "--dry_run":
            continue
        if not equals:
            value = argv[index + 1] if index + 1 < len(argv) and not argv[index + 1].startswith("--") else "true"
        return value.lower() in ("true", "1", "yes")
    return False


def check_batch(per_device: int, accumulation: int, processes: int, num_generations: int | None = None) -> int:
    """Global batch size; raises when GRPO's generations do not divide it."""
    if per_device < 1 or accumulation < 1:
        raise PreflightError("per_device_train_batch_size and gradient_accumulation_steps must be >= 1")
    global_batch = per_device * accumulation * processes
    if num_generations is not None and global_batch % num_generations:
        raise PreflightError(f"num_generations={num_generations} must divide the global batch "
                             f"{per_device} x {accumulation} x {processes} processes = {global_batch}")
    return global_batch


def resolve_rewards(reward_args, config) -> list[str]:
    """Resolve GRPO's rewards and settings now; their weights must match them one to one."""
    from affect_mllm.rewards import get_reward_funcs

    try:
        funcs = get_reward_funcs(reward_args.reward_funcs, reward_args.reward_kwargs)
    except (ValueError, TypeError) as exc:
        raise PreflightError(f"rewards: {exc}") from exc
    weights = getattr(config, "reward_weights", None)
    if weights is not None and len(weights) != len(funcs):
        raise PreflightError(f"{len(weights)} reward_weights for {len(funcs)} reward_funcs {reward_args.reward_funcs}")
    return [f.__name__ for f in funcs]


def check_groups_for_launch(config, launch: mm.Launch) -> None:
    """GRPO's group rule (`training.grpo.check_group_layout`) for the launch's process count, not this process's."""
    from types import SimpleNamespace

    from training.grpo import check_group_layout

    check_group_layout(SimpleNamespace(per_device_train_batch_size=config.per_device_train_batch_size,
                                       world_size=launch.processes, num_generations=config.num_generations,
                                       num_iterations=config.num_iterations))


def train_setup(model_args, config, launch: mm.Launch) -> mm.TrainSetup:
    """What the recipe keeps in memory besides the model: dtypes, LoRA, trained towers, optimizer, attention."""
    import importlib.util

    dtype = model_args.dtype
    parts = tuple(part for flag, part in TRAINED_PARTS.items() if getattr(model_args, flag, False))
    optimizer = 2 if "8bit" in str(getattr(config, "optim", "")) else 8
    attention = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
    return mm.TrainSetup(weight_dtype=dtype, autocast_bf16=bool(config.bf16) and dtype == "float32",
                         use_lora=model_args.use_lora or bool(model_args.adapter_path), lora_r=model_args.lora_r,
                         lora_dropout=model_args.lora_dropout, trained_parts=parts, optimizer_bytes=optimizer,
                         attention=attention, device="cpu" if getattr(config, "use_cpu", False) else "cuda",
                         launch=launch)


def device_gib(config) -> tuple[float, str]:
    """Memory of one device: the visible GPU's, the host's for a CPU run, else an assumed 80 GB GPU."""
    import torch

    if getattr(config, "use_cpu", False):
        import psutil

        return psutil.virtual_memory().total / mm.GIB, "host memory (CPU run)"
    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory / mm.GIB, torch.cuda.get_device_name(0)
    return ASSUMED_DEVICE_GIB, "assumed 80 GB GPU (none visible)"


def count_tokens(rows: list[dict], spec: ModelSpec, data_args, config, stage: str) -> tuple[list[dict], dict]:
    """Tokens of every row and their summary (p50/p95/max, rows over the length limit)."""
    from affect_mllm.token_budget import percentile_summary
    from training.token_counts import TokenCounter, model_config, text_renderer

    completion = config.max_completion_length if stage == "grpo" else None
    counter = TokenCounter(spec, text_renderer(spec), rationale_style=data_args.rationale_style,
                           audio_in_video=data_args.audio_in_video, completion_tokens=completion)
    counts = [counter.row(row) for row in rows]
    text = model_config(spec).get("text_config", {})
    positions = int(text.get("max_position_embeddings", 32768))
    limit = getattr(config, "max_length", None) if stage == "sft" else None
    summary = percentile_summary([c["total"] for c in counts], [c["id"] for c in counts], limit or positions)
    longest = max(counts, key=lambda c: c["total"])
    summary.update(prompt_max=max(c["prompt"] for c in counts), longest=longest,
                   limit_source="max_length" if limit else "max_position_embeddings")
    return counts, summary


def memory_estimate(spec: ModelSpec, setup: mm.TrainSetup, config, stage: str, tokens: dict) -> dict:
    """Bytes per device, by component, at the worst micro-batch."""
    shape = mm.model_shape(_config_object(spec), spec.arch, spec.lora_target_regex)
    batch, longest = config.per_device_train_batch_size, tokens["longest"]
    completion = config.max_completion_length if stage == "grpo" else None
    loss_tokens = completion if completion else longest["total"]
    act = {ckpt: mm.activation_bytes(shape, setup, batch, longest["total"], ckpt) for ckpt in (True, False)}
    logits = mm.logits_bytes(shape, setup, batch, longest["total"], loss_tokens)
    patches = longest["video"] * shape.merge**2 + longest["image"] * shape.merge**2
    towers = mm.tower_working_bytes(shape.vision, patches * batch, setup.activation_bytes)
    generation = _generation_bytes(shape, setup, config, longest, patches) if stage == "grpo" else 0.0
    vllm = _vllm_bytes(spec, shape, setup, config) if stage == "grpo" and config.use_vllm else 0.0
    weights, state = mm.weight_bytes(shape, setup), mm.state_bytes(shape, setup)
    used = act[bool(config.gradient_checkpointing)]
    total = weights + state + max(used + logits, generation, towers) + vllm
    return {"weights": weights, "trainable_state": state, "activations": used + logits,
            "activations_layers_checkpointing": act[True], "activations_layers_no_checkpointing": act[False],
            "logits": logits, "towers": towers, "generation": generation, "vllm": vllm, "total": total,
            "_params": shape.total_params, "_trainable": mm.trainable_params(shape, setup)}


def _config_object(spec: ModelSpec):
    """The transformers config of a local folder, else the published config (no download either way)."""
    if Path(spec.source).is_dir():
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(spec.source)
    from affect_mllm.models.published import published_config

    return published_config(spec.name)


def _generation_bytes(shape: mm.ModelShape, setup: mm.TrainSetup, config, longest: dict, patches: int) -> float:
    """GRPO's rollout phase: HF generate takes one seeded sequence at a time (KV cache, prefill); with beta > 0 the
    reference log-probs are a no-grad forward of the whole micro-batch."""
    prompt, completion = longest["prompt"], config.max_completion_length
    rollout = 0.0
    if not config.use_vllm:
        rollout = (mm.kv_cache_bytes(shape, prompt + completion, setup.weight_dtype)
                   + mm.prefill_bytes(shape, prompt, setup.weight_dtype)
                   + mm.encoder_outputs_bytes(shape, patches, mm.BYTES[setup.weight_dtype]))
    reference = 0.0
    if config.beta:
        batch = config.per_device_train_batch_size
        reference = (batch * (prompt + completion) * shape.vocab * mm.BYTES[setup.weight_dtype]
                     + batch * completion * mm.logits_loss_bytes(shape.vocab))
    return max(rollout, reference)


def _vllm_bytes(spec: ModelSpec, shape: mm.ModelShape, setup: mm.TrainSetup, config) -> float:
    """The colocated vLLM engine: its share of the GPU, or on CPU its own weights and KV cache (host memory)."""
    if getattr(config, "use_cpu", False):
        from inference.vllm_engine import kv_cache_gib_needed
        from training.rollouts import DEFAULT_MAX_MODEL_LEN

        kv_gib = config.vllm_kv_cache_gib
        if kv_gib is None:  # what the rollout engine sizes itself (training.rollouts.rollout_source): a rank's batch
            kv_gib = kv_cache_gib_needed(spec, config.vllm_max_model_length or DEFAULT_MAX_MODEL_LEN,
                                         config.per_device_train_batch_size, setup.weight_dtype)
        return shape.total_params * mm.BYTES[setup.weight_dtype] + kv_gib * mm.GIB
    gib, _ = device_gib(config)
    return config.vllm_gpu_memory_utilization * gib * mm.GIB


def preflight(data_args, model_args, config, stage: str, num_generations: int | None = None,
              reward_args=None) -> dict:
    """Run every check and size the run; print a table and a JSON line; raise PreflightError on the first fault."""
    from affect_mllm.schema import read_manifest
    from training.data import training_rows
    from training.launch import resolve_launch

    spec = resolve(model_args.model_name_or_path)
    try:
        launch = resolve_launch(getattr(config, "launch", None))
    except ValueError as exc:
        raise PreflightError(str(exc)) from exc
    rewards = resolve_rewards(reward_args, config) if reward_args is not None else None
    global_batch = check_batch(config.per_device_train_batch_size, config.gradient_accumulation_steps,
                               launch.processes, num_generations)
    if stage == "grpo":
        check_groups_for_launch(config, launch)
    manifest = read_manifest(data_args.train_manifest)
    rows = training_rows(manifest, data_args.tasks, data_args.task_weights, seed=data_args.seed_data,
                         prompt_variants=data_args.prompt_variants, cot_share=data_args.cot_share,
                         limit=data_args.max_train_samples)
    if not rows:
        raise PreflightError(f"{data_args.train_manifest}: no sample has labels for {data_args.tasks}")
    _, tokens = count_tokens(rows, spec, data_args, config, stage)
    setup = train_setup(model_args, config, launch)
    memory = memory_estimate(spec, setup, config, stage, tokens)
    summary = _summary(stage, spec, launch, rows, global_batch, tokens, memory, setup, config, rewards)
    if getattr(config, "process_index", 0) == 0:
        print(format_table(summary))
        print(json.dumps(summary, sort_keys=True))
    return summary


def _summary(stage, spec, launch, rows, global_batch, tokens, memory, setup, config, rewards) -> dict:
    gib, device = device_gib(config)
    longest = tokens.pop("longest")
    summary = {"stage": stage, "model": spec.name, "samples": len(rows), "global_batch": global_batch,
               "launch": {"mode": launch.mode, "processes": launch.processes, "source": launch.source},
               "tokens_per_sample": tokens, "longest_sample": longest,
               "parameters": {"total": memory.pop("_params"), "trainable": memory.pop("_trainable")},
               "memory_gib": mm.to_gib(memory),
               "setup": {"weight_dtype": setup.weight_dtype, "activation_bytes": setup.activation_bytes,
                         "attention": setup.attention, "lora": setup.use_lora, "lora_r": setup.lora_r,
                         "gradient_checkpointing": bool(config.gradient_checkpointing),
                         "per_device_batch": config.per_device_train_batch_size},
               "device": {"name": device, "gib": round(gib, 1), "fits": memory["total"] / mm.GIB <= gib}}
    if rewards is not None:
        summary["rewards"] = rewards
    return summary


def format_table(summary: dict) -> str:
    """The human-readable preflight report."""
    t, m, launch = summary["tokens_per_sample"], summary["memory_gib"], summary["launch"]
    longest, setup = summary["longest_sample"], summary["setup"]
    lines = [f"preflight {summary['stage']}  {summary['model']}  launch {launch['mode']} x{launch['processes']}"
             f" ({launch['source']})",
             f"samples {summary['samples']}  global batch {summary['global_batch']}  per device "
             f"{setup['per_device_batch']}  parameters {summary['parameters']['total'] / 1e6:,.1f} M "
             f"(trainable {summary['parameters']['trainable'] / 1e6:,.2f} M)",
             f"tokens/sample  p50 {t['p50']}  p95 {t['p95']}  max {t['max']}  over {t['limit_source']} "
             f"{t['max_length']}: {t['over_max_length']} {t['over_ids'] or ''}",
             f"  longest {longest['id']}: prompt {longest['prompt']} (video {longest['video']} from "
             f"{longest['frames']} frames, image {longest['image']}, audio {longest['audio']}), answer "
             f"{longest['answer']}",
             f"memory per device, GiB ({setup['weight_dtype']} weights, {setup['activation_bytes']}-byte "
             f"activations, {setup['attention']})"]
    rows = [("weights", m["weights"]), ("trainable state (grad + AdamW)", m["trainable_state"]),
            ("activations at the loss (layers + logits)", m["activations"]),
            ("  layers, checkpointing on", m["activations_layers_checkpointing"]),
            ("  layers, checkpointing off", m["activations_layers_no_checkpointing"]),
            ("  logits and loss", m["logits"]), ("vision tower working set", m["towers"]),
            ("generation (GRPO rollouts / reference)", m["generation"]), ("colocated vLLM", m["vllm"]),
            ("total", m["total"])]
    lines += [f"  {name:<44}{value:>9.2f}" for name, value in rows]
    device = summary["device"]
    lines.append(f"  device: {device['name']}, {device['gib']} GiB: {'fits' if device['fits'] else 'DOES NOT FIT'}"
                 " (CUDA context and allocator fragmentation not included)")
    if "rewards" in summary:
        lines.append(f"rewards: {', '.join(summary['rewards'])}")
    return "\n".join(lines)

