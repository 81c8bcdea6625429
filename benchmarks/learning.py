"""Does each training stage teach something? Held-out SynthFACS metrics of the tiny omni model at every stage.

Rows: (a) the untrained model (random init, the base's shape), (b) the committed base (perception pretraining and
the vocabulary warm-up; no emotion word was ever tied to a clip), (c) LoRA SFT from the base
(recipes/tiny-omni/sft.yaml), (d) the same SFT with shuffled emotion labels (each clip gets another clip's emotion
labels, AUs and voice stay: nothing links the media to the emotion), (e) GRPO from (c) (recipes/tiny-omni/grpo.yaml).

Every model answers the held-out clips greedily twice, as `affect-mllm predict` does (inference.predict, the HF
engine): the open-vocabulary prompt (ov_emotion) and the AU prompt (au_reasoning, whose answer is
`emotion: X; aus: ...`). Both files are scored by the one evaluation path (affect_mllm.evaluation, bootstrap 95 %
intervals): emotion accuracy (first answered emotion, 8 categories, chance 1/8) and wheel F (project wheels, level 1)
from ov_emotion; answer-field AU F1, rationale AU F1 (the AUs the <think> text cites), grounding (share of cited AUs
the labels hold) from au_reasoning; the format rate (grammar followed, with the fields the prompt asks for) of each.
Most SynthFACS AUs follow from the class, so AU F1 largely restates emotion recognition: the within-class F1 of the
AUs a class shows only sometimes (AU25 in happy, AU17 in sad, AU26 vs AU27, AU23 vs AU24, ...; benchmarks/heldout.py)
separates AU perception from it, beside the always-present F1 of that class. Differences SFT - shuffled and
GRPO - SFT come with paired bootstrap intervals.

    .venv/bin/python benchmarks/learning.py                # about 30 minutes on 2 CPU cores
    .venv/bin/python benchmarks/learning.py --quick        # a smoke run of every stage (minutes)
    .venv/bin/python benchmarks/learning.py --from-scratch # also retrain the base (about 1.5 hours more)

Every step (data, adapters, predictions) is cached under --work, keyed by what determines it (benchmarks/
cache_key.py: recipe, base weights, data, arguments and the code of the packages): a changed input redoes it.
Last line: {"untrained": {...}, "base": {...}, "sft": {...}, "shuffled": {...}, "grpo": {...}, "differences": {...}}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cache_key import cached, code_digest, file_digest, stored_key
from heldout import figures, optional_au_f1, predict
from steps import recipe_key, run_module, synthfacs_set

ROWS = ("untrained", "base", "sft", "shuffled", "grpo")
TASKS = ("ov_emotion", "au_reasoning")
LEVELS = range(4)


@dataclass(frozen=True)
class Budget:
    train_clips: int = 3000
    test_clips: int = 160  # at the headline level
    level_clips: int = 64  # at each other level, for the per-level rows
    sft_steps: int = 400
    grpo_steps: int = 30
    max_new_tokens: int = 160


QUICK = Budget(train_clips=64, test_clips=16, level_clips=8, sft_steps=10, grpo_steps=2, max_new_tokens=48)


def make_data(folder: Path, budget: Budget, level: int, seed: int, code: dict) -> dict:
    """Train split at the headline level; test splits at every level 0..3 (disjoint identities and templates)."""
    data: dict = {"train": synthfacs_set(folder / "train", budget.train_clips, seed=seed, split="train",
                                         level=level, code=code)}
    for test_level in LEVELS:
        n = budget.test_clips if test_level == level else budget.level_clips
        data[test_level] = synthfacs_set(folder / f"test_level{test_level}", n, seed=seed + 1, split="test",
                                         level=test_level, code=code)
    return data


def shuffled_manifest(source: Path, out: Path, seed: int) -> Path:
    """The training manifest with every clip's emotion labels taken from another clip.

    The emotion fields move together with the reference rationale (it names the emotion); AUs and voice stay with
    their clip. Shuffling the AUs too would keep each label record self-consistent (AU6+AU12 with "happy"), and a
    model that still reads AUs from the clip through its perception-style rationale learns that text-to-emotion
    link: the whole-record shuffle this control replaced (commit 56aa95f) scored well above chance.
    """
    import random

    from affect_mllm.schema import read_manifest, write_manifest

    manifest = read_manifest(source)
    label_fields = {"emotion", "emotions", "valence", "arousal", "rationale", "face_emotion", "voice_emotion"}
    labels = [s.model_dump(include=label_fields) for s in manifest.samples]
    random.Random(seed).shuffle(labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    samples = []
    for sample, label in zip(manifest.samples, labels, strict=True):
        media = {kind: os.path.relpath(manifest.media_path(sample, kind), out.parent)
                 for kind in ("video", "audio") if getattr(sample, kind)}
        samples.append(type(sample).model_validate({**sample.model_dump(), **label, **media}))
    return write_manifest(out, samples, media_roots=[os.path.relpath(source.parent, out.parent)])


def train_stages(work: Path, data: dict, budget: Budget, base: str, code: dict) -> dict[str, Path]:
    """SFT, shuffled-label SFT and GRPO through the recipes, each cached by its key."""
    common = ["--model_name_or_path", base, "--report_to", "none", "--save_steps", "100000"]
    sft_args = [*common, "--max_steps", str(budget.sft_steps), "--eval_manifest", ""]

    def sft(manifest: Path, out: Path) -> None:
        run_module("training.sft", ["--config", "recipes/tiny-omni/sft.yaml", *sft_args, "--train_manifest",
                                    str(manifest), "--output_dir", str(out)])

    shuffled = shuffled_manifest(data["train"], work / "shuffled_data" / "train.jsonl", seed=1)
    outputs = {
        "sft": cached(work / "sft", recipe_key(code, "recipes/tiny-omni/sft.yaml", base, data["train"], sft_args),
                      lambda out: sft(data["train"], out)),
        "shuffled": cached(work / "shuffled", recipe_key(code, "recipes/tiny-omni/sft.yaml", base, shuffled,
                                                          sft_args), lambda out: sft(shuffled, out)),
    }
    grpo_args = [*common, "--max_steps", str(budget.grpo_steps)]
    grpo_key = {**recipe_key(code, "recipes/tiny-omni/grpo.yaml", base, data["train"], grpo_args),
                "adapter": stored_key(outputs["sft"])["digest"]}
    outputs["grpo"] = cached(work / "grpo", grpo_key, lambda out: run_module("training.grpo", [
        "--config", "recipes/tiny-omni/grpo.yaml", *grpo_args, "--train_manifest", str(data["train"]),
        "--adapter_path", str(outputs["sft"]), "--output_dir", str(out)]))
    return outputs


def untrained_model(work: Path, base: str, code: dict) -> Path:
    """A random-init model with the base's shape and tokenizer (row a)."""
    from affect_mllm.models.registry import resolve

    def build(folder: Path) -> None:
        import torch
        from transformers import AutoProcessor

        from affect_mllm.models.registry import model_class
        from affect_mllm.models.tiny import save_omni
        from affect_mllm.models.upstream_warnings import quiet_default_talker_warnings

        quiet_default_talker_warnings()  # transformers' 7 lines for every Qwen2.5-Omni config built here
        spec = resolve(base)
        model = model_class(spec.arch).from_pretrained(spec.source)
        torch.manual_seed(0)
        save_omni(type(model)(model.config), AutoProcessor.from_pretrained(spec.source), folder)

    return cached(work / "untrained", {"code": code, "base": file_digest(resolve(base).source)}, build)


class Predictions:
    """Each row's predictions on a manifest for a task, cached by (model, adapter, manifest, task, settings)."""

    def __init__(self, work: Path, base: str, adapters: dict[str, Path], code: dict, budget: Budget) -> None:
        self.work, self.base, self.adapters, self.code, self.budget = work, base, adapters, code, budget
        self.engines: dict[str, object] = {}

    def model_key(self, row: str) -> str:
        from affect_mllm.models.registry import resolve

        if row == "untrained":
            return stored_key(untrained_model(self.work, self.base, self.code))["digest"]
        if row in self.adapters:
            return stored_key(self.adapters[row])["digest"]
        return file_digest(resolve(self.base).source)

    def engine(self, row: str):
        from inference.engine import load_engine

        name = "untrained" if row == "untrained" else "base"
        if name not in self.engines:
            model = str(self.work / "untrained") if name == "untrained" else self.base
            adapters = None if name == "untrained" else {k: str(v) for k, v in self.adapters.items()}
            self.engines[name] = load_engine(model, backend="hf", adapters=adapters)
        return self.engines[name]

    def get(self, row: str, manifest: Path, task: str) -> Path:
        folder = self.work / "predictions" / f"{row}-{task}-{manifest.parent.name}"
        key = {"code": self.code, "model": self.model_key(row), "gold": file_digest(manifest), "task": task,
               "max_new_tokens": self.budget.max_new_tokens}
        cached(folder, key, lambda out: predict(self.engine(row), manifest, out / "pred.jsonl", task=task,
                                                adapter=row if row in self.adapters else None,
                                                max_new_tokens=self.budget.max_new_tokens))
        return folder / "pred.jsonl"


def score_rows(predictions: Predictions, data: dict, level: int) -> dict:
    """Every row at the headline level (both prompts, optional AUs); SFT and GRPO emotion accuracy at levels 0..3."""
    from heldout import differences

    gold = data[level]
    results: dict = {}
    for row in ROWS:
        paths = {task: predictions.get(row, gold, task) for task in TASKS}
        results[row] = {task: figures(paths[task], gold, task=task) for task in TASKS}
        results[row]["optional_aus"] = optional_au_f1(paths["au_reasoning"], gold)
    for row in ("sft", "grpo"):
        results[row]["emotion_acc_by_level"] = {
            str(k): figures(predictions.get(row, data[k], "ov_emotion"), data[k], task="ov_emotion")["emotion_acc"]
            for k in LEVELS}
    results["differences"] = {
        f"{b}_minus_{a}": {task: differences(gold, predictions.get(a, gold, task), predictions.get(b, gold, task),
                                             task=task) for task in TASKS}
        for a, b in (("shuffled", "sft"), ("sft", "grpo"))}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget: checks every stage runs")
    parser.add_argument("--from-scratch", action="store_true", help="retrain the base first (pretrain + warm-up)")
    parser.add_argument("--level", type=int, default=2, help="headline SynthFACS difficulty (the default level)")
    parser.add_argument("--work", default="runs/learning", help="folder for data, adapters and results")
    for name, value in asdict(Budget()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, help=f"default {value}")
    args = parser.parse_args()
    budget = QUICK if args.quick else Budget()
    budget = replace(budget, **{k: v for k in asdict(budget) if (v := getattr(args, k)) is not None})
    work = Path(args.work) / ("quick" if args.quick else "full")
    started = time.time()
    code = code_digest()
    base = "tiny-omni-base"
    if args.from_scratch:
        base = str(work / "base")
        run_module("training.pretrain_tiny", ["--config", "recipes/tiny-omni/pretrain.yaml", "--output_dir", base])
        run_module("training.pretrain_vocab", ["--config", "recipes/tiny-omni/pretrain_vocab.yaml", "--base", base])
    data = make_data(work / "data", budget, args.level, seed=100, code=code)
    adapters = train_stages(work, data, budget, base, code)
    results = score_rows(Predictions(work, base, adapters, code, budget), data, args.level)
    results["budget"] = asdict(budget)
    results["minutes"] = round((time.time() - started) / 60, 1)
    print_table(results, args.level)
    print(json.dumps(_rounded(results)))


def _fmt(value: float | None, ci: list[float] | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.2f},{ci[1]:.2f}]" if ci else "")


def print_table(results: dict, level: int) -> None:
    print(f"held-out SynthFACS, level {level} (chance 0.125 over 8 classes); [95% bootstrap interval]")
    print(f"{'stage':10s} {'emotion_acc':>20s} {'wheel_f':>20s} {'answer AU F1':>20s} {'rationale AU F1':>20s} "
          f"{'grounding':>20s} {'format ov/au':>13s} {'optional AUs':>14s}")
    for row in ROWS:
        ov, au = results[row]["ov_emotion"], results[row]["au_reasoning"]
        optional = results[row]["optional_aus"].values()
        mean_answer = sum(v["answer"] or 0.0 for v in optional) / max(len(optional), 1)
        mean_always = sum(v["always_present"] for v in optional) / max(len(optional), 1)
        print(f"{row:10s} {_fmt(ov['emotion_acc'], ov['ci95']['emotion_acc']):>20s} "
              f"{_fmt(ov['wheel_f'], ov['ci95']['wheel_f']):>20s} "
              f"{_fmt(au['answer_au_f1'], au['ci95']['answer_au_f1']):>20s} "
              f"{_fmt(au['rationale_au_f1'], au['ci95']['rationale_au_f1']):>20s} "
              f"{_fmt(au['grounding'], au['ci95']['grounding']):>20s} "
              f"{_fmt(ov['format_rate'])}/{_fmt(au['format_rate']):>6s} {mean_answer:.3f} vs {mean_always:.3f}")
    print("optional AUs: mean within-class F1 of the answer's aus vs always-present F1 in the class; per AU:")
    for name, entry in results["sft"]["optional_aus"].items():
        cells = [f"{row} {_fmt(results[row]['optional_aus'].get(name, {}).get('answer'))}" for row in ROWS]
        print(f"  {name:18s} always-present {entry['always_present']:.3f}; " + ", ".join(cells))
    for row in ("sft", "grpo"):
        print(f"{row} emotion accuracy by level: {results[row]['emotion_acc_by_level']}")
    for pair, by_task in results["differences"].items():
        for task, diff in by_task.items():
            cells = [f"{k} {_fmt(v['difference'], v['ci95'])}" for k, v in diff.items()]
            print(f"{pair} ({task}): " + ", ".join(cells))


def _rounded(value):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


if __name__ == "__main__":
    main()
