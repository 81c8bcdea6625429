"""Helpers for tests that kill a real process mid-run: start, wait for a marker file, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file


def kill_when(command: list[str], marker: Path, *, cwd: Path, env: dict, timeout: float = 300.0) -> None:
    """Run `command` and SIGKILL it as soon as `marker` exists (a checkpoint, a log line's file...)."""
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert marker.exists(), f"{marker} never appeared"


def assert_same_adapter(first_dir: Path, second_dir: Path, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Two saved LoRA adapters hold the same tensors (up to float noise)."""
    first = load_file(first_dir / "adapter_model.safetensors")
    second = load_file(second_dir / "adapter_model.safetensors")
    assert first.keys() == second.keys() and first
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=rtol, atol=atol)


def affect_mllm_command() -> list[str]:
    """The `affect-mllm` console script of this interpreter's environment (or `python -m affect_mllm.cli`)."""
    script = Path(sys.executable).with_name("affect-mllm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "affect_mllm.cli"]
