"""Process supervision for `affect-mllm serve`: the server's processes end with their parent, whichever one dies.

The tree is: the wrapper (`affect-mllm serve`, `run_supervised`) -> the API server (`python -m inference.serve`,
in a session and process group of its own) -> vLLM's EngineCore -> its workers (if any).

- The wrapper dies, even by SIGKILL: the kernel sends the API server SIGKILL (`PR_SET_PDEATHSIG`, set between fork
  and exec, Linux), and a watch thread in the API server does the same where that call does not exist.
- The API server dies (the OOM killer's SIGKILL): EngineCore notices that its parent is gone and kills itself
  (`engine_core_dies_with_server`; vLLM's workers follow EngineCore through vLLM's own death pipe), and the
  wrapper, whose wait returns, kills whatever is left in the server's process group and exits with its status.
- A stop signal to the wrapper (SIGINT, SIGTERM, SIGHUP) is passed to the server's group, so vLLM shuts down
  cleanly; SIGKILL follows after a grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h
SHUTDOWN_GRACE_S = 30.0
PARENT_POLL_S = 0.5
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def set_parent_death_signal(parent_pid: int, signum: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send `signum` to this process when its parent ends (Linux); False where unsupported.

    If the parent already ended before the request took effect, the signal is sent at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:  # the parent died between fork and prctl: the kernel will not tell us
        os.kill(os.getpid(), signum)
    return True


def die_with_parent_preexec(signum: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` for Popen: the child gets `signum` when the calling process ends."""
    parent = os.getpid()
    return lambda: set_parent_death_signal(parent, signum)


def watch_parent(signum: int = signal.SIGKILL, interval_s: float = PARENT_POLL_S) -> threading.Thread:
    """Start a daemon thread that sends this process `signum` once its parent has ended (any platform).

    A parent that ends leaves its children to another process (init or a subreaper): `getppid` changes.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        logger.error("parent process %d ended: stopping process %d", parent, os.getpid())
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=watch, name="watch-parent", daemon=True)
    thread.start()
    return thread


def run_engine_core_watching_parent(*args, **kwargs):
    """vLLM's EngineCore process entry, after starting `watch_parent` (a module function, so spawn can pickle it).

    A spawned EngineCore builds the model's config again: the API server's filter of transformers' 7 default-talker
    warnings (`upstream_warnings`) is installed here too."""
    from vllm.v1.engine.core import EngineCoreProc

    from affect_mllm.models.upstream_warnings import quiet_default_talker_warnings

    watch_parent()
    quiet_default_talker_warnings()
    original = getattr(run_engine_core_watching_parent, "original", None) or EngineCoreProc.run_engine_core
    return original(*args, **kwargs)


def engine_core_dies_with_server() -> None:
    """Make the EngineCore processes this (API server) process starts end when it ends, even by SIGKILL."""
    from vllm.v1.engine.core import EngineCoreProc

    current = EngineCoreProc.run_engine_core
    if current is run_engine_core_watching_parent:
        return
    run_engine_core_watching_parent.original = current  # found by forked children; spawned ones import it fresh
    EngineCoreProc.run_engine_core = staticmethod(run_engine_core_watching_parent)


def run_supervised(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Start the server in its own process group, tied to this process; forward stop signals; wait for it.

    Returns:
        The server's exit status (negative: killed by that signal).
    """
    # own session: a terminal's Ctrl-C reaches only us, and we stop the server (and its engine) cleanly
    server = subprocess.Popen(list(command), env=dict(env), start_new_session=True,
                              preexec_fn=die_with_parent_preexec())
    previous = {signum: signal.signal(signum, lambda signum, _frame: signal_group(server, signum))
                for signum in FORWARDED_SIGNALS}
    try:
        return server.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if server.poll() is None:  # we are leaving for another reason (an exception): do not orphan the server
            stop_server(server, SHUTDOWN_GRACE_S)
        signal_group(server, signal.SIGKILL)  # whatever the server left behind (its engine, if it was killed)


def stop_server(server: subprocess.Popen, grace_s: float = 60.0) -> None:
    """Stop a server started in its own session (`affect-mllm serve` or the server itself): SIGTERM, then SIGKILL
    to its process group if it has not ended within `grace_s`."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            signal_group(server, signal.SIGKILL)
            server.wait()


def signal_group(server: subprocess.Popen, signum: int) -> None:
    """Send `signum` to the process group the server leads (nothing if the group is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signum)
