"""What do synthesized rationales add over the pool's labels? Two SFT arms on the same seed set and the same pool.

Run: .venv/bin/python benchmarks/synthesis.py                 (full size: about 26 minutes on 2 CPU cores)
     .venv/bin/python benchmarks/synthesis.py --quick         (smoke run: a few minutes; the figures mean nothing)
     .venv/bin/python benchmarks/synthesis.py --base tiny-omni-base --keep runs/bench-synthesis

SynthFACS gives three disjoint sets: a seed set with reference rationales, a pool of labelled clips whose
rationales are dropped (labels only), and a held-out set (val split: other identities and rationale templates).
The seed's reference rationales are the perception rationales written from its labels (`targets.
sample_perception_rationale`: the AUs with intensities, then the voice): the 2-layer tiny model cannot learn
SynthFACS's 42 prose templates from 100 clips (its answers loop and never reach <answer>), so prose seeds would
measure nothing; `--seed_rationales reference` keeps the prose for larger models.
1. The generator: SFT of the base on the seed set (recipes/tiny-omni/sft.yaml, overrides below).
2. One synthesis round (recipes/tiny-omni/synthesis.yaml: the GRPO rewards, weights and keep rule): the generator
   writes k candidates per pool clip at temperature 0.6 (at 1.0, 23 % of the clips got a verified candidate; at
   0.6, 33 %: a 100-clip generator garbles the answer after the emotion word when sampled hot); the verified ones
   are kept. Cleaning keeps every verified clip (no de-duplication, no class balancing): perception rationales of
   two clips with the same AUs and voice are the same words, so de-duplication dropped 92 of 159 verified clips
   (even at threshold 1.0), and balancing to the rarest class threw away most of the rest: the arms would barely
   differ.
3. Two arms, each an SFT of the base with the same recipe, steps and seed:
   - seed_plus_labels: seed + pool with labels only (answers without rationales),
   - seed_plus_synth:  seed + the same pool, the kept clips carrying their synthetic rationales;
   both train on the same labels, so the difference is what the rationales add.
4. Each arm answers the held-out clips greedily (au_reasoning prompt): emotion-wheel F (project wheels, level 1)
   of the answered emotion against the open-vocabulary labels, AU F1 (mean per-AU) of the AUs the rationale cites
   (as benchmarks/learning.py measures it: what a rationale teaches), and rationale grounding (share of the AUs
   cited in <think> that the labels hold; null when no answer cites one); beside them the AU F1 of the answer's
   `aus:` field, the share of answers whose rationale cites an AU, and the format rate.
5. Grounding of the kept candidates against all (unfiltered) candidates of the synthesis round.
The last line is JSON: {"seed_plus_labels": {"wheel_f", "au_f1", "grounding"}, "seed_plus_synth": {...},
"grounding_kept", "grounding_unfiltered"}.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from affect_mllm.schema import Manifest, read_manifest, write_manifest

REPO = Path(__file__).resolve().parents[1]
SFT_RECIPE = REPO / "recipes" / "tiny-omni" / "sft.yaml"
SYNTHESIS_RECIPE = REPO / "recipes" / "tiny-omni" / "synthesis.yaml"
EVAL_TASK = "au_reasoning"  # its answer gives both the emotion and the AUs; its rationale cites AUs
FULL = {"seed": 100, "pool": 400, "heldout": 100, "steps": 300, "candidates": 4, "max_new_tokens": 160}
QUICK = {"seed": 8, "pool": 8, "heldout": 8, "steps": 4, "candidates": 2, "max_new_tokens": 32}


def make_sets(out: Path, sizes: dict, seed: int, difficulty: int, seed_rationales: str) -> dict[str, Path]:
    """Seed (with rationales), pool (labels only) and held-out SynthFACS manifests."""
    from affect_mllm.synthfacs.generate import generate_synthfacs
    from affect_mllm.targets import sample_perception_rationale

    seed_set = generate_synthfacs(out / "seed", sizes["seed"], seed=seed, split="train", difficulty=difficulty)
    if seed_rationales == "perception":
        seeds = read_manifest(seed_set)
        samples = [s.model_copy(update={"rationale": sample_perception_rationale(s)}) for s in seeds.samples]
        seed_set = write_manifest(out / "seed" / "perception.jsonl", samples)
    pool_full = generate_synthfacs(out / "pool", sizes["pool"], seed=seed + 1, split="train", difficulty=difficulty)
    heldout = generate_synthfacs(out / "heldout", sizes["heldout"], seed=seed, split="val", difficulty=difficulty)
    pool = read_manifest(pool_full)
    labels_only = [s.model_copy(update={"rationale": None}) for s in pool.samples]  # ids carry the seed: disjoint
    return {
        "seed": seed_set,
        "pool": write_manifest(out / "pool" / "labels_only.jsonl", labels_only),
        "heldout": heldout,
    }


def train_sft(base: str, train_manifest: Path, output_dir: Path, steps: int) -> Path:
    """SFT of a new LoRA on the base through the real recipe script; returns the adapter folder.

    Every SFT trains on each record's own rationale ("reference" style: the seed's, the kept synthetic ones, or
    none for labels-only records), so what the arms learn is what their manifests hold.
    """
    from training.sft import main as sft_main

    if (output_dir / "adapter_model.safetensors").is_file():
        return output_dir  # --keep: a finished arm is reused
    return Path(
        sft_main(
            [
                "--config",
                str(SFT_RECIPE),
                "--model_name_or_path",
                base,
                "--train_manifest",
                str(train_manifest),
                "--output_dir",
                str(output_dir),
                "--max_steps",
                str(steps),
                "--eval_manifest",
                "",
                "--report_to",
                "none",
                "--save_steps",
                str(10 * steps),
                "--logging_steps",
                str(max(1, steps // 10)),
                "--rationale_style",
                "reference",
            ]
        )
    )


def synthesize(base: str, generator: Path, pool: Path, output_dir: Path, sizes: dict, backend: str) -> Path:
    """One synthesis round with the tiny recipe's rewards and keep rule; returns the output folder."""
    from data_synthesis.config import parse_args
    from data_synthesis.loop import run_synthesis

    args, rewards = parse_args(
        [
            "--config",
            str(SYNTHESIS_RECIPE),
            "--model_name_or_path",
            base,
            "--adapter_path",
            str(generator),
            "--pool_manifests",
            str(pool),
            "--output_dir",
            str(output_dir),
            "--rounds",
            "1",
            "--backend",
            backend,
            "--candidates",
            str(sizes["candidates"]),
            "--max_new_tokens",
            str(sizes["max_new_tokens"]),
            "--regenerate_existing",
            "false",
            "--temperature",
            "0.6",
            "--dedup_threshold",
            "1.1",
            "--balance",
            "false",
        ]
    )
    args.seed_manifest, args.sft_recipe = None, None  # this benchmark trains its arms itself
    run_synthesis(args, rewards)
    return output_dir


def synth_arm_manifest(pool: Path, shard: Path, dest: Path) -> Path:
    """The pool with each kept clip's synthetic rationale (the others keep labels only), next to `dest`."""
    import os

    kept = {s.source["clip_id"]: s.rationale for s in read_manifest(shard).samples}
    manifest = read_manifest(pool)
    root = os.path.relpath(manifest.root, dest.parent)
    samples = [
        s.model_copy(update={"rationale": kept.get(s.id), "video": f"{root}/{s.video}"}) for s in manifest.samples
    ]
    return write_manifest(dest, samples, media_roots=[root])


def arm_manifest(parts: list[Path], dest: Path) -> Path:
    """Seed + pool parts as one training manifest."""
    from data_synthesis.shard import write_training_manifest

    return write_training_manifest(dest, [read_manifest(p) for p in parts])


def evaluate_arm(base: str, adapter: Path, heldout: Manifest, backend: str, max_new_tokens: int) -> dict:
    """Greedy answers on the held-out clips -> wheel F, AU F1 and rationale grounding."""
    from affect_mllm.lexicon import project_wheels
    from affect_mllm.metrics import au_f1, grounding
    from affect_mllm.metrics.wheel import wheel_scores
    from inference.engine import SamplingSettings, load_engine, request_from_sample

    engine = load_engine(base, backend=backend, adapters={"arm": str(adapter)})
    try:
        requests = [request_from_sample(s, heldout, EVAL_TASK, engine.spec, adapter="arm") for s in heldout.samples]
        answers = [c[0].answer for c in engine.generate(requests, SamplingSettings(max_new_tokens=max_new_tokens))]
    finally:
        engine.close()
    gold_aus = [s.au_set() or set() for s in heldout.samples]
    return {
        "wheel_f": wheel_scores(
            [s.emotions or [s.emotion] for s in heldout.samples],
            [list(a.emotion_words) for a in answers],
            project_wheels(),
        )["f"],
        "au_f1": au_f1(gold_aus, [set(a.rationale_aus) for a in answers])["mean_f1"],
        "grounding": grounding([set(a.rationale_aus) for a in answers], gold_aus),
        "answer_au_f1": au_f1(gold_aus, [set(a.fields.aus or ()) for a in answers])["mean_f1"],
        "cites_aus": sum(bool(a.rationale_aus) for a in answers) / len(answers),
        "format_rate": sum(a.well_formed.all for a in answers) / len(answers),
    }


def candidate_grounding(synthesis_dir: Path, pool: Path) -> tuple[float, float]:
    """(kept, unfiltered) grounding of the round's candidates' rationales in the pool clips' AU labels."""
    from affect_mllm.answer import parse_answer
    from affect_mllm.jsonl import read_jsonl
    from affect_mllm.metrics import grounding

    gold = {s.id: s.au_set() or set() for s in read_manifest(pool).samples}
    folder = synthesis_dir / "round_1"
    every = [
        (r["id"], parse_answer(c["text"])) for r in read_jsonl(folder / "candidates.jsonl") for c in r["candidates"]
    ]
    kept = [
        (v["id"], parse_answer(v["kept"]["text"]))
        for v in read_jsonl(folder / "verified.jsonl")
        if v["kept"] is not None
    ]

    def share(pairs):
        return grounding([set(p.rationale_aus) for _, p in pairs], [gold[i] for i, _ in pairs]) if pairs else math.nan

    return share(kept), share(every)


def run(args: argparse.Namespace, out: Path) -> dict:
    """Every step of the module docstring; prints progress; returns the headline figures."""
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    sets = make_sets(out / "data", sizes, args.seed, args.difficulty, args.seed_rationales)
    say(f"data: seed {sizes['seed']}, pool {sizes['pool']}, held-out {sizes['heldout']} clips")
    generator = train_sft(args.base, sets["seed"], out / "generator", sizes["steps"])
    say(f"generator trained on the seed set: {generator}")
    synthesis = synthesize(args.base, generator, sets["pool"], out / "synthesis", sizes, args.backend)
    shard = synthesis / "shards" / "shard-1.jsonl"
    say(f"synthesis: {len(read_manifest(shard))} of {sizes['pool']} pool clips kept a rationale")
    arms = {
        "seed_plus_labels": arm_manifest([sets["seed"], sets["pool"]], out / "arms" / "labels.jsonl"),
        "seed_plus_synth": arm_manifest(
            [sets["seed"], synth_arm_manifest(sets["pool"], shard, out / "arms" / "pool_synth.jsonl")],
            out / "arms" / "synth.jsonl",
        ),
    }
    heldout = read_manifest(sets["heldout"])
    result = {}
    for name, manifest in arms.items():
        adapter = train_sft(args.base, manifest, out / "arms" / name, sizes["steps"])
        result[name] = evaluate_arm(args.base, adapter, heldout, args.backend, sizes["max_new_tokens"])
        say(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in result[name].items()))
    result["grounding_kept"], result["grounding_unfiltered"] = candidate_grounding(synthesis, sets["pool"])
    say(f"grounding of kept candidates {result['grounding_kept']:.3f}, of all {result['grounding_unfiltered']:.3f}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes (8 clips per set, 4 SFT steps)")
    parser.add_argument("--base", default="tiny-omni-base", help="registry name or folder of the base model")
    parser.add_argument("--backend", default="hf", choices=("auto", "hf", "vllm"), help="engine backend")
    parser.add_argument("--difficulty", type=int, default=1, help="SynthFACS nuisance level of every set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seed_rationales", default="perception", choices=("perception", "reference"),
                        help="the seed set's rationales: perception (what the tiny model can learn) or the prose ones")
    parser.add_argument("--keep", type=Path, default=None, help="keep everything in this folder (and resume there)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args, args.keep or Path(tmp))
    print(
        json.dumps(
            {
                key: ({k: _rounded(v) for k, v in value.items()} if isinstance(value, dict) else _rounded(value))
                for key, value in result.items()
            }
        )
    )


def _rounded(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


if __name__ == "__main__":
    main()
