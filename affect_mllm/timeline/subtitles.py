"""SRT subtitles: read the cues, and give each window the words spoken in it (MER corpora ship subtitles).

A cue belongs to a window when their time spans overlap; a window gets the text of its cues in time order.
Formatting tags (`<i>`, `{\\an8}`) are dropped. Bad files raise `SubtitleError` naming the file, line and fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_TIME = r"(\d{1,2}):(\d{2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAGS = re.compile(r"<[^>]*>|\{[^}]*\}")


class SubtitleError(ValueError):
    """A subtitle file that cannot be read: names the file, the line and the fault."""

    def __init__(self, path: str | Path, line: int, fault: str) -> None:
        self.path, self.line, self.fault = str(path), line, fault
        super().__init__(f"{path}:{line}: {fault}")


@dataclass(frozen=True)
class Cue:
    """One subtitle: its text, shown over [start_s, end_s)."""

    start_s: float
    end_s: float
    text: str


def _seconds(hours: str, minutes: str, seconds: str, millis: str) -> float:
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(millis.ljust(3, "0")) / 1000


def parse_srt(text: str, path: str | Path = "<srt>") -> list[Cue]:
    """The cues of an SRT document, sorted by start time.

    Example:
        >>> srt = "1\\n00:00:01,000 --> 00:00:02,500\\n<i>Hello</i> there\\n\\n2\\n00:00:03,000 --> 00:00:04,000\\nBye"
        >>> parse_srt(srt)
        [Cue(start_s=1.0, end_s=2.5, text='Hello there'), Cue(start_s=3.0, end_s=4.0, text='Bye')]
    """
    cues = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    number = 0
    while number < len(lines):
        match = _TIMING.match(lines[number])
        if match is None:
            number += 1
            continue
        start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        if end < start:
            raise SubtitleError(path, number + 1, f"cue ends ({end:.3f} s) before it starts ({start:.3f} s)")
        body = []
        number += 1
        while number < len(lines) and lines[number].strip():
            body.append(_TAGS.sub("", lines[number]).strip())
            number += 1
        cues.append(Cue(start, end, " ".join(part for part in body if part)))
    if not cues and text.strip():
        raise SubtitleError(path, 1, "no 'HH:MM:SS,mmm --> HH:MM:SS,mmm' timing line: not an SRT file")
    return sorted(cues, key=lambda cue: cue.start_s)


def read_srt(path: str | Path) -> list[Cue]:
    """Read an SRT file (UTF-8, or Latin-1 when it is not UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise SubtitleError(path, 0, "file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_srt(text, path)


def words_in(cues: list[Cue], start_s: float, end_s: float) -> str | None:
    """The text of the cues overlapping [start_s, end_s), in time order; None when nothing is said.

    Example:
        >>> cues = [Cue(1.0, 2.5, "Hello there"), Cue(3.0, 4.0, "Bye")]
        >>> words_in(cues, 2.0, 6.0), words_in(cues, 2.5, 3.0)
        ('Hello there Bye', None)
    """
    texts = [cue.text for cue in cues if cue.start_s < end_s and cue.end_s > start_s and cue.text]
    return " ".join(texts) or None
