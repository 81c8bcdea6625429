"""Long SynthFACS clips: one person going through K expression episodes, with every boundary and label known.

A long clip is K segments played back to back. Each segment is a SynthFACS clip of its own length (drawn in
[min_segment_s, max_segment_s] on the frame grid), planned by `generate.plan_clip` with a forced face emotion that
differs from the previous segment's, so each one runs neutral -> onset -> apex -> offset like a short clip. The
person stays the same across segments: the first segment's identity, face style and speaker (base pitch and
vocal tract) are kept in the others. The manifest record's `source.segments` lists each segment's
[start_s, end_s), its labels (emotion, face/voice emotion, open set, valence/arousal, AUs) and apex hold, which is
what `benchmarks/timeline.py` scores a timeline against.

Determinism: every draw of long clip `i` comes from generators seeded by (seed, split, i), and the segments use
SynthFACS indices from LONG_INDEX_OFFSET up, which short sets never reach, so no long clip repeats a short one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from affect_mllm.knowledge import CATEGORIES
from affect_mllm.media import MediaSettings, write_video
from affect_mllm.schema import Sample, write_manifest
from affect_mllm.synthfacs.generate import (
    DEFAULT_DIFFICULTY,
    SPLITS,
    ClipPlan,
    GeneratorSettings,
    plan_clip,
    render_audio,
    render_frames,
)
from affect_mllm.synthfacs.nuisance import DIFFICULTIES

LONG_INDEX_OFFSET = 10_000_000  # segment indices of long clips start here (short sets use 0 .. n-1)
SEGMENT_INDEX_STRIDE = 1_000  # indices per long clip: K segments each
_LONG_SALT = 0x10C6


@dataclass(frozen=True)
class LongSettings:
    """What a set of long clips is: seed, split, segments per clip and their length range, nuisance."""

    seed: int = 0
    split: str = "test"
    segments: int = 6
    min_segment_s: float = 6.0
    max_segment_s: float = 12.0
    difficulty: int = DEFAULT_DIFFICULTY
    conflict_share: float = 0.0  # segments whose voice shows another emotion (the label follows the face)
    fps: float = MediaSettings().fps

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not 0 <= self.difficulty < len(DIFFICULTIES):
            raise ValueError(f"difficulty must be 0..{len(DIFFICULTIES) - 1}, got {self.difficulty}")
        if not 1 <= self.segments < SEGMENT_INDEX_STRIDE:
            raise ValueError(f"segments must be 1..{SEGMENT_INDEX_STRIDE - 1}, got {self.segments}")
        if not 2.0 <= self.min_segment_s <= self.max_segment_s:
            raise ValueError(f"need 2 <= min_segment_s <= max_segment_s, got {self.min_segment_s}, "
                             f"{self.max_segment_s} (a segment holds at least a 1 s apex after its onset)")

    def rng(self, clip: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, SPLITS.index(self.split), clip, _LONG_SALT])


def plan_long_clip(settings: LongSettings, clip: int) -> list[ClipPlan]:
    """The plans of long clip `clip`'s segments, in time order, all of one person."""
    rng = settings.rng(clip)
    plans: list[ClipPlan] = []
    previous = None
    for k in range(settings.segments):
        emotion = str(rng.choice([c for c in CATEGORIES if c != previous]))
        frames = int(round(rng.uniform(settings.min_segment_s, settings.max_segment_s) * settings.fps))
        segment = GeneratorSettings(seed=settings.seed, split=settings.split, difficulty=settings.difficulty,
                                    conflict_share=settings.conflict_share, subtitle_share=0.0,
                                    duration_s=frames / settings.fps, fps=settings.fps)
        plan = plan_clip(segment, LONG_INDEX_OFFSET + clip * SEGMENT_INDEX_STRIDE + k, emotion=emotion)
        if plans:  # the same person throughout: identity, face style and speaker of the first segment
            first = plans[0]
            voice = replace(plan.voice, speaker_f0_hz=first.voice.speaker_f0_hz,
                            formant_scale=first.voice.formant_scale)
            plan = replace(plan, identity=first.identity, style=first.style, voice=voice)
        plans.append(plan)
        previous = emotion
    return plans


def segment_labels(plans: Sequence[ClipPlan]) -> list[dict]:
    """Each segment's span in the long clip and its labels."""
    out, start = [], 0.0
    for plan in plans:
        end = round(start + plan.settings.duration_s, 6)
        out.append({
            "start_s": start, "end_s": end, "emotion": plan.emotion, "face_emotion": plan.face_emotion,
            "voice_emotion": plan.voice_emotion, "emotions": list(plan.emotions), "valence": plan.valence,
            "arousal": plan.arousal, "aus": [{"au": au, "intensity": x} for au, x in plan.face.aus.items()],
            "apex_s": [round(start + plan.timeline.apex_start, 3), round(start + plan.timeline.apex_end, 3)],
        })
        start = end
    return out


def write_long_clip(settings: LongSettings, out_dir: Path, clip: int) -> Sample:
    """Render and encode long clip `clip` into out_dir/clips/; return its manifest record."""
    plans = plan_long_clip(settings, clip)
    frames = np.concatenate([render_frames(plan) for plan in plans])
    audio = np.concatenate([render_audio(plan) for plan in plans])
    first = plans[0]
    sample_id = f"synthfacs-long-{settings.split}-s{settings.seed}-{clip:05d}"
    video = f"clips/{sample_id}.mp4"
    write_video(out_dir / video, frames, settings.fps, audio, first.settings.sample_rate, crf=first.crf)
    segments = segment_labels(plans)
    source = {"dataset": "synthfacs-long", "seed": settings.seed, "split": settings.split, "clip": clip,
              "difficulty": settings.difficulty, "identity": first.identity, "duration_s": segments[-1]["end_s"],
              "segments": segments}
    return Sample(id=sample_id, video=video, source=source)


def generate_long(out_dir: str | Path, n: int, settings: LongSettings = LongSettings(),
                  progress: Callable[[int], None] | None = None) -> Path:
    """Render `n` long clips and their manifest `out_dir/<split>-long.jsonl`; return the manifest path."""
    out = Path(out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    samples = []
    for clip in range(n):
        samples.append(write_long_clip(settings, out, clip))
        if progress is not None:
            progress(len(samples))
    meta = {"generator": "affect_mllm.synthfacs.long", **vars(settings), "n": n}
    return write_manifest(out / f"{settings.split}-long.jsonl", samples, meta=meta)

