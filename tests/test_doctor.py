"""`affect-mllm doctor`: names the CPU-stack faults in a deliberately broken environment and `--fix` repairs them.

The broken environment is a throwaway venv that sees this project's packages through a `.pth` line and holds a
fake CUDA-linked torchaudio (its import raises OSError as the real PyPI wheel does beside CPU torch).
Run: .venv/bin/python -m pytest tests/test_doctor.py -q
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from affect_mllm.doctor import Finding, check, fix

FAKE_TORCHAUDIO = 'raise OSError("libc10_cuda.so: cannot open shared object file: No such file or directory")\n'


def _broken_env(folder: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(folder)
    python = folder / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "project_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    package = site / "torchaudio"
    package.mkdir()
    (package / "__init__.py").write_text(FAKE_TORCHAUDIO)
    dist = site / "torchaudio-2.11.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: torchaudio\nVersion: 2.11.0\n")
    (dist / "INSTALLER").write_text("pip\n")
    (dist / "RECORD").write_text("torchaudio/__init__.py,,\ntorchaudio-2.11.0.dist-info/METADATA,,\n"
                                 "torchaudio-2.11.0.dist-info/INSTALLER,,\ntorchaudio-2.11.0.dist-info/RECORD,,\n")
    return python


@pytest.mark.integration
def test_doctor_names_faults_and_fix_repairs_them(tmp_path):
    python = str(_broken_env(tmp_path / "env"))
    before = {f.name: f for f in check(python, with_vllm=False)}
    assert before["torchaudio"].ok is False and "libc10_cuda" in before["torchaudio"].detail
    assert "uninstalls" in before["torchaudio"].fix
    # torchvision from PyPI is a CUDA build: without the hook its import dies on the missing nms operator
    assert before["torchvision"].ok is False and "torchvision::nms" in before["torchvision"].detail
    assert before["transformers.AutoProcessor"].ok is False
    actions = fix(list(before.values()), python)
    assert any("uninstalled torchaudio" in a for a in actions)
    assert any("import hook" in a for a in actions)
    after = {f.name: f for f in check(python, with_vllm=False)}
    assert "torchaudio" not in after  # gone, not merely passing
    assert after["torchvision"].ok and after["transformers.AutoProcessor"].ok and after["torch"].ok


def test_active_environment_is_healthy():
    findings = {f.name: f for f in check(sys.executable, with_vllm=False)}
    faults = [f"{f.name}: {f.detail}" for f in findings.values() if f.ok is False and f.name != "decord"]
    assert not faults, faults


def test_fix_does_nothing_on_a_healthy_report():
    assert fix([Finding("torch", True, ""), Finding("ffmpeg binary", None, "not found")]) == []
