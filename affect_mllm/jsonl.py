"""Durable files: atomic writes and append-only JSONL keyed by id, so finished work is never lost.

This is the one place that calls `os.replace`. Append-only logs survive kill -9: each record is one line
written with a single `write` and flushed+fsynced; a torn last line (the process died mid-write) is ignored
on read (with a warning) and cut off before the next append, so a resumed run neither loses nor duplicates
records. Only the logs this project appends to itself may end torn: in any other file (a user's manifest,
predictions, gold), a last line without a newline is a record like the others, and a malformed line is an
error naming the file and the line.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class JsonlError(ValueError):
    """A JSONL line that is not a JSON object: names the file, the line and the fault."""

    def __init__(self, path: str | Path, line: int, fault: str) -> None:
        self.path, self.line, self.fault = str(path), line, fault
        super().__init__(f"{path}:{line}: {fault}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Text twin of `atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (indented, keys in insertion order)."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """Write a whole JSONL file atomically."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read_jsonl(path: str | Path, *, appended_log: bool = False) -> Iterator[dict]:
    """Yield the records of a JSONL file, one per non-blank line.

    Args:
        path: the file.
        appended_log: True only for a log this project appends to itself (`AppendLog`): a last line without a
            newline is then the torn write of a killed process, skipped with a warning. Otherwise (any file a
            user gives) a last line without a newline is read like the others.

    Raises:
        JsonlError: a line that is not valid UTF-8 JSON or not an object, naming the file and line number.
    """
    path = Path(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if appended_log and not raw.endswith(b"\n"):
                logger.warning("%s:%d: torn last line (a write cut short by a kill) ignored", path, number)
                return
            if not raw.strip():
                continue
            yield _record(path, number, raw)


def _record(path: Path, number: int, raw: bytes) -> dict:
    """One line's JSON object, or JsonlError naming the line and what is wrong with it."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise JsonlError(path, number, f"not valid UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise JsonlError(path, number, f"not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise JsonlError(path, number, "JSON nested too deeply") from None
    if not isinstance(record, dict):
        raise JsonlError(path, number, f"expected a JSON object, got {type(record).__name__}")
    return record


class AppendLog:
    """Append-only JSONL keyed by a field, for resumable batch jobs.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.jsonl"
        >>> log = AppendLog(path)
        >>> log.append({"id": "a", "x": 1})
        >>> AppendLog(path).done_keys()
        {'a'}
    """

    def __init__(self, path: str | Path, key: str = "id") -> None:
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_torn_tail()

    def _truncate_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(end)

    def records(self) -> list[dict]:
        """All finished records (first one wins for a repeated key)."""
        if not self.path.exists():
            return []
        seen: dict[Any, dict] = {}
        for record in read_jsonl(self.path, appended_log=True):
            seen.setdefault(record.get(self.key), record)
        return list(seen.values())

    def done_keys(self) -> set:
        """Keys already recorded."""
        return {r.get(self.key) for r in self.records()}

    def append(self, record: dict) -> None:
        """Append one record durably (one write, flushed and fsynced)."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self.path.open("ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
