"""Timeline runs as a user starts them (the `affect-mllm timeline` command): kill -9 and resume, memory bounded by
the window on a 20-minute clip, and windows answered by a running server.

Run: pytest tests/test_timeline_stream.py -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_helpers import affect_mllm_command

pytest_plugins = ["timeline_fixtures", "server_fixtures"]

# one torch thread in the CLI processes: on a shared 2-core machine a second OpenMP thread spin-waits (set by the
# test for its subprocesses, never by library code)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def timeline_command(video: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return [*affect_mllm_command(), "timeline", str(video), "--out", str(out), "--model", str(model),
            "--backend", "hf", "--tasks", "ov_emotion", *extra]


# Runs a command and prints its peak RSS (kB). The kernel's ru_maxrss of a child spawned straight from pytest
# includes pytest's own high-water mark (recorded when the forked child execs: 3.5 GB in CI, the same for every
# clip), so the command is started from this small wrapper, whose children inherit only the wrapper's few MB.
PEAK_RSS_WRAPPER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
                    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def peak_rss_mb(command: list[str]) -> float:
    """Run a command to its end; its own peak resident memory (MB), measured through `PEAK_RSS_WRAPPER`."""
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS_WRAPPER, *command], env=ENV, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.split()[-1]) / 1024


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.integration
def test_kill_9_keeps_finished_windows_and_duplicates_none(tiny_omni_dir, tmp_path):
    from timeline_fixtures import write_stream_clip

    clip = write_stream_clip(tmp_path / "half.mkv", 30.0, fps=4, container="matroska")
    out = tmp_path / "out"
    command = timeline_command(clip, out, tiny_omni_dir, "--max-new-tokens", "12", "--batch-size", "2")
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(log_lines(out / "timeline.jsonl")) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = {}
    for line in log_lines(out / "timeline.jsonl"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line torn by the kill: the rerun cuts it off
            continue
        before[record["window"]] = record
    assert 3 <= len(before) < 14
    finished = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert f"{len(before)} from the log" in finished.stdout
    records = [json.loads(line) for line in log_lines(out / "timeline.jsonl")]
    assert [r["window"] for r in records] == list(range(14))  # 30 s, window 4, stride 2: each window once
    assert all(records[index] == record for index, record in before.items())  # kept, not redone


@pytest.mark.integration
def test_peak_memory_of_a_20_minute_clip_is_that_of_a_1_minute_clip(tiny_omni_dir, tmp_path):
    from timeline_fixtures import write_stream_clip

    # 128 px frames: the 20-minute clip decoded whole (~640 MB) outweighs a fifth of the CLI's own peak (torch and
    # the model: about 0.9 GB measured), so a pipeline that held it would break the bound below
    fps, size, seconds = 10, 128, {"1min": 60.0, "20min": 1200.0}
    clips = {name: write_stream_clip(tmp_path / f"{name}.mkv", s, fps=fps, size=size, gop=20, container="matroska")
             for name, s in seconds.items()}
    peaks = {name: peak_rss_mb(timeline_command(clip, tmp_path / name, tiny_omni_dir, "--max-new-tokens", "2",
                                                "--stride", "20", "--batch-size", "8"))
             for name, clip in clips.items()}
    windows = len(log_lines(tmp_path / "20min" / "timeline.jsonl"))
    assert windows == 61  # the whole 20 minutes was walked: a window every 20 s, and the last 4 s
    # the control: the 20-minute clip decoded whole (frames at its fps, 16 kHz float audio) would add this much, so
    # a pipeline that held it could not stay within 1.2x
    decoded_mb = (seconds["20min"] * fps * size * size * 3 + seconds["20min"] * 16000 * 4) / 2**20
    assert decoded_mb > 0.2 * peaks["1min"], (decoded_mb, peaks)
    assert peaks["20min"] <= 1.2 * peaks["1min"], peaks


@pytest.mark.integration
def test_server_answers_windows_concurrently(served, timeline_clip, tmp_path):
    from inference.engine import SamplingSettings
    from inference.timeline import TimelineSettings, run_timeline
    from inference.timeline_answer import ServerAnswerer

    answerer = ServerAnswerer(served.client(), ("ov_emotion", "valence_arousal"),
                              SamplingSettings(max_new_tokens=160), model=served.adapter, concurrency=3, guided=True)
    run = run_timeline(timeline_clip, tmp_path / "out", answerer, settings=TimelineSettings())
    records = [json.loads(line) for line in log_lines(tmp_path / "out" / "timeline.jsonl")]
    assert (run.windows, run.broken) == (6, 0) and [r["window"] for r in records] == list(range(6))
    assert all(set(r["answers"]) == {"ov_emotion", "valence_arousal"} for r in records)
    # guided by each task's grammar, every answer parses: emotion words, and valence/arousal numbers
    assert all(r["parsed"] and r["emotions"] and r["valence"] is not None for r in records)
