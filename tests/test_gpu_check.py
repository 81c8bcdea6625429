"""The GPU check's CPU smoke (`benchmarks/gpu_check.py --cpu --tiny`) and its failure handling.

Run: pytest tests/test_gpu_check.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _gpu_check():
    sys.path.insert(0, str(SCRIPT.parent))
    import gpu_check

    return gpu_check


def test_cpu_smoke_runs_every_section_but_vllm(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--tiny", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    sections = result["sections"]
    assert result["mode"] == "cpu-tiny"
    assert not [name for name, outcome in sections.items() if "error" in outcome], sections
    assert sections["env"]["attention"] in ("flash_attention_2", "sdpa") and sections["env"]["torch"]
    sft = sections["sft tiny-omni-base"]
    assert sft["on"]["tokens_per_s"] > 0 and sft["off"]["tokens_per_s"] > 0 and sft["on"]["estimate_gib"] > 0
    assert sections["grpo hf"]["s_per_step"] > 0 and Path(sections["grpo hf"]["adapter"]).is_dir()
    assert "skipped" in sections["grpo vllm"] and "skipped" in sections["serving"]


def test_a_failing_or_slow_section_is_recorded_not_raised(tmp_path):
    gpu_check = _gpu_check()
    args = Namespace(out=str(tmp_path), cpu=True, tiny=True)
    assert "timed out" in gpu_check.run_child("setup", {}, args, timeout=0.5)["error"]
    assert "KeyError" in gpu_check.run_child("no-such-section", {}, args, timeout=60)["error"]
