"""Hardening probe: a bounded, loopback-only set of hostile requests against `affect-mllm serve`.

Run: python benchmarks/hardening.py                       (starts its own server on the tiny model, with a key)
     python benchmarks/hardening.py --url http://127.0.0.1:8000 --api-key KEY --media-root DIR
                                                          (probes a running server; DIR must be its media root)

Cases, one line each ("held" when the server answered as it must):
- the key on every route of vLLM's app (enumerated from the installed vLLM): 401 without it and with a wrong one
  (only GET /health answers), 404 with it for every route the project does not serve;
- remote media URLs (http, https, upper case, the server's own /health) refused, and a loopback listener sees no
  connection;
- data URLs that would decode big (4096x4096 frames; a clip over the duration cap) refused naming the cap, also
  16 at once;
- guard variants: FILE:// in upper case, `file:\\/\\/` escaped in the JSON, percent escapes, `..` out of the media
  root, a missing file (and the same 401 for it and for a present file without the key), deep JSON nesting, a
  non-JSON body, a body over the limit (413);
- 32 concurrent well-formed clients: all answered (200).
Nothing leaves the machine: the target must be a loopback address. The request count is fixed; each request times
out. The last line is JSON: {"cases", "held", "p50_ms", "p95_ms", "rss_growth_mb"} (latencies of the 32 clients;
the server's resident memory before and after the probe, its whole process tree).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from affect_mllm.processes import free_port, stop_process_group, wait_for_health

REPO_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TIMEOUT_S = 120
CLIENTS = 32


class Probe:
    """Requests to one server, and the cases' verdicts."""

    def __init__(self, url: str, key: str | None, model: str) -> None:
        if urlparse(url).hostname not in LOOPBACK:
            raise SystemExit(f"{url}: the probe only talks to a loopback address")
        self.url, self.key, self.model, self.results = url.rstrip("/"), key, model, []

    def request(self, method: str, path: str, body: bytes | None = None, key: str | None = "") -> tuple[int, str]:
        """(status, body) of one request; key "" means the probe's key, None none."""
        headers = {"Content-Type": "application/json"}
        key = self.key if key == "" else key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def chat(self, parts: list[dict], key: str | None = "", max_tokens: int = 8) -> tuple[int, str]:
        body = {"model": self.model, "max_tokens": max_tokens, "temperature": 0,
                "messages": [{"role": "user", "content": [*parts, {"type": "text", "text": "How do they feel?"}]}]}
        return self.request("POST", "/v1/chat/completions", json.dumps(body).encode(), key)

    def case(self, name: str, held: bool, detail: str) -> None:
        self.results.append(held)
        print(f"{'held  ' if held else 'BROKEN'} {name}: {detail}", flush=True)


def video(url: str) -> dict:
    return {"type": "video_url", "video_url": {"url": url}}


def probe_routes(probe: Probe) -> None:
    """Every route of vLLM's app: 401 without or with a wrong key (not /health); 404 with it where not served."""
    from vllm.entrypoints.launchers.app import build_app
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    from inference.request_gate import GatePolicy, route_pairs

    args = make_arg_parser(FlexibleArgumentParser()).parse_args(["--model", "m"])
    routes = route_pairs(build_app(args, ("generate", "transcription", "realtime")))
    served = GatePolicy().routes()
    for method, path in sorted(routes):
        method = "GET" if method in ("*", "HEAD") else method
        url_path, body = path.replace("{", "").replace("}", ""), b"{}" if method == "POST" else None
        if (method, path) == ("GET", "/health"):
            status = probe.request(method, url_path, key=None)[0]
            probe.case(f"route {method} {path}", status == 200, f"{status} without a key (open by design)")
            continue
        statuses = [probe.request(method, url_path, body, key)[0] for key in (None, "wrong-key", "")]
        expected = [401, 401] + ([statuses[2]] if (method, path) in served else [404])
        probe.case(f"route {method} {path}", statuses == expected, f"no key / wrong key / key: {statuses}")


def probe_remote_urls(probe: Probe) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port, connections = listener.getsockname()[1], []
    threading.Thread(target=lambda: _accept(listener, connections), daemon=True).start()
    urls = [f"http://127.0.0.1:{port}/a.mp4", f"HTTPS://127.0.0.1:{port}/a.mp4", f"{probe.url}/health",
            "http://169.254.169.254/latest/meta-data/"]
    for url in urls:
        statuses = [probe.chat([part])[0] for part in (video(url), {"type": "audio_url", "audio_url": {"url": url}})]
        probe.case(f"remote URL {url}", statuses == [400, 400], f"statuses {statuses}")
    listener.close()
    probe.case("no fetch", not connections, f"{len(connections)} connection(s) reached the loopback listener")


def _accept(listener: socket.socket, connections: list) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        connections.append(1)
        connection.close()


def media_files(folder: Path) -> dict[str, Path]:
    """A short clip, a clip of 4096x4096 frames and one of 700 s (over the default 600 s cap)."""
    from affect_mllm.media import write_video

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    return {"ok": write_video(folder / "probe_ok.mp4", rng.integers(0, 255, (8, 64, 64, 3), np.uint8), 4.0),
            "huge": write_video(folder / "probe_huge.mp4", np.zeros((4, 4096, 4096, 3), np.uint8), 2.0),
            "long": write_video(folder / "probe_long.mp4", np.zeros((70, 16, 16, 3), np.uint8), 0.1)}


def data_url(path: Path) -> str:
    return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()


def probe_bombs(probe: Probe, files: dict[str, Path]) -> None:
    for name, cap in (("huge", "max_frame_pixels"), ("long", "max_duration_s")):
        status, text = probe.chat([video(data_url(files[name]))])
        probe.case(f"data URL bomb ({name})", status == 400 and cap in text, f"{status}, names {cap}: {cap in text}")
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: probe.chat([video(data_url(files["huge"]))])[0], range(16)))
    probe.case("16 bombs at once", statuses == [400] * 16, f"statuses {sorted(set(statuses))}")


def probe_guard(probe: Probe, files: dict[str, Path], media_root: Path | None) -> None:
    if media_root is not None:
        long = files["long"].resolve().as_uri()
        variants = {"FILE:// upper case": long.replace("file://", "FILE://"), "percent escapes":
                    long.replace("probe_long", "probe%5Flong"), "file:/ one slash": long.replace("file:///", "file:/"),
                    ".. out of the root": f"file://{media_root.resolve()}/../etc/passwd"}
        for name, url in variants.items():
            status, text = probe.chat([video(url)])
            probe.case(f"guard {name}", status == 400, f"{status} {text[:90]}")
        body = json.dumps({"model": probe.model, "messages": [{"role": "user", "content": [video(long)]}]})
        status, text = probe.request("POST", "/v1/chat/completions", body.replace("/", "\\/").encode())
        probe.case("guard file:\\/\\/ escaped in JSON", status == 400, f"{status} {text[:90]}")
        present, missing = files["ok"].resolve().as_uri(), f"file://{media_root.resolve()}/no-such-clip.mp4"
        answers = [probe.chat([video(url)], key=None) for url in (present, missing)]
        probe.case("no key: present and missing files look alike", answers[0] == answers[1] and
                   answers[0][0] == 401, f"{answers[0][0]} / {answers[1][0]}")
    for name, body in (("deep nesting", b"[" * 100_000), ("nested messages", b'{"messages": [[{"content": [1]}]]}'),
                       ("not JSON", b"\xff\xfe{"), ("over the body limit", b"x" * (65 << 20))):
        status = probe.request("POST", "/v1/chat/completions", body)[0]
        probe.case(f"guard {name}", 400 <= status < 500, f"{status}")


def probe_clients(probe: Probe, files: dict[str, Path], media_root: Path | None) -> list[float]:
    """32 concurrent well-formed requests; their latencies in ms."""
    url = files["ok"].resolve().as_uri() if media_root is not None else data_url(files["ok"])

    def one(_) -> tuple[int, float]:
        started = time.perf_counter()
        status = probe.chat([video(url)], max_tokens=16)[0]
        return status, 1000 * (time.perf_counter() - started)

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(one, range(CLIENTS)))
    statuses = [status for status, _ in answers]
    probe.case(f"{CLIENTS} concurrent clients", statuses == [200] * CLIENTS, f"statuses {sorted(set(statuses))}")
    return [ms for _, ms in answers]


def tree_rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def listener_pid(port: int) -> int | None:
    """The process listening on a local port (the server's front end), if this user may see it."""
    import psutil

    for connection in psutil.net_connections(kind="tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
            return connection.pid
    return None


def start_server(folder: Path, key: str) -> tuple[subprocess.Popen, str]:
    from affect_mllm.models.registry import resolve

    port = free_port()
    command = [sys.executable, "-m", "affect_mllm.cli", "serve", "--model", resolve("tiny-omni").source,
               "--port", str(port), "--media-root", str(folder), "--max-num-seqs", "8"]
    log = folder.parent / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(command, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                  env={**os.environ, "AFFECT_MLLM_API_KEY": key}, start_new_session=True)
    wait_for_health(f"http://127.0.0.1:{port}", server, timeout_s=600, log=log)
    return server, f"http://127.0.0.1:{port}"


def run(probe: Probe, folder: Path, media_root: Path | None, pid: int | None) -> dict:
    files = media_files(folder)
    before = tree_rss_mb(pid)
    probe_routes(probe)
    probe_remote_urls(probe)
    probe_bombs(probe, files)
    probe_guard(probe, files, media_root)
    latencies = probe_clients(probe, files, media_root)
    after = tree_rss_mb(pid)
    p50, p95 = np.percentile(latencies, [50, 95])
    return {"cases": len(probe.results), "held": sum(probe.results), "p50_ms": round(float(p50)),
            "p95_ms": round(float(p95)), "rss_growth_mb": None if before is None else round(after - before)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="A running server (loopback only); default: start one on the tiny model.")
    parser.add_argument("--api-key", help="Its key (default: $AFFECT_MLLM_API_KEY).")
    parser.add_argument("--model", help="The served model name (default: the server's first).")
    parser.add_argument("--media-root", type=Path, help="Its media root, writable (file:// cases need it).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hardening-") as scratch:
        server = None
        url, key, root = args.url, args.api_key or os.environ.get("AFFECT_MLLM_API_KEY"), args.media_root
        if url is None:
            root, key = Path(scratch) / "media", "probe-key"
            root.mkdir()
            server, url = start_server(root, key)
        try:
            probe = Probe(url, key, args.model or "")
            if not probe.model:
                probe.model = json.loads(probe.request("GET", "/v1/models")[1])["data"][0]["id"]
            folder = root / "hardening-probe" if root is not None else Path(scratch) / "files"
            figures = run(probe, folder, root, listener_pid(urlparse(url).port or 80))
        finally:
            if server is not None:
                stop_process_group(server)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
