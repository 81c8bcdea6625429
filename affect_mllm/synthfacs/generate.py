"""SynthFACS clip generator: face-and-voice clips from AU and prosody parameters, with their labels.

A clip is CLIP_SECONDS long at the model's sampling rate (MediaSettings.fps), so by default 8 frames at 2 fps,
112 x 112 (the tiny model's pixel cap), with a 16 kHz voice track. The face goes neutral -> onset -> apex ->
offset: it starts neutral for ONSET_START_S, rises over ONSET_S, holds the apex for at least MIN_APEX_S (1 s, so
that a 2 fps sampler always catches two apex frames), then relaxes over OFFSET_S towards a residual, unless the
clip ends first. Blinks fall outside the apex hold; the head moves a little, more at higher difficulty.

Determinism: every random choice of clip `index` comes from generators seeded by (seed, split, index), and the
class of a clip from a permutation seeded by (seed, split, index // 8), so each run of 8 clips holds every class
once. The output therefore depends neither on how the clips are chunked nor on the number of workers, and the
same arguments write the same manifest bytes.

Splits: identities come from disjoint pools per split (IDENTITY_POOLS) and the styles from split-specific random
streams; val and test rationales use only the held-out templates (rationales.HELD_OUT_TEMPLATES).
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from multiprocessing.pool import Pool
from pathlib import Path
from types import MappingProxyType

import numpy as np

from affect_mllm.knowledge import CATEGORIES
from affect_mllm.lexicon import fine_words, valence_arousal
from affect_mllm.media import MediaSettings, write_video
from affect_mllm.schema import AUIntensity, Sample, write_manifest
from affect_mllm.synthfacs.face import render_face
from affect_mllm.synthfacs.nuisance import DIFFICULTIES, FaceStyle, HeadPose, gaussian_noise, sample_style
from affect_mllm.synthfacs.profiles import (
    FaceDraw,
    categorical_emotion,
    sample_face,
    sample_voice,
    sample_voice_emotion,
)
from affect_mllm.synthfacs.rationales import RationaleFacts, sample_subtitle, write_rationale
from affect_mllm.synthfacs.voice import VoiceParams, sample_speaker, synthesize_voice, voice_attributes

CLIP_SECONDS = 4.0  # the mission's clip: 8 frames at the model's 2 fps
FRAME_SIZE = math.isqrt(MediaSettings().max_pixels)  # 112: the tiny model's pixel cap, so frames are never resized
DEFAULT_DIFFICULTY = 2  # see DIFFICULTIES; the level benchmarks headline (benchmarks/learnability.py)
DEFAULT_CONFLICT_SHARE = 0.1  # enough conflict clips to measure modality bias, few enough not to blur the voice
DEFAULT_SUBTITLE_SHARE = 0.5  # half the clips carry a line of (emotion-free) speech text
SPLITS = ("train", "val", "test")
# (first identity, pool size) per split: disjoint ranges, so no person appears in two splits
IDENTITY_POOLS = MappingProxyType({"train": (0, 2000), "val": (1_000_000, 300), "test": (2_000_000, 300)})
CLASS_BLOCK = len(CATEGORIES)  # clips per balanced block: every class once
ONSET_START_S = (0.25, 0.9)  # neutral lead-in: the first frame is always neutral
ONSET_S = (0.3, 0.9)
MIN_APEX_S = 1.0  # two frames at 2 fps whatever the phase
OFFSET_S = (0.3, 1.0)
RESIDUAL = (0.0, 0.3)  # share of the apex left after the offset (expressions rarely vanish at once)
BLINK_HALF_S = 0.12  # a blink closes and opens in about 0.25 s
MAX_BLINKS = 2
HEAD_MOTION = (0.0, 0.25, 0.5, 0.75, 1.0)  # head-motion amplitude per difficulty (0: still, for measuring)
HEAD_AMPLITUDE = HeadPose(dx=0.02, dy=0.015, roll_deg=4.0, yaw=0.6, pitch=0.4, scale=0.03)
HEAD_FREQUENCY_HZ = (0.1, 0.4)  # slow sway, not jitter
AUDIO_SNR_DB = (None, (30.0, 40.0), (22.0, 30.0), (16.0, 24.0), (10.0, 18.0))  # background noise per difficulty
CRF = ((18, 18), (20, 24), (22, 27), (24, 30), (26, 33))  # H.264 compression per difficulty
FINE_WORDS = 2  # fine words per emotion in the open-vocabulary set (one for a conflicting voice)
_CLIP_SALT, _BLOCK_SALT, _NOISE_SALT, _VOICE_SALT = 0xC11B, 0xB10C, 0x0152, 0x70CE5


@dataclass(frozen=True)
class GeneratorSettings:
    """What a generated set is: seed, split, nuisance level, shares, and the clip format."""

    seed: int = 0
    split: str = "train"
    difficulty: int = DEFAULT_DIFFICULTY
    conflict_share: float = DEFAULT_CONFLICT_SHARE
    subtitle_share: float = DEFAULT_SUBTITLE_SHARE
    duration_s: float = CLIP_SECONDS
    fps: float = MediaSettings().fps
    size: int = FRAME_SIZE
    sample_rate: int = MediaSettings().sample_rate

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not 0 <= self.difficulty < len(DIFFICULTIES):
            raise ValueError(f"difficulty must be 0..{len(DIFFICULTIES) - 1}, got {self.difficulty}")
        if not (0.0 <= self.conflict_share <= 1.0 and 0.0 <= self.subtitle_share <= 1.0):
            raise ValueError("conflict_share and subtitle_share must be in [0, 1]")

    @property
    def frame_times(self) -> np.ndarray:
        """Seconds of each frame."""
        return np.arange(int(round(self.duration_s * self.fps))) / self.fps

    def rng(self, index: int, salt: int) -> np.random.Generator:
        """The generator of one clip's stream `salt`: a function of (seed, split, index) only."""
        return np.random.default_rng([self.seed, SPLITS.index(self.split), index, salt])


@dataclass(frozen=True)
class Timeline:
    """The expression's course in seconds; level(t) is the share of the apex shown at t."""

    onset_start: float
    apex_start: float
    apex_end: float
    offset_end: float
    residual: float

    def level(self, t: np.ndarray) -> np.ndarray:
        rise = np.clip((t - self.onset_start) / (self.apex_start - self.onset_start), 0.0, 1.0)
        fall = np.clip((t - self.apex_end) / (self.offset_end - self.apex_end), 0.0, 1.0)
        return _smoothstep(rise) * (1 - (1 - self.residual) * _smoothstep(fall))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero slope at both ends: muscles ease in and out."""
    return x * x * (3 - 2 * x)


@dataclass(frozen=True)
class ClipPlan:
    """Every choice behind one clip: who, which expression and voice, how it moves, and its labels."""

    settings: GeneratorSettings
    index: int
    face_emotion: str
    voice_emotion: str
    intensity: float  # 0 weakest .. 1 strongest expression
    identity: int
    style: FaceStyle
    face: FaceDraw
    timeline: Timeline
    blink_times: tuple[float, ...]
    head_motion: np.ndarray  # (3, 6): amplitude share, frequency (Hz), phase per HeadPose field
    voice: VoiceParams
    snr_db: float | None
    crf: int
    valence: float
    arousal: float
    emotions: tuple[str, ...]
    rationale: str
    template: str
    subtitle: str | None

    @property
    def id(self) -> str:
        return f"synthfacs-{self.settings.split}-s{self.settings.seed}-{self.index:06d}"

    @property
    def emotion(self) -> str:
        return categorical_emotion(self.face_emotion, self.voice_emotion)

    @property
    def apex_frames(self) -> list[int]:
        """Indices of the frames inside the apex hold."""
        times = self.settings.frame_times
        return [int(i) for i in np.nonzero((times >= self.timeline.apex_start) & (times <= self.timeline.apex_end))[0]]


def _class_of(settings: GeneratorSettings, index: int) -> str:
    """The face's class: a per-block permutation, so every 8 consecutive clips hold each class once."""
    block = settings.rng(index // CLASS_BLOCK, _BLOCK_SALT).permutation(CLASS_BLOCK)
    return CATEGORIES[int(block[index % CLASS_BLOCK])]


def _timeline(duration: float, rng: np.random.Generator) -> Timeline:
    onset_start = float(rng.uniform(*ONSET_START_S))
    apex_start = onset_start + float(rng.uniform(*ONSET_S))
    apex_end = apex_start + float(rng.uniform(MIN_APEX_S, max(MIN_APEX_S, duration - apex_start)))
    offset_end = apex_end + float(rng.uniform(*OFFSET_S))
    return Timeline(onset_start, apex_start, apex_end, offset_end, float(rng.uniform(*RESIDUAL)))


def _blinks(timeline: Timeline, duration: float, rng: np.random.Generator) -> tuple[float, ...]:
    """Blink centres, dropped when they would touch the apex hold (the apex frames show the open eyes)."""
    centres = rng.uniform(0.0, duration, size=int(rng.integers(MAX_BLINKS + 1)))
    keep = (centres < timeline.apex_start - BLINK_HALF_S) | (centres > timeline.apex_end + BLINK_HALF_S)
    return tuple(round(float(c), 3) for c in sorted(centres[keep]))


def _head_motion(rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.uniform(0.3, 1.0, 6), rng.uniform(*HEAD_FREQUENCY_HZ, 6), rng.uniform(0, 2 * np.pi, 6)])


def _affect(face: str, voice: str, intensity: float, arousal_offset: float,
            rng: np.random.Generator) -> tuple[float, float, tuple[str, ...]]:
    """Valence (the face's, stronger with intensity), arousal (the voice's) and the open-vocabulary set."""
    face_valence, _ = valence_arousal(face)
    _, voice_arousal = valence_arousal(voice)
    valence = float(np.clip(face_valence * (0.7 + 0.5 * intensity) + rng.normal(0.0, 0.05), -1.0, 1.0))
    arousal = float(np.clip(voice_arousal + arousal_offset, -1.0, 1.0))
    strength = 0.45 + 0.5 * intensity  # lexicon intensity: mid to strong words; weak ones read as other feelings

    def words(emotion: str, k: int) -> list[str]:
        return fine_words(emotion, 0.25 if emotion == "neutral" else strength, arousal, k, rng)

    emotions = [face, *([voice] if voice != face else []), *words(face, FINE_WORDS)]
    if voice != face:
        emotions += words(voice, 1)
    return round(valence, 2), round(arousal, 2), tuple(dict.fromkeys(emotions))


def plan_clip(settings: GeneratorSettings, index: int, emotion: str | None = None) -> ClipPlan:
    """Draw every choice of clip `index` (`emotion` forces the face's class, e.g. for the gallery)."""
    rng = settings.rng(index, _CLIP_SALT)
    face_emotion = emotion or _class_of(settings, index)
    conflict = rng.random() < settings.conflict_share
    voice_emotion = sample_voice_emotion(face_emotion, conflict, rng)
    intensity = float(rng.uniform(0.0, 1.0))
    first_id, pool = IDENTITY_POOLS[settings.split]
    identity = first_id + int(rng.integers(pool))
    style = sample_style(rng, settings.difficulty, identity=identity)
    face = sample_face(face_emotion, intensity, rng)
    timeline = _timeline(settings.duration_s, rng)
    arousal_offset = 0.4 * (intensity - 0.5) + float(rng.uniform(-0.15, 0.15))
    voice = sample_voice(voice_emotion, sample_speaker(identity), arousal_offset, rng)
    snr_range = AUDIO_SNR_DB[settings.difficulty]
    valence, arousal, emotions = _affect(face_emotion, voice_emotion, intensity, arousal_offset, rng)
    facts = RationaleFacts(categorical_emotion(face_emotion, voice_emotion), face_emotion, voice_emotion,
                           face.aus, face.side, emotions[2 if conflict else 1])
    rationale, template = write_rationale(facts, settings.split, rng)
    return ClipPlan(
        settings=settings, index=index, face_emotion=face_emotion, voice_emotion=voice_emotion,
        intensity=round(intensity, 3), identity=identity, style=style, face=face, timeline=timeline,
        blink_times=_blinks(timeline, settings.duration_s, rng), head_motion=_head_motion(rng), voice=voice,
        snr_db=None if snr_range is None else float(rng.uniform(*snr_range)),
        crf=int(rng.integers(CRF[settings.difficulty][0], CRF[settings.difficulty][1] + 1)),
        valence=valence, arousal=arousal, emotions=emotions, rationale=rationale, template=template,
        subtitle=sample_subtitle(rng) if rng.random() < settings.subtitle_share else None,
    )


def _head_pose(plan: ClipPlan, t: float) -> HeadPose | None:
    """The head pose at time t (None when the level has no head motion)."""
    scale = HEAD_MOTION[plan.settings.difficulty]
    if scale == 0.0:
        return None
    share, frequency, phase = plan.head_motion
    wave = scale * share * np.sin(2 * np.pi * frequency * t + phase)
    a = HEAD_AMPLITUDE
    return HeadPose(dx=a.dx * wave[0], dy=a.dy * wave[1], roll_deg=a.roll_deg * wave[2], yaw=a.yaw * wave[3],
                    pitch=a.pitch * wave[4], scale=1.0 + a.scale * wave[5])


def render_frames(plan: ClipPlan) -> np.ndarray:
    """The clip's frames, (T, size, size, 3) uint8 RGB."""
    times = plan.settings.frame_times
    levels = plan.timeline.level(times)
    apex = plan.face.rendered()
    noise_rng = plan.settings.rng(plan.index, _NOISE_SALT)
    frames = []
    for t, level in zip(times, levels, strict=True):
        blink = max((1 - abs(t - c) / BLINK_HALF_S for c in plan.blink_times), default=0.0)
        aus = {au: value * float(level) for au, value in apex.items()}
        frames.append(render_face(aus, plan.style, sides=plan.face.sides, blink=max(0.0, blink),
                                  head=_head_pose(plan, float(t)), size=plan.settings.size, rng=noise_rng))
    return np.stack(frames)


def render_audio(plan: ClipPlan) -> np.ndarray:
    """The clip's voice track (float32 mono at the settings' sample rate), with background noise by difficulty."""
    rng = plan.settings.rng(plan.index, _VOICE_SALT)
    settings = plan.settings
    audio = synthesize_voice(plan.voice, settings.duration_s, sample_rate=settings.sample_rate, rng=rng)
    if plan.snr_db is None:
        return audio
    voiced = np.abs(audio) > 1e-4
    rms = float(np.sqrt(np.mean(audio[voiced] ** 2))) if voiced.any() else 0.0
    noise = gaussian_noise(rng, audio.shape) * np.float32(rms / 10 ** (plan.snr_db / 20))
    return np.clip(audio + noise, -1.0, 1.0)


def clip_sample(plan: ClipPlan, video: str) -> Sample:
    """The clip's manifest record; `video` is the clip's path relative to the manifest."""
    source = {
        "dataset": "synthfacs", "seed": plan.settings.seed, "split": plan.settings.split, "index": plan.index,
        "difficulty": plan.settings.difficulty, "identity": plan.identity, "intensity": plan.intensity,
        "conflict": plan.face_emotion != plan.voice_emotion, "template": plan.template, "side": plan.face.side,
        "voice": {key: value for key, value in voice_attributes(plan.voice).items() if key != "quality"},
        "apex_frames": plan.apex_frames, "crf": plan.crf,
    }
    return Sample(
        id=plan.id, video=video, subtitle=plan.subtitle, emotion=plan.emotion, emotions=list(plan.emotions),
        aus=[AUIntensity(au=au, intensity=value) for au, value in plan.face.aus.items()],
        valence=plan.valence, arousal=plan.arousal, rationale=plan.rationale, face_emotion=plan.face_emotion,
        voice_emotion=plan.voice_emotion, source=source,
    )


def write_clip(settings: GeneratorSettings, out_dir: Path, index: int) -> Sample:
    """Plan, render and encode clip `index` into out_dir/clips/; return its record."""
    plan = plan_clip(settings, index)
    video = f"clips/{plan.id}.mp4"
    write_video(out_dir / video, render_frames(plan), settings.fps, render_audio(plan), settings.sample_rate,
                crf=plan.crf)
    return clip_sample(plan, video)


@contextmanager
def _process_pool(workers: int) -> Iterator[Pool | None]:
    """A process pool for workers > 1, None (work in this process) for one."""
    if workers <= 1:
        yield None
        return
    # spawn, not fork: the caller may hold threads (a progress bar, BLAS) that a fork would copy mid-state
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield pool


def generate_synthfacs(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    split: str = "train",
    difficulty: int = DEFAULT_DIFFICULTY,
    conflict_share: float = DEFAULT_CONFLICT_SHARE,
    subtitle_share: float = DEFAULT_SUBTITLE_SHARE,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate `n` clips and their manifest `out_dir/<split>.jsonl` (with a `<split>.meta.json` sidecar).

    Args:
        out_dir: folder for the manifest and clips/ (created).
        n: number of clips.
        seed: same seed (and other arguments), same manifest bytes.
        split: "train", "val" or "test": disjoint identities and template pools.
        difficulty: nuisance level 0 (large, centred, clean face) .. 4 (full nuisance); see nuisance.py.
        conflict_share: share of clips whose voice speaks another emotion than the face shows.
        subtitle_share: share of clips with an (emotion-free) subtitle.
        workers: processes; any number writes the same output.
        progress: called with the number of clips finished after each clip.

    Returns:
        The manifest path.
    """
    settings = GeneratorSettings(seed=seed, split=split, difficulty=difficulty, conflict_share=conflict_share,
                                 subtitle_share=subtitle_share)
    out = Path(out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    job = partial(write_clip, settings, out)
    samples = []
    with _process_pool(workers) as pool:
        results = pool.imap(job, range(n), chunksize=4) if pool is not None else map(job, range(n))
        for sample in results:
            samples.append(sample)
            if progress is not None:
                progress(len(samples))
    meta = {"generator": "affect_mllm.synthfacs", **vars(settings), "n": n}
    return write_manifest(out / f"{split}.jsonl", samples, meta=meta)
