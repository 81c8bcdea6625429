"""Real-width models on this CPU: one LoRA SFT step (forward + backward) of each published width at reduced depth,
in fp32 and under bf16 autocast, with the real tokenizer and processor on a SynthFACS clip at 448x448.

    flock /tmp/affect_heavy.lock python benchmarks/real_width.py [--like qwen2.5-omni-7b qwen2.5-vl-7b] [--layers 2]

The 7B widths run here only (CI keeps one 3B-width model, tests/real_width_fixtures.py). Each (width, precision)
runs in its own process, so its peak RSS is its own: the model is built once per width into --work, then loaded
in fp32, LoRA (r=8) put on the language model, and `--steps` steps timed after one warm-up step. The ratio
bf16/fp32 of the median step compares the two precisions in this run; min-max of the steps is the spread.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIKES = ("qwen2.5-omni-3b", "qwen2.5-omni-7b", "qwen2.5-vl-7b")


def _clip(work: Path) -> Path:
    from affect_mllm.schema import write_manifest
    from affect_mllm.synthfacs.generate import GeneratorSettings, write_clip

    manifest = work / "synthfacs_448" / "train.jsonl"
    if not manifest.is_file():
        settings = GeneratorSettings(seed=11, split="train", difficulty=1, duration_s=2.0, size=448)
        write_manifest(manifest, [write_clip(settings, manifest.parent, 0)])
    return manifest


def _batch(model_dir: Path, manifest: Path, processor, spec):
    from affect_mllm.media import load_sample_media
    from affect_mllm.models.inputs import conversation_for, encode_for_training
    from affect_mllm.schema import read_manifest

    data = read_manifest(manifest)
    sample = data.samples[0]
    media = load_sample_media(video=data.media_path(sample, "video"), settings=spec.media)
    conversation = conversation_for(sample, media, "ov_emotion", spec)
    answer = "<think>Cheeks raised (AU6), lip corners pulled (AU12).</think><answer>emotions: happy</answer>"
    return encode_for_training(processor, spec, [conversation], [answer])


def measure_one(model_dir: Path, manifest: Path, precision: str, steps: int) -> dict:
    """Time `steps` LoRA SFT steps of the model in `precision` ("fp32" or "bf16-autocast")."""
    import torch
    from peft import get_peft_model

    from affect_mllm.models.registry import load_model_and_processor
    from training.configs import ModelArguments
    from training.lora import lora_config

    model, processor, spec = load_model_and_processor(str(model_dir))
    model = get_peft_model(model, lora_config(spec, ModelArguments(lora_r=8))).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = _batch(model_dir, manifest, processor, spec)
    times = []
    for _ in range(steps + 1):  # the first step warms up allocators and kernels
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-autocast"):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return {"tokens": int(batch["input_ids"].shape[1]), "loss": float(loss), "step_s": times[1:],
            "parameters": sum(p.numel() for p in model.parameters()),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def _run_child(model_dir: Path, manifest: Path, precision: str, steps: int) -> dict:
    command = [sys.executable, __file__, "--child", str(model_dir), str(manifest), precision, str(steps)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{model_dir.name} {precision} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--like", nargs="+", default=["qwen2.5-omni-7b", "qwen2.5-vl-7b"], choices=LIKES)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="Build folder (default: a temporary one).")
    args = parser.parse_args(argv)
    from affect_mllm.models.real_width import build_real_width

    with tempfile.TemporaryDirectory(prefix="real-width-") as scratch:
        work = args.work or Path(scratch)
        manifest = _clip(work)
        results = {}
        for like in args.like:
            folder = work / f"{like}-{args.layers}"
            start = time.perf_counter()
            if not (folder / "config.json").is_file():
                build_real_width(folder, like, args.layers)
            build_s = time.perf_counter() - start
            runs = {precision: _run_child(folder, manifest, precision, args.steps)
                    for precision in ("fp32", "bf16-autocast")}
            fp32, bf16 = (statistics.median(runs[p]["step_s"]) for p in ("fp32", "bf16-autocast"))
            results[like] = {"build_s": round(build_s, 1), "bf16_over_fp32": round(bf16 / fp32, 3), **runs}
            print(f"{like:18s} {runs['fp32']['parameters'] / 1e9:.2f} B params, {runs['fp32']['tokens']} tokens: "
                  f"fp32 {fp32:.1f} s/step ({runs['fp32']['peak_rss_gb']:.1f} GB), bf16 autocast {bf16:.1f} s/step "
                  f"({runs['bf16-autocast']['peak_rss_gb']:.1f} GB), ratio {bf16 / fp32:.2f}")
    summary = {"layers": args.layers, "steps": args.steps, "results": results}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        folder, clip, precision, steps = sys.argv[2:6]
        print(json.dumps(measure_one(Path(folder), Path(clip), precision, int(steps))))
    else:
        main()
