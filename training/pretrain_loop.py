"""The perception-pretraining loop: a compact loop of our own, because no Trainer hook trains auxiliary heads on
the injected media embeddings next to the LM loss; checkpoints every `eval_every` steps make it resumable."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import torch

from affect_mllm.jsonl import atomic_write_json, atomic_write_text
from training.pretrain_tiny import PerceptionHeads, PerceptionStream, PretrainArguments, _size, learning_rate_at

logger = logging.getLogger(__name__)


def build_model(args: PretrainArguments):
    """A fresh random-init tiny model of the requested shape, its processor and spec."""
    from affect_mllm.models.registry import ModelSpec, model_class
    from affect_mllm.models.tiny import build_omni_processor, build_vl_processor, omni_thinker_config, vl_config

    size = _size(args)
    if args.arch == "qwen2_5_omni":
        processor = build_omni_processor()
        config = omni_thinker_config(processor.tokenizer, size)
    elif args.arch == "qwen2_5_vl":
        processor = build_vl_processor()
        config = vl_config(processor.tokenizer, size)
    else:
        raise ValueError(f"unknown arch {args.arch!r}: qwen2_5_omni or qwen2_5_vl")
    torch.manual_seed(args.seed)
    model = model_class(args.arch)(config)
    return model, processor, ModelSpec(f"tiny-{args.arch}", args.arch, args.output_dir)


def _token_masks(input_ids: torch.Tensor, processor) -> dict[str, torch.Tensor]:
    tokenizer = processor.tokenizer
    video = getattr(processor, "video_token", None) or "<|VIDEO|>"
    masks = {"video": input_ids == tokenizer.convert_tokens_to_ids(video)}
    audio = getattr(processor, "audio_token", None)
    if audio:
        masks["audio"] = input_ids == tokenizer.convert_tokens_to_ids(audio)
    return masks


def train_step(model, heads, batch: dict, processor, aux_weight: float) -> tuple[torch.Tensor, dict]:
    """LM loss on the perception answer + auxiliary loss on the media embeddings (hidden_states[0])."""
    targets = batch.pop("aux_targets")
    outputs = model(**batch, output_hidden_states=True, use_cache=False)
    aux = heads.loss(outputs.hidden_states[0], _token_masks(batch["input_ids"], processor), targets)
    return outputs.loss + aux_weight * aux, {"lm_loss": outputs.loss.item(), "aux_loss": aux.item()}


def _checkpoint_path(args: PretrainArguments) -> Path:
    return Path(args.output_dir) / "pretrain_state.pt"


def _save_state(args, model, heads, optimizer, step: int, history: list[dict], seconds: float) -> None:
    path = _checkpoint_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": model.state_dict(), "heads": heads.state_dict(),
                "optimizer": optimizer.state_dict(), "args": asdict(args), "history": history,
                "seconds": seconds}, tmp)
    tmp.replace(path)  # a kill during the save leaves the previous state intact


def run_pretraining(args: PretrainArguments, argv: list[str]) -> Path:
    """Train, evaluate per level on held-out mp4 clips, save the base and its model card."""
    from affect_mllm.knowledge import all_aus
    from training.pretrain_eval import evaluate_perception, make_eval_sets

    model, processor, spec = build_model(args)
    heads = PerceptionHeads(model.config.get_text_config().hidden_size, all_aus(), spec.has_audio)
    optimizer = torch.optim.AdamW([*model.parameters(), *heads.parameters()], lr=args.learning_rate,
                                  betas=(0.9, 0.98), weight_decay=0.01)
    start, history, earlier_seconds = 0, [], 0.0  # earlier_seconds: training time before a resume
    if _checkpoint_path(args).is_file():
        state = torch.load(_checkpoint_path(args), weights_only=False)
        model.load_state_dict(state["model"])
        heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        start, history, earlier_seconds = state["step"], state["history"], state["seconds"]
        logger.info("resuming perception pretraining at step %d", start)
    eval_sets = make_eval_sets(Path(args.eval_dir), args.levels, args.eval_clips, args.data_seed)
    stream = PerceptionStream(args, processor, spec, all_aus(), start)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=1, prefetch_factor=4,
                                         persistent_workers=False)
    total, started = sum(args.steps_per_level), time.time()
    model.train()
    for step, batch in enumerate(loader, start=start):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, args)
        loss, parts = train_step(model, heads, batch, processor, args.aux_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 25 == 0:
            logger.info("step %d/%d level %d loss %.3f (lm %.3f aux %.3f) %.2f s/step", step, total,
                        stream.level_at(step), loss.item(), parts["lm_loss"], parts["aux_loss"],
                        (time.time() - started) / (step - start + 1))
        if (step + 1) % args.eval_every == 0 or step + 1 == total:
            scores = evaluate_perception(model, processor, spec, eval_sets)
            history.append({"step": step + 1, "level": stream.level_at(step), **parts, **scores})
            logger.info("eval at step %d: %s", step + 1, json.dumps(scores))
            _save_state(args, model, heads, optimizer, step + 1, history,
                        earlier_seconds + time.time() - started)
            model.train()
    return save_base(args, model, processor, spec, history, argv, earlier_seconds + time.time() - started)


def save_base(args, model, processor, spec, history: list[dict], argv: list[str], seconds: float) -> Path:
    """Save the base in the official layout (heads dropped) with a model card of how it was made."""
    from affect_mllm.models.tiny import save_omni

    out = Path(args.output_dir)
    model = model.to(getattr(torch, args.save_dtype)).eval()
    if spec.arch == "qwen2_5_omni":
        save_omni(model, processor, out)
    else:
        model.save_pretrained(out)
        processor.save_pretrained(out)
    final = history[-1] if history else {}
    card = {"command": "affect-mllm train pretrain-tiny " + " ".join(argv), "seed": args.seed,
            "data": f"SynthFACS rendered online, seed {args.data_seed}, levels {args.levels}, "
                    f"steps {args.steps_per_level}, batch {args.batch_size}",
            "held_out": {k: v for k, v in final.items() if k.startswith(("au_f1", "voice"))},
            "train_seconds": round(seconds), "history": history, "arguments": asdict(args)}
    atomic_write_json(out / "model_card.json", card)
    atomic_write_text(out / "README.md", card_markdown(card))
    _checkpoint_path(args).unlink(missing_ok=True)
    return out


def card_markdown(card: dict) -> str:
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in card["held_out"].items() if isinstance(v, float))
    return (f"# Tiny perception base\n\nRandom-init tiny model pretrained on SynthFACS perception only (AUs, voice);"
            f" it never saw an emotion word tied to a clip.\n\nReproduce:\n\n```\n{card['command']}\n```\n\n"
            f"Seed {card['seed']};"
            f" data: {card['data']}; {card['train_seconds']} s on CPU.\n\n## Held-out (mp4 clips, greedy)\n\n"
            f"| metric | value |\n|---|---|\n{rows}\n")
