"""Benchmark caches keyed by what determines the result, never by a folder existing.

A benchmark step (generated data, a trained adapter, a synthesis round) is reused only when the key stored beside
it equals the key of the run asking for it. The key hashes everything that decides the step's output: the files
it reads (recipe YAML, base model folder, data manifest), the arguments it is run with, and the code of the
packages involved (every file under each package, so a code, lexicon or committed-base change retrains). A stale
folder is removed before the step rebuilds it, and the key is written only after the step finished, so a killed
step is redone.

    from cache_key import cached, code_digest, file_digest
    code = code_digest()  # once per run: every step of the run sees the same code
    key = {"code": code, "recipe": file_digest(recipe), "data": file_digest(manifest), "args": argv}
    adapter = cached(work / "sft", key, lambda out: train(out))

Run the test: pytest tests/test_bench_cache.py -q
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CODE_PACKAGES = ("affect_mllm", "training", "inference", "data_synthesis")
KEY_FILE = ".cache_key.json"
SKIPPED = ("__pycache__", ".pyc", ".cache_key.json")


def _files_under(path: Path) -> Iterable[Path]:
    if path.is_file():
        yield path
        return
    for child in sorted(path.rglob("*")):
        if child.is_file() and not any(part.endswith(SKIPPED) for part in child.relative_to(path).parts):
            yield child


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (relative names and bytes, in sorted order).

    Raises:
        FileNotFoundError: the path does not exist (a key must never silently ignore an input).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: cannot key a cache on a path that does not exist")
    digest = hashlib.sha256()
    for file in _files_under(path):
        digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        digest.update(b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def package_dir(name: str) -> Path:
    """The folder an importable package is loaded from (the checkout, for an editable install)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"no package named {name!r}")
    return Path(next(iter(spec.submodule_search_locations)))


def code_digest(packages: Iterable[str] = CODE_PACKAGES) -> dict[str, str]:
    """{package: digest of every file under it}; compute it once per run and put it in every key."""
    return {name: file_digest(package_dir(name)) for name in packages}


def key_digest(parts: Mapping[str, Any]) -> str:
    """The digest of a key's parts (JSON with sorted keys; paths and other objects as their str)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def stored_key(folder: Path) -> dict | None:
    """The key a finished step left in `folder`, or None."""
    path = Path(folder) / KEY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def cached(folder: str | Path, parts: Mapping[str, Any], build: Callable[[Path], Any]) -> Path:
    """`folder`, built by `build(folder)` unless it holds a finished build with the same key.

    Args:
        folder: where the step's output lives.
        parts: what determines the output (JSON-able values; digests from file_digest/code_digest).
        build: writes the output into the folder it is given (which exists and is empty).

    Returns:
        The folder.
    """
    from affect_mllm.jsonl import atomic_write_json

    folder = Path(folder)
    normal = json.loads(json.dumps(parts, sort_keys=True, default=str))
    digest = key_digest(normal)
    previous = stored_key(folder)
    if previous is not None and previous["digest"] == digest:
        logger.info("%s: reused (same key %s)", folder, digest[:12])
        return folder
    if folder.exists():
        old = (previous or {}).get("parts", {})
        changed = sorted(k for k in set(normal) | set(old) if old.get(k) != normal.get(k))
        logger.info("%s: rebuilt (%s)", folder, f"changed: {', '.join(changed)}" if previous else "no key")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    build(folder)
    atomic_write_json(folder / KEY_FILE, {"digest": digest, "parts": normal})
    return folder
