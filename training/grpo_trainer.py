"""GRPO with the media in the loss pass: an HF `Trainer` whose inputs are rollouts scored by the project's rewards.

Why not a `trl.GRPOTrainer` subclass: TRL 1.16 feeds video/audio only to generation, never to the loss forward
(`_generate_and_score_completions` keeps only image tensors, `_get_per_token_logps_and_entropies` has no video or
audio parameters), so the policy would be trained on the placeholder tokens without the media: silently wrong on
transformers >= 5.21, a crash on the pinned 5.19 (fused LM head). A subclass would have to replace generation and
scoring, the log-prob pass, the loss and the per-sample splitting of video-patch rows, i.e. most of the trainer.
So this is a compact GRPO of our own on top of `transformers.Trainer`, which keeps what users rely on: TRL's
`GRPOConfig` as the arguments (num_generations, beta, epsilon(_high), loss_type, scale_rewards, reward_weights,
temperature, max_completion_length, ... with TRL's meanings), TRL's log names (`rewards/<name>/mean`, `kl`,
`completions/mean_length`, `clip_ratio/...`), and Trainer's checkpoints, resume and accelerate/DeepSpeed handling.

Several processes (DDP, gloo on CPU) give what one process gives with the same global batch and seed
(tests/test_distributed.py): the sampler yields each prompt's group consecutively and accelerate deals the
per-device batches to the ranks in turn, so a global micro-batch holds whole groups though a group may span ranks;
rewards are gathered from every rank before the advantages (each group's baseline is its whole group, as in TRL),
metrics and saved completions are gathered too, and each completion's sampling seed is a hash of the run seed, the
step and its position in the global micro-batch, not of the rank that generates it.

Deliberate simplification, checked at start-up: one generation per micro-batch (TRL's steps_per_generation =
gradient_accumulation_steps with num_iterations = 1 gives the same on-policy update), so num_generations divides
the global micro-batch (per_device_train_batch_size x processes).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.data import Sampler
from transformers import Trainer

from affect_mllm.models.inputs import Conversation, encode
from affect_mllm.rewards import score_completions
from affect_mllm.schema import Sample
from training.grpo_loss import LossSettings, group_advantages, policy_loss

logger = logging.getLogger(__name__)

REWARD_COLUMNS = ("emotion", "emotions", "aus", "valence", "arousal", "rationale", "face_emotion", "voice_emotion")


class RepeatedPromptSampler(Sampler):
    """Yields each prompt index `repeats` times in a row (one group), prompts shuffled anew each epoch.

    Epoch e's order is drawn from seed + e, as torch's DistributedSampler does: the same on every rank (accelerate
    deals the batches out), a new order each epoch, and the same order again when a run resumes mid-way. TRL's
    RepeatSampler seeds one generator once, which a resumed run cannot replay: transformers 5's Trainer no longer
    iterates the epochs it skips, it calls `set_epoch`.
    """

    def __init__(self, size: int, repeats: int, seed: int) -> None:
        self.size, self.repeats, self.seed, self.epoch = size, repeats, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the order of this epoch at the next pass (Trainer calls it before each epoch)."""
        self.epoch = epoch

    def __iter__(self):
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        self.epoch += 1  # a loader that never calls set_epoch still gets a new order on its next pass
        for index in order:
            yield from [index] * self.repeats

    def __len__(self) -> int:
        return self.size * self.repeats


def rollout_seed(seed: int, step: int, position: int) -> int:
    """The sampling seed of the completion at `position` of a step's global generation batch.

    It depends on where the completion sits in the global batch, never on the rank that generates it, so one
    process and several draw the same completions (both engines sample a seeded request the same whatever its
    batch neighbours).
    """
    digest = hashlib.sha256(f"{seed}\x1f{step}\x1f{position}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def reward_columns(samples: list[Sample]) -> dict[str, list]:
    """Label columns of a batch, named as the rewards take them (the schema's names)."""
    records = [s.model_dump() for s in samples]
    return {column: [r[column] for r in records] for column in REWARD_COLUMNS}


def token_logps(model, batch: dict, completion_ids: torch.Tensor, completion_attention: torch.Tensor,
                temperature: float = 1.0, **forward_extra) -> torch.Tensor:
    """Per-token log-probs of the completions given prompt + media (media tensors go into this forward).

    Logits are divided by the sampling temperature, as TRL does: the completions were drawn from softmax(z / T).
    """
    input_ids = torch.cat([batch["input_ids"], completion_ids], dim=1)
    attention = torch.cat([batch["attention_mask"], completion_attention], dim=1)
    media = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
    logits = model(input_ids=input_ids, attention_mask=attention, use_cache=False, **media, **forward_extra).logits
    logits = logits[:, -completion_ids.size(1) - 1:-1].float() / temperature
    return torch.gather(logits.log_softmax(-1), 2, completion_ids.unsqueeze(-1)).squeeze(-1)


def loss_settings(args) -> LossSettings:
    """The loss settings of a GRPOConfig (TRL's field names and defaults)."""
    return LossSettings(args.loss_type, args.beta, args.epsilon, args.epsilon_high or args.epsilon,
                        args.importance_sampling_level, args.max_completion_length, args.use_bias_correction_kl)


class MediaGRPOTrainer(Trainer):
    """GRPO on video+audio prompts; see the module docstring."""

    def __init__(self, *, model, args, train_dataset, processor, spec, reward_funcs, engine_factory,
                 conversation_builder, **kwargs) -> None:
        super().__init__(model=model, args=args, train_dataset=train_dataset, processing_class=processor,
                         data_collator=lambda rows: rows, **kwargs)
        self.spec = spec
        self.reward_funcs = list(reward_funcs)
        weights = args.reward_weights or [1.0] * len(self.reward_funcs)
        if len(weights) != len(self.reward_funcs):
            raise ValueError(f"{len(weights)} reward_weights for {len(self.reward_funcs)} reward functions")
        self.reward_weights = torch.tensor(weights, dtype=torch.float32)
        self.engine_factory = engine_factory  # (model, processor, spec, step) -> Engine: training/rollouts.py
        self.conversation_builder = conversation_builder
        self.loss_settings = loss_settings(args)
        self.loss_is_scaled_for_ga = True  # compute_loss scales for accumulation itself, as TRL does
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._generation = (-1, 0)  # (optimizer step, micro-batches generated in it): places each rollout's seeds

    def _get_train_sampler(self, *args, **kwargs):
        return RepeatedPromptSampler(len(self.train_dataset), self.args.num_generations, self.args.seed)

    def _prepare_inputs(self, rows):
        if isinstance(rows, dict):  # already prepared (e.g. by a callback)
            return rows
        return self.generate_and_score(rows)

    def generate_and_score(self, rows: list[dict]) -> dict:
        """Roll out one completion per row through the engine, score it, and build the loss inputs.

        The rewards of every rank are gathered first: a group may span ranks, and its advantages take the
        baseline (and scale) of the whole group, or of the whole global batch for scale_rewards="batch".
        """
        samples, conversations = self.conversation_builder(rows)
        completions = self._rollout(conversations, self._global_offset(len(rows)))
        texts = [c.text for c in completions]
        tasks = [row["task"] for row in rows]  # format_reward asks for the fields of each sample's task
        columns = {**reward_columns(samples), "task": tasks, "modalities": [c.media.modalities for c in conversations]}
        scores = score_completions(texts, columns, self.reward_funcs, self.reward_weights.tolist())
        rewards = self.accelerator.gather(torch.tensor(scores["rewards"], dtype=torch.float32))
        advantages, std = group_advantages(rewards, self.args.num_generations, self.args.scale_rewards)
        mine = slice(self.accelerator.process_index * len(rows), (self.accelerator.process_index + 1) * len(rows))
        batch = encode(self.processing_class, self.spec, conversations, padding_side="left")
        completion_ids, completion_attention = self._pad_completions([c.token_ids for c in completions])
        self._log_rollout(scores, rewards, std, completion_attention, texts, samples, tasks)
        inputs = {"batch": batch.to(self.args.device), "completion_ids": completion_ids.to(self.args.device),
                  "completion_mask": completion_attention.to(self.args.device),
                  "advantages": advantages[mine].to(self.args.device)}
        if self.args.beta != 0.0:
            inputs["ref_logps"] = self._reference_logps(inputs)
        return inputs

    def _global_offset(self, local_rows: int) -> int:
        """Where this rank's rows start in the run's stream of rollouts of the current optimizer step.

        Rank r holds rows [r * n, (r + 1) * n) of each global micro-batch (accelerate deals the batches out in
        turn), and the k-th micro-batch of a step (gradient accumulation) follows the k - 1 before it.
        """
        step, generated = self._generation
        if step != self.state.global_step:
            step, generated = self.state.global_step, 0
        self._generation = (step, generated + 1)
        processes = self.accelerator.num_processes
        return (generated * processes + self.accelerator.process_index) * local_rows

    def _rollout(self, conversations: list[Conversation], offset: int):
        from inference.engine import GenerationRequest, SamplingSettings

        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        engine = self.engine_factory(model, self.processing_class, self.spec, self.state.global_step)
        requests = [GenerationRequest(conversation, seed=rollout_seed(self.args.seed, self.state.global_step,
                                                                      offset + i))
                    for i, conversation in enumerate(conversations)]
        sampling = SamplingSettings(max_new_tokens=self.args.max_completion_length, greedy=False,
                                    temperature=self.args.temperature, top_p=self.args.top_p, n=1)
        generations = [candidates[0] for candidates in engine.generate(requests, sampling)]
        model.train(was_training)
        return generations

    def _pad_completions(self, token_lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        tokenizer = self.processing_class.tokenizer
        end_id, pad_id = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id
        length = max(1, max(len(t) for t in token_lists))
        ids = torch.full((len(token_lists), length), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        media_ids = set(_media_token_ids(self.processing_class))
        for row, tokens in enumerate(token_lists):
            cut = tokens.index(end_id) + 1 if end_id in tokens else len(tokens)  # keep the end token in the loss
            # a media placeholder in a completion would ask the loss forward for media features it does not have
            # (an untrained policy samples them): the completion ends before it
            cut = next((i for i, t in enumerate(tokens[:cut]) if t in media_ids), cut)
            ids[row, :cut] = torch.tensor(tokens[:cut], dtype=torch.long)
            mask[row, :cut] = 1
        return ids, mask

    @torch.no_grad()
    def _reference_logps(self, inputs: dict) -> torch.Tensor:
        model = self.accelerator.unwrap_model(self.model)
        with model.disable_adapter():  # LoRA: the reference is the base without the adapter, as in TRL
            return token_logps(model, inputs["batch"], inputs["completion_ids"], inputs["completion_mask"],
                               self.args.temperature)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logps = token_logps(model, inputs["batch"], inputs["completion_ids"], inputs["completion_mask"],
                            self.args.temperature)
        mask = inputs["completion_mask"]
        # dapo divides by the tokens of the global batch: each rank by 1 / processes of them, as DDP averages
        tokens = self.accelerator.gather(mask.sum().reshape(1)).sum()
        output = policy_loss(logps, logps.detach(), inputs["advantages"], mask, self.loss_settings,
                             ref_logps=inputs.get("ref_logps"),
                             num_items_in_batch=tokens / self.accelerator.num_processes)
        self._log_loss_statistics(output, mask)
        return output.loss / self.current_gradient_accumulation_steps

    def _log_loss_statistics(self, output, mask: torch.Tensor) -> None:
        """KL and clipped shares over the global batch's tokens (every rank's token-weighted sums)."""
        tokens = mask.sum().float()
        kl = output.kl if output.kl is not None else torch.zeros(())
        weighted = torch.stack([tokens, output.clip_ratio_low * tokens, output.clip_ratio_high * tokens, kl * tokens])
        tokens, low, high, kl = self.accelerator.gather(weighted.detach().reshape(1, -1)).sum(dim=0).tolist()
        tokens = max(tokens, 1.0)
        if output.kl is not None:
            self._metrics["kl"].append(kl / tokens)
        self._metrics["clip_ratio/low_mean"].append(low / tokens)
        self._metrics["clip_ratio/high_mean"].append(high / tokens)

    def _log_rollout(self, scores: dict, rewards: torch.Tensor, std: torch.Tensor, completion_attention, texts,
                     samples, tasks) -> None:
        """Log the global batch's rewards and lengths (`rewards`, `std` are already gathered), save its completions."""
        per_func = torch.tensor([scores["rewards_per_func"][name] for name in scores["names"]],
                                dtype=torch.float32).T.contiguous()
        per_func = self.accelerator.gather(per_func)
        for j, name in enumerate(scores["names"]):
            self._metrics[f"rewards/{name}/mean"].append(torch.nanmean(per_func[:, j]).item())
            self._metrics[f"rewards/{name}/std"].append(_nan_std(per_func[:, j]))
        self._metrics["reward"].append(torch.nanmean(rewards).item())
        self._metrics["reward_std"].append(_nan_std(rewards))
        self._metrics["frac_reward_zero_std"].append(torch.isclose(std, torch.zeros_like(std)).float().mean().item())
        lengths = self.accelerator.gather(completion_attention.sum(dim=1).float())
        self._metrics["completions/mean_length"].append(lengths.mean().item())
        self._metrics["completions/clipped_ratio"].append((lengths >= self.args.max_completion_length).float()
                                                          .mean().item())
        rows = [{"step": self.state.global_step, "id": sample.id, "task": task, "completion": text,
                 "reward": scores["rewards"][i],
                 **{name: values[i] for name, values in scores["rewards_per_func"].items()}}
                for i, (text, sample, task) in enumerate(zip(texts, samples, tasks, strict=True))]
        self._save_completions(rows)

    def _save_completions(self, rows: list[dict]) -> None:
        from accelerate.utils import gather_object

        rows = gather_object(rows)  # every rank takes part; the main process writes them all, in global order
        if not self.accelerator.is_main_process:
            return
        folder = Path(self.args.output_dir) / "completions"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"step_{self.state.global_step:06d}.jsonl").open("a") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        averaged = {k: sum(v) / len(v) for k, v in self._metrics.items() if v}
        super().log({**logs, **averaged}, start_time)
        self._metrics.clear()


def _media_token_ids(processor) -> list[int]:
    tokenizer = processor.tokenizer
    names = [getattr(processor, attr, None) for attr in ("image_token", "video_token", "audio_token")]
    names += [getattr(tokenizer, attr, None) for attr in ("vision_bos_token", "vision_eos_token", "audio_bos_token",
                                                           "audio_eos_token")]
    return [tokenizer.convert_tokens_to_ids(name) for name in names if name]


def _nan_std(values: torch.Tensor) -> float:
    kept = values[~torch.isnan(values)]
    return kept.std().item() if kept.numel() > 1 else 0.0
