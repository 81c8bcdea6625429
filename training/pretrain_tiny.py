"""Perception pretraining of the tiny bases (full parameters, tiny models only): the stand-in for a pretrained base.

    # reproduce the committed base (CPU, about an hour; `make tiny-base`)
    affect-mllm train pretrain-tiny --config recipes/tiny-omni/pretrain.yaml
    affect-mllm train pretrain-tiny --config recipes/tiny-vl/pretrain.yaml

Real users start from a Qwen2.5-Omni that already sees faces and hears voices; our tiny model starts from random
weights, and a LoRA on a frozen random vision tower levels off near 70-75 % (learnability_findings.md). So this
stage trains every parameter on SynthFACS perception, with targets that never name an emotion: which AUs are
active and how strongly, and what the voice does (pitch, loudness, rate, contour, tremor). Two fair aids:
- auxiliary heads on the media embeddings (AU intensities from the mean video embedding, voice attributes from
  the mean audio embedding) give the towers a dense signal, so training leaves the chance plateau early;
- a curriculum over SynthFACS difficulty levels (mild nuisance first), on clips rendered fresh for every batch
  (no fixed set to memorise), frames passed through JPEG at the level's quality as a stand-in for H.264.
Held-out evaluation decodes real mp4 clips through the media pipeline and the generate path. The heads are dropped
at the end; the saved base is a plain checkpoint in the official layout, with a model card.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

VOICE_CLASSES = {"pitch": ("low", "mid", "high"), "loudness": ("quiet", "normal", "loud"),
                 "rate": ("slow", "normal", "fast"), "contour": ("falling", "flat", "rising"), "tremor": ("no", "yes")}


@dataclass
class PretrainArguments:
    """Perception pretraining of a tiny base."""

    output_dir: str = field(default="runs/tiny-omni-base", metadata={"help": "Where the base is saved."})
    arch: str = field(default="qwen2_5_omni", metadata={"help": "qwen2_5_omni or qwen2_5_vl."})
    seed: int = field(default=0, metadata={"help": "Random-init seed."})
    data_seed: int = field(default=1000, metadata={"help": "SynthFACS seed of the online training clips."})
    levels: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Curriculum: difficulty levels."})
    steps_per_level: list[int] = field(default_factory=lambda: [800, 800, 1600],
                                       metadata={"help": "Optimizer steps spent at each level."})
    batch_size: int = field(default=16, metadata={"help": "Clips per step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW peak rate (the probe's working value)."})
    warmup_steps: int = field(default=100, metadata={"help": "Linear warm-up."})
    final_decay_steps: int = field(default=600, metadata={"help": "Cosine decay to 0 over the last N steps."})
    aux_weight: float = field(default=1.0, metadata={"help": "Weight of the auxiliary perception heads' loss."})
    eval_clips: int = field(default=48, metadata={"help": "Held-out mp4 clips per level for evaluation."})
    eval_dir: str = field(default="runs/pretrain-eval", metadata={"help": "Where the held-out clips are written."})
    eval_every: int = field(default=400, metadata={"help": "Evaluate every N steps (and at the end)."})
    threads: int = field(default=2, metadata={"help": "torch threads."})
    text_hidden: int = field(default=64, metadata={"help": "Language model width (head_dim 32 with 2 heads)."})
    text_layers: int = field(default=2, metadata={"help": "Language model depth."})
    vision_hidden: int = field(default=32, metadata={"help": "Vision tower width."})
    vision_depth: int = field(default=2, metadata={"help": "Vision tower depth."})
    save_dtype: str = field(default="float32", metadata={"help": "dtype of the saved weights."})


def _size(args: PretrainArguments):
    from affect_mllm.models.tiny import TinySize

    heads = args.text_hidden // 32
    return TinySize(text_hidden=args.text_hidden, text_layers=args.text_layers, text_heads=heads,
                    text_kv_heads=max(1, heads // 2), text_ffn=2 * args.text_hidden, vision_hidden=args.vision_hidden,
                    vision_depth=args.vision_depth, vision_heads=max(2, args.vision_hidden // 16),
                    vision_ffn=2 * args.vision_hidden)


class PerceptionHeads(nn.Module):
    """Auxiliary heads: AU intensities from the mean video embedding, voice attributes from the mean audio one."""

    def __init__(self, hidden: int, aus: tuple[int, ...], with_voice: bool) -> None:
        super().__init__()
        self.aus = aus
        self.au = nn.Linear(hidden, len(aus))
        self.voice = nn.ModuleDict({k: nn.Linear(hidden, len(v)) for k, v in VOICE_CLASSES.items()}) \
            if with_voice else None

    def loss(self, embeddings: torch.Tensor, token_masks: dict[str, torch.Tensor], targets: dict) -> torch.Tensor:
        video = _masked_mean(embeddings, token_masks["video"])
        total = nn.functional.mse_loss(self.au(video), targets["aus"])
        if self.voice is not None and "audio" in token_masks and token_masks["audio"].any():
            audio = _masked_mean(embeddings, token_masks["audio"])
            for name, head in self.voice.items():
                total = total + nn.functional.cross_entropy(head(audio), targets["voice"][name]) / len(self.voice)
        return total


def _masked_mean(embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(embeddings.dtype)
    return (embeddings * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def aux_targets(samples, aus: tuple[int, ...]) -> dict:
    """AU intensities scaled to [0, 1] and voice attribute class indices of a batch."""
    intensity = torch.zeros(len(samples), len(aus))
    for row, sample in enumerate(samples):
        for item in sample.aus or ():
            if item.au in aus:
                intensity[row, aus.index(item.au)] = item.intensity / 5.0
    voice = {name: torch.tensor([classes.index(s.source["voice"][name]) for s in samples])
             for name, classes in VOICE_CLASSES.items()}
    return {"aus": intensity, "voice": voice}


def jpeg_roundtrip(frames: np.ndarray, quality: int) -> np.ndarray:
    """Compression artefacts of roughly the level's H.264 quality, at a fraction of an encode's cost."""
    import cv2

    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        _, data = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        out[i] = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    return out


def crf_to_jpeg_quality(crf: int) -> int:
    """H.264 CRF 18 (nearly lossless) .. 33 (blocky) -> JPEG quality 95 .. 45."""
    return int(np.clip(95 - (crf - 18) * 50 / 15, 40, 95))


class PerceptionStream(torch.utils.data.IterableDataset):
    """Ready training batches of fresh SynthFACS clips, following the curriculum (render in a worker)."""

    def __init__(self, args: PretrainArguments, processor, spec, aus: tuple[int, ...], start_step: int) -> None:
        self.args, self.processor, self.spec, self.aus, self.start_step = args, processor, spec, aus, start_step

    def level_at(self, step: int) -> int:
        bounds = np.cumsum(self.args.steps_per_level)
        return self.args.levels[min(int(np.searchsorted(bounds, step, side="right")), len(bounds) - 1)]

    def __iter__(self):
        total = sum(self.args.steps_per_level)
        for step in range(self.start_step, total):
            yield self.batch(step)

    def batch(self, step: int) -> dict:
        from affect_mllm.synthfacs.generate import GeneratorSettings

        settings = GeneratorSettings(seed=self.args.data_seed, split="train", difficulty=self.level_at(step))
        indices = range(step * self.args.batch_size, (step + 1) * self.args.batch_size)
        samples, batch = perception_batch(self.processor, self.spec, settings, indices)
        batch = dict(batch)
        batch["aux_targets"] = aux_targets(samples, self.aus)
        return batch


def perception_batch(processor, spec, settings, indices) -> tuple[list, dict]:
    """Render SynthFACS clips `indices` online and encode the perception answer (AUs + perception rationale).

    Returns:
        (the clips' samples, the encoded batch with labels on the answer).
    """
    from affect_mllm.media import SampleMedia
    from affect_mllm.models.inputs import conversation_for, encode_for_training
    from affect_mllm.synthfacs.generate import clip_sample, plan_clip, render_audio, render_frames
    from affect_mllm.targets import perception_target

    samples, conversations = [], []
    for index in indices:
        plan = plan_clip(settings, index)
        frames = jpeg_roundtrip(render_frames(plan), crf_to_jpeg_quality(plan.crf))
        media = SampleMedia(video=frames, audio=render_audio(plan) if spec.has_audio else None)
        sample = clip_sample(plan, "online")
        samples.append(sample)
        conversations.append(conversation_for(sample, media, "au", spec))
    answers = [perception_target(s, with_voice=spec.has_audio) for s in samples]
    return samples, encode_for_training(processor, spec, conversations, answers)


def learning_rate_at(step: int, args: PretrainArguments) -> float:
    """Warm-up, constant, then cosine decay to 0 over the last `final_decay_steps`."""
    total = sum(args.steps_per_level)
    if step < args.warmup_steps:
        return args.learning_rate * (step + 1) / args.warmup_steps
    decay_start = total - args.final_decay_steps
    if step < decay_start:
        return args.learning_rate
    return args.learning_rate * 0.5 * (1 + math.cos(math.pi * (step - decay_start) / max(args.final_decay_steps, 1)))


def main(argv: list[str] | None = None) -> Path:
    """Pretrain a tiny base; return its folder."""
    from trl import TrlParser

    from training.common import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    (args,) = TrlParser((PretrainArguments,)).parse_args_and_config(args=argv)
    setup_logging()
    torch.set_num_threads(args.threads)
    from training.pretrain_loop import run_pretraining

    return run_pretraining(args, argv)


if __name__ == "__main__":
    main()
