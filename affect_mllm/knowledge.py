"""Affective knowledge base: FACS Action Units, EMFACS-style emotion prototypes and voice profiles.

The facts live in plain CSV tables shipped in ``affect_mllm/data/`` (au_catalogue.csv,
emotion_prototypes.csv, voice_profiles.csv; their sources are cited in their header comments). This module
loads each table once (cached) and answers the queries that the SynthFACS generators and the rewards ask:
what an AU is called and looks like, which AUs make an emotion, how well cited AUs support an emotion,
and which prosody an emotion is known for.
"""

from __future__ import annotations

import csv
import functools
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from importlib import resources
from types import MappingProxyType

CATEGORIES = ("neutral", "happy", "sad", "surprised", "fearful", "angry", "disgusted", "contemptuous")
REGIONS = ("brows", "eyes", "cheeks", "nose", "mouth", "jaw", "chin")
INTENSITY_LETTERS = ("A", "B", "C", "D", "E")  # FACS: trace, slight, marked, severe, maximum
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


class DataTableError(ValueError):
    """A data table shipped with the package is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class ActionUnit:
    """One FACS Action Unit: number, FACS name, facial region and a plain-English cue phrase."""

    number: int
    name: str
    region: str
    cue: str


@dataclass(frozen=True)
class Prototype:
    """AU prototype of an emotion: core AUs make it, optional AUs may accompany it."""

    emotion: str
    kind: str  # "basic" or "compound"
    components: tuple[str, ...]  # the basic emotions a compound combines; () for a basic one
    core: frozenset[int]
    optional: frozenset[int]
    unilateral: frozenset[int]  # core AUs shown on one side of the face only
    source: str

    @property
    def aus(self) -> frozenset[int]:
        """All AUs of the prototype, core and optional."""
        return self.core | self.optional


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


def read_data_table(filename: str, columns: Collection[str]) -> list[tuple[int, dict[str, str]]]:
    """Read a CSV table of affect_mllm/data (leading '#' lines skipped), checking the header has `columns`.

    Returns: (line number in the file, row with stripped cells) for each data row.
    """
    text = (resources.files("affect_mllm") / "data" / filename).read_text(encoding="utf-8")
    lines = text.splitlines()
    n_comments = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    reader = csv.DictReader(lines[n_comments:])
    missing = sorted(set(columns) - set(reader.fieldnames or ()))
    if missing:
        raise DataTableError(f"{filename}: the header lacks column(s) {missing}")
    rows = []
    for row in reader:
        line_no = n_comments + reader.line_num
        if None in row or None in row.values():
            raise DataTableError(f"{filename} line {line_no}: wrong number of fields")
        rows.append((line_no, {key: value.strip() for key, value in row.items()}))
    return rows


def _parse_au_set(text: str, where: str) -> frozenset[int]:
    """Parse a FACS-style AU set such as '6+12' ('' is the empty set)."""
    if not text:
        return frozenset()
    try:
        return frozenset(int(part) for part in text.split("+"))
    except ValueError:
        raise DataTableError(f"{where}: {text!r} is not an AU set such as '6+12'") from None


@functools.lru_cache(maxsize=1)
def au_catalogue() -> Mapping[int, ActionUnit]:
    """Returns: the FACS AU catalogue, AU number -> ActionUnit, in AU order."""
    filename = "au_catalogue.csv"
    catalogue: dict[int, ActionUnit] = {}
    for line_no, row in read_data_table(filename, ("au", "name", "region", "cue")):
        where = f"{filename} line {line_no}"
        if not row["au"].isdigit():
            raise DataTableError(f"{where}: AU number {row['au']!r} is not a positive integer")
        number = int(row["au"])
        if number in catalogue:
            raise DataTableError(f"{where}: AU{number} is listed twice")
        if row["region"] not in REGIONS:
            raise DataTableError(f"{where}: region {row['region']!r} is not one of {REGIONS}")
        if not row["name"] or not row["cue"]:
            raise DataTableError(f"{where}: AU{number} needs a name and a cue")
        catalogue[number] = ActionUnit(number, row["name"], row["region"], row["cue"])
    return MappingProxyType(dict(sorted(catalogue.items())))


def _action_unit(number: int) -> ActionUnit:
    """Look up an AU, with an error that says which AU is missing."""
    try:
        return au_catalogue()[number]
    except KeyError:
        raise KeyError(f"AU{number} is not in the AU catalogue") from None


def all_aus() -> tuple[int, ...]:
    """Returns: the numbers of all catalogued AUs, ascending."""
    return tuple(au_catalogue())


def au_name(number: int) -> str:
    """Returns: the FACS name of AU `number` (e.g. 12 -> 'Lip Corner Puller'); KeyError if unknown."""
    return _action_unit(number).name


def au_cue(number: int) -> str:
    """Returns: the plain-English cue of AU `number` (e.g. 12 -> 'lip corners pulled up')."""
    return _action_unit(number).cue


def au_region(number: int) -> str:
    """Returns: the facial region of AU `number`, one of REGIONS."""
    return _action_unit(number).region


def intensity_letter(x: float) -> str:
    """FACS letter ('A' trace .. 'E' maximum) of an intensity x in [0, 5]: nearest level 1-5, halves up.

    Values below 1 get 'A': whether an AU is present is decided by schema.present_aus, not here.
    Raises ValueError outside [0, 5] or for NaN.
    """
    if not 0.0 <= x <= 5.0:
        raise ValueError(f"AU intensity {x!r} is outside the FACS 0-5 scale")
    level = min(5, max(1, math.floor(x + 0.5)))
    return INTENSITY_LETTERS[level - 1]


def intensity_from_letter(letter: str) -> float:
    """Returns: the 0-5 intensity of a FACS letter, A -> 1.0 ... E -> 5.0 (case-insensitive)."""
    key = letter.strip().upper()
    if key not in INTENSITY_LETTERS:
        raise ValueError(f"{letter!r} is not a FACS intensity letter (A-E)")
    return float(INTENSITY_LETTERS.index(key) + 1)


def _build_prototype(where: str, row: dict[str, str], catalogue: Mapping[int, ActionUnit]) -> Prototype:
    """Validate one prototype row against the AU catalogue."""
    core = _parse_au_set(row["core"], where)
    optional = _parse_au_set(row["optional"], where)
    unilateral = _parse_au_set(row["unilateral"], where)
    unknown = sorted((core | optional) - set(catalogue))
    if unknown:
        raise DataTableError(f"{where}: AU(s) {unknown} are not in the AU catalogue")
    if core & optional:
        raise DataTableError(f"{where}: AU(s) {sorted(core & optional)} are both core and optional")
    if not unilateral <= core:
        raise DataTableError(f"{where}: unilateral AUs must be core AUs")
    if row["kind"] not in ("basic", "compound"):
        raise DataTableError(f"{where}: kind {row['kind']!r} is not 'basic' or 'compound'")
    components = tuple(row["components"].split("+")) if row["components"] else ()
    if (row["kind"] == "compound") != bool(components):
        raise DataTableError(f"{where}: a compound needs components and a basic emotion has none")
    if any(component not in CATEGORIES for component in components):
        raise DataTableError(f"{where}: components {components} must be among {CATEGORIES}")
    return Prototype(row["emotion"], row["kind"], components, core, optional, unilateral, row["source"])


@functools.lru_cache(maxsize=1)
def prototypes() -> Mapping[str, Prototype]:
    """Returns: emotion -> Prototype, the 8 CATEGORIES first, then the compound emotions."""
    filename = "emotion_prototypes.csv"
    columns = ("emotion", "kind", "components", "core", "optional", "unilateral", "source")
    table: dict[str, Prototype] = {}
    for line_no, row in read_data_table(filename, columns):
        where = f"{filename} line {line_no}"
        if row["emotion"] in table:
            raise DataTableError(f"{where}: emotion {row['emotion']!r} is listed twice")
        table[row["emotion"]] = _build_prototype(where, row, au_catalogue())
    basic = tuple(name for name, proto in table.items() if proto.kind == "basic")
    if sorted(basic) != sorted(CATEGORIES):
        raise DataTableError(f"{filename}: the basic prototypes {basic} are not the categories {CATEGORIES}")
    ordered = [*CATEGORIES, *(name for name in table if name not in CATEGORIES)]
    return MappingProxyType({name: table[name] for name in ordered})


def prototype(emotion: str) -> Prototype:
    """Returns: the AU prototype of a category or compound emotion (e.g. 'happily_surprised')."""
    try:
        return prototypes()[emotion]
    except KeyError:
        raise KeyError(f"no AU prototype for emotion {emotion!r}") from None


def _conflicting_aus(proto: Prototype) -> frozenset[int]:
    """Core AUs of the other basic prototypes (not the emotion nor its components) absent from `proto`."""
    allies = {proto.emotion, *proto.components}
    others = [p.core for p in prototypes().values() if p.kind == "basic" and p.emotion not in allies]
    return frozenset().union(*others) - proto.aus


def au_support(aus: Collection[int], emotion: str) -> float:
    """How well a set of cited AUs supports an emotion, in [0, 1].

    support = coverage * (1 - conflicts / |A|), where A is the set of cited AUs, coverage is the share of
    the emotion's core AUs in A (1 when the emotion has no core AUs, as neutral), and conflicts counts the
    cited AUs that are neither core nor optional for the emotion but are core to another basic prototype
    (other than the emotion's own components). An empty A supports nothing but neutral (1.0). Laterality
    is not checked: cited AUs carry no side.
    Worked example, A = {1, 4, 15, 12}, emotion 'sad' (core 1+4+15, optional 6+11+17): coverage = 3/3;
    AU12 is core to 'happy' and not in sad's prototype -> 1 conflict; support = 1 * (1 - 1/4) = 0.75.
    A = {6, 12}: 'happy' -> 2/2 * (1 - 0/2) = 1.0; 'sad' -> 0/3 * ... = 0.0.
    Args: aus: cited AU numbers; emotion: a category or a compound emotion with a prototype.
    Returns: the support score.
    """
    proto = prototype(emotion)
    cited = frozenset(aus)
    if not cited:
        return 1.0 if not proto.core else 0.0
    coverage = len(cited & proto.core) / len(proto.core) if proto.core else 1.0
    conflicts = len(cited & _conflicting_aus(proto))
    return coverage * (1.0 - conflicts / len(cited))


def emotions_supported_by(aus: Collection[int], include_compounds: bool = False) -> list[tuple[str, float]]:
    """Returns: (emotion, au_support) pairs with support > 0, best first (ties in table order).

    Args: aus: cited AU numbers; include_compounds: also rank the compound emotions.
    """
    names = [name for name, proto in prototypes().items() if include_compounds or proto.kind == "basic"]
    scored = [(name, au_support(aus, name)) for name in names]
    ranked = sorted(enumerate(scored), key=lambda item: (-item[1][1], item[0]))
    return [pair for _, pair in ranked if pair[1] > 0.0]


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


def vocabulary_phrases() -> tuple[str, ...]:
    """Returns: the knowledge base's wording (AU names and cues, voice-cue phrases), e.g. for a tokenizer corpus."""
    aus = au_catalogue().values()
    return (*(au.name for au in aus), *(au.cue for au in aus), *voice_cue_vocabulary())


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
