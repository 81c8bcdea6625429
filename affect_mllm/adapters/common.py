"""What every benchmark adapter does, written once: read a label table, find a clip, map a label, build a Sample.

Readers return media paths relative to the dataset folder they read (`root`, POSIX separators);
`affect_mllm.adapters.convert` rebases them onto the output manifest. A clip that is not on disk still gets its
expected path (the first candidate), so a partial download converts and the conversion summary counts the gap.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from affect_mllm.schema import Sample

Reader = Callable[[Path, str | None], list[Sample]]
LabelTable = Mapping[str, str | None]  # a dataset's label as written in its files -> one of CATEGORIES or None
WHITESPACE = r"\s+"


class AdapterError(ValueError):
    """Bad dataset input: names the file (and row, i.e. line number) and the fault."""

    def __init__(self, path: str | Path, fault: str, row: int | None = None) -> None:
        self.path, self.fault, self.row = str(path), fault, row
        where = f"{path}: row {row}" if row is not None else str(path)
        super().__init__(f"{where}: {fault}")


@dataclass(frozen=True)
class Where:
    """A place in an input file, for error messages: the file and a 1-based line number (None: the whole file)."""

    path: Path
    row: int | None = None

    def error(self, fault: str) -> AdapterError:
        """An AdapterError at this place."""
        return AdapterError(self.path, fault, self.row)


def require_file(path: Path, what: str) -> Path:
    """Return `path` if it is a file; else raise an AdapterError that says what the file holds."""
    if not path.is_file():
        raise AdapterError(path, f"{what} not found")
    return path


def read_table(path: Path, columns: Sequence[str], *, sep: str = ",", names: Sequence[str] | None = None,
               ) -> list[tuple[Where, dict[str, str]]]:
    """Read a delimited label file as strings and check that it has the required columns.

    Args:
        path: the file.
        columns: columns every row must have (checked against the header, or against `names`).
        sep: the field separator: ',' or WHITESPACE (runs of blanks, as in the split lists of MAFW and FERV39k).
        names: column names for a file without a header row.
    Returns:
        (place, row) per data row; empty cells are ''. Bytes that are not UTF-8 become U+FFFD (some copies of
        MELD's CSVs carry cp1252 punctuation), so a stray byte never stops a conversion. Row numbers are file
        line numbers (a header is line 1), exact unless a quoted cell spans lines.
    Raises:
        AdapterError: missing file, unparsable file or missing columns.
    """
    import pandas as pd

    require_file(path, "label file")
    try:
        with warnings.catch_warnings():  # pandas only warns when a row has more fields than the header
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, sep=sep, header=None if names else 0, names=list(names) if names else None,
                                index_col=False, dtype=str, keep_default_na=False, encoding="utf-8",
                                encoding_errors="replace", engine="python" if sep == WHITESPACE else "c")
    except pd.errors.ParserWarning:
        raise AdapterError(path, "a row has more fields than the header (or than the expected columns "
                                 f"{list(names or columns)})") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise AdapterError(path, f"not a readable {'whitespace' if sep == WHITESPACE else 'comma'}-separated table "
                                 f"({str(exc).strip()})") from None
    found = [str(c).strip() for c in frame.columns]
    frame.columns = found
    frame = frame.fillna("").astype(str)  # short rows: missing cells read as empty
    missing = [c for c in columns if c not in found]
    if missing:
        raise AdapterError(path, f"missing column(s) {missing}; the header has {found}")
    first_row = 1 if names else 2  # file lines are 1-based; a header occupies line 1
    return [(Where(path, first_row + i), {k: v.strip() for k, v in row.items()})
            for i, row in enumerate(frame.to_dict("records"))]


def read_json_lines(path: Path) -> list[tuple[Where, dict[str, Any]]]:
    """Read a JSONL file whose last line may lack a newline (as published files often do).

    Raises:
        AdapterError: missing file, a line that is not a JSON object.
    """
    require_file(path, "JSONL file")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = Where(path, number)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise where.error(f"not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise where.error(f"expected a JSON object, got {type(record).__name__}")
        records.append((where, record))
    return records


def cell(row: Mapping[str, str], column: str, where: Where) -> str:
    """A required, non-empty cell of a row."""
    value = row.get(column, "")
    if not value:
        raise where.error(f"empty {column!r}")
    return value


def first_existing(root: Path, candidates: Sequence[str]) -> str:
    """The first candidate path (relative to root) that exists; the first candidate if none does."""
    return next((c for c in candidates if (root / c).exists()), candidates[0])


def if_exists(root: Path, candidate: str) -> str | None:
    """`candidate` if it exists under root, else None (for optional inputs such as a separate audio track)."""
    return candidate if (root / candidate).exists() else None


def label_fields(label: str, table: LabelTable, where: Where) -> dict[str, Any]:
    """`emotion` (the table's category, possibly None) and `emotions` ([the dataset's own word, lower-case]).

    Raises:
        AdapterError: a label the table does not list.
    """
    if label not in table:
        raise where.error(f"unknown label {label!r}; this dataset's labels are {sorted(table)}")
    return {"emotion": table[label], "emotions": [label.lower()]}


def parse_word_list(text: str) -> list[str]:
    """Words of an open-vocabulary label cell: "['sad', 'tired']", "[sad, tired]" or "sad, tired"."""
    inner = text.strip().removeprefix("[").removesuffix("]")
    words = (w.strip().strip("'\"").strip() for w in re.split(r",", inner))
    return [w for w in words if w]


def scaled_score(text: str, half_range: float, where: Where, column: str) -> float:
    """A score on [-half_range, half_range] rescaled to [-1, 1].

    Raises:
        AdapterError: not a finite number, or outside the documented range.
    """
    try:
        value = float(text)
    except ValueError:
        raise where.error(f"{column} {text!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > half_range:
        raise where.error(f"{column} {value} is outside [-{half_range:g}, {half_range:g}]")
    return value / half_range


def build_sample(sample_id: str, where: Where, source: dict[str, Any], **fields: Any) -> Sample:
    """A Sample from its fields and its provenance dict `source` (None values dropped from both).

    Raises:
        AdapterError: the fields do not make a valid Sample (e.g. no input at all).
    """
    record = {k: v for k, v in fields.items() if v is not None}
    provenance = {k: v for k, v in source.items() if v is not None}
    try:
        return Sample(id=sample_id, source=provenance, **record)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "record"
        raise where.error(f"sample {sample_id!r}: {field}: {first['msg']}") from None


def pick_split(split: str | None, known: Iterable[str], default: Sequence[str], dataset: str) -> list[str]:
    """The splits to read: `default` for None, else the one named split.

    Raises:
        ValueError: a split the dataset does not have.
    """
    known = list(known)
    if split is None:
        return list(default)
    if split not in known:
        raise ValueError(f"{dataset} has no split {split!r}; choose from {known}")
    return [split]


def check_unique(samples: Sequence[Sample], where: Where) -> list[Sample]:
    """Return the samples; raise if two share an id (a manifest needs unique ids)."""
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            raise where.error(f"duplicate sample id {sample.id!r}")
        seen.add(sample.id)
    return list(samples)
