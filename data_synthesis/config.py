"""The synthesis recipe: `SynthesisArguments` plus the GRPO recipes' `RewardArguments`, parsed by TRL's `TrlParser`.

The filter uses the reward names, settings and `reward_weights` that GRPO trains with (the same field names as in
`recipes/<model>/grpo.yaml`), so training and filtering cannot disagree about what a good rationale is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import yaml

from affect_mllm.prompts import TASKS

BACKEND_CHOICES = ("auto", "hf", "vllm")  # inference.engine.BACKENDS, repeated so parsing imports no engine code
# Fields that change how the work is spread or reported, never what is generated or kept: a restarted run may
# change them (more rounds, a Ray cluster instead of the local engine) without invalidating finished rounds.
RESUME_INDEPENDENT_FIELDS = (
    "rounds",
    "engine_batch_size",
    "ray_address",
    "ray_replicas",
    "ray_cpus_per_replica",
    "ray_gpus_per_replica",
    "report_examples",
)

# Mappings a recipe gives as YAML mappings; on the command line they arrive as one JSON/YAML string, because the
# argument parser has no dict type (hence their `dict | str | None` annotation, which it reads as str).
DICT_FIELDS = ("min_rewards", "sft_overrides", "grpo_overrides")


def as_dict(name: str, value: dict | str | None) -> dict:
    """A mapping field's value: a dict as is, a JSON/YAML flow string parsed, None as {}.

    Example:
        >>> as_dict("sft_overrides", '{"max_steps": 20, eval_manifest: ""}')
        {'max_steps': 20, 'eval_manifest': ''}

    Raises:
        ValueError: a string that is not a mapping.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        parsed = yaml.safe_load(value) if value.strip() else {}
        if not isinstance(parsed, dict):
            raise ValueError(f"{name} must be a mapping such as '{{max_steps: 20}}', not {value!r}")
        return parsed
    return dict(value)


@dataclass
class SynthesisArguments:
    """What to synthesize from, with which model, how to filter and clean, and how to retrain."""

    # Parameters that control the data
    pool_manifests: list[str] = field(
        default_factory=list,
        metadata={
            "help": "JSONL manifests of labelled clips to write rationales for (clips lacking a rationale, "
            "or whose rationale fails the keep rule)."
        },
    )
    seed_manifest: str | None = field(
        default=None,
        metadata={"help": "Manifest of seed samples with reference rationales, mixed into every retraining set."},
    )
    max_pool_samples: int | None = field(default=None, metadata={"help": "Use only the first N pool clips."})
    au_labels: bool = field(
        default=True,
        metadata={
            "help": "False: the pool is treated as a corpus with emotion labels only; its AU labels, rationales "
            "and provenance (SynthFACS keeps voice labels there) are hidden from prompts, rewards, the keep rule "
            "and the shards, so only rewards that need no AU label can keep a candidate."
        },
    )
    regenerate_existing: bool = field(
        default=False,
        metadata={"help": "Also write rationales for pool clips whose own rationale already passes the keep rule."},
    )
    task: str = field(
        default="au_reasoning",
        metadata={"help": f"Task whose prompt asks for the rationale; one of {', '.join(TASKS)}."},
    )
    prompt_variant: int = field(default=0, metadata={"help": "Which phrasing of the task's prompt."})
    audio_in_video: bool = field(
        default=False, metadata={"help": "Qwen2.5-Omni interleaved audio-in-video (as the SFT recipe trains)."}
    )

    # Parameters that control the generator
    model_name_or_path: str = field(
        default="tiny-omni-base", metadata={"help": "Registry name, local folder or hub id of the base model."}
    )
    adapter_path: str | None = field(
        default=None, metadata={"help": "LoRA adapter that writes round 1 (later rounds use the retrained one)."}
    )
    dtype: str = field(default="float32", metadata={"help": "Engine weights dtype: float32 (CPU) or bfloat16."})
    backend: str = field(
        default="auto", metadata={"help": f"Engine backend, one of {BACKEND_CHOICES}; auto: vLLM where installed."}
    )
    engine_batch_size: int = field(
        default=8, metadata={"help": "Clips per engine call; each call's candidates are logged durably at once."}
    )
    rounds: int = field(default=2, metadata={"help": "Generate -> verify -> clean -> write -> retrain rounds."})
    seed: int = field(
        default=0, metadata={"help": "Seeds every (round, clip, attempt, candidate) sample: same seed, same data."}
    )
    candidates: int = field(default=4, metadata={"help": "Candidates k sampled per clip and attempt."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (> 0)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass in (0, 1]."})
    max_new_tokens: int = field(default=128, metadata={"help": "Longest candidate, in tokens."})
    hinted: bool = field(
        default=True, metadata={"help": "State the labelled emotion and AUs in the prompt (Facial-R1's stage 3)."}
    )
    retries: int = field(
        default=1,
        metadata={
            "help": "Extra attempts for clips with no passing candidate; each retry prompt says "
            "what the best failed candidate got wrong."
        },
    )

    # Parameters that control the keep rule (the rewards and their weights come from RewardArguments)
    reward_weights: list[float] | None = field(
        default=None,
        metadata={
            "help": "Weight per reward in reward_funcs (TRL's GRPOConfig field; default 1 "
            "each); copy them from the GRPO recipe."
        },
    )
    min_reward: float = field(
        default=1.0, metadata={"help": "Smallest weighted reward total a kept candidate may have."}
    )
    min_rewards: dict | str | None = field(
        default_factory=dict,
        metadata={
            "help": "Per-reward minima, e.g. {format_reward: 1.0, consistency_reward: 0.0}; a reward that "
            "cannot score a clip (no such label) does not block it."
        },
    )

    # Parameters that control cleaning
    dedup_threshold: float = field(
        default=0.9,
        metadata={
            "help": "Drop a rationale whose word-set Jaccard similarity to an already kept one "
            "reaches this (1.0: identical word sets only; above 1: off)."
        },
    )
    max_per_clip: int = field(
        default=1, metadata={"help": "Kept rationales per clip over all rounds (a clip at its cap leaves the pool)."}
    )
    max_per_class: int | None = field(
        default=None, metadata={"help": "Kept rationales per emotion class over all rounds (None: no cap)."}
    )
    balance: bool = field(
        default=False, metadata={"help": "Cap every class of a round at the count of its rarest kept class."}
    )

    # Parameters that control retraining
    sft_recipe: str | None = field(
        default=None, metadata={"help": "SFT recipe that retrains on seed + kept data each round (None: no retrain)."}
    )
    sft_overrides: dict | str | None = field(
        default_factory=dict, metadata={"help": "SFT recipe fields to override, e.g. {max_steps: 200}."}
    )
    continue_adapter: bool = field(
        default=True, metadata={"help": "Retrain from the generator's adapter (False: a new LoRA on the base)."}
    )
    grpo_recipe: str | None = field(
        default=None, metadata={"help": "GRPO recipe run after SFT each round, from the SFT adapter (None: skip)."}
    )
    grpo_overrides: dict | str | None = field(
        default_factory=dict, metadata={"help": "GRPO recipe fields to override."}
    )

    # Parameters that control scale-out and outputs
    output_dir: str = field(default="runs/synthesis", metadata={"help": "Folder of rounds, shards and reports."})
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "Ray cluster address ('auto', 'host:port', 'local'): generate on Ray actors, "
            "one engine replica each. None: the local engine."
        },
    )
    ray_replicas: int = field(default=1, metadata={"help": "Engine replicas (Ray actors)."})
    ray_cpus_per_replica: float = field(default=1.0, metadata={"help": "CPUs Ray reserves per replica."})
    ray_gpus_per_replica: float = field(default=0.0, metadata={"help": "GPUs Ray reserves per replica."})
    report_examples: int = field(default=3, metadata={"help": "Example rationales shown per round report."})

    def __post_init__(self) -> None:
        for name in DICT_FIELDS:
            setattr(self, name, as_dict(name, getattr(self, name)))
        checks = [
            (self.task in TASKS, f"task must be one of {TASKS}, not {self.task!r}"),
            (self.backend in BACKEND_CHOICES, f"backend must be one of {BACKEND_CHOICES}, not {self.backend!r}"),
            (
                self.rounds >= 1 and self.candidates >= 1 and self.retries >= 0,
                "need rounds >= 1, candidates >= 1 and retries >= 0",
            ),
            (self.temperature > 0 and 0 < self.top_p <= 1, "need temperature > 0 and 0 < top_p <= 1"),
            (
                self.max_new_tokens >= 1 and self.engine_batch_size >= 1 and self.ray_replicas >= 1,
                "need max_new_tokens, engine_batch_size and ray_replicas >= 1",
            ),
            (
                self.max_per_clip >= 1 and (self.max_per_class is None or self.max_per_class >= 1),
                "need max_per_clip >= 1 and max_per_class None or >= 1",
            ),
            (math.isfinite(self.min_reward) and self.dedup_threshold > 0, "need a finite min_reward, dedup > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def fingerprint(self) -> dict:
        """The fields that decide what is generated and kept (see RESUME_INDEPENDENT_FIELDS)."""
        return {k: v for k, v in asdict(self).items() if k not in RESUME_INDEPENDENT_FIELDS}


def check_rewards(args: SynthesisArguments, reward_args) -> None:
    """The weights and minima must fit the reward names (the parser sees the two dataclasses separately).

    Raises:
        ValueError: a weight count that differs from the reward count, or minima for rewards not in use.
    """
    from affect_mllm.rewards import get_reward_funcs

    get_reward_funcs(reward_args.reward_funcs, reward_args.reward_kwargs)
    if args.reward_weights is not None and len(args.reward_weights) != len(reward_args.reward_funcs):
        raise ValueError(
            f"{len(args.reward_weights)} reward_weights for {len(reward_args.reward_funcs)} "
            f"reward_funcs {reward_args.reward_funcs}"
        )
    unknown = sorted(set(args.min_rewards) - set(reward_args.reward_funcs))
    if unknown:
        raise ValueError(f"min_rewards names reward(s) not in reward_funcs: {unknown}")
    if not args.au_labels:
        blind = needs_au_labels(reward_args.reward_funcs, reward_args.reward_kwargs)
        if blind:
            raise ValueError(f"au_labels is false but reward(s) {blind} need AU labels: they would score no clip")


# A well-formed happy answer; a reward that gives None for it without AU labels cannot score an emotion-only pool.
_PROBE = ("<think>Cheeks raised (AU6), lip corners pulled up (AU12).</think>"
          "<answer>emotion: happy; aus: AU6, AU12</answer>")


def needs_au_labels(names: list[str], kwargs: dict | None) -> list[str]:
    """The rewards among `names` that cannot score a completion whose clip has emotion labels but no AU labels.

    Example:
        >>> needs_au_labels(["format_reward", "au_f1_reward", "consistency_reward"], {})
        ['au_f1_reward']
    """
    from affect_mllm.rewards import get_reward_funcs

    funcs = get_reward_funcs(names, kwargs)
    columns = {"emotion": ["happy"], "emotions": [["happy"]], "aus": [None]}
    return [name for name, func in zip(names, funcs, strict=True) if func([_PROBE], **columns) == [None]]


def parse_args(argv: list[str] | None = None):
    """Parse a YAML recipe plus CLI overrides into (SynthesisArguments, RewardArguments), checked together."""
    from trl import TrlParser

    from training.configs import RewardArguments

    parser = TrlParser((SynthesisArguments, RewardArguments))
    args, reward_args = parser.parse_args_and_config(args=argv)
    check_rewards(args, reward_args)
    return args, reward_args


def recipe_overrides(overrides: dict) -> list[str]:
    """{field: value} -> recipe CLI flags (`--field value`; lists as several values, booleans as true/false).

    Example:
        >>> recipe_overrides({"max_steps": 20, "tasks": ["ov_emotion", "au"], "bf16": False})
        ['--max_steps', '20', '--tasks', 'ov_emotion', 'au', '--bf16', 'false']
    """
    argv: list[str] = []
    for key, value in overrides.items():
        values = value if isinstance(value, list | tuple) else [value]
        argv += [f"--{key}", *(str(v).lower() if isinstance(v, bool) else str(v) for v in values)]
    return argv
