"""`affect-mllm predict`: folders as manifests, bad clips recorded, kill -9 and resume with exactly one prediction
per clip, and the three output formats read back by `affect-mllm evaluate`.

Run: .venv/bin/python -m pytest tests/test_predict.py -q   (the resume test uses the shared vLLM server)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from process_helpers import affect_mllm_command

from affect_mllm.jsonl import read_jsonl
from affect_mllm.media import MediaError
from affect_mllm.schema import Sample, read_manifest, write_manifest
from inference.engine import SamplingSettings
from inference.predict import (
    EnginePredictor,
    is_clip_error,
    load_inputs,
    progress_log_path,
    read_log,
    run_predictions,
    write_output,
)

pytest_plugins = ["server_fixtures"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_a_folder_of_clips_becomes_samples(tmp_path, clips):
    (tmp_path / "day1").mkdir()
    shutil.copy(clips["av_16k"], tmp_path / "day1" / "talk.mp4")
    shutil.copy(clips["silent"], tmp_path / "mute.mp4")
    (tmp_path / "notes.txt").write_text("not media")
    manifest = load_inputs(tmp_path)
    assert [(s.id, s.video) for s in manifest] == [("day1/talk", "day1/talk.mp4"), ("mute", "mute.mp4")]
    assert manifest.media_path(manifest.samples[0], "video") == (tmp_path / "day1" / "talk.mp4").resolve()


def test_log_state_and_error_kinds(tmp_path):
    import openai

    log = tmp_path / "p.jsonl.progress.jsonl"
    log.write_text(
        '{"id": "a", "error": "MediaError: x"}\n{"id": "b", "raw": "x", "well_formed": false}\n'
        '{"id": "a", "raw": "y", "well_formed": true}\n{"id": "c", "error": "Med'
    )  # torn by a kill
    state = read_log(log)
    assert set(state.predicted) == {"a", "b"} and state.failed == {} and progress_log_path("p.jsonl").name == log.name
    assert is_clip_error(MediaError("x.mp4", "truncated"))
    refused = openai.BadRequestError("bad clip", response=_response(400), body=None)
    assert is_clip_error(refused) and not is_clip_error(
        openai.AuthenticationError("key", response=_response(401), body=None)
    )


def _response(status: int):
    import httpx

    return httpx.Response(status, request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))


def test_engine_predictions_record_bad_clips_and_resume(tmp_path, tiny_sft, synthfacs_small):
    from inference.hf_engine import HFEngine

    manifest = _manifest_with_broken_clip(synthfacs_small["val"], tmp_path, tmp_path, n=3)
    engine = HFEngine.load(str(tiny_sft["base"]), adapters={"sft": str(tiny_sft["adapter"])})
    predictor = EnginePredictor(engine, manifest, "ov_emotion", SamplingSettings(max_new_tokens=24), "sft", 2)
    log = tmp_path / "pred.jsonl.progress.jsonl"
    first = run_predictions(manifest, predictor, log)
    assert (first.predicted, first.failed, first.resumed) == (3, 1, 0)
    assert "MediaError" in read_log(log).failed["broken"]["error"]
    again = run_predictions(manifest, predictor, log)
    assert (again.predicted, again.failed, again.resumed) == (0, 0, 4)  # nothing redone
    assert write_output(manifest, log, tmp_path / "pred.jsonl") == 3


def _manifest_with_broken_clip(val: Path, folder: Path, broken_dir: Path, n: int | None = None):
    """A manifest in `folder`: the first n val samples plus a truncated clip written into `broken_dir`."""
    source = read_manifest(val)
    data = source.media_path(source.samples[0], "video").read_bytes()
    broken = broken_dir / f"broken-{folder.name}.mp4"
    broken.write_bytes(data[: len(data) // 3])
    samples = [
        s.model_copy(update={"video": os.path.relpath(source.media_path(s, "video"), folder)})
        for s in source.samples[:n]
    ]
    samples.append(Sample(id="broken", video=os.path.relpath(broken, folder)))
    roots = [os.path.relpath(val.parent, folder), os.path.relpath(broken_dir, folder)]
    return read_manifest(write_manifest(folder / "predict.jsonl", samples, media_roots=roots))


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return path.read_bytes().count(b"\n")
        time.sleep(0.02)
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_predict_killed_and_restarted_gives_one_prediction_per_clip(served, tmp_path):
    from affect_mllm.evaluation import evaluate_files

    manifest = _manifest_with_broken_clip(served.val_manifest, tmp_path, served.media_root)
    out = tmp_path / "pred.jsonl"

    def predict(destination: Path, *extra: str) -> list[str]:
        return [
            *affect_mllm_command(),
            "predict",
            str(manifest.path),
            "--out",
            str(destination),
            "--server",
            served.url,
            "--model",
            served.adapter,
            "--media",
            "file",
            "--concurrency",
            "1",
            "--max-new-tokens",
            "48",
            "--guided",
            *extra,
        ]

    command = predict(out)
    env = {**os.environ, "AFFECT_MLLM_API_KEY": served.api_key}
    log = progress_log_path(out)
    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines_at_kill = _wait_for_lines(log, 2, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL and 2 <= lines_at_kill < len(manifest), "not killed mid-run"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    entries = list(read_jsonl(log))
    print(f"killed after {lines_at_kill} of {len(manifest)} clips; {done.stdout.strip().splitlines()[-1]}")
    assert sorted(e["id"] for e in entries) == sorted(s.id for s in manifest)  # each clip once: none lost or redone
    assert "error" in next(e for e in entries if e["id"] == "broken")
    assert [r["id"] for r in read_jsonl(out)] == [s.id for s in manifest if s.id != "broken"]
    gold = served.val_manifest
    for suffix in ("csv", "npz"):  # the same log, written in the official formats: nothing is predicted again
        other = subprocess.run(
            predict(tmp_path / f"pred-openset.{suffix}", "--log", str(log)),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert other.returncode == 0 and "0 new" in other.stdout, other.stderr[-2000:]
    for suffix in ("csv", "npz"):
        metrics = evaluate_files(tmp_path / f"pred-openset.{suffix}", gold, n_resamples=0)
        assert metrics["n_predicted"] == len(manifest) - 1, suffix
    report = tmp_path / "metrics.json"
    evaluated = subprocess.run(
        [
            *affect_mllm_command(),
            "evaluate",
            "--pred",
            str(out),
            "--gold",
            str(gold),
            "--json",
            str(report),
            "--bootstrap",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(report.read_text())["n_predicted"] == len(manifest) - 1
