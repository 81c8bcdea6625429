"""Voice knowledge: the prosody profile of each emotion category, and the words rationales use for voice cues.

The profiles live in ``affect_mllm/data/voice_profiles.csv`` (sources cited in its header). The vocabulary maps
each phrase a rationale may use ("shaky", "monotone", "raised voice") to the cue it claims, so generated
rationales are worded from it (`voice_phrase`) and any rationale's claims can be read back (`voice_cues_in`) and
checked against an emotion's profile (`voice_claim_agreement`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from affect_mllm.data_tables import DataTableError, read_data_table
from affect_mllm.knowledge import CATEGORIES

VOICE_ATTRIBUTES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "pitch_level": ("low", "mid", "high"),
    "pitch_range": ("narrow", "normal", "wide"),
    "contour": ("falling", "flat", "rising"),
    "loudness": ("quiet", "normal", "loud"),
    "rate": ("slow", "normal", "fast"),
    "tremor": ("no", "yes"),
})

# Words and phrases a rationale may use to describe a voice, by the cue they claim; the first phrase of
# each entry is the one generated rationales use (voice_phrase).
_VOICE_VOCABULARY: Mapping[tuple[str, str], tuple[str, ...]] = MappingProxyType({
    ("pitch_level", "low"): ("low-pitched voice", "low-pitched", "low pitch", "lower pitch", "deep voice",
                             "deep tone"),
    ("pitch_level", "mid"): ("mid-range pitch", "medium pitch", "normal pitch"),
    ("pitch_level", "high"): ("high-pitched voice", "high-pitched", "high pitch", "higher pitch", "raised pitch",
                              "shrill", "squeaky"),
    ("pitch_range", "narrow"): ("monotone delivery", "monotone", "monotonous", "narrow pitch range",
                                "little pitch variation"),
    ("pitch_range", "normal"): ("ordinary pitch variation", "normal intonation"),
    ("pitch_range", "wide"): ("wide pitch range", "varied pitch", "varied intonation", "expressive intonation",
                              "lively intonation", "sing-song"),
    ("contour", "falling"): ("falling intonation", "falling pitch", "falling tone", "downward inflection",
                             "trailing off"),
    ("contour", "flat"): ("flat intonation", "flat tone", "level tone"),
    ("contour", "rising"): ("rising intonation", "rising pitch", "rising tone", "upward inflection"),
    ("loudness", "quiet"): ("quiet voice", "quiet", "quietly", "soft voice", "softly", "soft-spoken", "whisper",
                            "whispering", "whispered", "hushed", "muted voice", "low volume", "subdued voice"),
    ("loudness", "normal"): ("moderate volume", "normal volume"),
    ("loudness", "loud"): ("loud voice", "loud", "loudly", "shouting", "shouts", "yelling", "yells", "screaming",
                           "raised voice", "booming", "forceful voice"),
    ("rate", "slow"): ("slow speech", "slow", "slowly", "drawn-out", "drawling", "unhurried", "halting"),
    ("rate", "normal"): ("even pace", "normal pace", "normal speed"),
    ("rate", "fast"): ("fast speech", "fast", "rapid", "rapidly", "quickly", "hurried", "rushed", "fast-paced"),
    ("tremor", "no"): ("steady voice", "firm voice", "stable voice", "unwavering"),
    ("tremor", "yes"): ("trembling voice", "trembling", "tremble", "shaky", "shaking voice", "quivering",
                        "quavering", "tremulous", "wavering", "tremor", "voice cracks", "cracking voice",
                        "breaking voice", "choked"),
})
_NEGATORS = frozenset({"not", "no", "never", "without", "hardly", "isn't", "wasn't", "aren't", "nor"})



@dataclass(frozen=True)
class VoiceProfile:
    """Categorical prosody profile of an emotion (values as in VOICE_ATTRIBUTES)."""

    emotion: str
    pitch_level: str
    pitch_range: str
    contour: str
    loudness: str
    rate: str
    tremor: str
    source: str

    def cues(self) -> dict[str, str]:
        """Returns: attribute -> value for the six attributes of VOICE_ATTRIBUTES."""
        return {attribute: getattr(self, attribute) for attribute in VOICE_ATTRIBUTES}


@functools.lru_cache(maxsize=1)
def voice_profiles() -> Mapping[str, VoiceProfile]:
    """Returns: category -> VoiceProfile, one for each of the 8 CATEGORIES."""
    filename = "voice_profiles.csv"
    columns = [f.name for f in fields(VoiceProfile)]
    table: dict[str, VoiceProfile] = {}
    for line_no, row in read_data_table(filename, columns):
        where = f"{filename} line {line_no}"
        if row["emotion"] not in CATEGORIES or row["emotion"] in table:
            raise DataTableError(f"{where}: {row['emotion']!r} is not a category or is listed twice")
        for attribute, allowed in VOICE_ATTRIBUTES.items():
            if row[attribute] not in allowed:
                raise DataTableError(f"{where}: {attribute} {row[attribute]!r} is not one of {allowed}")
        table[row["emotion"]] = VoiceProfile(**{name: row[name] for name in columns})
    if set(table) != set(CATEGORIES):
        raise DataTableError(f"{filename}: profiles missing for {sorted(set(CATEGORIES) - set(table))}")
    return MappingProxyType({name: table[name] for name in CATEGORIES})


def voice_profile(emotion: str) -> VoiceProfile:
    """Returns: the prosody profile of a category; KeyError if it has none."""
    try:
        return voice_profiles()[emotion]
    except KeyError:
        raise KeyError(f"no voice profile for emotion {emotion!r}") from None


def voice_phrase(attribute: str, value: str) -> str:
    """Returns: the rationale phrase of one voice cue, e.g. ('loudness', 'loud') -> 'loud voice'."""
    return _VOICE_VOCABULARY[(attribute, value)][0]


def voice_cue_phrases(emotion: str, marked_only: bool = True) -> tuple[str, ...]:
    """Returns: rationale phrases of a category's voice profile, e.g. sad -> ('low-pitched voice', ...).

    With marked_only, only the cues that differ from the neutral profile (neutral itself gets its full profile).
    """
    cues = voice_profile(emotion).cues()
    if marked_only and emotion != "neutral":
        neutral = voice_profile("neutral").cues()
        cues = {attribute: value for attribute, value in cues.items() if value != neutral[attribute]}
    return tuple(voice_phrase(attribute, value) for attribute, value in cues.items())


def voice_cue_vocabulary() -> Mapping[str, tuple[str, str]]:
    """Returns: voice-cue word or phrase -> (attribute, value) it claims, e.g. 'shaky' -> ('tremor', 'yes')."""
    return MappingProxyType({phrase: cue for cue, phrases in _VOICE_VOCABULARY.items() for phrase in phrases})


def _phrase_key(phrase: str) -> str:
    """Spaces and hyphens are interchangeable in voice phrases: 'high pitched' == 'high-pitched'."""
    return " ".join(re.split(r"[\s-]+", phrase.strip()))


@functools.lru_cache(maxsize=1)
def _voice_cue_matcher() -> tuple[re.Pattern[str], Mapping[str, tuple[str, str]]]:
    """A regex matching any vocabulary phrase (longest first) and the claims keyed by _phrase_key."""
    claims = {_phrase_key(phrase): cue for phrase, cue in voice_cue_vocabulary().items()}
    keys = sorted(claims, key=len, reverse=True)
    alternatives = (r"[\s-]+".join(re.escape(part) for part in key.split(" ")) for key in keys)
    return re.compile(r"\b(" + "|".join(alternatives) + r")\b"), MappingProxyType(claims)


def voice_cues_in(text: str) -> list[tuple[str, str]]:
    """Voice claims a rationale makes, matched against the voice-cue vocabulary.

    A phrase preceded (within three words of its clause) by a negator such as 'not' or 'without' is skipped.
    Returns: distinct (attribute, value) claims in order of appearance, e.g. 'a shaky, high-pitched voice'
    -> [('tremor', 'yes'), ('pitch_level', 'high')].
    """
    lowered = text.lower()
    pattern, claim_of = _voice_cue_matcher()
    claims: list[tuple[str, str]] = []
    for match in pattern.finditer(lowered):
        clause = re.split(r"[,;:.!?]", lowered[: match.start()])[-1]  # negation stays within its clause
        preceding = re.findall(r"[\w']+", clause)[-3:]
        if _NEGATORS.intersection(preceding):
            continue
        claim = claim_of[_phrase_key(match.group(1))]
        if claim not in claims:
            claims.append(claim)
    return claims


def voice_claim_agreement(claims: Collection[tuple[str, str]], emotion: str) -> float:
    """Share of voice claims that agree with an emotion's profile (0.0 when there are no claims).

    Example: claims [('pitch_level', 'low'), ('loudness', 'loud')] vs 'sad' (low pitch, quiet) -> 1/2 = 0.5.
    Args: claims: (attribute, value) pairs, e.g. from voice_cues_in; emotion: a category.
    """
    if not claims:
        return 0.0
    profile = voice_profile(emotion).cues()
    return sum(profile.get(attribute) == value for attribute, value in claims) / len(claims)
