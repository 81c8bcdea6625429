"""Facial knowledge base: the emotion categories, FACS Action Units and EMFACS-style emotion prototypes.

The facts live in plain CSV tables shipped in ``affect_mllm/data/`` (au_catalogue.csv, emotion_prototypes.csv;
their sources are cited in their header comments). This module loads each table once (cached) and answers the
queries that the SynthFACS generators and the rewards ask: what an AU is called and looks like, which AUs make an
emotion and how well cited AUs support an emotion. What a voice sounds like in each emotion is `voice_cues`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from affect_mllm.data_tables import DataTableError, parse_au_set, read_data_table

CATEGORIES = ("neutral", "happy", "sad", "surprised", "fearful", "angry", "disgusted", "contemptuous")
REGIONS = ("brows", "eyes", "cheeks", "nose", "mouth", "jaw", "chin")
INTENSITY_LETTERS = ("A", "B", "C", "D", "E")  # FACS: trace, slight, marked, severe, maximum


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


def au_phrases() -> tuple[str, ...]:
    """Returns: the AU catalogue's wording, every FACS name then every cue (e.g. for a tokenizer corpus)."""
    aus = au_catalogue().values()
    return (*(au.name for au in aus), *(au.cue for au in aus))


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
    core = parse_au_set(row["core"], where)
    optional = parse_au_set(row["optional"], where)
    unilateral = parse_au_set(row["unilateral"], where)
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
