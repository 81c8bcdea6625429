"""The CSV tables shipped in ``affect_mllm/data/``: one reader that checks the header and names file and line.

The knowledge base (`knowledge`, `voice_cues`) and the lexicon (`lexicon`) read their tables through it.
"""

from __future__ import annotations

import csv
from collections.abc import Collection
from importlib import resources


class DataTableError(ValueError):
    """A data table shipped with the package is malformed; the message names the file and the line."""


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


def parse_au_set(text: str, where: str) -> frozenset[int]:
    """Parse a FACS-style AU set such as '6+12' ('' is the empty set)."""
    if not text:
        return frozenset()
    try:
        return frozenset(int(part) for part in text.split("+"))
    except ValueError:
        raise DataTableError(f"{where}: {text!r} is not an AU set such as '6+12'") from None
