"""timeline.jsonl records: one per window, merged from the answers to each task asked about it.

A record holds the window (`window`, `start_s`, `end_s`), what was asked and answered, and its status:

- `status: "ok"`: every task was answered; `parsed` says whether every answer followed the grammar, `parse` gives
  it per task. `emotions` (the open-vocabulary words, most salient first), `emotion` (the leading word's category
  in the project lexicon, or the word itself), `aus` (AUs the answers give or cite), `valence`, `arousal` and
  `rationale` come from the first answer that has them.
- `status: "broken"`: the window could not be decoded (a corrupt stretch of the file); `error` says why.
- `status: "error"`: the server refused the window (a 4xx answer); `error` says why.

Broken and refused windows count as finished: a resumed run does not ask again.

Fields a window did not get are null, so every record has the same keys (`RECORD_FIELDS`) and the CSV columns
are fixed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from affect_mllm.answer import ParsedAnswer, parse_answer
from affect_mllm.metrics.categorical import first_category
from affect_mllm.timeline.windows import Window

RECORD_FIELDS = ("window", "start_s", "end_s", "status", "parsed", "emotion", "emotions", "aus", "valence",
                 "arousal", "rationale", "subtitle", "parse", "answers", "error")
CSV_FIELDS = ("window", "start_s", "end_s", "status", "parsed", "emotion", "emotions", "aus", "valence", "arousal",
              "rationale", "subtitle", "error")


def _first(values: Iterable):
    return next((v for v in values if v is not None), None)


def answer_record(window: Window, answers: Mapping[str, str], subtitle: str | None = None) -> dict:
    """The record of a window whose tasks were answered (task -> completion text).

    Example:
        >>> ov = "<think>Smile (AU12).</think><answer>emotions: joyful</answer>"
        >>> va = "<think>Warm.</think><answer>valence: 0.60; arousal: 0.30</answer>"
        >>> r = answer_record(Window(0, 0.0, 4.0), {"ov_emotion": ov, "valence_arousal": va})
        >>> r["emotion"], r["emotions"], r["aus"], r["valence"], r["parsed"]
        ('happy', ['joyful'], [12], 0.6, True)
    """
    parsed: dict[str, ParsedAnswer] = {task: parse_answer(text) for task, text in answers.items()}
    words = list(dict.fromkeys(w for p in parsed.values() for w in p.emotion_words))
    aus = sorted({au for p in parsed.values() for au in (*p.rationale_aus, *(p.fields.aus or ()))})
    return _record(window, "ok", subtitle, {
        "parsed": all(p.well_formed.all for p in parsed.values()),
        "emotion": first_category(words),
        "emotions": words,
        "aus": aus,
        "valence": _first(p.fields.valence for p in parsed.values()),
        "arousal": _first(p.fields.arousal for p in parsed.values()),
        "rationale": _first(p.fields.rationale for p in parsed.values()),
        "parse": {task: p.well_formed.all for task, p in parsed.items()},
        "answers": dict(answers),
    })


def broken_record(window: Window, error: BaseException | str, subtitle: str | None = None) -> dict:
    """The record of a window that could not be decoded (recorded, then skipped)."""
    return _record(window, "broken", subtitle, {"parsed": False, "error": _message(error)})


def error_record(window: Window, error: BaseException | str, subtitle: str | None = None) -> dict:
    """The record of a window the server refused (recorded, then skipped)."""
    return _record(window, "error", subtitle, {"parsed": False, "error": _message(error)})


def _message(error: BaseException | str) -> str:
    return error if isinstance(error, str) else f"{type(error).__name__}: {error}"


def _record(window: Window, status: str, subtitle: str | None, values: dict) -> dict:
    record = dict.fromkeys(RECORD_FIELDS)
    record.update(window=window.index, start_s=window.start_s, end_s=window.end_s, status=status, subtitle=subtitle)
    record.update(values)
    return record


def csv_text(records: Iterable[Mapping]) -> str:
    """timeline.csv: one row per window, lists joined with '; ' (AUs as AU6; AU12)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = {key: record.get(key) for key in CSV_FIELDS}
        row["emotions"] = "; ".join(record.get("emotions") or [])
        row["aus"] = "; ".join(f"AU{n}" for n in record.get("aus") or [])
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()
