"""The data synthesis loop: keep rule, cleaning, shards, retries, recipes, and two real rounds on the tiny model.

Run: .venv/bin/python -m pytest tests/test_synthesis.py -q          (the integration tests take a few minutes)
     .venv/bin/python -m pytest tests/test_synthesis.py -q -m "not integration"   (seconds)
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml
from process_helpers import kill_when

from affect_mllm.jsonl import read_jsonl
from affect_mllm.rewards import get_reward_funcs
from affect_mllm.schema import Sample, read_manifest, write_manifest
from data_synthesis.clean import CleanItem, CleanSettings, clean, jaccard, word_set
from data_synthesis.select import KeepRule, Verifier, choose_best, verify_candidates

REPO = Path(__file__).resolve().parents[1]
GRPO_REWARDS = ["format_reward", "emotion_wheel_f1_reward", "au_f1_reward", "consistency_reward"]
GRPO_WEIGHTS = [0.5, 1.0, 0.5, 0.5]  # recipes/tiny-omni/grpo.yaml; the best total is 0.5 + 1 + 0.5 + 0.5 = 2.5
HAPPY = Sample(
    id="c1",
    video="c1.mp4",
    emotion="happy",
    emotions=["happy"],
    aus=[{"au": 6, "intensity": 3.0}, {"au": 12, "intensity": 4.0}],
)


def recipe_verifier(min_reward: float = 1.75) -> Verifier:
    rule = KeepRule(min_reward, {"format_reward": 1.0, "consistency_reward": 0.0})
    return Verifier(get_reward_funcs(GRPO_REWARDS), GRPO_WEIGHTS, rule)


def answer(rationale: str, emotion: str = "happy", aus: str = "AU6, AU12") -> str:
    return f"<think>{rationale}</think><answer>emotion: {emotion}; aus: {aus}</answer>"


def test_keep_rule_on_hand_made_completions():
    both = "Cheeks raised (AU6), lip corners pulled up (AU12)."
    texts = [
        answer(both),  # every reward at its best: 0.5 + 1 + 0.5 + 0.5 = 2.5
        answer(both, emotion="sad"),  # wheel F 0, AUs support sad 0: 0.5 + 0 + 0.5 + 0 = 1.0 < 1.75
        answer(both + " Brows lowered (AU4)."),  # AU F1 = 2*(2/3*1)/(2/3+1) = 0.8 -> 0.6; consistency 2/3 - 1/3
        answer("Lip corners pulled up (AU12)."),  # AU F1 = 2/3 -> 1/3; consistency 0.5: 0.5+1+1/6+1/4 = 1.9167
        "happy because AU6 and AU12",  # no grammar: format 0 fails its minimum 1.0
    ]
    scores = recipe_verifier().score(HAPPY, texts)
    assert [s.total for s in scores] == pytest.approx([2.5, 1.0, 0.5 + 1 + 0.3 + 1 / 6, 1.9166667, -0.5])
    assert [s.passes for s in scores] == [True, False, True, True, False]
    assert scores[2].rewards["au_f1_reward"] == pytest.approx(0.6)
    assert choose_best(scores) == 0
    assert choose_best(scores[1:]) == 1  # the hallucinating candidate (1.967) beats the incomplete one (1.917)
    assert "the answered emotion (sad) does not fit the clip" in scores[1].problems
    assert scores[4].problems[0].startswith("the reply must be <think>")


def test_the_verifier_asks_for_the_fields_of_the_synthesis_task():
    """A candidate that drops the AU field the au_reasoning prompt asks for is malformed for that task; kept, it
    taught the retrained model to drop the field."""
    rule = KeepRule(1.0, {"format_reward": 1.0})
    rewards = get_reward_funcs(["format_reward", "emotion_wheel_f1_reward"])
    emotion_only = "<think>Cheeks raised (AU6), lip corners up (AU12).</think><answer>emotion: happy</answer>"
    both = answer("Cheeks raised (AU6), lip corners up (AU12).")
    verifier = Verifier(rewards, [0.5, 1.0], rule, task="au_reasoning")
    assert [s.passes for s in verifier.score(HAPPY, [emotion_only, both])] == [False, True]
    assert Verifier(rewards, [0.5, 1.0], rule, task="categorical").score(HAPPY, [emotion_only])[0].passes


def test_keep_rule_minima_and_missing_labels():
    unlabelled = Sample(id="c2", video="c2.mp4", emotion="happy")  # no AU labels: au_f1_reward gives None
    rule = KeepRule(0.5, {"au_f1_reward": 0.9})  # unlabelled: 0.5 * 1 + 0.5 * 0.5 (AU12 half supports happy)
    verifier = Verifier(get_reward_funcs(GRPO_REWARDS), GRPO_WEIGHTS, rule)
    text = answer("Lip corners pulled up (AU12).")
    assert verifier.score(unlabelled, [text])[0].passes  # a reward that cannot score does not block
    assert not verifier.score(HAPPY, [text])[0].passes  # AU F1 1/3 < 0.9
    no_rationale = "<think></think><answer>emotion: happy</answer>"
    assert (
        not Verifier(get_reward_funcs(["emotion_accuracy_reward"]), None, KeepRule(0.5))
        .score(HAPPY, [no_rationale])[0]
        .passes
    )  # right emotion, but nothing to keep


def test_verify_picks_the_best_passing_candidate_over_attempts():
    records = [
        {
            "key": "c1#1",
            "id": "c1",
            "attempt": 1,
            "seed": 50,
            "prompt": "p1",
            "feedback": ["x"],
            "candidates": [{"index": 0, "text": answer("Cheeks raised (AU6), lip corners pulled up (AU12).")}],
        },
        {
            "key": "c1#0",
            "id": "c1",
            "attempt": 0,
            "seed": 10,
            "prompt": "p0",
            "feedback": [],
            "candidates": [{"index": 0, "text": "noise"}, {"index": 1, "text": answer("Lip corners up (AU12).")}],
        },
    ]
    [verdict] = verify_candidates([HAPPY], records, recipe_verifier())
    assert [(c["attempt"], c["index"], c["seed"]) for c in verdict["candidates"]] == [
        (0, 0, 10),
        (0, 1, 11),
        (1, 0, 50),
    ]
    kept = verdict["kept"]
    assert (kept["attempt"], kept["index"], kept["seed"], kept["total"]) == (1, 0, 50, 2.5)
    assert kept["rationale"] == "Cheeks raised (AU6), lip corners pulled up (AU12)." and kept["prompt"] == "p1"


def item(clip: str, label: str, rationale: str, total: float) -> CleanItem:
    return CleanItem(clip, label, rationale, total)


def test_clean_drops_near_duplicates_keeping_the_better():
    a = item("a", "happy", "Cheeks raised (AU6) and lip corners pulled up (AU12).", 2.0)
    b = item("b", "happy", "Lip corners pulled up (AU12) and cheeks raised (AU6).", 2.4)  # same 9 words: J = 1
    c = item("c", "happy", "Lip corners pulled up (AU12) and cheeks raised (AU6) slightly.", 1.9)  # J = 9/10
    assert jaccard(word_set(a.rationale), word_set(c.rationale)) == pytest.approx(0.9)
    result = clean([a, b, c], CleanSettings(dedup_threshold=0.9))
    assert [i.clip_id for i in result.kept] == ["b"] and sorted(result.dropped["duplicate"]) == ["a", "c"]
    result = clean([a, b, c], CleanSettings(dedup_threshold=0.95))  # 0.9 < 0.95: c stays
    assert [i.clip_id for i in result.kept] == ["b", "c"]
    assert clean([a, b, c], CleanSettings(dedup_threshold=1.1)).kept == [a, b, c]  # above 1: off


def test_clean_caps_per_clip_and_class_across_rounds():
    history = [item("a", "happy", "Cheeks raised (AU6).", 2.0), item("x", "sad", "Brows raised inside (AU1).", 2.0)]
    items = [
        item("a", "happy", "Lip corners up (AU12), jaw dropped (AU26).", 2.5),  # clip a already kept once
        item("b", "happy", "Dimpler (AU14) on one side only.", 2.0),
        item("c", "happy", "Lips parted (AU25) wide open now.", 1.0),
        item("d", "sad", "Lip corners down (AU15) and chin raised (AU17).", 1.0),
    ]
    result = clean(items, CleanSettings(max_per_clip=1, max_per_class=2), history)
    assert [i.clip_id for i in result.kept] == ["b", "d"]  # happy: 1 earlier + b = 2, so c goes
    assert result.dropped == {"clip_cap": ["a"], "duplicate": [], "class_cap": ["c"], "balance": []}
    assert [i.clip_id for i in clean(items, CleanSettings(max_per_clip=2), history).kept] == ["a", "b", "c", "d"]


def test_clean_balance_and_order_independence():
    items = [item(f"h{i}", "happy", f"happy reason number {i} with AU{i}", 2.0 - i / 10) for i in range(3)]
    items.append(item("s0", "sad", "Brows knit, AU1 and AU4 with AU15.", 1.0))
    result = clean(items, CleanSettings(balance=True))
    assert [i.clip_id for i in result.kept] == ["h0", "s0"]  # rarest class has 1: the best happy stays
    assert result.dropped["balance"] == ["h1", "h2"]
    assert clean(items[::-1], CleanSettings(balance=True)).kept == result.kept[::-1]  # same set, input order


def test_shard_round_trip_checks_its_hash(tmp_path):
    from data_synthesis.shard import media_roots_for, read_shard, synthetic_sample, write_shard

    (tmp_path / "pool" / "clips").mkdir(parents=True)
    pool = read_manifest(
        write_manifest(
            tmp_path / "pool" / "pool.jsonl", [HAPPY.model_copy(update={"video": "clips/c1.mp4", "source": {"k": 1}})]
        )
    )
    folder = tmp_path / "out" / "shards"
    record = synthetic_sample(pool.samples[0], pool, folder, 3, "Cheeks raised (AU6).", {"model": "m"})
    assert record.id == "c1.synth3" and record.video == "../../pool/clips/c1.mp4"
    assert record.source == {"model": "m", "clip_id": "c1", "round": 3, "origin": {"k": 1}}
    info = write_shard(folder / "shard-3.jsonl", [record], media_roots_for([pool], folder), {"round": 3})
    shard = read_shard(folder / "shard-3.jsonl")
    assert shard.media_path(shard.samples[0], "video") == (tmp_path / "pool" / "clips" / "c1.mp4").resolve()
    assert info["records"] == 1 and info["media_roots"] == ["../../pool"]
    (folder / "shard-3.jsonl").write_text((folder / "shard-3.jsonl").read_text().replace("AU6", "AU7"))
    with pytest.raises(ValueError, match="sha256"):
        read_shard(folder / "shard-3.jsonl")


def test_synthesis_recipes_use_the_grpo_rewards_and_weights():
    from data_synthesis.config import parse_args
    from training.grpo import parse_args as grpo_args

    for model in ("tiny-omni", "qwen2.5-omni-7b"):
        path = REPO / "recipes" / model / "synthesis.yaml"
        args, rewards = parse_args(["--config", str(path)])
        _, _, grpo_rewards, grpo_config = grpo_args(
            ["--config", str(REPO / "recipes" / model / "grpo.yaml"), "--bf16", "false", "--use_cpu", "true"]
        )
        assert (rewards.reward_funcs, rewards.reward_kwargs) == (grpo_rewards.reward_funcs, grpo_rewards.reward_kwargs)
        assert args.reward_weights == grpo_config.reward_weights
        assert any("synthesize --config" in line for line in path.read_text().splitlines()[:15])


def test_config_rejects_mismatched_weights_and_minima(tmp_path):
    from data_synthesis.config import parse_args

    with pytest.raises(ValueError, match="reward_weights"):
        parse_args(["--pool_manifests", "p.jsonl", "--reward_funcs", "format_reward", "--reward_weights", "1", "2"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("pool_manifests: [p.jsonl]\nreward_funcs: [format_reward]\nmin_rewards: {au_f1_reward: 0}\n")
    with pytest.raises(ValueError, match="min_rewards"):
        parse_args(["--config", str(bad)])


def test_mapping_fields_accept_command_line_strings():
    """The demo passes overrides as one JSON string; the recipe gives YAML mappings."""
    from data_synthesis.config import parse_args

    args, _ = parse_args(
        [
            "--config",
            str(REPO / "recipes" / "tiny-omni" / "synthesis.yaml"),
            "--sft_overrides",
            '{"max_steps": 20, "save_steps": 100000, "eval_manifest": ""}',
            "--min_rewards",
            "{format_reward: 1.0}",
            "--rounds",
            "1",
            "--backend",
            "hf",
        ]
    )
    assert args.sft_overrides == {"max_steps": 20, "save_steps": 100000, "eval_manifest": ""}
    assert args.min_rewards == {"format_reward": 1.0} and args.grpo_overrides == {}
    with pytest.raises(ValueError, match="mapping"):
        parse_args(["--pool_manifests", "p.jsonl", "--sft_overrides", "[1, 2]"])


def test_synthesize_command_is_registered():
    from affect_mllm.cli import build_app

    assert "synthesize" in {c.name for c in build_app().registered_commands}


class ScriptedEngine:
    """An engine stand-in: a malformed reply to first attempts, the hinted labels as an answer to retries.

    A stand-in because the tiny models sample garbled text at temperature 1, which the recipe's keep rule never
    passes: the retry path and the recipe's rule on real clips need replies that fail, then pass, on cue.
    """

    adapter_names: tuple[str, ...] = ()

    def __init__(self, spec) -> None:
        self.spec = spec
        self.requests: list = []

    def generate(self, requests, sampling):
        from inference.engine import Generation

        self.requests += requests
        out = []
        for request in requests:
            prompt = request.conversation.messages[-1]["content"][-1]["text"]
            cited = re.search(r"action units are ([^.]*)\.", prompt)  # a neutral clip has none
            aus = cited.group(1) if cited else ""
            emotion = re.search(r"The emotion is (\w+)\.", prompt).group(1)
            text = (
                answer(f"I see {aus} ({aus}).", emotion, aus) if "had problems" in prompt else f"noise {request.seed}"
            )
            out.append([Generation(text, (request.seed + k,), "stop") for k in range(sampling.n)])
        return out

    def close(self) -> None:
        pass


def test_retries_feed_back_the_problems_and_resume_generates_nothing_twice(tmp_path, synthfacs_small, tiny_omni_dir):
    from affect_mllm.models.registry import resolve
    from data_synthesis.generate import GenerationPlan, PoolClip, generate_candidates
    from inference.engine import SamplingSettings

    manifest = read_manifest(synthfacs_small["val"])
    pool = [PoolClip(s, manifest) for s in manifest.samples[:3]]
    sampling = SamplingSettings(max_new_tokens=8, greedy=False, n=2)
    plan = GenerationPlan(round=0, seed=5, task="au_reasoning", sampling=sampling, retries=2, batch_size=2)
    engine = ScriptedEngine(resolve(str(tiny_omni_dir)))
    log = tmp_path / "candidates.jsonl"
    summary = generate_candidates(pool, engine, plan, recipe_verifier(min_reward=1.0), log)
    assert summary == {"clips": 3, "requests": 6, "generated_now": 6, "candidates": 12}  # attempt 2 not needed
    records = {r["key"]: r for r in read_jsonl(log)}
    retry = records[f"{pool[0].sample.id}#1"]
    assert retry["feedback"][0].startswith("the reply must be") and "had problems" in retry["prompt"]
    assert retry["seed"] != records[f"{pool[0].sample.id}#0"]["seed"]
    assert generate_candidates(pool, engine, plan, recipe_verifier(min_reward=1.0), log)["generated_now"] == 0
    assert len(engine.requests) == 6


def labels_only_pool(source: Path, dest: Path, n: int) -> Path:
    """The first n clips of a manifest without their rationales (labels only), pointing back at its clips."""
    manifest = read_manifest(source)
    samples = [s.model_copy(update={"rationale": None}) for s in manifest.samples[:n]]
    root = os.path.relpath(manifest.root, dest.parent)
    samples = [s.model_copy(update={"video": f"{root}/{s.video}"}) for s in samples]
    return write_manifest(dest, samples, media_roots=[root])


def synthesis_recipe(tmp_path: Path, tiny_sft: dict, pool: Path, output: Path, **fields) -> Path:
    """A small synthesis recipe (the tiny recipe's rewards and keep rule) written to a YAML file."""
    recipe = yaml.safe_load((REPO / "recipes" / "tiny-omni" / "synthesis.yaml").read_text())
    adapter = tiny_sft.get("adapter")
    recipe.update(
        model_name_or_path=str(tiny_sft["base"]),
        adapter_path=adapter and str(adapter),
        backend="hf",
        pool_manifests=[str(pool)],
        seed_manifest=None,
        regenerate_existing=False,
        output_dir=str(output),
        rounds=1,
        candidates=2,
        retries=0,
        max_new_tokens=48,
        engine_batch_size=1,
        sft_recipe=None,
        balance=False,
        seed=11,
    )
    recipe.update(fields)
    path = tmp_path / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def run_recipe(path: Path) -> list[dict]:
    from data_synthesis.loop import main

    return main(["--config", str(path)])


def test_loop_writes_valid_shards_with_provenance(tmp_path, synthfacs_small, tiny_omni_dir, monkeypatch):
    """Two rounds through every step, on the scripted engine: what is kept, where, with which provenance."""
    from affect_mllm.models.registry import resolve
    from data_synthesis import ray_scale
    from data_synthesis.shard import read_shard

    engine = ScriptedEngine(resolve(str(tiny_omni_dir)))
    monkeypatch.setattr(ray_scale.EngineSpec, "load", lambda spec: engine)
    pool = labels_only_pool(synthfacs_small["val"], tmp_path / "pool" / "pool.jsonl", 8)
    minima = {"format_reward": 1.0, "consistency_reward": 0.0, "au_f1_reward": 0.9}  # the neutral clip cites no AU
    recipe = synthesis_recipe(
        tmp_path, {"base": tiny_omni_dir}, pool, tmp_path / "run", rounds=2, retries=1, min_rewards=minima
    )
    reports = run_recipe(recipe)
    out = tmp_path / "run"
    round1 = read_shard(out / "shards" / "shard-1.jsonl")
    assert 0 < reports[0]["kept"] == len(round1) <= reports[0]["verified"] <= 8, reports[0]
    assert reports[0]["candidates"] == 8 * 2 * 2  # every clip failed attempt 0 and was retried
    for sample in round1.samples:
        source = sample.source
        assert sample.rationale and sample.emotion and sample.aus is not None
        assert round1.media_path(sample, "video").is_file()
        assert (source["attempt"], source["model"], source.get("adapter"), source["task"]) == (
            1,
            str(tiny_omni_dir),
            None,
            "au_reasoning",
        )
        assert source["reward_total"] >= 1.75 and set(source["rewards"]) == set(GRPO_REWARDS)
        assert source["sampling"] == {
            "backend": "hf",
            "temperature": 1.0,
            "top_p": 0.95,
            "max_new_tokens": 48,
            "candidates": 2,
        }
        assert "had problems" in source["prompt"] and source["feedback"] and source["origin"]["dataset"] == "synthfacs"
    state2 = json.loads((out / "round_2" / "state.json").read_text())
    kept1 = {s.source["clip_id"] for s in round1.samples}
    assert set(state2["pool"]) == {s.id for s in read_manifest(pool).samples} - kept1  # max_per_clip 1
    assert len(kept1) == 7 and len(state2["pool"]) == 1
    assert list(state2["steps"]) == ["generate", "verify", "clean", "write", "report", "retrain"]
    assert run_recipe(recipe) == reports and len(engine.requests) == 8 * 2 + len(state2["pool"]) * 2


def test_emotion_only_pool_hides_au_labels_from_prompts_rewards_and_shards(
    tmp_path, synthfacs_small, tiny_omni_dir, monkeypatch
):
    """au_labels false: the pool's AU labels reach no prompt, reward or shard; AU rewards are refused."""
    from affect_mllm.models.registry import resolve
    from data_synthesis import ray_scale
    from data_synthesis.config import parse_args
    from data_synthesis.shard import read_shard

    engine = ScriptedEngine(resolve(str(tiny_omni_dir)))
    monkeypatch.setattr(ray_scale.EngineSpec, "load", lambda spec: engine)
    pool = labels_only_pool(synthfacs_small["val"], tmp_path / "pool" / "pool.jsonl", 8)
    assert all(s.aus is not None for s in read_manifest(pool).samples)  # the labels exist, and stay hidden
    emotion_only = yaml.safe_load((REPO / "recipes" / "tiny-omni" / "synthesis_emotion_only.yaml").read_text())
    rule = {k: emotion_only[k] for k in ("au_labels", "reward_funcs", "reward_weights")}
    recipe = synthesis_recipe(tmp_path, {"base": tiny_omni_dir}, pool, tmp_path / "run", retries=1, hinted=True,
                              min_reward=1.0, min_rewards={"format_reward": 1.0}, **rule)
    report = run_recipe(recipe)[0]
    prompts = [r.conversation.messages[-1]["content"][-1]["text"] for r in engine.requests]
    assert all("The emotion is" in p and "active action units" not in p for p in prompts)  # the emotion hint only
    shard = read_shard(tmp_path / "run" / "shards" / "shard-1.jsonl")
    assert 0 < report["kept"] == len(shard)
    assert all(s.aus is None and "origin" not in s.source for s in shard.samples)
    assert all(set(s.source["rewards"]) == set(rule["reward_funcs"]) for s in shard.samples)
    with pytest.raises(ValueError, match=r"need AU labels.*au_f1_reward|au_f1_reward.*need AU labels"):
        parse_args(["--config", str(REPO / "recipes" / "tiny-omni" / "synthesis.yaml"), "--au_labels", "false"])
    grpo = yaml.safe_load((REPO / "recipes" / "tiny-omni" / "grpo.yaml").read_text())
    weights = dict(zip(grpo["reward_funcs"], grpo["reward_weights"], strict=True))
    assert rule["reward_weights"] == [weights[name] for name in rule["reward_funcs"]]  # GRPO's weights, less AUs


# The fixture adapter (120 SFT steps on 24 clips) seldom writes a well-formed answer, so the recipe's keep rule keeps
# nothing from it. The real-model tests lower the bar to "has a rationale" and sample at a low temperature, at which
# the adapter closes its <think> in about 2 of 5 clips at these seeds, so that real candidates reach every step; the
# recipe's rule itself is tested on hand-made completions and the scripted engine.
PERMISSIVE = {"min_reward": -10.0, "min_rewards": {}, "temperature": 0.3, "max_new_tokens": 128}
SFT_OVERRIDES = {
    "max_steps": 2,
    "per_device_train_batch_size": 2,
    "save_steps": 1000,
    "eval_manifest": "",
    "report_to": "none",
    "logging_steps": 1,
    "media_cache_clips": 0,
    "tasks": ["au_reasoning"],
}


@pytest.mark.integration
def test_two_rounds_end_to_end(tmp_path, tiny_sft, synthfacs_small):
    from data_synthesis.shard import read_shard

    pool = labels_only_pool(synthfacs_small["val"], tmp_path / "pool" / "pool.jsonl", 4)
    recipe = synthesis_recipe(
        tmp_path,
        tiny_sft,
        pool,
        tmp_path / "run",
        rounds=2,
        retries=1,
        seed_manifest=str(synthfacs_small["train"]),
        sft_overrides=SFT_OVERRIDES,
        sft_recipe=str(REPO / "recipes" / "tiny-omni" / "sft.yaml"),
        **PERMISSIVE,
    )
    reports = run_recipe(recipe)
    out = tmp_path / "run"
    assert [r["round"] for r in reports] == [1, 2] and reports[0]["candidates"] >= 4 * 2
    round2 = json.loads((out / "round_2" / "state.json").read_text())
    assert round2["generator"] == {"model": str(tiny_sft["base"]), "adapter": "round_1/sft", "produced": True}
    assert (out / "round_2" / "sft" / "adapter_model.safetensors").is_file()
    assert (out / "synthesis_rounds.png").read_bytes()[:4] == b"\x89PNG"
    for r in (1, 2):
        assert json.loads((out / f"round_{r}" / "report.json").read_text())["round"] == r
        assert (out / f"round_{r}" / "report.md").read_text().startswith(f"# Synthesis round {r}")
    assert len(json.loads((out / "synthesis_report.json").read_text())["rounds"]) == 2
    assert run_recipe(recipe) == reports  # finished: a rerun only reads the reports back
    shards = [read_shard(out / "shards" / f"shard-{r}.jsonl") for r in (1, 2)]
    assert [len(s) for s in shards] == [r["kept"] for r in reports]
    for shard, r in zip(shards, (1, 2), strict=True):
        for sample in shard.samples:
            source = sample.source
            assert sample.rationale and sample.id == f"{source['clip_id']}.synth{r}" and source["round"] == r
            assert source["reward_total"] >= PERMISSIVE["min_reward"] and set(source["rewards"]) == set(GRPO_REWARDS)
            assert {"model", "adapter", "prompt", "sampling", "candidate_index", "seed", "attempt"} <= set(source)
            assert shard.media_path(sample, "video").is_file()
    assert sum(r["kept"] for r in reports) > 0, reports


@pytest.mark.integration
def test_kill_during_generation_then_restart_gives_the_same_shard(tmp_path, tiny_sft, synthfacs_small):
    pool = labels_only_pool(synthfacs_small["val"], tmp_path / "pool" / "pool.jsonl", 5)
    killed = synthesis_recipe(tmp_path, tiny_sft, pool, tmp_path / "killed", **PERMISSIVE)
    reference = synthesis_recipe(tmp_path, tiny_sft, pool, tmp_path / "reference", **PERMISSIVE)
    log = tmp_path / "killed" / "round_1" / "candidates.jsonl"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    kill_when([sys.executable, "-m", "data_synthesis.loop", "--config", str(killed)], log, cwd=REPO, env=env)
    done_before = log.read_bytes().count(b"\n")
    assert 1 <= done_before < 5, done_before  # killed mid-generation (the log appears with its first clip)
    run_recipe(killed)
    run_recipe(reference)
    lines = log.read_text().splitlines()
    assert len(lines) == len({json.loads(line)["key"] for line in lines}) == 5  # nothing generated twice
    assert read_manifest(tmp_path / "reference" / "shards" / "shard-1.jsonl").samples  # not two empty shards
    for name in ("shards/shard-1.jsonl", "round_1/verified.jsonl", "round_1/candidates.jsonl"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
