"""GRPO rollouts from the HF engine vs a colocated vLLM engine: seconds per step and rewards, same run otherwise.

Run: .venv/bin/python benchmarks/grpo_rollouts.py [--steps 10]      (about 10 minutes on 2 CPU cores)

The data, the SFT adapter and each GRPO run are cached under --work, keyed by what determines them
(benchmarks/cache_key.py): a changed recipe, base, argument or package code reruns them.

1. SynthFACS train clips (level 2) and a short LoRA SFT of `tiny-omni-base` (recipes/tiny-omni/sft.yaml): the
   policy GRPO starts from (an untrained policy rarely writes the answer grammar: every reward would be flat).
2. GRPO from that adapter through recipes/tiny-omni/grpo.yaml twice, the same seed and steps: `use_vllm: false`
   (HF generate on the live model) and `use_vllm: true` (vLLM engine, the LoRA reloaded after each update).
Seconds per step come from the trainer's own `train_runtime` (vLLM's start-up is inside it, amortised over the
run) and, steady, from the times the steps' completion files were written (the first step, with the engine start,
left out). The two runs sample different tokens (each engine has its own random streams), so their rewards agree only
in trend. The last line is JSON: {"hf_s_per_step", "vllm_s_per_step", "speedup", "hf_steady_s_per_step",
"vllm_steady_s_per_step", "steady_speedup", "hf_reward", "vllm_reward"}, rewards as (first, last) logged means.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cache_key import cached, code_digest, stored_key
from steps import recipe_key, run_module, synthfacs_set


def grpo_figures(output_dir: Path, steps: int) -> dict:
    """Seconds per step and first/last logged mean reward of a finished GRPO run."""
    history = json.loads((output_dir / f"checkpoint-{steps}" / "trainer_state.json").read_text())["log_history"]
    rewards = [row["reward"] for row in history if "reward" in row]
    runtime = json.loads((output_dir / "run_card.json").read_text())["metrics"]["train_runtime"]
    # each step's completions file is written right after its rollout: the time between the first and the last
    # is the steady per-step cost, without the vLLM engine's start (in the first step)
    written = sorted(f.stat().st_mtime for f in (output_dir / "completions").glob("step_*.jsonl"))
    steady = (written[-1] - written[0]) / (len(written) - 1)
    return {"s_per_step": runtime / steps, "steady_s_per_step": steady, "reward": (rewards[0], rewards[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="GRPO steps per run")
    parser.add_argument("--sft_steps", type=int, default=150)
    parser.add_argument("--clips", type=int, default=320)
    parser.add_argument("--work", type=Path, default=Path("runs/grpo_rollouts"),
                        help="data and adapters, reused while their cache key (recipe, base, data, code) holds")
    args = parser.parse_args()
    code = code_digest()
    train = synthfacs_set(args.work / "data", args.clips, seed=3, split="train", level=2, code=code)
    common = ["--model_name_or_path", "tiny-omni-base", "--train_manifest", str(train), "--report_to", "none",
              "--save_steps", "100000"]
    sft_args = [*common, "--max_steps", str(args.sft_steps), "--eval_manifest", ""]
    sft = cached(args.work / "sft", recipe_key(code, "recipes/tiny-omni/sft.yaml", "tiny-omni-base", train, sft_args),
                 lambda out: run_module("training.sft", ["--config", "recipes/tiny-omni/sft.yaml", *sft_args,
                                                         "--output_dir", str(out)]))
    figures = {}
    for mode in ("hf", "vllm"):
        grpo_args = [*common, "--adapter_path", str(sft), "--max_steps", str(args.steps), "--logging_steps", "1",
                     "--use_vllm", str(mode == "vllm").lower()]
        key = {**recipe_key(code, "recipes/tiny-omni/grpo.yaml", "tiny-omni-base", train, grpo_args),
               "adapter": stored_key(sft)["digest"]}
        out = cached(args.work / f"grpo-{mode}", key, lambda out, grpo_args=grpo_args: run_module(
            "training.grpo", ["--config", "recipes/tiny-omni/grpo.yaml", *grpo_args, "--output_dir", str(out)]))
        figures[mode] = grpo_figures(out, args.steps)
        print(f"{mode:5s} rollouts: {figures[mode]['s_per_step']:.1f} s/step "
              f"({figures[mode]['steady_s_per_step']:.1f} after the first), mean reward "
              f"{figures[mode]['reward'][0]:.3f} -> {figures[mode]['reward'][1]:.3f}", flush=True)
    print(json.dumps({
        "hf_s_per_step": round(figures["hf"]["s_per_step"], 2),
        "vllm_s_per_step": round(figures["vllm"]["s_per_step"], 2),
        "speedup": round(figures["hf"]["s_per_step"] / figures["vllm"]["s_per_step"], 2),
        "hf_steady_s_per_step": round(figures["hf"]["steady_s_per_step"], 2),
        "vllm_steady_s_per_step": round(figures["vllm"]["steady_s_per_step"], 2),
        "steady_speedup": round(figures["hf"]["steady_s_per_step"] / figures["vllm"]["steady_s_per_step"], 2),
        "hf_reward": [round(r, 3) for r in figures["hf"]["reward"]],
        "vllm_reward": [round(r, 3) for r in figures["vllm"]["reward"]],
    }))


if __name__ == "__main__":
    main()
