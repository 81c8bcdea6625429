"""The synthesis loop: pool -> generate -> verify -> clean -> write -> report -> retrain, round after round.

    affect-mllm synthesize --config recipes/tiny-omni/synthesis.yaml
    python -m data_synthesis.loop --config recipes/tiny-omni/synthesis.yaml --rounds 3   # the same, or extend

Output folder:
    synthesis_config.json           what decides the data (a restart with other values is refused)
    round_<r>/state.json            the round's generator, pool and finished steps (written atomically)
    round_<r>/candidates.jsonl      every candidate, appended durably (generate)
    round_<r>/verified.jsonl        every candidate's rewards and the one kept per clip (verify)
    round_<r>/cleaned.json          the clean step's survivors and drops
    round_<r>/report.{json,md}      the round report
    round_<r>/train.jsonl, sft/     seed + kept data and the retrained adapter (retrain; grpo/ when asked)
    shards/shard-<r>.jsonl          the round's versioned shard (+ .meta.json)
    synthesis_report.{json,md}, synthesis_rounds.png    all rounds so far

Rounds count from 1; round 1 is written by the configured `adapter_path`.

Resumable at every step: a step is marked finished in state.json only after its outputs are written, so a killed
run restarts at the step it stopped; within generate, at the clip it stopped (see generate.py). Round r+1 is
written by round r's retrained adapter (or the same generator when retraining is off or had no data).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from affect_mllm.jsonl import AppendLog, atomic_write_json, read_jsonl, write_jsonl
from affect_mllm.schema import Manifest, read_manifest
from data_synthesis.clean import CleanItem, CleanSettings, class_of, clean
from data_synthesis.generate import GenerationPlan, PoolClip, generate_candidates
from data_synthesis.select import Verifier, verify_candidates
from data_synthesis.shard import (
    media_roots_for,
    read_shard,
    shard_path,
    synthetic_sample,
    write_shard,
    write_training_manifest,
)

logger = logging.getLogger(__name__)

STEPS = ("generate", "verify", "clean", "write", "report", "retrain")
CONFIG_NAME = "synthesis_config.json"
GENERATOR_ADAPTER = "generator"  # the engine's name for the adapter that writes a round


class RoundState:
    """A round's state.json: its generator, its pool and the info of each finished step."""

    def __init__(self, path: Path, round_index: int) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {"round": round_index, "steps": {}}

    def done(self, step: str) -> bool:
        """Whether `step` finished (its outputs were written before it was marked)."""
        return step in self.data["steps"]

    def info(self, step: str) -> dict:
        """What a finished step recorded."""
        return self.data["steps"][step]

    def setdefault(self, key: str, value: Any) -> Any:
        """Record a value once (a restart keeps the first one) and return the recorded value."""
        if key not in self.data:
            self.data[key] = value
            self.save()
        return self.data[key]

    def mark(self, step: str, info: dict) -> None:
        """Mark `step` finished with its info (call only after its outputs are written)."""
        self.data["steps"][step] = info
        self.save()

    def save(self) -> None:
        """Write state.json atomically."""
        atomic_write_json(self.path, self.data)


@dataclass
class SynthesisRun:
    """One synthesis run: its configuration, pool, verifier and output folder."""

    args: object  # SynthesisArguments
    reward_args: object  # RewardArguments
    pool: list[PoolClip]
    verifier: Verifier
    backend: str  # resolved ("hf" or "vllm")

    @property
    def output_dir(self) -> Path:
        return Path(self.args.output_dir)

    def round_dir(self, r: int) -> Path:
        return self.output_dir / f"round_{r}"

    def run(self) -> list[dict]:
        """Run (or finish) every round; return the round reports."""
        reports = []
        for r in range(1, self.args.rounds + 1):
            reports.append(self.run_round(r))
        return reports

    def run_round(self, r: int) -> dict:
        """Run the steps of round r that are not finished yet; return its report."""
        state = RoundState(self.round_dir(r) / "state.json", r)
        state.setdefault("generator", self.generator_for(r))
        steps = {
            "generate": self.generate,
            "verify": self.verify,
            "clean": self.clean,
            "write": self.write,
            "report": self.report,
            "retrain": self.retrain,
        }
        for step in STEPS:
            if not state.done(step):
                logger.info("round %d: %s", r, step)
                state.mark(step, steps[step](r, state))
        return json.loads((self.round_dir(r) / "report.json").read_text())

    def generator_for(self, r: int) -> dict:
        """Round r's generator: the configured adapter for round 1, else round r-1's retrained one."""
        if r == 1:
            return {"model": self.args.model_name_or_path, "adapter": self.args.adapter_path, "produced": False}
        previous = RoundState(self.round_dir(r - 1) / "state.json", r - 1)
        return previous.info("retrain")["generator"]

    def adapter_dir(self, generator: dict) -> str | None:
        """A loadable path of a generator's adapter (produced ones are stored relative to the output folder)."""
        adapter = generator["adapter"]
        return str(self.output_dir / adapter) if adapter and generator["produced"] else adapter

    def generate(self, r: int, state: RoundState) -> dict:
        """Generate the round's candidates (resuming at the clip it stopped)."""
        from data_synthesis.ray_scale import EngineSpec, open_generator
        from inference.engine import SamplingSettings

        ids = state.setdefault("pool", [clip.sample.id for clip in self.round_pool(r)])
        pool = self.clips(ids)
        adapter = self.adapter_dir(state.data["generator"])
        a = self.args
        spec = EngineSpec(a.model_name_or_path, self.backend, {GENERATOR_ADAPTER: adapter} if adapter else {}, a.dtype)
        sampling = SamplingSettings(
            max_new_tokens=a.max_new_tokens, greedy=False, temperature=a.temperature, top_p=a.top_p, n=a.candidates
        )
        plan = GenerationPlan(
            round=r,
            seed=a.seed,
            task=a.task,
            sampling=sampling,
            prompt_variant=a.prompt_variant,
            audio_in_video=a.audio_in_video,
            hinted=a.hinted,
            retries=a.retries,
            batch_size=a.engine_batch_size * a.ray_replicas,
            adapter=GENERATOR_ADAPTER if adapter else None,
        )
        engine = open_generator(spec, a.ray_address, a.ray_replicas, a.ray_cpus_per_replica, a.ray_gpus_per_replica)
        try:
            return generate_candidates(pool, engine, plan, self.verifier, self.round_dir(r) / "candidates.jsonl")
        finally:
            engine.close()

    def verify(self, r: int, state: RoundState) -> dict:
        """Score every candidate; choose the one to keep per clip."""
        records = AppendLog(self.round_dir(r) / "candidates.jsonl", key="key").records()
        verdicts = verify_candidates([c.sample for c in self.clips(state.data["pool"])], records, self.verifier)
        write_jsonl(self.round_dir(r) / "verified.jsonl", verdicts)
        candidates = [entry for verdict in verdicts for entry in verdict["candidates"]]
        return {
            "clips": len(verdicts),
            "candidates": len(candidates),
            "passing": sum(entry["passes"] for entry in candidates),
            "kept": sum(verdict["kept"] is not None for verdict in verdicts),
        }

    def clean(self, r: int, state: RoundState) -> dict:
        """De-duplicate, cap and balance the round's kept candidates against everything kept before."""
        samples = {clip.sample.id: clip.sample for clip in self.pool}
        items = [
            CleanItem(v["id"], class_of(samples[v["id"]]), v["kept"]["rationale"], v["kept"]["total"])
            for v in self.verdicts(r)
            if v["kept"] is not None
        ]
        a = self.args
        settings = CleanSettings(a.dedup_threshold, a.max_per_clip, a.max_per_class, a.balance)
        result = clean(items, settings, self.history(r))
        atomic_write_json(
            self.round_dir(r) / "cleaned.json",
            {"kept": [asdict(item) for item in result.kept], "dropped": result.dropped},
        )
        return {"kept": len(result.kept), "dropped": {k: len(v) for k, v in result.dropped.items()}}

    def write(self, r: int, state: RoundState) -> dict:
        """Write the round's shard: pool clips with their kept rationales and provenance."""
        kept_ids = {item["clip_id"] for item in self.cleaned(r)["kept"]}
        chosen = {v["id"]: v["kept"] for v in self.verdicts(r) if v["id"] in kept_ids}
        path = shard_path(self.output_dir, r)
        folder = path.parent
        folder.mkdir(parents=True, exist_ok=True)
        records = [
            synthetic_sample(
                clip.sample,
                clip.manifest,
                folder,
                r,
                chosen[clip.sample.id]["rationale"],
                self.provenance(state, clip, chosen[clip.sample.id]),
            )
            for clip in self.clips(state.data["pool"])
            if clip.sample.id in chosen
        ]
        roots = media_roots_for(self.manifests(), folder)
        info = write_shard(
            path,
            records,
            roots,
            {"round": r, "model": self.args.model_name_or_path, "adapter": state.data["generator"]["adapter"]},
        )
        return {
            "shard": path.relative_to(self.output_dir).as_posix(),
            "records": info["records"],
            "sha256": info["sha256"],
        }

    def report(self, r: int, state: RoundState) -> dict:
        """Write the round report and the across-rounds summary."""
        from data_synthesis.report import round_report, write_round_report, write_summary

        cleaned = self.cleaned(r)
        kept = [
            {"id": i["clip_id"], "class": i["label"], "rationale": i["rationale"], "total": i["total"]}
            for i in cleaned["kept"]
        ]
        report = round_report(r, self.verdicts(r), kept, cleaned["dropped"], self.args.report_examples)
        write_round_report(report, self.round_dir(r))
        earlier = [json.loads((self.round_dir(i) / "report.json").read_text()) for i in range(1, r)]
        write_summary([*earlier, report], self.output_dir)
        return {"yield": report["yield"], "kept": report["kept"], "candidates": report["candidates"]}

    def retrain(self, r: int, state: RoundState) -> dict:
        """SFT (then GRPO, if asked) on seed + every shard so far; the result writes the next round."""
        from data_synthesis.config import recipe_overrides

        generator = state.data["generator"]
        a = self.args
        parts = ([read_manifest(a.seed_manifest)] if a.seed_manifest else []) + [
            read_shard(shard_path(self.output_dir, i)) for i in range(1, r + 1)
        ]
        n_samples = sum(len(part) for part in parts)
        if not a.sft_recipe or n_samples == 0:
            return {"trained": False, "train_samples": n_samples, "generator": generator}
        train_manifest = write_training_manifest(self.round_dir(r) / "train.jsonl", parts)
        base = ["--model_name_or_path", a.model_name_or_path, "--train_manifest", str(train_manifest)]
        adapter = self.adapter_dir(generator) if a.continue_adapter else None
        argv = [
            "--config",
            a.sft_recipe,
            *recipe_overrides(a.sft_overrides),
            *base,
            "--output_dir",
            str(self.round_dir(r) / "sft"),
            *(["--adapter_path", adapter] if adapter else []),
        ]
        from training.sft import main as sft_main

        trained = Path(sft_main(argv))
        if a.grpo_recipe:
            from training.grpo import main as grpo_main

            argv = [
                "--config",
                a.grpo_recipe,
                *recipe_overrides(a.grpo_overrides),
                *base,
                "--output_dir",
                str(self.round_dir(r) / "grpo"),
                "--adapter_path",
                str(trained),
            ]
            trained = Path(grpo_main(argv))
        produced = trained.resolve().relative_to(self.output_dir.resolve()).as_posix()
        return {
            "trained": True,
            "train_samples": n_samples,
            "generator": {"model": a.model_name_or_path, "adapter": produced, "produced": True},
        }

    def provenance(self, state: RoundState, clip: PoolClip, kept: dict) -> dict:
        """How a kept rationale was made (the shard record's `source`)."""
        a = self.args
        names = self.reward_args.reward_funcs
        weights = a.reward_weights or [1.0] * len(names)
        return {
            "dataset": "synthesis",
            "pool_manifest": str(clip.manifest.path),
            "model": a.model_name_or_path,
            "adapter": state.data["generator"]["adapter"],
            "task": a.task,
            "prompt": kept["prompt"],
            "hinted": a.hinted,
            "feedback": kept["feedback"],
            "sampling": {
                "backend": self.backend,
                "temperature": a.temperature,
                "top_p": a.top_p,
                "max_new_tokens": a.max_new_tokens,
                "candidates": a.candidates,
            },
            "rewards": kept["rewards"],
            "reward_total": kept["total"],
            "reward_weights": dict(zip(names, weights, strict=True)),
            "attempt": kept["attempt"],
            "candidate_index": kept["index"],
            "seed": kept["seed"],
        }

    def round_pool(self, r: int) -> list[PoolClip]:
        """Pool clips below their per-clip cap whose own rationale is missing or fails the keep rule."""
        from affect_mllm.targets import target_text

        counts: dict[str, int] = {}
        for item in self.history(r):
            counts[item.clip_id] = counts.get(item.clip_id, 0) + 1
        out = []
        for clip in self.pool:
            if counts.get(clip.sample.id, 0) >= self.args.max_per_clip:
                continue
            own = clip.sample.rationale
            strong = own and self.verifier.score(clip.sample, [target_text(clip.sample, self.args.task)])[0].passes
            if self.args.regenerate_existing or not strong:
                out.append(clip)
        return out

    def history(self, r: int) -> list[CleanItem]:
        """What rounds before r kept, as cleaning sees it."""
        items = []
        for i in range(1, r):
            for sample in read_shard(shard_path(self.output_dir, i)).samples:
                items.append(
                    CleanItem(
                        sample.source["clip_id"],
                        class_of(sample),
                        sample.rationale or "",
                        sample.source["reward_total"],
                    )
                )
        return items

    def clips(self, ids: list[str]) -> list[PoolClip]:
        """The pool clips with these ids, in this order."""
        by_id = {clip.sample.id: clip for clip in self.pool}
        return [by_id[i] for i in ids]

    def manifests(self) -> list[Manifest]:
        """The pool's manifests, each once."""
        return list({id(clip.manifest): clip.manifest for clip in self.pool}.values())

    def verdicts(self, r: int) -> list[dict]:
        """Round r's verify output, one verdict per clip."""
        return list(read_jsonl(self.round_dir(r) / "verified.jsonl"))

    def cleaned(self, r: int) -> dict:
        """Round r's clean output."""
        return json.loads((self.round_dir(r) / "cleaned.json").read_text())


def load_pool(args) -> list[PoolClip]:
    """The pool clips of every pool manifest that carry the labels the task's answer needs (AU labels hidden when
    `au_labels` is false).

    Raises:
        ValueError: no pool manifest, or two pool clips with the same id.
    """
    from data_synthesis.select import verifiable, without_au_labels

    if not args.pool_manifests:
        raise ValueError("pool_manifests is empty: name at least one manifest of labelled clips")
    clips, seen = [], set()
    for path in args.pool_manifests:
        manifest = read_manifest(path)
        for sample in manifest.samples:
            if sample.id in seen:
                raise ValueError(f"pool clip id {sample.id!r} appears twice ({path})")
            seen.add(sample.id)
            if verifiable(sample, args.task, args.au_labels):
                clips.append(PoolClip(sample if args.au_labels else without_au_labels(sample), manifest))
    return clips[: args.max_pool_samples]


def check_resumable(output_dir: Path, record: dict) -> None:
    """Record what decides the data on the first start; refuse a restart that would change it.

    Raises:
        ValueError: the output folder holds a run made with other settings.
    """
    path = output_dir / CONFIG_NAME
    if path.is_file():
        previous = json.loads(path.read_text())
        changed = sorted(k for k in set(previous) | set(record) if previous.get(k) != record.get(k))
        if changed:
            raise ValueError(
                f"{output_dir} holds a run with other settings ({', '.join(changed)}); "
                "use a new output_dir or the same settings"
            )
        return
    atomic_write_json(path, record)


def run_synthesis(args, reward_args) -> list[dict]:
    """Run (or resume) the synthesis loop; return the round reports.

    Args:
        args: SynthesisArguments.
        reward_args: RewardArguments (the GRPO recipe's reward names and settings).

    Returns:
        One report per round (see `report.round_report`).
    """
    from inference.engine import vllm_available

    backend = args.backend if args.backend != "auto" else ("vllm" if vllm_available() else "hf")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(
        output_dir, json.loads(json.dumps({**args.fingerprint(), "backend": backend, "rewards": asdict(reward_args)}))
    )
    run = SynthesisRun(args, reward_args, load_pool(args), Verifier.from_config(args, reward_args), backend)
    return run.run()


def main(argv: list[str] | None = None) -> list[dict]:
    """Parse a synthesis recipe plus overrides and run it."""
    from data_synthesis.config import parse_args
    from training.common import setup_logging

    setup_logging()
    args, reward_args = parse_args(list(sys.argv[1:] if argv is None else argv))
    return run_synthesis(args, reward_args)


if __name__ == "__main__":
    main()
