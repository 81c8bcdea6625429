"""Config dataclasses of the training recipes; YAML recipes and CLI flags fill them through TRL's `TrlParser`.

The `help=` string of each field is its documentation. TRL's own `SFTConfig`/`GRPOConfig` fields keep their
names and meanings; the classes here add only what affect-mllm needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig, SFTConfig

from affect_mllm.prompts import TASKS

RATIONALE_STYLES = ("reference", "perception")
LAUNCH_HELP = ("The launch the dry run sizes memory for: single, ddp, zero2, zero3 or fsdp, optionally :N processes "
               "(default: N of training/accelerate/<mode>.yaml), or an accelerate config file; default: the "
               "launcher's environment, else one process.")


@dataclass
class DataArguments:
    """Which samples to train on and how they become conversations."""

    train_manifest: str = field(default="", metadata={"help": "JSONL manifest of training samples (project schema)."})
    eval_manifest: str | None = field(default=None, metadata={"help": "JSONL manifest evaluated during training."})
    tasks: list[str] = field(
        default_factory=lambda: ["ov_emotion"],
        metadata={
            "help": f"Tasks mixed in one run, each sample drawing one per epoch; choose from {', '.join(TASKS)}."
        },
    )
    task_weights: list[float] | None = field(
        default=None, metadata={"help": "Relative weight of each task in `tasks` (default: equal)."}
    )
    prompt_variants: int = field(default=2, metadata={"help": "Number of phrasings per task to cycle through."})
    cot_share: float = field(
        default=0.0, metadata={"help": "Share of prompts asking for key observations -> interpretation -> conclusion."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training samples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N evaluation samples."})
    media_cache_clips: int = field(
        default=0,
        metadata={
            "help": "Keep up to N decoded clips in memory (saves decoding every epoch; ~0.4 MB each "
            "for 8 frames of 112x112 + 4 s of audio)."
        },
    )
    audio_in_video: bool = field(
        default=False, metadata={"help": "Qwen2.5-Omni interleaved audio-in-video instead of two separate parts."}
    )
    face_crop: bool = field(
        default=False,
        metadata={"help": "Crop frames to the tracked face (affect_mllm.face); predict must then crop too."},
    )
    seed_data: int = field(default=0, metadata={"help": "Seed of the task/phrasing draw (independent of `seed`)."})
    rationale_style: str = field(
        default="reference",
        metadata={
            "help": "The <think> text SFT trains on: 'reference' (each sample's own rationale) or 'perception' "
            "(composed from its labelled AUs and voice attributes, the words the tiny bases were pretrained on; "
            "for models too small to write free prose, falling back to the reference without AU labels)."
        },
    )

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown tasks {unknown}; choose from {', '.join(TASKS)}")
        if self.task_weights is not None and len(self.task_weights) != len(self.tasks):
            raise ValueError("task_weights must have one weight per task")
        if self.rationale_style not in RATIONALE_STYLES:
            raise ValueError(f"unknown rationale_style {self.rationale_style!r}; choose from {RATIONALE_STYLES}")


@dataclass
class ModelArguments:
    """Which model to tune and which of its parts train."""

    model_name_or_path: str = field(
        default="tiny-omni",
        metadata={"help": "Registry name (tiny-omni, qwen2.5-omni-7b, ...), local folder or hub id."},
    )
    dtype: str = field(default="float32", metadata={"help": "Weights dtype: float32 (CPU) or bfloat16 (GPU)."})
    use_lora: bool = field(default=True, metadata={"help": "Train LoRA adapters (False: all parameters)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (vLLM serves ranks 8, 16, 32, 64, ...)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    train_merger: bool = field(
        default=False,
        metadata={
            "help": "Also train the vision merger fully (the adapter then needs `export --merge` "
            "before vLLM can serve it)."
        },
    )
    train_vision: bool = field(
        default=False, metadata={"help": "Also train the vision encoder fully (merge to serve)."}
    )
    train_audio: bool = field(default=False, metadata={"help": "Also train the audio encoder fully (merge to serve)."})
    adapter_path: str | None = field(
        default=None, metadata={"help": "Continue training this LoRA adapter instead of starting a new one."}
    )


@dataclass
class AffectSFTConfig(SFTConfig):
    """TRL's SFTConfig with the settings video+audio SFT needs, plus a preflight switch."""

    dry_run: bool = field(
        default=False,
        metadata={"help": "Check data, tokens per sample, memory and batch divisibility; train nothing."},
    )
    launch: str | None = field(default=None, metadata={"help": LAUNCH_HELP})
    # Our collator builds the batches from media: TRL must neither drop the raw columns nor tokenize them.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep raw columns for the media collator."})
    dataset_kwargs: dict | None = field(
        default_factory=lambda: {"skip_prepare_dataset": True},
        metadata={"help": "Skip TRL's text preparation: the collator renders the chat and the media."},
    )
    # Truncating a multimodal sequence desynchronises media tokens and features ("features and tokens do not match").
    max_length: int | None = field(default=None, metadata={"help": "Keep None: truncation breaks media placeholders."})
    report_to: list[str] | str = field(default_factory=lambda: ["tensorboard"], metadata={"help": "Loggers."})
    save_only_model: bool = field(default=False, metadata={"help": "Keep optimizer state in checkpoints (resume)."})


@dataclass
class RewardArguments:
    """Which registered rewards score completions, with what weights and settings (GRPO and synthesis share it)."""

    reward_funcs: list[str] = field(
        default_factory=lambda: ["format_reward", "emotion_wheel_f1_reward", "au_f1_reward"],
        metadata={"help": "Names of registered rewards (affect_mllm.rewards.REWARDS); also their log keys."})
    reward_kwargs: dict = field(
        default_factory=dict,
        metadata={"help": "Per-reward settings, e.g. {length_penalty_reward: {max_words: 120}}; checked against "
                          "each reward's signature when the recipe is parsed."})

    def __post_init__(self) -> None:
        # a misspelt reward or setting fails here, before any weights load (also in a --dry_run)
        from affect_mllm.rewards import get_reward_funcs

        get_reward_funcs(self.reward_funcs, self.reward_kwargs)


@dataclass
class AffectGRPOConfig(GRPOConfig):
    """TRL's GRPOConfig (same fields and meanings) plus a preflight switch."""

    dry_run: bool = field(
        default=False, metadata={"help": "Check data, num_generations vs batch sizes and memory; train nothing."})
    launch: str | None = field(default=None, metadata={"help": LAUNCH_HELP})
    report_to: list[str] | str = field(default_factory=lambda: ["tensorboard"], metadata={"help": "Loggers."})
    save_only_model: bool = field(default=False, metadata={"help": "Keep optimizer state in checkpoints (resume)."})
    vllm_kv_cache_gib: float | None = field(
        default=None, metadata={"help": "KV cache of each rank's colocated vLLM engine (GiB); None: what "
                                        "per_device_train_batch_size sequences of vllm_max_model_length tokens need "
                                        "(inference.vllm_engine.kv_cache_gib_needed)."})
