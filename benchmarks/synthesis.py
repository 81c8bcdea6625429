"""What do synthesized rationales add where real corpora are: clips labelled with an emotion and nothing else?

Run: .venv/bin/python benchmarks/synthesis.py                  (the emotion-only table; about 30 min on 2 CPU cores)
     .venv/bin/python benchmarks/synthesis.py --tables full_labels   (the second table: the pool keeps its labels)
     .venv/bin/python benchmarks/synthesis.py --quick          (smoke run: minutes; the figures mean nothing)

Three disjoint SynthFACS sets (level 1): a seed set with every label and its perception rationale
(`targets.sample_perception_rationale`: the AUs with intensities, then the voice, what the tiny model can learn); a
pool whose clips keep their emotion labels only (AU labels, rationales and voice labels hidden from training,
prompts and rewards: `au_labels: false`); a held-out set (val split: other identities) with every label, used for
evaluation only. The generator is an SFT of the base on the seed set. Arms, each an SFT of the base with the same
recipe, steps and seed, differing only in the rationales their pool records carry:
  labels_only  (a) seed + pool with emotion labels only (no rationale);
  round1       (b) seed + pool with the rationales the generator wrote unhinted, kept by the rewards that need no
               AU label (recipes/tiny-omni/synthesis_emotion_only.yaml: format, emotion wheel F, consistency of
               the cited AUs and voice cues with the answered emotion in the knowledge base);
  round2       (c) the model of (b) writes again over the same pool (another sampling seed); a clip keeps its
               round-2 rationale, else its round-1 one;
  hinted       (d) as (b), with the labelled emotion stated in the generator's prompt;
  templated    the pool with the perception rationale written from its hidden labels: perfect rationales, a
               control that could win (the ceiling of what (b) tries to write).
Each arm answers the held-out clips greedily with the au_reasoning prompt, as `affect-mllm predict` does, and
the one evaluation path scores them (benchmarks/heldout.py): emotion accuracy, wheel F, answer-field and rationale
AU F1, grounding, format rate, within-class F1 of the optional AUs, each with a bootstrap 95 % interval, and every
arm difference with a paired interval. Of each round's candidates: the keep rate and the grounding (in the hidden
labels) of the kept rationales and of all candidates. The label-free keep rule never sees an AU label, so "kept
minus all" is its selection effect on grounding; in the full-label table the rule contains the AU reward and the
same comparison is the rule restated. The loop works if round1 beats labels_only on AU F1 and grounding without
losing emotion accuracy, and round2 >= round1 (`verdict` in the JSON; a finding either way).

--tables full_labels gives the setting of the earlier benchmark (the pool keeps every label; generation hinted with the
emotion and AUs; recipes/tiny-omni/synthesis.yaml keeps with every GRPO reward, AU F1 included): full_labels_only,
full_synth and full_templated. Every step is cached under --work by what determines it (benchmarks/cache_key.py).
Last line JSON: {"labels_only", "round1", "round2", "hinted", "templated"} each with {"emotion_acc", "wheel_f",
"answer_au_f1", "rationale_au_f1", "grounding", "format_rate", "ci95"}, then "optional_aus", "keep", "differences",
"verdict"; "full_labels" with that table; "sizes", "minutes".
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from cache_key import cached, code_digest, file_digest, stored_key
from heldout import differences, figures, optional_au_f1, predict
from steps import REPO, recipe_key, run_module, synthfacs_set

from affect_mllm.schema import read_manifest, write_manifest

SFT_RECIPE = "recipes/tiny-omni/sft.yaml"
EMOTION_ONLY_RECIPE = "recipes/tiny-omni/synthesis_emotion_only.yaml"
FULL_LABEL_RECIPE = "recipes/tiny-omni/synthesis.yaml"
TASK = "au_reasoning"  # its answer gives both the emotion and the AUs; its rationale cites AUs
LEVEL = 1
FULL = {"seed_clips": 100, "pool_clips": 240, "heldout_clips": 100, "steps": 250, "candidates": 4,
        "max_new_tokens": 160}
QUICK = {"seed_clips": 8, "pool_clips": 8, "heldout_clips": 8, "steps": 4, "candidates": 2, "max_new_tokens": 32}
ARMS = ("labels_only", "round1", "round2", "hinted", "templated")
FULL_ARMS = ("full_labels_only", "full_synth", "full_templated")
PAIRS = (("labels_only", "round1"), ("round1", "round2"), ("round1", "hinted"), ("round1", "templated"),
         ("labels_only", "templated"))
FULL_PAIRS = (("full_labels_only", "full_synth"), ("full_synth", "full_templated"))


def make_sets(folder: Path, sizes: dict, seed: int, code: dict) -> dict[str, Path]:
    """Seed (perception rationales), pool (emotion-only, full-label and templated views) and held-out manifests.

    Every view of a set is written in the set's own folder, so its media paths stay as generated.
    """
    from affect_mllm.targets import sample_perception_rationale
    from data_synthesis.select import without_au_labels

    seed_set = synthfacs_set(folder / "seed", sizes["seed_clips"], seed=seed, split="train", level=LEVEL, code=code)
    pool = synthfacs_set(folder / "pool", sizes["pool_clips"], seed=seed + 1, split="train", level=LEVEL, code=code)
    heldout = synthfacs_set(folder / "heldout", sizes["heldout_clips"], seed=seed, split="val", level=LEVEL,
                            code=code)
    seeds = read_manifest(seed_set).samples
    full = read_manifest(pool).samples
    hidden = {"valence": None, "arousal": None, "face_emotion": None, "voice_emotion": None}
    emotion_only = [without_au_labels(s).model_copy(update=hidden) for s in full]
    return {
        "seed": write_manifest(folder / "seed" / "perception.jsonl",
                               [s.model_copy(update={"rationale": sample_perception_rationale(s)}) for s in seeds]),
        "emotion_only": write_manifest(folder / "pool" / "emotion_only.jsonl", emotion_only),
        "templated": write_manifest(folder / "pool" / "templated.jsonl", [
            e.model_copy(update={"rationale": sample_perception_rationale(s)}) for e, s in zip(emotion_only, full,
                                                                                                strict=True)]),
        "full_labels": write_manifest(folder / "pool" / "full_labels.jsonl",
                                      [s.model_copy(update={"rationale": None}) for s in full]),
        "full_templated": write_manifest(folder / "pool" / "full_templated.jsonl", [
            s.model_copy(update={"rationale": sample_perception_rationale(s)}) for s in full]),
        "heldout": heldout,
    }


def pool_with(pool: Path, rationales: dict[str, str], name: str) -> Path:
    """The pool manifest with these clips' rationales (the others as they are), next to it."""
    samples = [s.model_copy(update={"rationale": rationales.get(s.id, s.rationale)}) for s in read_manifest(pool)]
    return write_manifest(pool.with_name(f"{name}.jsonl"), samples)


def kept_rationales(synthesis_dir: Path) -> dict[str, str]:
    """Clip id -> the rationale its round kept (the round's shard)."""
    from data_synthesis.shard import read_shard

    return {s.source["clip_id"]: s.rationale for s in read_shard(synthesis_dir / "shards" / "shard-1.jsonl")}


@dataclass
class Bench:
    """The benchmark's cached steps: SFTs, synthesis rounds and predictions, under one work folder."""

    work: Path
    base: str
    sizes: dict
    seed: int
    code: dict
    backend: str = "hf"
    adapters: dict[str, Path] = field(default_factory=dict)

    def sft(self, name: str, parts: list[Path]) -> Path:
        """An SFT of the base on seed + pool part (recipes/tiny-omni/sft.yaml, each record's own rationale)."""
        from data_synthesis.shard import write_training_manifest

        manifest = write_training_manifest(self.work / "arms" / f"{name}.jsonl", [read_manifest(p) for p in parts])
        steps = self.sizes["steps"]
        argv = ["--model_name_or_path", self.base, "--max_steps", str(steps), "--eval_manifest", "", "--report_to",
                "none", "--save_steps", str(10 * steps), "--logging_steps", str(max(1, steps // 10)),
                "--rationale_style", "reference", "--seed", str(self.seed)]
        self.adapters[name] = cached(self.work / "adapters" / name,
                                     recipe_key(self.code, SFT_RECIPE, self.base, manifest, argv),
                                     lambda out: run_module("training.sft", ["--config", SFT_RECIPE, *argv,
                                                                             "--train_manifest", str(manifest),
                                                                             "--output_dir", str(out)]))
        return self.adapters[name]

    def synthesize(self, name: str, recipe: str, writer: Path, pool: Path, *, seed: int, hinted: bool) -> Path:
        """One synthesis round of `writer` over `pool` with `recipe`'s rewards and keep rule (no retraining)."""
        argv = ["--config", str(REPO / recipe), "--model_name_or_path", self.base, "--adapter_path", str(writer),
                "--pool_manifests", str(pool), "--rounds", "1", "--backend", self.backend, "--candidates",
                str(self.sizes["candidates"]), "--max_new_tokens", str(self.sizes["max_new_tokens"]), "--seed",
                str(seed), "--hinted", str(hinted).lower(), "--temperature", "0.6", "--dedup_threshold", "1.1",
                "--balance", "false"]
        key = {"code": self.code, "recipe": file_digest(REPO / recipe), "writer": stored_key(writer)["digest"],
               "pool": file_digest(pool), "args": argv[2:]}

        def build(out: Path) -> None:
            from data_synthesis.config import parse_args
            from data_synthesis.loop import run_synthesis

            args, rewards = parse_args([*argv, "--output_dir", str(out)])
            args.seed_manifest, args.sft_recipe = None, None  # the benchmark trains its arms itself
            run_synthesis(args, rewards)

        return cached(self.work / "synthesis" / name, key, build)

    def predictions(self, arms: tuple[str, ...], gold: Path) -> dict[str, Path]:
        """Each arm's greedy held-out answers (au_reasoning), cached by adapter, gold and settings."""
        from inference.engine import load_engine

        engine = None
        out = {}
        for arm in arms:
            key = {"code": self.code, "adapter": stored_key(self.adapters[arm])["digest"], "gold": file_digest(gold),
                   "task": TASK, "max_new_tokens": self.sizes["max_new_tokens"]}

            def build(folder: Path, arm: str = arm) -> None:
                nonlocal engine
                if engine is None:
                    engine = load_engine(self.base, backend=self.backend,
                                         adapters={a: str(self.adapters[a]) for a in arms})
                predict(engine, gold, folder / "pred.jsonl", task=TASK, adapter=arm,
                        max_new_tokens=self.sizes["max_new_tokens"])

            out[arm] = cached(self.work / "predictions" / arm, key, build) / "pred.jsonl"
        if engine is not None:
            engine.close()
        return out


def keep_stats(synthesis_dir: Path, pool_full: Path) -> dict:
    """Keep rate, and grounding (in the pool's hidden AU labels) of the kept rationales and of every candidate."""
    import numpy as np

    from affect_mllm.evaluation import benchmark_figures, evaluate_files
    from affect_mllm.jsonl import read_jsonl, write_jsonl
    from affect_mllm.metrics.bootstrap import bootstrap_ci

    labels = {s.id: s for s in read_manifest(pool_full).samples}
    folder = synthesis_dir / "round_1"
    verdicts = list(read_jsonl(folder / "verified.jsonl"))
    texts = {(r["id"], r["attempt"], c["index"]): c["text"]
             for r in read_jsonl(folder / "candidates.jsonl") for c in r["candidates"]}
    kept = {(v["id"], v["kept"]["attempt"], v["kept"]["index"]) for v in verdicts if v["kept"] is not None}
    out = {"pool": len(verdicts), "candidates": len(texts), "kept": len(kept)}
    flags = np.array([v["kept"] is not None for v in verdicts], dtype=float)
    out["keep_rate"] = float(flags.mean()) if len(flags) else math.nan
    out["ci95"] = {"keep_rate": bootstrap_ci(lambda idx: float(flags[idx].mean()), len(flags))}
    for name, keys in (("kept", sorted(kept)), ("all", sorted(texts))):
        if not keys:
            out[f"grounding_{name}"], out["ci95"][f"grounding_{name}"] = None, None
            continue
        ids = [f"{clip}#{attempt}#{index}" for clip, attempt, index in keys]
        pred, gold = folder / f"candidates_{name}.pred.jsonl", folder / f"candidates_{name}.gold.jsonl"
        write_jsonl(pred, [{"id": i, "raw": texts[k]} for i, k in zip(ids, keys, strict=True)])
        write_jsonl(gold, [{"id": i, "emotion": labels[clip].emotion,
                            "aus": [a.model_dump() for a in labels[clip].aus]}
                           for i, (clip, _, _) in zip(ids, keys, strict=True)])
        scored = benchmark_figures(evaluate_files(pred, gold, task=TASK))
        out[f"grounding_{name}"], out["ci95"][f"grounding_{name}"] = scored["grounding"], scored["ci95"]["grounding"]
    kept_g, all_g = out["grounding_kept"], out["grounding_all"]
    out["selection_effect_on_grounding"] = None if kept_g is None or all_g is None else kept_g - all_g
    return out


def emotion_only_table(bench: Bench, sets: dict[str, Path]) -> dict:
    """Arms (a)-(d) and templated on the emotion-only pool; keep statistics of each round."""
    generator = bench.sft("generator", [sets["seed"]])
    pool = sets["emotion_only"]
    bench.sft("labels_only", [sets["seed"], pool])
    bench.sft("templated", [sets["seed"], sets["templated"]])
    rounds = {"round1": bench.synthesize("round1", EMOTION_ONLY_RECIPE, generator, pool, seed=bench.seed,
                                         hinted=False),
              "hinted": bench.synthesize("hinted", EMOTION_ONLY_RECIPE, generator, pool, seed=bench.seed,
                                         hinted=True)}
    first = kept_rationales(rounds["round1"])
    bench.sft("round1", [sets["seed"], pool_with(pool, first, "pool_round1")])
    bench.sft("hinted", [sets["seed"], pool_with(pool, kept_rationales(rounds["hinted"]), "pool_hinted")])
    rounds["round2"] = bench.synthesize("round2", EMOTION_ONLY_RECIPE, bench.adapters["round1"], pool,
                                        seed=bench.seed + 1, hinted=False)
    bench.sft("round2", [sets["seed"], pool_with(pool, {**first, **kept_rationales(rounds["round2"])}, "pool_round2")])
    result = score_arms(bench, ARMS, PAIRS, sets["heldout"])
    result["keep"] = {name: keep_stats(folder, sets["full_labels"]) for name, folder in rounds.items()}
    return result


def full_label_table(bench: Bench, sets: dict[str, Path]) -> dict:
    """The earlier benchmark's setting: the pool keeps every label; hinted generation, every GRPO reward."""
    generator = bench.sft("generator", [sets["seed"]])
    synthesis = bench.synthesize("full_labels", FULL_LABEL_RECIPE, generator, sets["full_labels"], seed=bench.seed,
                                 hinted=True)
    bench.sft("full_labels_only", [sets["seed"], sets["full_labels"]])
    bench.sft("full_synth", [sets["seed"], pool_with(sets["full_labels"], kept_rationales(synthesis), "pool_full")])
    bench.sft("full_templated", [sets["seed"], sets["full_templated"]])
    result = score_arms(bench, FULL_ARMS, FULL_PAIRS, sets["heldout"])
    result["keep"] = {"full_labels": keep_stats(synthesis, sets["full_labels"])}
    return result


def score_arms(bench: Bench, arms: tuple[str, ...], pairs: tuple, gold: Path) -> dict:
    """Figures, optional-AU F1 and paired differences of the arms on the held-out clips."""
    preds = bench.predictions(arms, gold)
    result: dict = {arm: figures(preds[arm], gold, task=TASK) for arm in arms}
    result["optional_aus"] = {arm: optional_au_f1(preds[arm], gold) for arm in arms}
    result["differences"] = {f"{b}_minus_{a}": differences(gold, preds[a], preds[b], task=TASK) for a, b in pairs}
    return result


def verdict(result: dict) -> dict:
    """Whether the loop works by the issue's rule, each criterion from the paired intervals (None: undecidable)."""
    def low(pair: str, figure: str) -> float | None:
        ci = result["differences"][pair][figure]["ci95"]
        return None if ci is None else ci[0]

    def high(pair: str, figure: str) -> float | None:
        ci = result["differences"][pair][figure]["ci95"]
        return None if ci is None else ci[1]

    def above(value: float | None) -> bool | None:
        return None if value is None else value > 0

    first = "round1_minus_labels_only"
    criteria = {
        "round1_beats_labels_only_rationale_au_f1": above(low(first, "rationale_au_f1")),
        "round1_beats_labels_only_answer_au_f1": above(low(first, "answer_au_f1")),
        "round1_beats_labels_only_grounding": above(low(first, "grounding")),
        "round1_keeps_emotion_acc": None if high(first, "emotion_acc") is None else high(first, "emotion_acc") >= 0,
        "round2_not_below_round1_rationale_au_f1": None if high("round2_minus_round1", "rationale_au_f1") is None
        else high("round2_minus_round1", "rationale_au_f1") >= 0,
    }
    c = criteria
    works = bool((c["round1_beats_labels_only_rationale_au_f1"] or c["round1_beats_labels_only_answer_au_f1"])
                 and c["round1_beats_labels_only_grounding"] and c["round1_keeps_emotion_acc"]
                 and c["round2_not_below_round1_rationale_au_f1"])
    return {"works": works, "criteria": criteria,
            "rule": "beats: the paired 95 % interval of the difference lies above 0; keeps / not below: its upper "
                    "end is >= 0; None: a figure one arm lacks (e.g. no AU cited)"}


def _fmt(value, ci=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.2f},{ci[1]:.2f}]" if ci else "")


def print_table(result: dict, arms: tuple[str, ...]) -> None:
    """One row per arm (figure [95 % interval]), then keep statistics and the paired differences."""
    names = ("emotion_acc", "wheel_f", "answer_au_f1", "rationale_au_f1", "grounding", "format_rate")
    print(f"{'arm':18s}" + "".join(f"{n:>21s}" for n in names) + f"{'optional AUs':>16s}")
    for arm in arms:
        row = result[arm]
        optional = result["optional_aus"][arm].values()
        mean = sum(v["answer"] or 0.0 for v in optional) / max(len(optional), 1)
        always = sum(v["always_present"] for v in optional) / max(len(optional), 1)
        print(f"{arm:18s}" + "".join(f"{_fmt(row[n], row['ci95'][n]):>21s}" for n in names)
              + f"  {mean:.3f} vs {always:.3f}")
    for name, keep in result["keep"].items():
        ci = keep["ci95"]
        print(f"{name}: kept {keep['kept']} of {keep['pool']} clips (keep rate "
              f"{_fmt(keep['keep_rate'], ci['keep_rate'])}, {keep['candidates']} candidates); grounding of the kept "
              f"{_fmt(keep['grounding_kept'], ci['grounding_kept'])}, of all "
              f"{_fmt(keep['grounding_all'], ci['grounding_all'])}")
    for pair, diff in result["differences"].items():
        print(f"{pair}: " + ", ".join(f"{k} {_fmt(v['difference'], v['ci95'])}" for k, v in diff.items()))


def _rounded(value):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes (8 clips per set, 4 SFT steps)")
    parser.add_argument("--tables", nargs="+", default=["emotion_only"], choices=("emotion_only", "full_labels"),
                        help="emotion_only: the arms above; full_labels: the second table (the pool keeps its labels)")
    parser.add_argument("--base", default="tiny-omni-base", help="registry name or folder of the base model")
    parser.add_argument("--backend", default="hf", choices=("hf", "vllm"), help="engine backend")
    parser.add_argument("--seed", type=int, default=0, help="data, training and sampling seed")
    parser.add_argument("--work", type=Path, default=Path("runs/synthesis-benchmark"), help="cached steps")
    for name, value in FULL.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, help=f"default {value}")
    args = parser.parse_args()
    sizes = {k: getattr(args, k) or v for k, v in (QUICK if args.quick else FULL).items()}
    started = time.perf_counter()
    work = args.work / ("quick" if args.quick else "full")
    code = code_digest()
    bench = Bench(work, args.base, sizes, args.seed, code, args.backend)
    sets = make_sets(work / "data", sizes, args.seed, code)
    result: dict = {}
    if "emotion_only" in args.tables:
        result = emotion_only_table(bench, sets)
        print_table(result, ARMS)
        result["verdict"] = verdict(result)
        print(f"verdict: {json.dumps(result['verdict'])}")
    if "full_labels" in args.tables:
        result["full_labels"] = full_label_table(bench, sets)
        print("full-label table (the pool keeps every label):")
        print_table(result["full_labels"], FULL_ARMS)
    result["sizes"] = sizes
    result["minutes"] = round((time.perf_counter() - started) / 60, 1)
    print(json.dumps(_rounded(result)))


if __name__ == "__main__":
    main()
