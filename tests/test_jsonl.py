"""Durable files: atomic writes and the append-only log that resumable jobs use.

Run: .venv/bin/python -m pytest tests/test_jsonl.py -q
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from affect_mllm.jsonl import AppendLog, JsonlError, atomic_write_json, read_jsonl, write_jsonl


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    atomic_write_json(tmp_path / "a.json", {"x": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_torn_tail_of_an_appended_log_is_ignored_said_then_truncated(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="affect_mllm.jsonl")  # whatever another test left the root level at
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "x": ')  # killed mid-write
    assert [r["id"] for r in read_jsonl(path, appended_log=True)] == ["a", "b"]
    assert "log.jsonl:3: torn last line" in caplog.text
    log = AppendLog(path)
    log.append({"id": "c", "x": 1})
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b", "c"]
    assert log.done_keys() == {"a", "b", "c"}


def test_a_users_file_keeps_its_last_line_and_refuses_a_cut_one(tmp_path):
    """A file written by hand or by another tool often lacks the final newline: its last record counts. A cut
    last line there is an error, not a silent drop."""
    path = tmp_path / "gold.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}')
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
    path.write_bytes(b'{"id": "a"}\n{"id": "b"')
    with pytest.raises(JsonlError, match=r"gold.jsonl:2: not valid JSON"):
        list(read_jsonl(path))


@pytest.mark.parametrize(("raw", "fault"), [
    (b'{"id": "\xff"}\n', "not valid UTF-8"),
    (b"[" * 100_000 + b"\n", "JSON nested too deeply"),
    (b"[1, 2]\n", "expected a JSON object, got list"),
])
def test_malformed_lines_name_file_and_line(tmp_path, raw, fault):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n\n' + raw)
    with pytest.raises(JsonlError, match=rf"x.jsonl:3: ({fault})"):
        list(read_jsonl(path))


def test_repeated_keys_keep_the_first(tmp_path):
    log = AppendLog(tmp_path / "l.jsonl")
    log.append({"id": "a", "v": 1})
    log.append({"id": "a", "v": 2})
    assert log.records() == [{"id": "a", "v": 1}]


def test_kill_minus_nine_keeps_finished_records(tmp_path):
    path = tmp_path / "log.jsonl"
    script = textwrap.dedent(f"""
        import os, signal
        from affect_mllm.jsonl import AppendLog
        log = AppendLog({str(path)!r})
        for i in range(5):
            log.append({{"id": i}})
        with open({str(path)!r}, "ab") as handle:
            handle.write(b'{{"id": 5, "half')
            handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -9
    log = AppendLog(path)
    assert sorted(log.done_keys()) == [0, 1, 2, 3, 4]
    write_jsonl(tmp_path / "w.jsonl", log.records())
    assert len(list(read_jsonl(tmp_path / "w.jsonl"))) == 5
