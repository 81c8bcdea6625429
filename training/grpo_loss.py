"""GRPO advantages and policy loss, written from the formulas (no TRL code), with TRL's names and meanings.

Advantages (TRL `scale_rewards`): A = r - mean_group(r), divided by (std + 1e-4) where std is the group's
("group", default) or the whole batch's ("batch") Bessel-corrected standard deviation, or left unscaled ("none").
Rewards that every function skipped (all None) are NaN: left out of the baseline, advantage 0.

Loss per token, with ratio = exp(logp - logp_old) (token level) or exp(mean over the sequence) (sequence level):
    -min(ratio * A, clip(ratio, 1 - epsilon_low, 1 + epsilon_high) * A) + beta * KL,
KL = exp(ref - logp) - (ref - logp) - 1 (the k3 estimator), multiplied by the ratio when
`use_bias_correction_kl` (TRL's default: the completions came from the old policy, not the current one).
Aggregation (`loss_type`)::
    grpo:    mean over sequences of each sequence's token mean
    bnpo:    token mean over the micro-batch
    dr_grpo: token sum / (sequences * max_completion_length)
    dapo:    token sum / tokens of the whole generation batch (the default; equal to bnpo on one micro-batch)
The test `tests/test_grpo.py` checks loss and gradients against TRL's GRPOTrainer on a text-only model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


def _nanstd(values: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    mean = torch.nanmean(values, dim=dim, keepdim=True)
    count = (~torch.isnan(values)).sum(dim=dim, keepdim=True)
    variance = torch.nanmean((values - mean) ** 2, dim=dim, keepdim=True) * count / (count - 1)
    variance = torch.where(count > 1, variance, torch.full_like(variance, float("nan")))
    return variance.sqrt().squeeze(dim) if dim is not None else variance.sqrt().reshape(())


def group_advantages(rewards: torch.Tensor, num_generations: int, scale_rewards: str = "group"
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages of consecutive groups of `num_generations` completions.

    Args:
        rewards: (N,) weighted rewards, NaN where no reward function judged the completion.
        num_generations: completions per prompt (N must be a multiple).
        scale_rewards: "group", "batch" or "none".

    Returns:
        (advantages (N,), per-completion std used for scaling (N,)).
    """
    if rewards.numel() % num_generations:
        raise ValueError(f"{rewards.numel()} rewards do not form groups of {num_generations}")
    unscorable = torch.isnan(rewards)
    grouped = rewards.view(-1, num_generations)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(num_generations)
    if scale_rewards in ("group", "none"):
        std = _nanstd(grouped, dim=1).repeat_interleave(num_generations) if num_generations > 1 \
            else torch.zeros_like(rewards)
    elif scale_rewards == "batch":
        std = _nanstd(rewards).expand_as(rewards) if rewards.numel() > 1 else torch.zeros_like(rewards)
    else:
        raise ValueError(f"scale_rewards must be 'group', 'batch' or 'none', not {scale_rewards!r}")
    advantages = rewards - mean
    if scale_rewards != "none":
        advantages = advantages / (std + 1e-4)
    return torch.where(unscorable, torch.zeros_like(advantages), advantages), std


@dataclass(frozen=True)
class LossSettings:
    """The GRPOConfig fields the loss reads."""

    loss_type: str = "dapo"
    beta: float = 0.0
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    importance_sampling_level: str = "token"
    max_completion_length: int = 256
    use_bias_correction_kl: bool = True


@dataclass
class LossOutput:
    loss: torch.Tensor
    kl: torch.Tensor | None
    clip_ratio_low: torch.Tensor
    clip_ratio_high: torch.Tensor


def _importance_log_weights(log_ratio: torch.Tensor, mask: torch.Tensor, level: str) -> torch.Tensor:
    if level == "token":
        return log_ratio
    if level == "sequence":
        return ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    raise ValueError(f"importance_sampling_level must be 'token' or 'sequence', not {level!r}")


def policy_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                settings: LossSettings, *, ref_logps: torch.Tensor | None = None,
                num_items_in_batch: torch.Tensor | float | None = None) -> LossOutput:
    """The GRPO loss of one micro-batch.

    Args:
        logps: (B, T) per-token log-probs of the completions under the policy (with grad).
        old_logps: (B, T) log-probs of the policy that sampled them (detached).
        advantages: (B,) per-completion advantages.
        mask: (B, T) 1 on completion tokens up to and including the end token.
        settings: loss type, KL weight, clipping, importance-sampling level.
        ref_logps: (B, T) reference-model log-probs, needed when beta != 0.
        num_items_in_batch: completion tokens of the whole generation batch (dapo's normaliser; default: this
            micro-batch's).

    Returns:
        The loss and the logged statistics (mean KL, shares of clipped tokens).
    """
    mask = mask.to(logps.dtype)
    advantages = advantages.unsqueeze(1)
    log_weights = _importance_log_weights(logps - old_logps, mask, settings.importance_sampling_level)
    ratio = torch.exp(log_weights)
    clipped = torch.clamp(ratio, 1 - settings.epsilon_low, 1 + settings.epsilon_high)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    kl = None
    if settings.beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta != 0 needs the reference log-probs")
        kl = torch.exp(ref_logps - logps) - (ref_logps - logps) - 1
        penalty = kl * ratio if settings.use_bias_correction_kl else kl
        per_token = per_token + settings.beta * penalty
    loss = _aggregate(per_token, mask, settings, num_items_in_batch)
    low = ((ratio < 1 - settings.epsilon_low) & (advantages < 0)).to(mask.dtype)
    high = ((ratio > 1 + settings.epsilon_high) & (advantages > 0)).to(mask.dtype)
    tokens = mask.sum().clamp(min=1.0)
    mean_kl = (kl * mask).sum() / tokens if kl is not None else None
    return LossOutput(loss, mean_kl, (low * mask).sum() / tokens, (high * mask).sum() / tokens)


def _aggregate(per_token: torch.Tensor, mask: torch.Tensor, settings: LossSettings,
               num_items_in_batch: torch.Tensor | float | None) -> torch.Tensor:
    if settings.loss_type == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if settings.loss_type == "bnpo":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    if settings.loss_type == "dr_grpo":
        return (per_token * mask).sum() / (per_token.size(0) * settings.max_completion_length)
    if settings.loss_type == "dapo":
        total = mask.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch)
        return (per_token * mask).sum() / total.clamp(min=1.0)
    raise ValueError(f"loss_type must be one of {LOSS_TYPES}, not {settings.loss_type!r}")
