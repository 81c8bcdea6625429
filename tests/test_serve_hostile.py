"""The real server under hostile input: the key on every route vLLM builds, no remote fetch (a local listener must
see no connection), media over the caps refused whatever their spelling or container (concurrently too, with
the server's memory measured), and nothing about files told to a client without the key.

Run: pytest tests/test_serve_hostile.py -q   (uses the shared server of tests/server_fixtures.py)
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.register_assert_rewrite("server_fixtures")

from server_fixtures import MAX_CLIP_SECONDS, build_vllm_app, chat_request  # noqa: E402

from affect_mllm.media import write_video  # noqa: E402
from inference.client import file_url  # noqa: E402

pytest_plugins = ["server_fixtures"]

QUESTION = {"type": "text", "text": "How does the person feel?"}
BOMBS = 8  # concurrent over-cap requests
RSS_GROWTH_BOUND_MB = 400  # what the bombs may add to the server's processes (one 4096x4096 frame is 48 MB)


def raw_request(served, method: str, path: str, body: bytes | None = None, key: str | None = None) -> tuple:
    """(status, body text) of one request with urllib, with or without the key."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{served.url}{path}", data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def video(url: str) -> dict:
    return {"type": "video_url", "video_url": {"url": url}}


def test_every_route_needs_the_key_and_unneeded_routes_are_gone(served):
    """The routes of vLLM's own app (enumerated now, so a route a new vLLM adds is covered) answer 401 without the
    key, except /health; with the key, every route the project does not use is 404."""
    from inference.request_gate import GatePolicy, route_pairs

    every = route_pairs(build_vllm_app("--disable-fastapi-docs"))
    exposed = GatePolicy().routes()
    for route in ("/invocations", "/scale_elastic_ep", "/tokenize", "/metrics", "/version", "/load"):
        assert any(path == route for _, path in every), route  # the enumeration sees what the issue found open
    for method, path in sorted(every | {("GET", "/openapi.json"), ("GET", "/docs")}):
        method = "GET" if method in ("*", "HEAD") else method
        url_path = path.replace("{", "").replace("}", "")
        body = b"{}" if method == "POST" else None
        if (method, path) == ("GET", "/health"):
            assert raw_request(served, method, url_path)[0] == 200
            continue
        for key in (None, "wrong-key"):
            assert raw_request(served, method, url_path, body, key)[0] == 401, (method, path, key)
        if (method, path) not in exposed:
            assert raw_request(served, method, url_path, body, served.api_key)[0] == 404, (method, path)
    assert raw_request(served, "GET", "/v1/models", key=served.api_key)[0] == 200


class Listener:
    """A loopback TCP listener that counts the connections it gets (it must get none)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port, self.connections = self.socket.getsockname()[1], 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.socket.close()


def test_remote_media_urls_are_refused_and_nothing_is_fetched(served):
    listener = Listener()
    try:
        urls = [f"http://127.0.0.1:{listener.port}/clip.mp4", f"HTTP://127.0.0.1:{listener.port}/clip.mp4",
                f"https://127.0.0.1:{listener.port}/a", f"httpx://127.0.0.1:{listener.port}/a",
                f"{served.url}/health", "http://127.0.0.1:9/closed-port.mp4"]
        for url in urls:
            for part in (video(url), {"type": "audio_url", "audio_url": {"url": url}}, {"video_url": url},
                         {"type": "image_url", "image_url": {"url": url}}):
                status, body = chat_request(served, [part, QUESTION])
                assert status == 400, (url, part, body)
        assert listener.connections == 0
    finally:
        listener.close()


@pytest.fixture(scope="module")
def bombs(served, tmp_path_factory) -> dict[str, str]:
    """Small files that would decode big: huge frames, and a clip over the served duration cap."""
    folder = tmp_path_factory.mktemp("bombs")
    huge = write_video(folder / "huge.mp4", np.zeros((4, 4096, 4096, 3), np.uint8), 2.0)
    long = write_video(folder / "long.mp4", np.zeros((MAX_CLIP_SECONDS + 10, 16, 16, 3), np.uint8), 1.0)
    return {name: "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()
            for name, path in (("huge", huge), ("long", long))}


def test_data_url_bombs_are_refused_naming_the_cap_even_concurrently(served, bombs):
    status, body = chat_request(served, [video(bombs["huge"]), QUESTION])
    assert status == 400 and "max_frame_pixels" in body["error"]["message"], body
    status, body = chat_request(served, [video(bombs["long"]), QUESTION])
    assert status == 400 and "max_duration_s" in body["error"]["message"], body
    before = served.tree_rss_mb()
    with ThreadPoolExecutor(BOMBS) as pool:
        statuses = list(pool.map(lambda _: chat_request(served, [video(bombs["huge"]), QUESTION])[0], range(BOMBS)))
    growth = served.tree_rss_mb() - before
    print(f"{BOMBS} concurrent 4096x4096 data URLs: statuses {statuses}, server RSS {before:.0f} MB, "
          f"+{growth:.0f} MB")
    assert statuses == [400] * BOMBS and growth < RSS_GROWTH_BOUND_MB and served.health() == 200


def test_every_spelling_of_a_file_url_is_guarded(served):
    root = served.media_root
    write_video(root / "too_long.mp4", np.zeros((MAX_CLIP_SECONDS + 5, 16, 16, 3), np.uint8), 1.0)
    long = file_url(root / "too_long.mp4")
    spellings = [long.replace("file://", "FILE://"), long.replace("file://", "File://"),
                 long.replace("too_long", "too%5Flong"), long.replace("file:///", "file:/")]
    for url in spellings:
        status, body = chat_request(served, [video(url), QUESTION])
        assert status == 400 and "max_duration_s" in body["error"]["message"], (url, body)
    escaped = json.dumps({"model": served.model, "max_tokens": 4, "messages": [
        {"role": "user", "content": [video(long), QUESTION]}]}).replace("/", "\\/").encode()  # file:\/\/ in JSON
    status, text = raw_request(served, "POST", "/v1/chat/completions", escaped, served.api_key)
    assert status == 400 and "max_duration_s" in text, text
    for hostile in (b"[" * 100_000, b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                    b'{"messages": [[{"content": [1]}]]}', b'{"messages": "x"}', b"\xff\xfe"):
        status, text = raw_request(served, "POST", "/v1/chat/completions", hostile, served.api_key)
        assert 400 <= status < 500, (hostile[:40], status, text[:200])
    assert served.health() == 200


def test_without_the_key_nothing_tells_which_files_exist(served):
    present, missing = file_url(served.clips["av_16k"]), file_url(Path(served.media_root) / "no-such-clip.mp4")
    answers = [chat_request(served, [video(url), QUESTION], api_key="") for url in (present, missing)]
    assert answers[0] == answers[1] and answers[0][0] == 401
