"""Benchmark steps run as users run them, each cached by what determines it (benchmarks/cache_key.py).

- `run_module`: `python -m MODULE ARGS` in a subprocess from the repository root (a recipe script, as users run it);
- `synthfacs_set`: a SynthFACS split, regenerated when its arguments or the library's code change;
- `recipe_key`: the key of a training step: the code, the recipe file, the base model's files, the training manifest
  and the arguments.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cache_key import cached, file_digest

REPO = Path(__file__).resolve().parents[1]


def run_module(module: str, args: list[str]) -> None:
    """Run `python -m module *args`, failing loudly with the tail of its stderr."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{proc.stderr[-4000:]}")


def synthfacs_set(folder: Path, n: int, *, seed: int, split: str, level: int, code: dict) -> Path:
    """A SynthFACS split in `folder`, generated unless it holds one made with the same arguments and code."""
    from affect_mllm.synthfacs.generate import generate_synthfacs

    key = {"code": code["affect_mllm"], "n": n, "seed": seed, "split": split, "level": level}
    cached(folder, key, lambda out: generate_synthfacs(out, n, seed=seed, split=split, difficulty=level, workers=2))
    return folder / f"{split}.jsonl"


def recipe_key(code: dict, recipe: str, base: str, manifest: Path, argv: list[str]) -> dict:
    """What determines a training step's output (the adapter a recipe script writes)."""
    from affect_mllm.models.registry import resolve

    return {"code": code, "recipe": file_digest(REPO / recipe), "base": file_digest(resolve(base).source),
            "data": file_digest(manifest), "args": argv}
