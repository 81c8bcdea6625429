"""Modality check: does an answer rest on the modalities the clip really has?

A prediction set is rerun with one modality removed (`mask_media`: the audio muted to silence of the same length,
or every frame replaced by a blank grey frame of the same size; the prompt is left as it was, so nothing but the
signal tells the model). `modality_check` then compares the conditions, every one scored by the one evaluation
path (`affect_mllm.evaluation.evaluate_files`):

- metrics per condition (`evaluation.benchmark_figures`);
- how often the answer changes: the leading emotion category differs from the full condition's (same ids);
- the hallucination rate: the share of rationales that cite a cue of the removed modality (voice cues when the
  audio is muted, AUs when the frames are blank), beside the same share in the full condition. Cues are read with
  the lexicon the consistency reward uses: AU numbers (`answer.cited_aus`) and voice-cue phrases
  (`voice_cues.voice_cues_in`, negations skipped);
- on conflict clips (gold `face_emotion` and `voice_emotion` differ, as SynthFACS writes them), which modality the
  answer follows, per condition.

The GRPO reward `rewards.modality_grounding_reward` applies the same cue reading to one completion.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from affect_mllm.answer import cited_aus
from affect_mllm.media import SampleMedia
from affect_mllm.metrics.categorical import category_of, first_category
from affect_mllm.voice_cues import voice_cues_in

ABLATIONS = ("audio", "video")  # what can be removed; the cues each one carries are CUE_MODALITY's keys
BLANK_LEVEL = 128  # grey: no face, no edge, no colour for the vision encoder to read


def mask_media(media: SampleMedia, remove: str) -> SampleMedia:
    """A copy of the media with one modality removed: "audio" -> silence of the same length, "video" -> every frame
    (and an image) blank grey of the same size. A modality the media lack stays absent.

    Example:
        >>> m = mask_media(SampleMedia(video=np.ones((2, 4, 4, 3), np.uint8), audio=np.ones(8, np.float32)), "video")
        >>> int(m.video.min()), int(m.video.max()), m.video.shape, float(m.audio.sum())
        (128, 128, (2, 4, 4, 3), 8.0)
    """
    if remove not in ABLATIONS:
        raise ValueError(f"can remove one of {ABLATIONS}, not {remove!r}")
    if remove == "audio":
        return replace(media, audio=None if media.audio is None else np.zeros_like(media.audio))
    blank = {name: None if getattr(media, name) is None else np.full_like(getattr(media, name), BLANK_LEVEL)
             for name in ("video", "image")}
    return replace(media, **blank)


def cited_cues(rationale: str | None) -> dict[str, tuple]:
    """The cues a rationale cites, by the modality that carries them: {"video": AU numbers, "audio": voice claims}.

    Example:
        >>> cited_cues("Brows drawn (AU4), a loud, fast voice; no tremor.")
        {'video': (4,), 'audio': (('loudness', 'loud'), ('rate', 'fast'))}
    """
    text = rationale or ""
    return {"video": cited_aus(text)[0], "audio": tuple(voice_cues_in(text))}


def cites(rationale: str | None, modality: str) -> bool:
    """Whether a rationale cites any cue of a modality ("audio" or "video")."""
    return bool(cited_cues(rationale)[modality])


def leading_category(words: Collection[str] | None) -> str | None:
    """The category an answer leads with (`metrics.categorical.first_category`), None without words."""
    return first_category(list(words or ()))


def _rate(flags: list[bool], n_resamples: int, seed: int) -> dict[str, Any]:
    from affect_mllm.metrics.bootstrap import bootstrap_ci

    values = np.asarray(flags, dtype=float)
    ci = bootstrap_ci(lambda idx: float(values[idx].mean()), len(values), n_resamples=n_resamples, seed=seed)
    return {"rate": float(values.mean()) if len(values) else None, "n": len(values), "ci95": ci}


def answer_changes(full: Mapping[str, Any], ablated: Mapping[str, Any], n_resamples: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """Share of ids in both sets whose leading emotion category differs (records as `predictions.read_records`)."""
    ids = [i for i in full if i in ablated]
    flags = [leading_category(full[i].emotion_words) != leading_category(ablated[i].emotion_words) for i in ids]
    return _rate(flags, n_resamples, seed)


def hallucination(records: Mapping[str, Any], removed: str, n_resamples: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    """Share of records with a rationale that cite a cue of the removed modality ("audio" or "video")."""
    rationales = [r.rationale for r in records.values() if r.rationale]
    return _rate([cites(text, removed) for text in rationales], n_resamples, seed)


def conflict_following(records: Mapping[str, Any], gold_rows: list[dict]) -> dict[str, Any]:
    """On gold rows whose face and voice emotions differ: shares of answers that follow the face, the voice, neither.

    Example:
        >>> from affect_mllm.predictions import LabelRecord
        >>> preds = {"a": LabelRecord("a", emotions=("joyful",)), "b": LabelRecord("b", emotions=("sad",))}
        >>> conflict_following(preds, [{"id": "a", "face_emotion": "happy", "voice_emotion": "sad"},
        ...                            {"id": "b", "face_emotion": "angry", "voice_emotion": "sad"}])
        {'n': 2, 'follows_face': 0.5, 'follows_voice': 0.5, 'neither': 0.0}
    """
    rows = [r for r in gold_rows if r.get("face_emotion") and r.get("voice_emotion") and r["id"] in records
            and category_of(r["face_emotion"]) != category_of(r["voice_emotion"])]
    counts = {"follows_face": 0, "follows_voice": 0, "neither": 0}
    for row in rows:
        answer = leading_category(records[row["id"]].emotion_words)
        key = ("follows_face" if answer == category_of(row["face_emotion"])
               else "follows_voice" if answer == category_of(row["voice_emotion"]) else "neither")
        counts[key] += 1
    return {"n": len(rows), **{k: (v / len(rows) if rows else None) for k, v in counts.items()}}


def _gold_rows(gold: Path) -> list[dict]:
    """The gold file's raw JSONL rows (for face_emotion / voice_emotion); none for the official CSV/npz formats."""
    from affect_mllm.jsonl import read_jsonl

    return list(read_jsonl(gold)) if Path(gold).suffix.lower() == ".jsonl" else []


def modality_check(pred: Path, gold: Path, ablated: Mapping[str, Path], *, full_metrics: dict | None = None,
                   n_resamples: int = 1000, seed: int = 0, **evaluate_options: Any) -> dict[str, Any]:
    """The modality section of an evaluation: the full prediction set against its reruns with a modality removed.

    Args:
        pred: predictions with every modality.
        gold: the gold file.
        ablated: removed modality ("audio" or "video") -> predictions of the rerun without it.
        full_metrics: `evaluate_files(pred, gold, ...)` when already computed (it is not recomputed).
        n_resamples: bootstrap resamples of every figure's interval.
        seed: bootstrap seed.
        **evaluate_options: the other options of `evaluate_files` (tables_dir, extractor, task, ...).

    Returns:
        {"conditions": {"full"|"no_audio"|"no_video": figures}, "answer_changed": {modality: rate},
         "hallucination": {modality: {"ablated": rate, "full": rate}}, "conflict": {condition: shares}}.
    """
    from affect_mllm.evaluation import benchmark_figures, evaluate_files
    from affect_mllm.predictions import read_records

    unknown = sorted(set(ablated) - set(ABLATIONS))
    if unknown:
        raise ValueError(f"can ablate {ABLATIONS}, not {unknown}")
    options = {"n_resamples": n_resamples, "seed": seed, **evaluate_options}
    metrics = {"full": full_metrics if full_metrics is not None else evaluate_files(pred, gold, **options)}
    records = {"full": {r.id: r for r in read_records(pred)}}
    for modality, path in ablated.items():
        metrics[f"no_{modality}"] = evaluate_files(path, gold, **options)
        records[f"no_{modality}"] = {r.id: r for r in read_records(path)}
    rows = _gold_rows(gold)
    return {
        "conditions": {name: benchmark_figures(m) for name, m in metrics.items()},
        "answer_changed": {m: answer_changes(records["full"], records[f"no_{m}"], n_resamples, seed)
                           for m in ablated},
        "hallucination": {m: {"ablated": hallucination(records[f"no_{m}"], m, n_resamples, seed),
                              "full": hallucination(records["full"], m, n_resamples, seed)} for m in ablated},
        "conflict": {name: conflict_following(recs, rows) for name, recs in records.items()},
    }


def parse_ablations(values: list[str]) -> dict[str, Path]:
    """`MODALITY=PRED` options (evaluate --ablate) -> {modality: predictions path}; ValueError names a bad one.

    Example:
        >>> parse_ablations(["audio=runs/muted.jsonl"])
        {'audio': PosixPath('runs/muted.jsonl')}
    """
    out: dict[str, Path] = {}
    for value in values:
        modality, sep, path = value.partition("=")
        if not sep or modality not in ABLATIONS or not path:
            raise ValueError(f"{value!r}: expected MODALITY=PRED with MODALITY one of {', '.join(ABLATIONS)}")
        if modality in out:
            raise ValueError(f"{modality} ablated twice")
        out[modality] = Path(path)
    return out


def modality_markdown(section: Mapping[str, Any]) -> list[str]:
    """The report's Markdown lines for a modality section."""
    def number(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    def rate(entry) -> str:
        ci = entry.get("ci95")
        return number(entry["rate"]) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "") + f" (n={entry['n']})"

    lines = ["", "## Modality check", "", "| condition | emotion acc | wheel F | rationale AU F1 | format |",
             "|---|---|---|---|---|"]
    for name, figures in section["conditions"].items():
        lines.append(f"| {name} | {number(figures['emotion_acc'])} | {number(figures['wheel_f'])} | "
                     f"{number(figures['rationale_au_f1'])} | {number(figures['format_rate'])} |")
    lines += ["", "| removed | answer changed | rationales citing its cues (hallucination) | same, full clips |",
              "|---|---|---|---|"]
    for modality, changed in section["answer_changed"].items():
        cited = section["hallucination"][modality]
        lines.append(f"| {modality} | {rate(changed)} | {rate(cited['ablated'])} | {rate(cited['full'])} |")
    conflicts = {name: c for name, c in section["conflict"].items() if c["n"]}
    if conflicts:
        lines += ["", "Conflict clips (face and voice disagree): which modality the answer follows.", "",
                  "| condition | n | face | voice | neither |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {c['n']} | {number(c['follows_face'])} | {number(c['follows_voice'])} | "
                  f"{number(c['neither'])} |" for name, c in conflicts.items()]
    return lines
