"""Two checks of the preflight's memory model (`affect_mllm/memory_model.py`, `training/preflight.py`).

Run: flock /tmp/affect_heavy.lock .venv/bin/python benchmarks/preflight_check.py [--work DIR] [--published-only]
     (the CPU part builds a 2-layer Qwen2.5-Omni-3B-width model and trains it for a few steps: about 10 minutes
     on 2 cores, under 10 GB)

(a) CPU, measured. The real recipes (recipes/qwen2.5-omni-3b/{sft,grpo}.yaml) run a few real steps on a
    real-width 2-layer model (`affect_mllm.models.real_width`, random init) with SynthFACS clips at the recipes'
    media settings, in float32 on the CPU (`--use_cpu true --bf16 false --dtype float32`): SFT with gradient
    checkpointing on and off, then GRPO (HF rollouts) from the SFT adapter. Each runs in a subprocess that resets
    its peak-RSS counter when training starts (`/proc/self/clear_refs`) and reads it when training ends
    (VmHWM): the measured figure is that peak minus the process's RSS before the model loaded (the interpreter
    and libraries, which a GPU estimate does not hold). The estimate is the same command's `--dry_run true` JSON.
    Ratio = estimate / measured (0.75-1.33 asked).
(b) Published. Qwen2.5-Omni's model card (github.com/QwenLM/Qwen2.5-Omni README.md, "Minimum GPU memory
    requirements"; the same table is on the Hugging Face model cards) lists, for inference with transformers in
    BF16 with attn_implementation="flash_attention_2" ("theoretical minimum", real use at least 1.2x higher):
    3B 18.38 / 22.43 / 28.22 GB and 7B 31.11 / 41.85 / 60.19 GB for 15 / 30 / 60 s videos. The settings are the
    card's own example: the whole checkpoint loaded (thinker, talker, token2wav: `generate` returns speech, so the
    thinker keeps every layer's hidden states for the talker), `use_audio_in_video=True`, qwen-omni-utils'
    video defaults (2 fps, 128-768 merged tokens per 2 frames); the clip's size is not stated: 1280x720 is assumed
    (4:3 footage gives 768 instead of 720 tokens a second, printed as a sensitivity). Our estimate is
    `memory_model.inference_bytes` with the prompt's tokens counted by the real tokenizer, template and processor
    formulas. The card says GB: ratios use 1e9 bytes (GiB ratios printed beside). The 7B config we keep has no
    talker; its talker widths (hidden 896, ffn 18944, 24 layers, 12 heads, 4 KV heads, embedding 3584, 8448
    codes) are those a public test of Alibaba's RTP-LLM uses as the 7B checkpoint's talker_config
    (rtp_llm/test/omni/test_talker.py), token2wav as in the 3B file. Ratio = estimate / published (0.8-1.25).

The last line is JSON: {"cpu_ratio_sft", "cpu_ratio_sft_no_checkpointing", "cpu_ratio_grpo", "published_ratios":
[...], "published": [...], "cpu": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from cache_key import cached, file_digest

REPO = Path(__file__).resolve().parents[1]
PUBLISHED_GB = {"qwen2.5-omni-3b": {15: 18.38, 30: 22.43, 60: 28.22}, "qwen2.5-omni-7b": {15: 31.11, 30: 41.85,
                                                                                        60: 60.19}}
TALKER_7B = {"hidden_size": 896, "intermediate_size": 18944, "num_hidden_layers": 24, "num_attention_heads": 12,
             "num_key_value_heads": 4, "head_dim": 128, "embedding_size": 3584, "vocab_size": 8448}
CARD_SYSTEM = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
               "auditory and visual inputs, as well as generating text and speech.")
CARD_VIDEO = {"min_pixels": 128 * 28 * 28, "max_pixels": 768 * 28 * 28, "fps": 2.0}
GENERATED_TOKENS = 512  # the card's example answers in text and speech; its answer length is not stated


def checkpoint_config(name: str):
    """The whole checkpoint's config (thinker, talker, token2wav) for the inference check."""
    from transformers import AutoConfig

    from affect_mllm.models.published import published_json
    from affect_mllm.models.upstream_warnings import quiet_default_talker_warnings

    quiet_default_talker_warnings()  # transformers' 7 lines for every whole Qwen2.5-Omni config, ours or published
    config = published_json(name)
    if "talker_config" not in config:
        base = published_json("qwen2.5-omni-3b")
        config = {**config, "talker_config": {**base["talker_config"], **TALKER_7B},
                  "token2wav_config": base["token2wav_config"], "enable_audio_output": True}
    return AutoConfig.for_model(**config)


def card_prompt_tokens(seconds: int, width: int, height: int) -> dict:
    """Tokens of the card's example prompt (system text, one video with its audio) for a clip of `seconds`."""
    from affect_mllm.media import MediaSettings
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.token_budget import MediaTokens, VisionGeometry, audio_tokens, expanded_length, placeholder_ids
    from affect_mllm.token_budget import video_tokens as count_video

    processor = build_published_processor("qwen2.5-omni")
    settings = MediaSettings(fps=2.0, min_pixels=CARD_VIDEO["min_pixels"], max_pixels=CARD_VIDEO["max_pixels"])
    frames = int(seconds * CARD_VIDEO["fps"])
    media = MediaTokens(video=count_video(frames, height, width, settings, VisionGeometry()),
                        audio=audio_tokens(seconds * 16000, 16000, max_seconds=300))  # the card's 300 s chunks
    messages = [{"role": "system", "content": [{"type": "text", "text": CARD_SYSTEM}]},
                {"role": "user", "content": [{"type": "video"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = processor.tokenizer(text)["input_ids"]
    total = expanded_length(ids, placeholder_ids(processor.tokenizer, "qwen2_5_omni"), media, audio_in_video=True)
    return {"prompt": total, "video": media.video, "audio": media.audio, "patches": media.video * 4}


def published_check() -> list[dict]:
    """The inference estimate against each published figure."""
    from affect_mllm.memory_model import GIB, inference_bytes, model_shape
    from affect_mllm.models.registry import MODEL_REGISTRY

    rows = []
    for name, figures in PUBLISHED_GB.items():
        spec = MODEL_REGISTRY[name]
        shape = model_shape(checkpoint_config(name), spec.arch, spec.lora_target_regex, whole_checkpoint=True)
        for seconds, published in figures.items():
            row = {"model": name, "seconds": seconds, "published_gb": published, "parameters": shape.total_params}
            for label, (width, height) in (("16:9", (1280, 720)), ("4:3", (1024, 768))):
                tokens = card_prompt_tokens(seconds, width, height)
                estimate = inference_bytes(shape, tokens["prompt"], tokens["patches"], GENERATED_TOKENS,
                                           keep_hidden_states=True)
                row[label] = {"tokens": tokens, "estimate_gb": round(estimate["total"] / 1e9, 2),
                              "ratio": round(estimate["total"] / 1e9 / published, 3),
                              "ratio_if_gib": round(estimate["total"] / GIB / published, 3),
                              "parts_gb": {k: round(v / 1e9, 2) for k, v in estimate.items()}}
            rows.append(row)
    return rows


def child(stage: str, argv: list[str]) -> None:
    """Run one recipe in this process and print its memory: RSS before the model loads, peak RSS while training."""
    import importlib

    import transformers

    module = importlib.import_module(f"training.{stage}")
    import peft  # noqa: F401  (imported before the baseline: libraries are not the model's memory)

    def rss_kib(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"no {field} in /proc/self/status")

    record = {"before_load_kib": rss_kib("VmRSS")}
    original = transformers.Trainer.train

    def train(self, *args, **kwargs):
        Path("/proc/self/clear_refs").write_text("5")  # the peak counter starts again at the current RSS
        record["train_start_kib"] = rss_kib("VmRSS")
        try:
            return original(self, *args, **kwargs)
        finally:
            record["train_peak_kib"] = rss_kib("VmHWM")

    transformers.Trainer.train = train
    module.main(argv)
    print(json.dumps(record))


def run(stage: str, argv: list[str], dry_run: bool) -> dict:
    """The last JSON line of a recipe run in a subprocess (a measured child, or the dry run's summary)."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error"}
    command = ([sys.executable, "-m", f"training.{stage}", *argv, "--dry_run", "true"] if dry_run
               else [sys.executable, str(Path(__file__).resolve()), "--child", stage, "--", *argv])
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:5])} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_case(stage: str, argv: list[str]) -> dict:
    """Measured peak and estimate of one run; the ratio estimate / measured."""
    measured = run(stage, argv, dry_run=False)
    estimate = run(stage, argv, dry_run=True)
    net = (measured["train_peak_kib"] - measured["before_load_kib"]) * 1024 / 2**30
    total = estimate["memory_gib"]["total"]
    return {"measured_gib": round(net, 3), "peak_rss_gib": round(measured["train_peak_kib"] / 2**20, 3),
            "before_load_gib": round(measured["before_load_kib"] / 2**20, 3), "estimate_gib": total,
            "estimate": estimate["memory_gib"], "tokens": estimate["tokens_per_sample"],
            "ratio": round(total / net, 3)}


def cpu_check(work: Path) -> dict:
    """Real-width 2-layer 3B model, SynthFACS clips, the real recipes for a few steps on CPU."""
    from affect_mllm.models.real_width import build_real_width
    from affect_mllm.synthfacs.generate import generate_synthfacs

    models = file_digest(REPO / "affect_mllm" / "models")
    model = cached(work / "model-3b-2l", {"code": models, "like": "qwen2.5-omni-3b", "layers": 2},
                   lambda out: build_real_width(out, "qwen2.5-omni-3b", 2))
    data = cached(work / "synthfacs", {"code": file_digest(REPO / "affect_mllm" / "synthfacs"), "n": 6},
                  lambda out: generate_synthfacs(out, 6, seed=3, split="train", difficulty=1))
    common = ["--model_name_or_path", str(model), "--train_manifest", str(data / "train.jsonl"), "--use_cpu", "true",
              "--bf16", "false", "--dtype", "float32", "--report_to", "none", "--per_device_train_batch_size", "2",
              "--gradient_accumulation_steps", "1", "--logging_steps", "1", "--save_strategy", "no"]
    sft_out = work / "sft"
    sft = ["--config", "recipes/qwen2.5-omni-3b/sft.yaml", *common, "--eval_manifest", str(data / "train.jsonl"),
           "--eval_strategy", "no", "--max_steps", "2", "--output_dir", str(sft_out)]
    results = {"sft": cpu_case("sft", sft),
               "sft_no_checkpointing": cpu_case("sft", [*sft, "--gradient_checkpointing", "false"])}
    grpo = ["--config", "recipes/qwen2.5-omni-3b/grpo.yaml", *common, "--adapter_path", str(sft_out),
            "--num_generations", "2", "--max_completion_length", "32", "--max_steps", "2", "--use_vllm", "false",
            "--output_dir", str(work / "grpo")]
    results["grpo"] = cpu_case("grpo", grpo)
    return results


def report(published: list[dict], cpu: dict | None) -> dict:
    """Print both tables; return the JSON figures."""
    print("(b) published inference memory (Qwen2.5-Omni model card) vs our estimate, GB")
    for row in published:
        wide, square = row["16:9"], row["4:3"]
        print(f"  {row['model']:<16}{row['seconds']:>3} s  tokens {wide['tokens']['prompt']:>6}  published "
              f"{row['published_gb']:>6.2f}  estimate {wide['estimate_gb']:>6.2f}  ratio {wide['ratio']:.3f} "
              f"(if GiB {wide['ratio_if_gib']:.3f}; 4:3 clip {square['ratio']:.3f})")
    figures = {"published_ratios": [row["16:9"]["ratio"] for row in published], "published": published}
    if cpu:
        print("(a) CPU, real-width 2-layer Qwen2.5-Omni-3B, float32: peak RSS while training - RSS before loading")
        for case, result in cpu.items():
            print(f"  {case:<22} measured {result['measured_gib']:>6.2f} GiB  estimate {result['estimate_gib']:>6.2f}"
                  f" GiB  ratio {result['ratio']:.3f}  (tokens max {result['tokens']['max']})")
        figures.update(cpu_ratio_sft=cpu["sft"]["ratio"], cpu_ratio_grpo=cpu["grpo"]["ratio"],
                       cpu_ratio_sft_no_checkpointing=cpu["sft_no_checkpointing"]["ratio"], cpu=cpu)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "affect-mllm" / "preflight_check")
    parser.add_argument("--published-only", action="store_true", help="skip the CPU measurement (seconds)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        child(args.child, [a for a in rest if a != "--"])
        return
    published = published_check()
    cpu = None if args.published_only else cpu_check(args.work)
    print(json.dumps(report(published, cpu)))


if __name__ == "__main__":
    main()
