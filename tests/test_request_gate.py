"""The server's gate without a server: the media guard's verdicts on every URL spelling and media part, the gate's
order (key, then route, then body), its limits, and the real vLLM app's routes enumerated and gated.

Run: pytest tests/test_request_gate.py -q
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from conftest import moving_frames, tone

from affect_mllm.media import MediaSettings, write_video
from inference.media_guard import MediaPolicy, MediaRefused, check_request
from inference.request_gate import EXPOSED_ROUTES, GatePolicy, RequestGate

KEY = "gate-key"
CAPS = MediaSettings(max_duration_s=10.0)


def chat(*parts, **fields) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": [*parts, {"type": "text", "text": "?"}]}], **fields}


def video(url) -> dict:
    return {"type": "video_url", "video_url": {"url": url}}


def data_url(path: Path, mime: str = "video/mp4") -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A media root with a short clip, a long one, a clip of huge frames and a long audio file; a file outside."""
    import soundfile

    folder = tmp_path_factory.mktemp("root")
    write_video(folder / "ok.mp4", moving_frames(8, 32, 32), 4.0, tone(2.0))
    write_video(folder / "long.mp4", moving_frames(15, 16, 16), 1.0)  # 15 s, over the 10 s cap
    write_video(folder / "huge.mp4", np.zeros((2, 4096, 4096, 3), np.uint8), 2.0)  # 16.8 M pixels a frame
    soundfile.write(folder / "long.wav", tone(12.0), 16000)
    (folder.parent / "outside.mp4").write_bytes((folder / "ok.mp4").read_bytes())
    return folder


@pytest.fixture(scope="module")
def policy(root) -> MediaPolicy:
    return MediaPolicy(root.resolve(), (), CAPS)


def refusal(request: dict, policy: MediaPolicy) -> str | None:
    try:
        check_request(request, policy)
    except MediaRefused as refused:
        return str(refused)
    return None


def test_well_formed_media_pass(root, policy):
    clip = root / "ok.mp4"
    assert refusal(chat(video(clip.as_uri()), {"type": "audio_url", "audio_url": {"url": clip.as_uri()}}),
                   policy) is None
    assert refusal(chat(video(data_url(clip))), policy) is None
    wav = base64.b64encode((root / "long.wav").read_bytes()[:16000 * 4 * 2]).decode()  # a valid WAV prefix
    assert refusal(chat({"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}}), policy) is None
    assert refusal({"model": "m", "messages": [{"role": "user", "content": "plain text"}]}, policy) is None


@pytest.mark.parametrize(("url", "fault"), [
    ("{root}/long.mp4", "duration 15 s, over max_duration_s = 10 s"),
    ("FILE://{root}/long.mp4", "over max_duration_s"),  # vLLM reads upper-case schemes as file URLs
    ("file://{root}/%6Cong.mp4", "over max_duration_s"),  # percent escapes are unquoted as vLLM unquotes them
    ("file://{root}/huge.mp4", "over max_frame_pixels"),
    ("file://{root}/missing.mp4", "media file not found"),
    ("file://{root}/../outside.mp4", "subpath of the server's media root"),
    ("file://{root}/%2e%2e/outside.mp4", "subpath of the server's media root"),
    ("http://127.0.0.1:9/x.mp4", "remote media URLs are refused"),
    ("HTTPS://example.com/x.mp4", "remote media URLs are refused"),
    ("httpx://example.com/x.mp4", "remote media URLs are refused"),  # vLLM fetches any scheme starting "http"
    ("ftp://example.com/x.mp4", "unsupported URL scheme 'ftp'"),
    ("data:video/mp4,AAAA", "only base64 data URLs"),
    ("data:video/mp4;base64,@@@", "not valid base64"),
    ("data:video/jpeg;base64,AAAA", "video/jpeg frame lists are not accepted"),
])
def test_every_spelling_of_a_media_url_is_checked(root, policy, url, fault):
    url = url.format(root=root.resolve()) if "{root}" in url else url
    url = Path(url).as_uri() if url.startswith("/") else url
    assert fault in (refusal(chat(video(url)), policy) or "passed")


def test_data_urls_and_inline_audio_meet_the_caps(root, policy):
    assert "over max_duration_s" in refusal(chat(video(data_url(root / "long.mp4"))), policy)
    assert "over max_frame_pixels" in refusal(chat(video(data_url(root / "huge.mp4"))), policy)
    wav = base64.b64encode((root / "long.wav").read_bytes()).decode()
    assert "audio lasts 12 s" in refusal(chat({"type": "input_audio", "input_audio": {"data": wav}}), policy)
    url = data_url(root / "long.wav", "audio/wav")
    assert "audio lasts 12 s" in refusal(chat({"type": "audio_url", "audio_url": {"url": url}}), policy)
    png = base64.b64encode(bytes.fromhex("89504e470d0a1a0a") + bytes(64)).decode()
    assert refusal(chat(video(f"data:video/mp4;base64,{png}")), policy)  # not media: refused, not decoded


def test_parts_without_a_type_and_other_shapes_are_seen(root, policy):
    long_url = (root / "long.mp4").as_uri()
    assert "over max_duration_s" in refusal(chat({"video_url": long_url}), policy)  # no type, a bare string
    assert "over max_duration_s" in refusal(chat({"type": "text", "text": "x", "video_url": {"url": long_url}}),
                                            policy)
    for part, fault in (({"type": "image_url", "image_url": {"url": long_url}}, "not images"),
                        ({"type": "image_embeds", "image_embeds": "AAAA"}, "image_embeds parts are not accepted"),
                        ({"prompt_embeds": "AAAA"}, "prompt_embeds parts are not accepted"),
                        ({"type": "video_url", "video_url": {"url": 7}}, "the URL must be a string")):
        assert fault in refusal(chat(part), policy)
    request = chat(video((root / "ok.mp4").as_uri()), media_io_kwargs={"video": {"fps": 30, "max_frames": 4096}})
    assert "media_io_kwargs is not accepted" in refusal(request, policy)
    for shape in ([1, 2], {"messages": "x"}, {"messages": [[{"content": [video(long_url)]}]]}, {"messages": [7]}):
        # not a chat request vLLM would read media from: its own validation answers (400), never a crash here
        assert refusal(shape, policy) in (None, "the request body must be a JSON object")


def test_remote_urls_only_from_allowed_domains(root):
    allowed = MediaPolicy(root.resolve(), ("media.example.org",), CAPS)
    assert refusal(chat(video("https://Media.Example.org/a.mp4")), allowed) is None  # left to vLLM's own check
    assert "not among the server's allowed media domains" in refusal(chat(video("https://127.0.0.1/a.mp4")),
                                                                     allowed)


def gate(root: Path, inner=None, **policy_fields) -> RequestGate:
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    fields = {"media_root": str(root.resolve()), "media": asdict(CAPS), "max_request_bytes": 1 << 20,
              **policy_fields}
    return RequestGate(inner or app, GatePolicy(**fields), api_key=KEY)


async def call(guard: RequestGate, method: str, path: str, body: bytes = b"", key: str | None = KEY) -> tuple:
    """(status, JSON body, whether the client's body was read) of one request through the gate."""
    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)] or [b""]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await guard({"type": "http", "method": method, "path": path, "headers": headers}, receive, send)
    payload = sent[1].get("body", b"") if len(sent) > 1 else b""
    return sent[0]["status"], json.loads(payload or b"{}"), not messages


def test_the_key_comes_first_and_says_nothing_else(root):
    guard = gate(root)
    missing = json.dumps(chat(video((root / "missing.mp4").as_uri()))).encode()
    present = json.dumps(chat(video((root / "ok.mp4").as_uri()))).encode()
    for key in (None, "wrong", KEY[:-1], f"{KEY}x"):
        answers = [asyncio.run(call(guard, "POST", "/v1/chat/completions", body, key)) for body in (missing, present)]
        assert [a[0] for a in answers] == [401, 401] and answers[0][1] == answers[1][1]  # nothing tells them apart
        for method, path in (("POST", "/invocations"), ("POST", "/scale_elastic_ep"), ("GET", "/metrics"),
                             ("GET", "/openapi.json"), ("POST", "/v1/load_lora_adapter"), ("GET", "/nowhere")):
            assert asyncio.run(call(guard, method, path, b"{}", key))[0] == 401, (method, path)
    assert asyncio.run(call(guard, "GET", "/health", key=None))[0] == 200
    assert asyncio.run(call(guard, "POST", "/invocations", b"{}"))[0] == 404  # with the key: not served at all
    assert asyncio.run(call(guard, "POST", "/v1/chat/completions", missing))[0] == 400
    assert asyncio.run(call(guard, "POST", "/v1/chat/completions", present))[0] == 200
    lora = gate(root, allow_runtime_lora=True)
    assert asyncio.run(call(lora, "POST", "/v1/load_lora_adapter", b"{}"))[0] == 200


def test_bodies_are_limited_parsed_and_admitted_a_few_at_a_time(root):
    guard = gate(root)
    status, body, drained = asyncio.run(call(guard, "POST", "/v1/chat/completions", b"x" * (2 << 20)))
    assert (status, drained) == (413, True) and "over the server's limit" in body["error"]["message"]
    for raw in (b"{not json", b"[" * 100_000, b'{"messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"):
        assert asyncio.run(call(guard, "POST", "/v1/chat/completions", raw))[0] == 400
    escaped = json.dumps(chat(video((root / "long.mp4").as_uri()))).replace("/", "\\/").encode()  # file:\/\/
    status, body, _ = asyncio.run(call(guard, "POST", "/v1/chat/completions", escaped))
    assert status == 400 and "over max_duration_s" in body["error"]["message"]

    inside, peak, release = 0, 0, asyncio.Event()

    async def slow(scope, receive, send):
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await release.wait()
        inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def burst() -> list[int]:
        narrow = gate(root, inner=slow, max_concurrent_requests=2)
        tasks = [asyncio.create_task(call(narrow, "POST", "/v1/chat/completions", b"{}")) for _ in range(6)]
        await asyncio.sleep(0.2)
        release.set()
        return [(await task)[0] for task in tasks]

    assert asyncio.run(burst()) == [200] * 6 and peak == 2


def vllm_app(monkeypatch, policy: GatePolicy):
    """vLLM's real server app with the gate, built as `affect-mllm serve` builds it (no engine)."""
    pytest.importorskip("vllm")
    from server_fixtures import build_vllm_app

    monkeypatch.setenv("AFFECT_MLLM_SERVER_POLICY", policy.to_json())
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    return build_vllm_app("--middleware", "inference.request_gate.RequestGate", "--disable-fastapi-docs")


def test_every_route_of_the_real_app_is_gated(monkeypatch, tmp_path):
    """Enumerate the routes vLLM builds (so a route a new version adds is covered): without the key each one
    answers 401, with it every route the project does not serve is gone (404) and removed from the app."""
    from starlette.testclient import TestClient

    from inference.request_gate import expose_only, route_pairs

    policy = GatePolicy(media_root=str(tmp_path))
    app = vllm_app(monkeypatch, policy)
    every = route_pairs(app)
    assert ("POST", "/scale_elastic_ep") in every and len(every) > 20  # the enumeration sees vLLM's admin routes
    client = TestClient(app, raise_server_exceptions=False)
    for method, path in sorted(every):
        method = "GET" if method in ("*", "HEAD") else method
        if (method, path) == ("GET", "/health"):
            continue
        assert client.request(method, path.replace("{", "").replace("}", "")).status_code == 401, (method, path)
    removed = expose_only(app, policy)
    assert route_pairs(app) <= policy.routes() and route_pairs(app) >= EXPOSED_ROUTES
    assert "POST /scale_elastic_ep" in removed and "POST /invocations" in removed
    authorized = {"Authorization": f"Bearer {KEY}"}
    for method, path in sorted(every - policy.routes()):
        method = "GET" if method in ("*", "HEAD") else method
        status = client.request(method, path.replace("{", "").replace("}", ""), headers=authorized).status_code
        assert status == 404, (method, path)


def test_the_policy_travels_through_the_environment(monkeypatch):
    policy = GatePolicy(media_root="/m", allowed_media_domains=("a.org",), media=asdict(CAPS))
    monkeypatch.setenv("AFFECT_MLLM_SERVER_POLICY", policy.to_json())
    assert GatePolicy.from_environment() == policy
    assert GatePolicy.from_environment().media_policy().settings == CAPS
