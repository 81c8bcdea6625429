"""affect_mllm/processes.py on real child processes: a static HTTP server that answers /health, one that exits.

Run: pytest tests/test_processes.py -q
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from affect_mllm.processes import free_port, health_status, stop_process_group, wait_for_health


def test_wait_for_health_then_stop_the_group(tmp_path):
    (tmp_path / "health").write_text("ok")  # http.server answers GET /health with this file: status 200
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    assert health_status(url) == 0  # nothing listens yet
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_health(url, server, timeout_s=60, poll_s=0.1)
        assert health_status(url) == 200
    finally:
        stop_process_group(server, grace_s=10)
    assert server.returncode is not None and health_status(url) == 0


def test_a_server_that_exits_is_reported_with_its_log(tmp_path):
    log = tmp_path / "serve.log"
    log.write_text("boom: no such model\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(RuntimeError, match=r"exited \(3\)[\s\S]*boom: no such model"):
        wait_for_health(f"http://127.0.0.1:{free_port()}", process, timeout_s=60, log=log)


def test_a_server_that_never_answers_times_out(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        with pytest.raises(RuntimeError, match="not ready after 1 s"):
            wait_for_health(f"http://127.0.0.1:{free_port()}", sleeper, timeout_s=1, poll_s=0.2)
    finally:
        stop_process_group(sleeper, grace_s=5)
    assert sleeper.returncode == -15  # SIGTERM was enough
