"""Local child processes that serve HTTP (an `affect-mllm serve` started by the demo, a test or a benchmark):
a free port to start one on, waiting until it answers, and stopping it with its whole process group.

Standard library only, so the demo, the tests and the benchmarks share one copy without importing `inference/`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def health_status(url: str, timeout_s: float = 5.0) -> int:
    """The HTTP status of GET `url`/health, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def wait_for_health(url: str, process: subprocess.Popen, timeout_s: float = 600.0, log: Path | None = None,
                    poll_s: float = 1.0) -> None:
    """Return once `url`/health answers 200.

    Raises:
        RuntimeError: the process exited first, or `timeout_s` passed; the message ends with the log's tail.
    """
    deadline = time.monotonic() + timeout_s
    while health_status(url) != 200:
        tail = f":\n{log.read_text(errors='replace')[-4000:]}" if log is not None and log.exists() else ""
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before {url} was ready{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} was not ready after {timeout_s:.0f} s{tail}")
        time.sleep(poll_s)


def stop_process_group(process: subprocess.Popen, grace_s: float = 60.0) -> None:
    """Stop a process started with `start_new_session=True`: SIGTERM to it (`affect-mllm serve` forwards it to
    vLLM), then SIGKILL to its whole process group if it has not ended within `grace_s`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it ended in between
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
