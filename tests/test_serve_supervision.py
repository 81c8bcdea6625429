"""`affect-mllm serve` leaves nothing behind when one of its processes is killed with SIGKILL (what the OOM killer
sends): the vLLM API server (its engine and the wrapper end too) or the wrapper (the server and its engine end).

Run: pytest tests/test_serve_supervision.py -q   (starts two servers of its own on the tiny random model, ~1 min
each on 2 cores; run it under the heavy-job lock)
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from process_helpers import affect_mllm_command

from affect_mllm.processes import free_port, stop_process_group, wait_for_health

GONE_WITHIN_S = 30.0

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")


@pytest.fixture
def server(tiny_omni_dir, tmp_path):
    """A started `affect-mllm serve` (the wrapper's Popen) and its port; whatever survives a test is killed."""
    import psutil

    port = free_port()
    log = tmp_path / "serve.log"
    command = [*affect_mllm_command(), "serve", "--model", str(tiny_omni_dir), "--port", str(port),
               "--max-model-len", "1024", "--max-num-seqs", "2"]
    with log.open("w") as sink:
        wrapper = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    tree = []
    try:
        wait_for_health(f"http://127.0.0.1:{port}", wrapper, 300, log)
        tree = [psutil.Process(wrapper.pid), *psutil.Process(wrapper.pid).children(recursive=True)]
        yield wrapper, port, tree, log
    finally:
        stop_process_group(wrapper, grace_s=10)
        for process in tree:  # whatever a failed test left of the tree it started
            if _alive(process):
                process.kill()


def _server_process(tree):
    """The vLLM API server: the process running `python -m inference.serve`."""
    return next(p for p in tree if "inference.serve" in " ".join(p.cmdline()))


def _alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_all_gone(tree, port: int, log: Path) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while time.monotonic() < deadline and any(_alive(p) for p in tree):
        time.sleep(0.2)
    left = [f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in tree if _alive(p)]
    assert not left, f"left running after {GONE_WITHIN_S:.0f} s: {left}\n{log.read_text()[-2000:]}"
    with socket.socket() as probe:  # nothing listens on the port any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_kill_9_of_the_vllm_server_ends_its_engine_and_the_wrapper(server):
    wrapper, port, tree, log = server
    vllm_server = _server_process(tree)
    engine = [p for p in vllm_server.children(recursive=True)]
    assert engine, "the server has no engine process to orphan"  # EngineCore runs in a process of its own
    print(f"tree: {[(p.pid, p.name()) for p in tree]}")
    os.kill(vllm_server.pid, signal.SIGKILL)
    assert wrapper.wait(timeout=GONE_WITHIN_S) == 128 + signal.SIGKILL  # the wrapper says how its server ended
    _assert_all_gone(tree, port, log)


def test_kill_9_of_the_wrapper_ends_the_server_and_its_engine(server):
    wrapper, port, tree, log = server
    assert len(tree) >= 3  # wrapper, API server, engine core
    os.kill(wrapper.pid, signal.SIGKILL)
    wrapper.wait()
    _assert_all_gone(tree, port, log)
