"""Class profiles of SynthFACS: the AUs each category shows, the voice it speaks with, and the conflict rule.

Face profiles follow the EMFACS prototypes of `knowledge.prototypes()` (every AU drawn here is core or optional
there), narrowed so that no class is another one plus noise: the learnability note measured that a tiny model
confuses fear with surprise and disgust with anger when the profiles share most AUs. Hence

| category     | always (apex intensity range, 0-5)              | one of             | sometimes (share 0.5) |
|--------------|--------------------------------------------------|--------------------|-----------------------|
| neutral      | nothing above trace                              |                    |                       |
| happy        | AU6 2-4.5, AU12 2.5-5                            |                    | AU25 2-3.5            |
| sad          | AU1 2.5-4.5, AU4 2-3.5, AU15 3-5                 |                    | AU17 2.5-4.5          |
| surprised    | AU1 3-5, AU2 3-5, AU5 2-4.5                      | AU26 3-5, AU27 2-4 | AU25 2-3.5            |
| fearful      | AU1 2.5-4.5, AU2 1.5-3.5, AU4 1.5-3, AU5 2.5-4.5, AU20 3-5 (no jaw drop) |  |                 |
| angry        | AU4 3-5, AU5 1.5-3.5, AU7 2-4                    | AU23 3-5, AU24 3-5 |                       |
| disgusted    | AU9 3-5, AU10 3-5 (no AU4: the brows stay level) |                    | AU15 2.5-4, AU17 2.5-4 |
| contemptuous | AU12 2.5-4.5, AU14 3-5, on one side (drawn per clip) |                |                       |

One clip intensity s in [0, 1] places every AU inside its range (plus a little per-AU jitter), so a strong
expression is strong everywhere; lower bounds of at least 1.5 keep every profile AU clearly above the presence
threshold (schema.AU_PRESENCE_THRESHOLD = 1), and the AUs that change few pixels (AU14, AU15, AU17, AU23, AU24,
AU25) start at 2 or more, so that a linear probe finds them (benchmarks/learnability.py). Up to two other AUs
are added at trace level (< 0.8), which FACS coders would not score and the labels leave out.

Voice: each category speaks with its `voice_cues.voice_profile` (categorical cues), turned into VoiceParams drawn
inside the bands of `voice.voice_attributes`, away from their edges. Anger and happiness share a categorical
profile, so breathiness (pressed for anger, breathy for sadness and fear) and loudness nuance tell them apart.

Conflict rule: on a conflict clip the voice speaks another category, drawn uniformly among those whose
categorical voice profile differs from the face's (a conflict that no cue could reveal is not a conflict), and
the categorical `emotion` follows the face (:func:`categorical_emotion`): the face carries all 8 classes
distinctly, the voice does not (happy and angry voices share their cues).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from affect_mllm.knowledge import CATEGORIES
from affect_mllm.synthfacs.voice import Speaker, VoiceParams
from affect_mllm.voice_cues import voice_profile

Range = tuple[float, float]
OPTIONAL_SHARE = 0.5  # how often a "sometimes" AU joins: both variants stay common
INTENSITY_JITTER = 0.15  # per-AU spread around the clip intensity, as a share of the AU's range
TRACE_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26)  # AUs that may twitch at trace level
TRACE_RANGE: Range = (0.2, 0.8)  # below the presence threshold of 1: visible motion, not a coded AU
MAX_TRACE_AUS = 2
SIDES = ("left", "right")


@dataclass(frozen=True)
class FaceProfile:
    """The AUs one category shows at its apex, as intensity ranges on the FACS 0-5 scale."""

    emotion: str
    always: Mapping[int, Range] = field(default_factory=dict)
    one_of: Mapping[int, Range] = field(default_factory=dict)  # exactly one of these (e.g. AU26 or AU27)
    sometimes: Mapping[int, Range] = field(default_factory=dict)  # each with OPTIONAL_SHARE
    one_sided: frozenset[int] = frozenset()  # drawn on one side of the face, the same side for all of them

    @property
    def aus(self) -> frozenset[int]:
        """Every AU the profile may show."""
        return frozenset(self.always) | frozenset(self.one_of) | frozenset(self.sometimes)


FACE_PROFILES: Mapping[str, FaceProfile] = MappingProxyType({
    "neutral": FaceProfile("neutral"),
    "happy": FaceProfile("happy", {6: (2.0, 4.5), 12: (2.5, 5.0)}, sometimes={25: (2.0, 3.5)}),
    "sad": FaceProfile("sad", {1: (2.5, 4.5), 4: (2.0, 3.5), 15: (3.0, 5.0)}, sometimes={17: (2.5, 4.5)}),
    "surprised": FaceProfile("surprised", {1: (3.0, 5.0), 2: (3.0, 5.0), 5: (2.0, 4.5)},
                             one_of={26: (3.0, 5.0), 27: (2.0, 4.0)}, sometimes={25: (2.0, 3.5)}),
    "fearful": FaceProfile("fearful", {1: (2.5, 4.5), 2: (1.5, 3.5), 4: (1.5, 3.0), 5: (2.5, 4.5), 20: (3.0, 5.0)}),
    "angry": FaceProfile("angry", {4: (3.0, 5.0), 5: (1.5, 3.5), 7: (2.0, 4.0)},
                         one_of={23: (3.0, 5.0), 24: (3.0, 5.0)}),
    "disgusted": FaceProfile("disgusted", {9: (3.0, 5.0), 10: (3.0, 5.0)},
                             sometimes={15: (2.5, 4.0), 17: (2.5, 4.0)}),
    "contemptuous": FaceProfile("contemptuous", {12: (2.5, 4.5), 14: (3.0, 5.0)}, one_sided=frozenset({12, 14})),
})


@dataclass(frozen=True)
class FaceDraw:
    """The apex AUs of one clip: labelled AUs, trace AUs (rendered, not labelled) and the side of one-sided AUs."""

    aus: Mapping[int, float]
    traces: Mapping[int, float]
    sides: Mapping[int, str]

    @property
    def side(self) -> str:
        """'left' or 'right' (subject's side) when the expression is one-sided, else 'both'."""
        return next(iter(self.sides.values()), "both")

    def rendered(self) -> dict[int, float]:
        """Every AU the face draws at its apex: the labelled ones and the traces."""
        return {**self.traces, **self.aus}


def _place(span: Range, intensity: float, rng: np.random.Generator) -> float:
    """An intensity inside `span` at the clip intensity, jittered per AU."""
    share = float(np.clip(intensity + rng.normal(0.0, INTENSITY_JITTER), 0.0, 1.0))
    return round(span[0] + share * (span[1] - span[0]), 2)


def sample_face(emotion: str, intensity: float, rng: np.random.Generator) -> FaceDraw:
    """Draw the apex AUs of a clip of `emotion` at clip intensity `intensity` (0 weakest .. 1 strongest)."""
    profile = FACE_PROFILES[emotion]
    aus = {au: _place(span, intensity, rng) for au, span in profile.always.items()}
    if profile.one_of:
        chosen = sorted(profile.one_of)[int(rng.integers(len(profile.one_of)))]
        aus[chosen] = _place(profile.one_of[chosen], intensity, rng)
    for au, span in profile.sometimes.items():
        if rng.random() < OPTIONAL_SHARE:
            aus[au] = _place(span, intensity, rng)
    side = SIDES[int(rng.integers(2))]
    sides = {au: side for au in profile.one_sided}
    candidates = [au for au in TRACE_AUS if au not in profile.aus]
    count = int(rng.integers(MAX_TRACE_AUS + 1))
    picked = rng.choice(len(candidates), size=count, replace=False)
    traces = {candidates[int(i)]: round(float(rng.uniform(*TRACE_RANGE)), 2) for i in sorted(picked)}
    return FaceDraw(dict(sorted(aus.items())), traces, sides)


# Numeric ranges per categorical voice cue, inside voice.py's bands with a margin of at least the arousal nudge
# of sample_voice (loudness +-1.4 dB, rate +-0.3 Hz), so that voice_attributes reads back the profile's cues.
PITCH_FACTOR: Mapping[str, Range] = MappingProxyType({"low": (0.78, 0.88), "mid": (0.96, 1.05), "high": (1.16, 1.3)})
PITCH_RANGE_ST: Mapping[str, Range] = MappingProxyType({"narrow": (1.0, 2.0), "normal": (3.0, 4.0),
                                                        "wide": (5.5, 7.5)})
CONTOUR_ST_PER_S: Mapping[str, Range] = MappingProxyType({"falling": (-3.5, -2.0), "flat": (-0.8, 0.8),
                                                          "rising": (2.0, 3.5)})
LOUDNESS_DB: Mapping[str, Range] = MappingProxyType({"quiet": (-12.0, -8.0), "normal": (-2.0, 2.0),
                                                     "loud": (6.0, 9.5)})
RATE_HZ: Mapping[str, Range] = MappingProxyType({"slow": (2.5, 3.1), "normal": (4.0, 5.0), "fast": (6.0, 7.0)})
TREMOR_ST: Mapping[str, Range] = MappingProxyType({"no": (0.0, 0.1), "yes": (0.5, 1.0)})
# Voice quality per category: the nuance that separates categories sharing their categorical cues.
BREATHINESS: Mapping[str, Range] = MappingProxyType({
    "neutral": (0.08, 0.18), "happy": (0.12, 0.22), "sad": (0.3, 0.45), "surprised": (0.1, 0.2),
    "fearful": (0.35, 0.5), "angry": (0.0, 0.05), "disgusted": (0.1, 0.2), "contemptuous": (0.08, 0.18),
})
EXTRA_LOUDNESS_DB: Mapping[str, float] = MappingProxyType({"angry": 1.5})  # hot anger is the loudest voice
AROUSAL_LOUDNESS_DB = 4.0  # dB per unit of arousal offset: a more aroused speaker is louder ...
AROUSAL_RATE_HZ = 0.8  # ... and faster


def sample_voice(emotion: str, speaker: Speaker, arousal_offset: float, rng: np.random.Generator) -> VoiceParams:
    """Prosody of `emotion` for `speaker`, nudged by the clip's arousal offset (within +-0.35).

    Every categorical cue of `voice_cues.voice_profile(emotion)` maps to a numeric range; the draw stays inside
    the bands of `voice.voice_attributes`, so the voice's attributes are the profile's.
    """
    cues = voice_profile(emotion).cues()

    def draw(table: Mapping[str, Range], cue: str) -> float:
        return float(rng.uniform(*table[cues[cue]]))

    return VoiceParams.for_speaker(
        speaker,
        pitch_factor=draw(PITCH_FACTOR, "pitch_level"),
        pitch_range_st=draw(PITCH_RANGE_ST, "pitch_range"),
        contour_st_per_s=draw(CONTOUR_ST_PER_S, "contour"),
        loudness_db=draw(LOUDNESS_DB, "loudness") + EXTRA_LOUDNESS_DB.get(emotion, 0.0)
        + AROUSAL_LOUDNESS_DB * arousal_offset,
        syllable_rate_hz=draw(RATE_HZ, "rate") + AROUSAL_RATE_HZ * arousal_offset,
        tremor_depth_st=draw(TREMOR_ST, "tremor"),
        tremor_rate_hz=float(rng.uniform(5.0, 7.0)),
        breathiness=float(rng.uniform(*BREATHINESS[emotion])),
    )


def conflict_partners(face_emotion: str) -> tuple[str, ...]:
    """Categories a conflicting voice may speak: those whose categorical voice cues differ from the face's."""
    own = voice_profile(face_emotion).cues()
    return tuple(c for c in CATEGORIES if c != face_emotion and voice_profile(c).cues() != own)


def sample_voice_emotion(face_emotion: str, conflict: bool, rng: np.random.Generator) -> str:
    """The category the voice speaks: the face's, or on a conflict clip one of its conflict partners."""
    if not conflict:
        return face_emotion
    partners = conflict_partners(face_emotion)
    return partners[int(rng.integers(len(partners)))]


def categorical_emotion(face_emotion: str, voice_emotion: str) -> str:
    """The categorical label of a clip: the face's emotion, also on conflict clips (see the module docstring)."""
    del voice_emotion  # the rule reads the face only; the argument keeps the rule's inputs explicit
    return face_emotion
