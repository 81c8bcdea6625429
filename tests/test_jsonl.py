"""Durable files: atomic writes and the append-only log that resumable jobs use.

Run: .venv/bin/python -m pytest tests/test_jsonl.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from affect_mllm.jsonl import AppendLog, atomic_write_json, read_jsonl, write_jsonl


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    atomic_write_json(tmp_path / "a.json", {"x": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_torn_tail_is_ignored_then_truncated(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "x": ')  # killed mid-write
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
    log = AppendLog(path)
    log.append({"id": "c", "x": 1})
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b", "c"]
    assert log.done_keys() == {"a", "b", "c"}


def test_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2: expected a JSON object"):
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
