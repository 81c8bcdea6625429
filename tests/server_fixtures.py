"""Session fixture: ONE real vLLM server started with `affect-mllm serve` on the tiny SFT model and its adapter.

Loaded by `pytest_plugins = ["server_fixtures"]` in the serving tests, so every module shares the one server
(~40-90 s to start on 2 busy cores). It listens on 127.0.0.1 on a free port, reads local files only under a
temporary media root (the SynthFACS val clips and the test clips are copied into it), requires an API key, and
has small clip limits so the oversize tests need only short clips. Torn down with SIGTERM to `affect-mllm
serve`, which forwards it to vLLM.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from process_helpers import affect_mllm_command

from affect_mllm.processes import free_port, stop_process_group, wait_for_health

ADAPTER_NAME = "sft"
API_KEY = "test-key-14"
MAX_CLIP_SECONDS = 20  # the oversize tests send 25-30 s clips
MAX_REQUEST_MB = 4
READY_TIMEOUT_S = 300


@dataclass
class ServedModel:
    """A running test server and what the tests need to reach it."""

    url: str  # http://127.0.0.1:PORT
    api_key: str
    model: str  # the base model's served name
    adapter: str  # the LoRA adapter's served name
    media_root: Path
    clips: dict[str, Path]  # name -> file under the media root
    val_manifest: Path  # SynthFACS val manifest whose clips lie under the media root
    log: Path
    pid: int = 0  # `affect-mllm serve`'s process: the server and its engine are its descendants

    def tree_rss_mb(self) -> float:
        """Resident memory of the server's processes (the wrapper, vLLM's API server, its engine), in MB."""
        import psutil

        root = psutil.Process(self.pid)
        processes = [root, *root.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes if p.is_running()) / 2**20

    def health(self) -> int:
        """The status of GET /health (0 when nothing answers)."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=10) as response:
                return response.status
        except (urllib.error.URLError, OSError):
            return 0

    def openai(self, api_key: str | None = None):
        """The official client, without retries (the tests want the first answer)."""
        import openai

        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key or self.api_key, max_retries=0, timeout=120)

    def client(self, **options):
        """The project's client helper."""
        from inference.client import AffectClient

        return AffectClient(self.url, api_key=self.api_key, max_retries=0, **options)


def _copy_media(synthfacs_small: dict[str, Path], clips: dict[str, Path], media_root: Path) -> tuple[dict, Path]:
    """Copy the val clips (with their manifest) and the test clips under the media root."""
    val = synthfacs_small["val"]
    shutil.copytree(val.parent / "clips", media_root / "synthfacs" / "clips")
    manifest = media_root / "synthfacs" / val.name
    shutil.copy(val, manifest)
    copied = {name: Path(shutil.copy(path, media_root / path.name)) for name, path in clips.items()}
    return copied, manifest


def _serve_command(tiny_sft: dict[str, Path], port: int, media_root: Path) -> list[str]:
    launcher = affect_mllm_command()
    return [
        *launcher,
        "serve",
        "--model",
        str(tiny_sft["base"]),
        "--adapter",
        f"{ADAPTER_NAME}={tiny_sft['adapter']}",
        "--served-model-name",
        "tiny-sft-base",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--media-root",
        str(media_root),
        "--kv-cache-gib",
        "0.25",
        "--max-num-seqs",
        "8",
        "--max-clip-seconds",
        str(MAX_CLIP_SECONDS),
        "--max-request-mb",
        str(MAX_REQUEST_MB),
    ]


def _wait_ready(server: ServedModel, process: subprocess.Popen) -> None:
    try:
        wait_for_health(server.url, process, READY_TIMEOUT_S, server.log)
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def served(tiny_sft, synthfacs_small, clips, tmp_path_factory) -> ServedModel:
    """The running server (skips where vllm is not installed)."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (install affect-mllm[cpu] or [gpu]); serving is not tested")
    media_root = tmp_path_factory.mktemp("media_root")
    copied, manifest = _copy_media(synthfacs_small, clips, media_root)
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "serve.log"
    server = ServedModel(
        f"http://127.0.0.1:{port}", API_KEY, "tiny-sft-base", ADAPTER_NAME, media_root, copied, manifest, log
    )
    # the key through the environment, as a user would keep it out of their shell history
    env = {**os.environ, "AFFECT_MLLM_API_KEY": API_KEY, "TOKENIZERS_PARALLELISM": "false"}
    with log.open("w") as sink:
        process = subprocess.Popen(
            _serve_command(tiny_sft, port, media_root),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server.pid = process.pid
    try:
        _wait_ready(server, process)
        yield server
    finally:
        stop_process_group(process)


VLLM_TASKS = ("generate", "transcription", "realtime")  # more tasks than the tiny model has: more routes to check


def build_vllm_app(*args: str):
    """vLLM's real server app as its server module builds it for these arguments, without an engine (its routes
    and middleware only: the gate's tests ask nothing of the engine)."""
    from vllm.entrypoints.launchers.app import build_app
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return build_app(make_arg_parser(FlexibleArgumentParser()).parse_args(["--model", "m", *args]), VLLM_TASKS)


def chat_request(
    server: ServedModel, content: list[dict], model: str | None = None, api_key: str | None = None, max_tokens: int = 8
) -> tuple[int, dict]:
    """POST one chat completion with urllib (no client-side checks): (status, JSON body)."""
    body = json.dumps(
        {
            "model": model or server.model,
            "max_tokens": max_tokens,
            "temperature": 0,
            "messages": [{"role": "user", "content": content}],
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if api_key != "":
        headers["Authorization"] = f"Bearer {api_key or server.api_key}"
    request = urllib.request.Request(f"{server.url}/v1/chat/completions", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            return error.code, json.loads(payload or b"{}")
        except ValueError:
            return error.code, {"raw": payload.decode(errors="replace")}
