"""Prediction and gold files in the three formats `affect-mllm evaluate` takes, read into one record type.

Formats (chosen by the file suffix):
- project JSONL (``.jsonl``): one record per line with ``id`` and any of the answer fields ``emotion``,
  ``emotions`` (a list, or a label string such as ``"[happy, relieved]"``), ``aus``, ``valence``, ``arousal``,
  ``rationale`` and ``raw`` (the whole completion; fields it holds fill the ones the record leaves out). A
  project manifest (Sample records) is such a file too: its media fields are ignored.
- the official CSV (``.csv``): ``name`` plus ``openset`` (label strings) and/or ``reason`` (free text), read with
  pandas' default options as the reference reads them.
- ``*-openset.npz`` (``.npz``): string arrays ``filenames`` and ``fileitems`` (label strings), as the official files
  hold them. Nothing is unpickled (unpickling a file can run code): an archive of Python objects (object arrays, a
  pickled ``name2reason`` dict) is refused with a message saying how to convert it.

Valence, arousal and AU intensities are checked against the ranges a manifest allows (`schema.check_label_value`).
`aus` may be AU numbers (``[6, 12]``), AU names (``["AU6", "AU12C"]``, a letter giving the intensity) or
``{"au", "intensity"}`` records on the 0-5 FACS scale. Records join on ``id`` (``name`` in the official files).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from affect_mllm.answer import ParsedAnswer, cited_aus, parse_answer
from affect_mllm.jsonl import JsonlError, atomic_write_bytes, atomic_write_text, read_jsonl, write_jsonl
from affect_mllm.knowledge import intensity_from_letter
from affect_mllm.schema import AU_PRESENCE_THRESHOLD, check_label_value, present_aus
from affect_mllm.wheels import split_label_string

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".npz": "npz"}
ANSWER_FIELDS = ("emotion", "emotions", "aus", "valence", "arousal", "rationale", "raw")


class PredictionFileError(ValueError):
    """A prediction or gold file that cannot be read or written: names the file (and line) and the fault."""

    def __init__(self, path: str | Path, fault: str, line: int | None = None) -> None:
        self.path, self.fault, self.line = str(path), fault, line
        super().__init__(f"{path}:{line}: {fault}" if line is not None else f"{path}: {fault}")


@dataclass(frozen=True)
class LabelRecord:
    """One sample's labels or predictions; None means the field is absent."""

    id: str
    emotion: str | None = None
    emotions: tuple[str, ...] | None = None
    aus: Mapping[int, float | None] | None = None  # AU -> intensity on 0-5, None when only presence is given
    valence: float | None = None
    arousal: float | None = None
    rationale: str | None = None
    raw: str | None = None

    @property
    def emotion_words(self) -> tuple[str, ...]:
        """The categorical label then the open set, without repeats."""
        words = ([self.emotion] if self.emotion else []) + list(self.emotions or ())
        return tuple(dict.fromkeys(words))

    def au_set(self, threshold: float = AU_PRESENCE_THRESHOLD) -> set[int] | None:
        """AUs present: those without intensity, and those at or above the threshold (schema.present_aus)."""
        if self.aus is None:
            return None
        rated = [{"au": au, "intensity": x} for au, x in self.aus.items() if x is not None]
        return {au for au, x in self.aus.items() if x is None} | present_aus(rated, threshold)

    @property
    def rationale_aus(self) -> tuple[int, ...]:
        """AUs cited in the rationale, first mention first."""
        return cited_aus(self.rationale or "")[0]

    @property
    def rationale_au_letters(self) -> dict[int, str]:
        """AU -> FACS letter cited in the rationale (`AU12C`)."""
        return cited_aus(self.rationale or "")[1]

    def with_emotions(self, emotions: Sequence[str]) -> LabelRecord:
        """A copy with the open set replaced (e.g. by extracted labels)."""
        return replace(self, emotions=tuple(emotions))


def record_from_answer(record_id: str, parsed: ParsedAnswer) -> LabelRecord:
    """The record of a parsed completion (what `affect-mllm predict` writes)."""
    fields = parsed.fields
    return LabelRecord(id=record_id, emotion=fields.emotion, emotions=fields.emotions,
                       aus=None if fields.aus is None else dict.fromkeys(fields.aus),
                       valence=fields.valence, arousal=fields.arousal, rationale=fields.rationale,
                       raw=parsed.raw or None)


def file_format(path: str | Path) -> str:
    """The format a path's suffix names: "jsonl", "csv" or "npz"; PredictionFileError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise PredictionFileError(path, f"unknown format {suffix or '(no suffix)'!r}; use one of {sorted(FORMATS)}")
    return FORMATS[suffix]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (for provenance)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_records(path: str | Path) -> list[LabelRecord]:
    """Read a prediction or gold file in any of the three formats.

    Args:
        path: a ``.jsonl``, ``.csv`` or ``.npz`` file.

    Returns:
        The records, in file order.

    Raises:
        PredictionFileError: missing file, unknown format, bad record or duplicate id (naming file and line).
    """
    path = Path(path)
    kind = file_format(path)
    if not path.is_file():
        raise PredictionFileError(path, "file not found")
    records = {"jsonl": _read_jsonl, "csv": _read_csv, "npz": _read_npz}[kind](path)
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise PredictionFileError(path, f"duplicate id {record.id!r}")
        seen.add(record.id)
    return records


def _read_jsonl(path: Path) -> list[LabelRecord]:
    try:
        return [_record_from_json(obj, path, line) for line, obj in enumerate(read_jsonl(path), start=1)]
    except JsonlError as exc:
        raise PredictionFileError(path, exc.fault, exc.line) from None


def _record_from_json(obj: dict, path: Path, line: int) -> LabelRecord:
    """One JSONL record; fields the `raw` completion holds fill the ones the record leaves out."""
    record_id = obj.get("id", obj.get("name"))
    if not isinstance(record_id, str | int) or isinstance(record_id, bool) or str(record_id) == "":
        raise PredictionFileError(path, "record has no 'id' (a non-empty string)", line)

    def fault(message: str) -> PredictionFileError:
        return PredictionFileError(path, f"record {record_id!r}: {message}", line)

    values = {key: obj.get(key) for key in ANSWER_FIELDS}
    for key in ("emotion", "rationale", "raw"):
        if values[key] is not None and not isinstance(values[key], str):
            raise fault(f"{key} must be a string, not {type(values[key]).__name__}")
    record = LabelRecord(id=str(record_id), emotion=values["emotion"], emotions=_emotions(values["emotions"], fault),
                         aus=_aus(values["aus"], fault), valence=_label(values["valence"], "valence", fault),
                         arousal=_label(values["arousal"], "arousal", fault), rationale=values["rationale"],
                         raw=values["raw"])
    if record.raw is None:
        return record
    parsed = record_from_answer(record.id, parse_answer(record.raw))
    return replace(record, **{key: getattr(parsed, key) for key in ANSWER_FIELDS if getattr(record, key) is None})


def _emotions(value: Any, fault) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(split_label_string(value))
    if isinstance(value, list) and all(isinstance(word, str) for word in value):
        return tuple(value)
    raise fault("emotions must be a list of strings or a label string such as '[happy, relieved]'")


def _aus(value: Any, fault) -> dict[int, float | None] | None:
    """AU numbers, AU names (`AU12C`) or {"au", "intensity"} records -> AU -> intensity (None if unstated)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise fault("aus must be a list of AU numbers, AU names or {'au', 'intensity'} records")
    out: dict[int, float | None] = {}
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and item > 0:
            out.setdefault(item, None)
        elif isinstance(item, str) and cited_aus(item)[0]:
            numbers, letters = cited_aus(item)
            for au in numbers:
                out.setdefault(au, intensity_from_letter(letters[au]) if au in letters else None)
        elif isinstance(item, dict) and isinstance(item.get("au"), int) and item["au"] > 0:
            out[item["au"]] = _label(item.get("intensity"), "intensity", fault, f"AU{item['au']} ")
        else:
            raise fault(f"cannot read AU {item!r} (use 6, 'AU6', 'AU12C' or {{'au': 6, 'intensity': 2.5}})")
    return out


def _label(value: Any, name: str, fault, prefix: str = "") -> float | None:
    """A numeric label checked as a manifest checks it (one validator: `schema.check_label_value`)."""
    try:
        return check_label_value(name, value)
    except ValueError as exc:
        raise fault(prefix + str(exc)) from None


def _read_csv(path: Path) -> list[LabelRecord]:
    """The official `name,openset` (and/or `reason`) CSV, read as the reference reads it (pandas defaults)."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype={"name": str})
    except Exception as exc:  # pandas raises ParserError, UnicodeDecodeError, EmptyDataError, ...
        raise PredictionFileError(path, f"cannot be read as CSV ({exc})") from None
    if "name" not in frame.columns:
        raise PredictionFileError(path, f"has no 'name' column (columns: {list(frame.columns)})")
    if not {"openset", "reason"} & set(frame.columns):
        raise PredictionFileError(path, "has neither an 'openset' nor a 'reason' column")
    records = []
    for row, cells in enumerate(frame.to_dict("records"), start=2):
        name = cells["name"]
        if not isinstance(name, str) or not name.strip():
            raise PredictionFileError(path, "empty name", row)
        openset = cells.get("openset")
        reason = cells.get("reason")
        records.append(LabelRecord(
            id=name.strip(),
            emotions=None if "openset" not in cells else tuple(split_label_string(_text_or_none(openset))),
            rationale=_text_or_none(reason)))
    return records


def _text_or_none(cell: Any) -> str | None:
    """A CSV cell as text; blank and NA cells (pandas NaN) are None."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return None
    return str(cell)


NPZ_PICKLED = ("holds pickled Python objects, which evaluate does not load (unpickling a file can run code); "
               "save string arrays instead: np.savez(path, filenames=np.array(names, dtype=str), "
               "fileitems=np.array(label_strings, dtype=str)), or write a CSV (name,openset or name,reason)")


def _read_npz(path: Path) -> list[LabelRecord]:
    """An `*-openset.npz` of string arrays, read without unpickling anything."""
    import zipfile

    if not zipfile.is_zipfile(path):  # np.load would take any other file for a pickle
        raise PredictionFileError(path, "cannot be read as an npz archive (not a zip of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # numpy's refusal to load an object array
            raise PredictionFileError(path, NPZ_PICKLED) from None
        raise PredictionFileError(path, f"cannot be read as an npz archive ({exc})") from None
    except Exception as exc:  # np.load raises OSError, BadZipFile, EOFError ...
        raise PredictionFileError(path, f"cannot be read as an npz archive ({exc})") from None
    if "filenames" in arrays and "fileitems" in arrays:
        names, items = arrays["filenames"], arrays["fileitems"]
        if names.dtype.kind not in "US" or items.dtype.kind not in "US":
            raise PredictionFileError(path, f"filenames and fileitems must be string arrays, not {names.dtype} "
                                            f"and {items.dtype}")
        if names.shape != items.shape or names.ndim != 1:
            raise PredictionFileError(path, f"{names.size} filenames but {items.size} fileitems")
        names, items = (np.char.decode(a, "utf-8") if a.dtype.kind == "S" else a for a in (names, items))
        return [LabelRecord(id=str(name), emotions=tuple(split_label_string(_text_or_none(item))))
                for name, item in zip(names.tolist(), items.tolist(), strict=True)]
    raise PredictionFileError(path, f"has no 'filenames'+'fileitems' string arrays (has {sorted(arrays)})")


def label_string(words: Iterable[str]) -> str:
    """The official label-string form of a word list: ``[happy, relieved]``."""
    return "[" + ", ".join(words) + "]"


def record_to_json(record: LabelRecord) -> dict:
    """The project JSONL form of a record (absent fields left out; AUs as numbers or {au, intensity} records)."""
    out: dict[str, Any] = {"id": record.id}
    for key in ANSWER_FIELDS:
        value = getattr(record, key)
        if value is None:
            continue
        if key == "emotions":
            value = list(value)
        elif key == "aus":
            value = [au if x is None else {"au": au, "intensity": x} for au, x in value.items()]
        out[key] = value
    return out


def write_records(path: str | Path, records: Sequence[LabelRecord]) -> Path:
    """Write records atomically in the format the suffix names (the official formats keep the open set only).

    Args:
        path: destination ``.jsonl``, ``.csv`` or ``.npz``.
        records: the records.

    Returns:
        The path.
    """
    path = Path(path)
    kind = file_format(path)
    if kind == "jsonl":
        write_jsonl(path, (record_to_json(r) for r in records))
    elif kind == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["name", "openset"])
        writer.writerows([r.id, label_string(r.emotion_words)] for r in records)
        atomic_write_text(path, buffer.getvalue())
    else:
        buffer = io.BytesIO()
        np.savez(buffer, filenames=np.array([r.id for r in records], dtype=str),
                 fileitems=np.array([label_string(r.emotion_words) for r in records], dtype=str))
        atomic_write_bytes(path, buffer.getvalue())
    return path


@dataclass(frozen=True)
class JoinedRecords:
    """Gold records with their predictions (None where a gold id has none) and the ids that did not join."""

    gold: list[LabelRecord]
    pred: list[LabelRecord | None]
    missing_ids: list[str]  # gold ids without a prediction
    extra_ids: list[str]  # prediction ids not in the gold


def join_records(gold: Sequence[LabelRecord], pred: Sequence[LabelRecord]) -> JoinedRecords:
    """Align predictions to the gold by id, in gold order.

    Example:
        >>> joined = join_records([LabelRecord("a"), LabelRecord("b")], [LabelRecord("b"), LabelRecord("z")])
        >>> [p.id if p else None for p in joined.pred], joined.missing_ids, joined.extra_ids
        ([None, 'b'], ['a'], ['z'])
    """
    by_id = {record.id: record for record in pred}
    gold_ids = {record.id for record in gold}
    aligned = [by_id.get(record.id) for record in gold]
    return JoinedRecords(gold=list(gold), pred=aligned, missing_ids=[g.id for g, p in zip(gold, aligned,
                         strict=True) if p is None], extra_ids=[r.id for r in pred if r.id not in gold_ids])
