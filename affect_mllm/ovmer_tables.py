"""Load the official OV-MER emotion-wheel tables from a folder the user names; the project never ships them.

The tables (MERTools `MER2026/MER2026_Track2/emotion_wheel/`, CC BY-NC 4.0) are read either from
``wheel_mapping.npz`` or, when it is absent or a rebuild is asked for, from the files it was built from:
``wheel1.xlsx`` ... ``wheel5.xlsx`` (columns level1/level2/level3, blank cells repeat the cell above),
``synonym.xlsx`` (``word_runK``/``synonym_runK``, K = 1..8) and ``format.csv`` (``name``/``format``).
The rebuild follows the reference builder (MERTools `MER2025_Track23/my_affectgpt/evaluation/wheel.py`).

Both routes give the same `EmotionWheels`: ``format_mapping`` values keep the reference's order (that of
``format.csv``, duplicates included); ``raw_mapping`` values are sorted, because the reference merges the
eight synonym runs through Python sets, whose order changes with the hash seed. The metric sorts the
candidates anyway, so neither order changes a score.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import IO

import numpy as np
from numpy._core import multiarray as np_multiarray

from affect_mllm.wheels import LEVELS, EmotionWheels, split_label_string

__all__ = ["ENV_VAR", "NPZ_NAME", "OvmerTablesError", "load_ovmer_tables", "resolve_tables_dir"]

ENV_VAR = "AFFECT_MLLM_OVMER_TABLES"
NPZ_NAME = "wheel_mapping.npz"
NPZ_KEYS = ("format_mapping", "raw_mapping", "wheel_map_whole")
SYNONYM_NAME = "synonym.xlsx"
FORMAT_NAME = "format.csv"
SYNONYM_RUNS = tuple(f"run{k}" for k in range(1, 9))
WHEEL_COLUMNS = ("level1", "level2", "level3")
_WHEEL_FILE = re.compile(r"wheel(\d+)\.xlsx")

WheelTree = dict[str, dict[str, list[str]]]
"""One wheel as the reference reads it: level1 word -> level2 word -> its level3 words, in file order."""


class OvmerTablesError(Exception):
    """The OV-MER tables folder, or one of its files, is missing or malformed.

    Attributes:
        path: the folder or file at fault.
        fault: what is wrong with it.
    """

    def __init__(self, path: Path, fault: str) -> None:
        super().__init__(f"{path}: {fault}")
        self.path = path
        self.fault = fault


def resolve_tables_dir(explicit: str | Path | None) -> Path | None:
    """Find the tables folder: the one the user names (``--ovmer-tables DIR``), else ``$AFFECT_MLLM_OVMER_TABLES``.

    Args:
        explicit: the folder given on the command line, or None (an empty string counts as None).

    Returns:
        The folder as a Path (``~`` expanded, existence not checked), or None when neither is set.

    Example:
        >>> resolve_tables_dir("tables/ovmer") == Path("tables/ovmer")
        True
    """
    chosen = str(explicit) if explicit not in (None, "") else os.environ.get(ENV_VAR, "")
    return Path(chosen).expanduser() if chosen else None


def load_ovmer_tables(folder: str | Path, rebuild: bool = False) -> EmotionWheels:
    """Load the official OV-MER tables from ``folder`` into an `EmotionWheels` named "ovmer".

    The result is cached per resolved folder and route (it is read-only, so sharing it is safe); a changed
    folder is re-read only in a new process.

    Args:
        folder: the folder holding ``wheel_mapping.npz`` and/or the xlsx/csv files it is built from. The npz
            is unpickled, so the folder must be one you trust.
        rebuild: build from the xlsx/csv files even when the npz is present.

    Returns:
        The tables, every mapping read-only.

    Raises:
        OvmerTablesError: the folder or a needed file is missing, or a table is malformed; the message
            names the file and the fault.
    """
    resolved = Path(folder).expanduser().resolve()
    if not resolved.is_dir():
        raise OvmerTablesError(resolved, "the OV-MER tables folder does not exist")
    return _load_cached(resolved, rebuild or not (resolved / NPZ_NAME).is_file())


@lru_cache(maxsize=8)
def _load_cached(folder: Path, rebuild: bool) -> EmotionWheels:
    if rebuild:
        return _freeze(folder / FORMAT_NAME, *_build_from_sources(folder))
    return _freeze(folder / NPZ_NAME, *_read_npz(folder / NPZ_NAME))


def _read_npz(path: Path) -> tuple[dict, dict, dict]:
    """The three tables of ``wheel_mapping.npz``, checked for shape, unpickled by `_TablesUnpickler` only."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.removesuffix(".npy"): name for name in archive.namelist()}
            missing = [key for key in NPZ_KEYS if key not in names]
            if missing:
                raise OvmerTablesError(path, f"lacks the arrays {missing} (has {sorted(names)})")
            tables = []
            for key in NPZ_KEYS:
                with archive.open(names[key]) as member:
                    tables.append(_read_object_npy(path, key, member))
    except OvmerTablesError:
        raise
    except Exception as error:  # BadZipFile, OSError, ValueError, unpickling errors
        raise OvmerTablesError(path, f"cannot be read as an npz archive ({error})") from error
    format_mapping = _check_word_lists(path, "format_mapping", tables[0])
    raw_mapping = _check_word_lists(path, "raw_mapping", tables[1])
    return format_mapping, raw_mapping, _check_wheel_map(path, tables[2])


class _TablesUnpickler(pickle.Unpickler):
    """Unpickles what `np.savez` writes for a dict (a 0-d object array of dicts, lists and strings) and nothing else.

    `np.load(allow_pickle=True)` would run any callable a crafted file names; the reference's tables need only
    numpy's array reconstructor, `ndarray` and `dtype`, so every other global is refused before it is looked up.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"): np_multiarray._reconstruct,
               ("numpy._core.multiarray", "_reconstruct"): np_multiarray._reconstruct,
               ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: the tables hold only dicts of strings")
        return self.ALLOWED[(module, name)]


def _read_object_npy(path: Path, key: str, member: IO[bytes]) -> object:
    """The dict one `.npy` member holds (np.savez stores it as a 0-d object array): the header is checked before
    the pickled payload is read through `_TablesUnpickler`."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    if shape != () or dtype.kind != "O":
        raise OvmerTablesError(path, f"array {key!r} is {dtype}{shape}, not a pickled dict")
    return _TablesUnpickler(member).load().item()


def _check_word_lists(path: Path, key: str, table: object) -> dict[str, list[str]]:
    """A word -> list-of-words table, or an error naming the first bad entry."""
    if not isinstance(table, dict):
        raise OvmerTablesError(path, f"{key!r} is a {type(table).__name__}, not a dict")
    for word, targets in table.items():
        valid = isinstance(targets, list | tuple) and all(isinstance(target, str) for target in targets)
        if not isinstance(word, str) or not valid:
            raise OvmerTablesError(path, f"{key!r} entry {word!r}: {targets!r} is not word -> list of words")
    return table


def _check_wheel_map(path: Path, table: object) -> dict[str, dict[str, dict[str, str]]]:
    """A wheel -> level -> {word: ancestor} table holding both levels for every wheel."""
    if not isinstance(table, dict) or not table:
        raise OvmerTablesError(path, "'wheel_map_whole' is not a non-empty dict of wheels")
    for wheel, levels in table.items():
        if not isinstance(levels, dict) or set(levels) != set(LEVELS):
            raise OvmerTablesError(path, f"'wheel_map_whole'[{wheel!r}] does not map exactly the levels {LEVELS}")
        for level, ancestors in levels.items():
            valid = isinstance(ancestors, dict) and all(
                isinstance(word, str) and isinstance(ancestor, str) for word, ancestor in ancestors.items()
            )
            if not valid:
                raise OvmerTablesError(path, f"'wheel_map_whole'[{wheel!r}][{level!r}] is not word -> ancestor")
    return table


def _wheel_files(folder: Path) -> dict[str, Path]:
    """``wheelN.xlsx`` files keyed "wheelN", in numeric order."""
    found = {}
    for path in folder.iterdir():
        match = _WHEEL_FILE.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    if not found:
        raise OvmerTablesError(folder, f"has neither {NPZ_NAME} nor any wheelN.xlsx to rebuild it from")
    return {f"wheel{number}": found[number] for number in sorted(found)}


def _build_from_sources(folder: Path) -> tuple[dict, dict, dict]:
    """Rebuild the three npz tables from the wheel, synonym and format files."""
    wheel_files = _wheel_files(folder)
    for name in (SYNONYM_NAME, FORMAT_NAME):
        if not (folder / name).is_file():
            raise OvmerTablesError(folder / name, "is missing (needed to rebuild the tables)")
    trees = {wheel: _read_wheel_tree(path) for wheel, path in wheel_files.items()}
    wheel_map = {wheel: {level: _wheel_level_map(tree, level) for level in LEVELS} for wheel, tree in trees.items()}
    raw_mapping = _build_raw_mapping(folder / SYNONYM_NAME, _wheel_words(trees))
    return _build_format_mapping(folder / FORMAT_NAME), raw_mapping, wheel_map


def _read_columns(path: Path, columns: tuple[str, ...]) -> dict[str, list]:
    """The named columns of an xlsx or csv file as lists, blank cells as None (pandas reads as the reference)."""
    try:
        import pandas as pd
    except ImportError as error:
        raise ImportError("rebuilding the OV-MER tables needs pandas and openpyxl installed") from error
    try:
        # Default read_csv options on purpose: the reference's NA tokens ("", "NA", "null", ...) become blanks.
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_excel(path)
    except Exception as error:  # pandas raises many types (ParserError, BadZipFile, ValueError, ...)
        raise OvmerTablesError(path, f"cannot be read as a table ({error})") from error
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise OvmerTablesError(path, f"lacks the columns {missing} (has {list(frame.columns)})")
    return {column: [None if pd.isna(cell) else cell for cell in frame[column].tolist()] for column in columns}


def _text_cell(path: Path, column: str, row: int, cell: object) -> str:
    if not isinstance(cell, str):
        raise OvmerTablesError(path, f"column {column!r} row {row + 2} holds {cell!r}, not text")
    return cell


def _cell_words(path: Path, column: str, row: int, cell: object) -> list[str]:
    """A cell holding a label list, split as the reference's `string_to_list` does (blank -> [])."""
    return [] if cell is None else split_label_string(_text_cell(path, column, row, cell))


def _read_wheel_tree(path: Path) -> WheelTree:
    """One wheel file; each blank cell repeats the last filled cell of its column, as the reference reads it."""
    columns = _read_columns(path, WHEEL_COLUMNS)
    current = dict.fromkeys(WHEEL_COLUMNS, "")
    tree: WheelTree = {}
    for row, cells in enumerate(zip(*(columns[column] for column in WHEEL_COLUMNS), strict=True)):
        for column, cell in zip(WHEEL_COLUMNS, cells, strict=True):
            if cell is not None:
                current[column] = _text_cell(path, column, row, cell).lower().strip()
        level1, level2, level3 = (current[column] for column in WHEEL_COLUMNS)
        tree.setdefault(level1, {}).setdefault(level2, []).append(level3)
    return tree


def _wheel_level_map(tree: WheelTree, level: str) -> dict[str, str]:
    """Every word of a wheel -> its ancestor at ``level``; a later row overwrites an earlier one, as in the reference.

    At level2 a level1 word has no level2 ancestor, so the reference maps it to its alphabetically first
    level2 child.
    """
    ancestors = {}
    for level1, children in tree.items():
        ancestors[level1] = level1 if level == "level1" else sorted(children)[0]
        for level2, leaves in children.items():
            ancestor = level1 if level == "level1" else level2
            ancestors[level2] = ancestor
            ancestors.update(dict.fromkeys(leaves, ancestor))
    return ancestors


def _wheel_words(trees: Mapping[str, WheelTree]) -> set[str]:
    words = set()
    for tree in trees.values():
        for level1, children in tree.items():
            words.add(level1)
            for level2, leaves in children.items():
                words.update([level2, *leaves])
    return words


def _synonym_run(path: Path, columns: dict[str, list], run: str, wheel_words: set[str]) -> dict[str, list[str]]:
    """One generation run: each wheel word maps to itself and each of its synonyms maps to it."""
    mapping: dict[str, list[str]] = {}
    word_column, synonym_column = f"word_{run}", f"synonym_{run}"
    for row, (word_cell, synonym_cell) in enumerate(zip(columns[word_column], columns[synonym_column], strict=True)):
        wheel_word = _text_cell(path, word_column, row, word_cell).strip().lower()
        if wheel_word not in wheel_words:
            raise OvmerTablesError(path, f"column {word_column!r} row {row + 2}: {wheel_word!r} is in no wheel")
        mapping.setdefault(wheel_word, []).append(wheel_word)
        for synonym in _cell_words(path, synonym_column, row, synonym_cell):
            mapping.setdefault(synonym.strip().lower(), []).append(wheel_word)
    return mapping


def _build_raw_mapping(path: Path, wheel_words: set[str]) -> dict[str, list[str]]:
    """Union of the eight synonym runs (the reference's `func_merge_map`, applied run after run)."""
    columns = _read_columns(path, tuple(f"{kind}_{run}" for run in SYNONYM_RUNS for kind in ("word", "synonym")))
    merged: dict[str, list[str]] = {}
    for run in SYNONYM_RUNS:
        for word, wheel_words_of_run in _synonym_run(path, columns, run, wheel_words).items():
            # The reference de-duplicates only words seen in both maps, through a set (order: see module doc).
            merged[word] = sorted(set(merged[word] + wheel_words_of_run)) if word in merged else wheel_words_of_run
    return merged


def _build_format_mapping(path: Path) -> dict[str, list[str]]:
    """Each listed form -> the base words it is a form of, then each base -> itself, in file order."""
    columns = _read_columns(path, ("name", "format"))
    mapping: dict[str, list[str]] = {}
    for row, (name_cell, format_cell) in enumerate(zip(columns["name"], columns["format"], strict=True)):
        base = "" if name_cell is None else _text_cell(path, "name", row, name_cell)
        for form in _cell_words(path, "format", row, format_cell):
            mapping.setdefault(form, []).append(base)
        mapping.setdefault(base, []).append(base)
    return mapping


def _freeze(
    source: Path,
    format_mapping: Mapping[str, list[str]],
    raw_mapping: Mapping[str, list[str]],
    wheel_map: Mapping[str, Mapping[str, Mapping[str, str]]],
) -> EmotionWheels:
    """Read-only EmotionWheels; checks that every base form has synonyms so that mapping never fails."""
    for form, bases in format_mapping.items():
        for base in bases:
            if base not in raw_mapping:
                raise OvmerTablesError(source, f"form {form!r} has base {base!r}, which no synonym entry lists")
    return EmotionWheels(
        name="ovmer",
        format_mapping=MappingProxyType({form: tuple(bases) for form, bases in format_mapping.items()}),
        raw_mapping=MappingProxyType({base: tuple(sorted(raws)) for base, raws in raw_mapping.items()}),
        wheel_map=MappingProxyType(
            {
                wheel: MappingProxyType({level: MappingProxyType(dict(table)) for level, table in levels.items()})
                for wheel, levels in wheel_map.items()
            }
        ),
    )
