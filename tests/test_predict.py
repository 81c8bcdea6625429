"""`affect-mllm predict`: folders as manifests (broken links recorded), every per-clip fault recorded while the run
goes on (media, over-long prompts counted before the engine, an engine refusing one prompt of a batch, server
4xx/5xx), faults of every clip stopping it with a message that says so, kill -9 and resume with exactly one
prediction per clip, and the three output formats read back by `affect-mllm evaluate`.

Run: pytest tests/test_predict.py -q   (the resume test uses the shared vLLM server; the engine refusal test the
session's vLLM engine of tests/engine_fixtures.py)
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
from inference.engine import GenerationRequest, SamplingSettings
from inference.predict import (
    EnginePredictor,
    RunError,
    ServerPredictor,
    is_clip_error,
    load_inputs,
    progress_log_path,
    read_log,
    run_predictions,
    write_output,
)

pytest_plugins = ["server_fixtures", "engine_fixtures"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_a_folder_of_clips_becomes_samples(tmp_path, clips):
    (tmp_path / "day1").mkdir()
    shutil.copy(clips["av_16k"], tmp_path / "day1" / "talk.mp4")
    shutil.copy(clips["silent"], tmp_path / "mute.mp4")
    (tmp_path / "notes.txt").write_text("not media")
    manifest = load_inputs(tmp_path)
    assert [(s.id, s.video) for s in manifest] == [("day1/talk", "day1/talk.mp4"), ("mute", "mute.mp4")]
    assert manifest.media_path(manifest.samples[0], "video") == (tmp_path / "day1" / "talk.mp4").resolve()


def test_broken_and_looping_links_are_recorded_not_skipped(tmp_path, clips, tiny_omni_dir):
    """A folder's dangling and looping symlinks become samples whose failure the log records with the file."""
    from inference.hf_engine import HFEngine

    shutil.copy(clips["silent"], tmp_path / "ok.mp4")
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")
    (tmp_path / "loop_a.mp4").symlink_to(tmp_path / "loop_b.mp4")
    (tmp_path / "loop_b.mp4").symlink_to(tmp_path / "loop_a.mp4")
    manifest = load_inputs(tmp_path)
    assert [s.id for s in manifest] == ["gone", "loop_a", "loop_b", "ok"]
    engine = HFEngine.load(str(tiny_omni_dir))
    log = tmp_path / "out" / "p.jsonl.progress.jsonl"
    summary = run_predictions(manifest, EnginePredictor(engine, manifest, "ov_emotion", SamplingSettings(4)), log)
    failed = read_log(log).failed
    assert (summary.predicted, summary.failed) == (1, 3) and set(failed) == {"gone", "loop_a", "loop_b"}
    assert failed["gone"]["file"] == "gone.mp4" and "file not found" in failed["gone"]["error"]
    assert "cannot be resolved" in failed["loop_a"]["error"]


def test_a_prompt_over_the_model_length_is_recorded_before_the_engine(tmp_path, clips, tiny_omni_dir):
    """predict counts each prompt's tokens (media included): the clip that does not fit is recorded, the others run,
    and the engine never sees the long one."""
    from affect_mllm.schema import Sample, write_manifest
    from inference.engine import prompt_tokens, request_from_sample
    from inference.hf_engine import HFEngine

    for name in ("silent", "av_16k"):
        shutil.copy(clips[name], tmp_path / f"{name}.mp4")
    manifest = read_manifest(write_manifest(tmp_path / "m.jsonl", [Sample(id=n, video=f"{n}.mp4")
                                                                     for n in ("silent", "av_16k")]))
    engine = HFEngine.load(str(tiny_omni_dir))
    lengths = {s.id: prompt_tokens(engine, request_from_sample(s, manifest, "ov_emotion", engine.spec))
               for s in manifest}
    assert lengths["av_16k"] > lengths["silent"]  # its audio track adds tokens
    engine.max_model_len = lengths["av_16k"]  # as a vLLM engine started with this max_model_len
    seen = []
    generate = engine.generate
    engine.generate = lambda requests, sampling: seen.extend(r.request_id for r in requests) or generate(
        requests, sampling)
    log = tmp_path / "p.jsonl.progress.jsonl"
    summary = run_predictions(manifest, EnginePredictor(engine, manifest, "ov_emotion", SamplingSettings(4)), log)
    assert (summary.predicted, summary.failed, seen) == (1, 1, ["silent"])
    assert f"the prompt has {lengths['av_16k']} tokens" in read_log(log).failed["av_16k"]["error"]


def test_the_engine_refusing_one_prompt_of_a_batch_fails_that_clip_only(vllm_omni_engine, clips):
    """vLLM validates a batch as a whole; the predictor asks again one request at a time, so only the refused
    prompt (longer than the engine's model length, which the length check would have caught earlier) fails."""
    from engine_fixtures import clip_requests

    from affect_mllm.media import SampleMedia
    from affect_mllm.models.inputs import Conversation, build_messages

    spec = vllm_omni_engine.spec
    [fine] = clip_requests(spec, clips, names=("av_16k",))
    words = " ".join(["word"] * (vllm_omni_engine.max_model_len + 100))
    huge = GenerationRequest(Conversation(build_messages(SampleMedia(), words, spec), SampleMedia()))
    predictor = EnginePredictor(vllm_omni_engine, None, "ov_emotion", SamplingSettings(max_new_tokens=4))
    first, second = predictor._generate([fine, huge])
    assert first.token_ids and isinstance(second, ValueError) and "maximum context length" in str(
        second)


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
    assert is_clip_error(openai.InternalServerError("decoder crashed", response=_response(500), body=None))
    assert not is_clip_error(openai.NotFoundError("no such model", response=_response(404), body=None))


class FlakyServer:
    """A stub OpenAI endpoint on loopback: 500 for the clips whose data URL contains a marker, a tagged answer for
    the others. A stub, because the real server answers such clips with 400 now (its guard probes the media): a
    per-clip 500 cannot be provoked from it on purpose."""

    ANSWER = "<think>Smile (AU12).</think><answer>emotions: happy</answer>"

    def __init__(self, fail_marker: bytes) -> None:
        import http.server
        import threading

        answer = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": self.ANSWER}}]}).encode()
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler):  # noqa: N805
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                self.requests += 1
                failing = fail_marker in body
                handler.send_response(500 if failing else 200)
                handler.send_header("Content-Type", "application/json")
                payload = b'{"error": {"message": "decoder crashed"}}' if failing else answer
                handler.send_header("Content-Length", str(len(payload)))
                handler.end_headers()
                handler.wfile.write(payload)

            def log_message(handler, *args):  # noqa: N805
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


def _server_run(tmp_path, clips, names: list[str], fail_marker: bytes):
    from affect_mllm.schema import Sample, write_manifest
    from inference.client import AffectClient

    tmp_path.mkdir()
    for name in set(names):
        shutil.copy(clips[name], tmp_path / f"{name}.mp4")
    samples = [Sample(id=f"{i}-{name}", video=f"{name}.mp4") for i, name in enumerate(names)]
    manifest = read_manifest(write_manifest(tmp_path / "m.jsonl", samples))
    server = FlakyServer(fail_marker)
    try:
        client = AffectClient(server.url, model="m", max_retries=1, timeout=30)
        predictor = ServerPredictor(client, manifest, "ov_emotion", SamplingSettings(8), "data", "m", concurrency=1)
        log = tmp_path / "p.jsonl.progress.jsonl"
        try:
            return run_predictions(manifest, predictor, log), read_log(log), server.requests
        except RunError as error:
            return error, read_log(log), server.requests
    finally:
        server.close()


def test_a_server_error_for_one_clip_is_recorded_and_a_failing_server_stops_the_run(tmp_path, clips):
    import base64

    marker = base64.b64encode(clips["silent"].read_bytes())[100:140]  # a piece of the silent clip's data URL
    summary, state, requests = _server_run(tmp_path / "one", clips, ["av_16k", "silent", "odd_size"], marker)
    assert (summary.predicted, summary.failed) == (2, 1) and requests == 4  # the bad clip was retried once
    assert "InternalServerError" in state.failed["1-silent"]["error"] and state.failed["1-silent"]["file"]
    stopped, state, _ = _server_run(tmp_path / "all", clips, ["silent"] * 7, marker)
    assert isinstance(stopped, RunError) and "failed 5 clips in a row" in str(stopped)
    assert len(state.failed) == 5  # recorded up to the stop; the rest are left for the next run


def test_faults_before_the_run_are_not_called_resumable(tmp_path):
    from typer.testing import CliRunner

    from affect_mllm.cli import build_app

    (tmp_path / "empty").mkdir()
    bad = tmp_path / "m.jsonl"
    bad.write_bytes(b'{"id": "a", "video": "a.mp4"}\n{"id": "\xe9", "video": "b.mp4"}\n')
    for inputs, fault in ((tmp_path / "empty", "no video"), (bad, "m.jsonl:2: not valid UTF-8")):
        result = CliRunner().invoke(build_app(), ["predict", str(inputs), "--out", str(tmp_path / "p.jsonl"),
                                                  "--model", "tiny-omni", "--backend", "hf"])
        assert result.exit_code == 2 and fault in result.output and "run the same command" not in result.output


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
