"""Generate: k candidate rationale+answer pairs per pool clip through the inference engine, logged durably.

Each (round, clip, attempt) request carries its own seed (`candidate_seed`), and the engine samples candidate j
with seed + j (both backends), so a clip's candidates are the same whatever the batching, the engine replica or
a restart. Every engine call's candidates are appended to the round's `candidates.jsonl` (`jsonl.AppendLog`:
one fsynced line per (clip, attempt)) before the next call starts, so a kill -9 loses at most the call in
flight, which the restart regenerates identically; a logged (clip, attempt) is never generated again.

Prompts are the SFT prompts of the task; optionally hinted with the labels (`prompts.label_hint`, as Facial-R1's
data stage does). Attempt a > 0 goes to the clips none of whose earlier candidates passed the keep rule, with the
problems of the previous attempt's best candidate fed back (`prompts.retry_feedback`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from affect_mllm.jsonl import AppendLog
from affect_mllm.schema import Manifest, Sample
from data_synthesis.select import Verifier
from inference.engine import Engine, GenerationRequest, SamplingSettings

logger = logging.getLogger(__name__)

SEED_SPAN = 2**31 - 2**16  # request seeds stay below 2**31 with room for seed + candidate index


@dataclass(frozen=True)
class PoolClip:
    """A labelled clip and the manifest its media paths resolve against."""

    sample: Sample
    manifest: Manifest


@dataclass(frozen=True)
class GenerationPlan:
    """How one round generates: prompt, hints, retries, sampling, batching and the engine adapter."""

    round: int
    seed: int
    task: str
    sampling: SamplingSettings
    prompt_variant: int = 0
    audio_in_video: bool = False
    hinted: bool = True
    retries: int = 0
    batch_size: int = 8
    adapter: str | None = None  # the engine's adapter name (None: the base model)


def candidate_seed(seed: int, round_index: int, clip_id: str, attempt: int) -> int:
    """The request seed of one (round, clip, attempt), stable across processes and platforms.

    Example:
        >>> candidate_seed(0, 1, "c1", 0) == candidate_seed(0, 1, "c1", 0) != candidate_seed(0, 1, "c1", 1)
        True
    """
    digest = hashlib.sha256(f"{seed}\x1f{round_index}\x1f{clip_id}\x1f{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_SPAN


def attempt_key(clip_id: str, attempt: int) -> str:
    """The log key of one (clip, attempt)."""
    return f"{clip_id}#{attempt}"


def hint_text(sample: Sample, task: str) -> str:
    """The label hint for a clip: the labels the task's answer gives, and the active AUs."""
    from affect_mllm.prompts import label_hint
    from affect_mllm.targets import answer_fields

    fields = answer_fields(sample.model_copy(update={"aus": sample.aus or []}), task)  # AU labels may be hidden
    emotion = fields.emotion or (", ".join(fields.emotions) if fields.emotions else None)
    return label_hint(emotion, sample.au_set())


def build_request(
    clip: PoolClip, spec, plan: GenerationPlan, attempt: int, problems: Sequence[str] | None
) -> GenerationRequest:
    """The request for one (clip, attempt): the task's SFT prompt, plus the hint and the retry feedback."""
    from affect_mllm.prompts import retry_feedback
    from inference.engine import request_from_sample

    request = request_from_sample(
        clip.sample,
        clip.manifest,
        plan.task,
        spec,
        prompt_variant=plan.prompt_variant,
        adapter=plan.adapter,
        audio_in_video=plan.audio_in_video,
        seed=candidate_seed(plan.seed, plan.round, clip.sample.id, attempt),
    )
    extra = [hint_text(clip.sample, plan.task)] if plan.hinted else []
    if problems:
        extra.append(retry_feedback(problems))
    text_part = request.conversation.messages[-1]["content"][-1]
    text_part["text"] = " ".join([text_part["text"], *(e for e in extra if e)])
    return request


def prompt_of(request: GenerationRequest) -> str:
    """The user text of a request (what provenance records as the prompt)."""
    return request.conversation.messages[-1]["content"][-1]["text"]


def generate_candidates(
    pool: Sequence[PoolClip], engine: Engine, plan: GenerationPlan, verifier: Verifier, log_path: str | Path
) -> dict:
    """Generate (or finish generating) a round's candidates into `log_path`.

    Args:
        pool: the round's clips, in a fixed order.
        engine: a local engine or a Ray pool of replicas (anything with the Engine interface).
        plan: the round's generation settings.
        verifier: decides which clips need a retry and what to feed back.
        log_path: the round's candidates.jsonl (created, or resumed).

    Returns:
        {"clips", "requests", "candidates", "generated_now"}: counts over the whole log, and the requests this
        call generated (0 when the step had finished before a restart).
    """
    log = AppendLog(log_path, key="key")
    generated_now = 0
    for attempt in range(plan.retries + 1):
        records = {r["key"]: r for r in log.records()}
        todo = [
            (clip, problems)
            for clip, problems in clips_needing(pool, attempt, records, verifier)
            if attempt_key(clip.sample.id, attempt) not in records
        ]
        for done, batch in enumerate(_batches(todo, plan.batch_size), start=1):
            requests = [build_request(clip, engine.spec, plan, attempt, problems) for clip, problems in batch]
            results = engine.generate(requests, plan.sampling)
            for (clip, problems), request, generations in zip(batch, requests, results, strict=True):
                log.append(candidate_record(clip.sample.id, attempt, request, generations, problems))
            generated_now += len(batch)
            logger.info("round %d attempt %d: %d/%d clips generated", plan.round, attempt,
                        min(done * plan.batch_size, len(todo)), len(todo))
    records = log.records()
    return {
        "clips": len(pool),
        "requests": len(records),
        "generated_now": generated_now,
        "candidates": sum(len(r["candidates"]) for r in records),
    }


def candidate_record(clip_id: str, attempt: int, request: GenerationRequest, generations, problems) -> dict:
    """The log line of one (clip, attempt): its seed, prompt, fed-back problems and candidates."""
    return {
        "key": attempt_key(clip_id, attempt),
        "id": clip_id,
        "attempt": attempt,
        "seed": request.seed,
        "prompt": prompt_of(request),
        "feedback": list(problems or []),
        "candidates": [
            {"index": j, "text": g.text, "finish_reason": g.finish_reason, "n_tokens": len(g.token_ids)}
            for j, g in enumerate(generations)
        ],
    }


def clips_needing(
    pool: Sequence[PoolClip], attempt: int, records: dict[str, dict], verifier: Verifier
) -> list[tuple[PoolClip, list[str] | None]]:
    """The clips attempt `attempt` must generate for, each with the problems to feed back (None at attempt 0).

    A clip needs attempt a > 0 when none of its candidates of attempts 0..a-1 passed; the feedback is the problems
    of attempt a-1's best candidate (highest total, the first on ties).
    """
    if attempt == 0:
        return [(clip, None) for clip in pool]
    out = []
    for clip in pool:
        earlier = [records.get(attempt_key(clip.sample.id, a)) for a in range(attempt)]
        if any(r is None for r in earlier):
            raise RuntimeError(f"clip {clip.sample.id!r}: attempt {attempt} before its earlier attempts finished")
        scores = [verifier.score(clip.sample, [c["text"] for c in r["candidates"]]) for r in earlier]
        if any(s.passes for attempt_scores in scores for s in attempt_scores):
            continue
        last = scores[-1]
        best = max(range(len(last)), key=lambda i: (_sortable(last[i].total), -i)) if last else None
        out.append((clip, list(last[best].problems) if best is not None else None))
    return out


def _sortable(total: float | None) -> float:
    return float("-inf") if total is None else total


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
