"""Benchmark caches (benchmarks/cache_key.py): a changed input rebuilds, an unchanged one is reused.

Run: pytest tests/test_bench_cache.py -q
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def cache_key():
    spec = importlib.util.spec_from_file_location("cache_key", BENCHMARKS / "cache_key.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_file_digest_follows_content_not_time(cache_key, tmp_path: Path) -> None:
    recipe = tmp_path / "sft.yaml"
    recipe.write_text("max_steps: 10\n")
    first = cache_key.file_digest(recipe)
    recipe.write_text("max_steps: 10\n")  # rewritten, same bytes
    assert cache_key.file_digest(recipe) == first
    recipe.write_text("max_steps: 11\n")
    assert cache_key.file_digest(recipe) != first
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        cache_key.file_digest(tmp_path / "missing.yaml")


def test_folder_digest_sees_every_file_and_its_name(cache_key, tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "sub").mkdir(parents=True)
    (base / "config.json").write_text("{}")
    (base / "sub" / "model.safetensors").write_bytes(b"\x00\x01")
    first = cache_key.file_digest(base)
    (base / "__pycache__").mkdir()
    (base / "__pycache__" / "x.pyc").write_bytes(b"ignored")
    assert cache_key.file_digest(base) == first
    (base / "sub" / "model.safetensors").write_bytes(b"\x00\x02")
    second = cache_key.file_digest(base)
    assert second != first
    (base / "sub" / "model.safetensors").rename(base / "sub" / "other.safetensors")
    assert cache_key.file_digest(base) not in (first, second)


def test_code_digest_covers_the_packages(cache_key) -> None:
    digest = cache_key.code_digest(("data_synthesis",))
    assert set(digest) == {"data_synthesis"} and len(digest["data_synthesis"]) == 64
    with pytest.raises(ModuleNotFoundError):
        cache_key.code_digest(("no_such_package_here",))


def test_cached_reuses_same_key_and_rebuilds_a_changed_one(cache_key, tmp_path: Path) -> None:
    builds = []

    def build(folder: Path) -> None:
        builds.append(folder)
        (folder / "adapter.txt").write_text(f"build {len(builds)}")

    out = tmp_path / "sft"
    parts = {"recipe": "a" * 64, "args": ["--max_steps", "10"]}
    assert cache_key.cached(out, parts, build) == out
    assert cache_key.cached(out, dict(parts), build) == out
    assert len(builds) == 1 and (out / "adapter.txt").read_text() == "build 1"
    (out / "stale.txt").write_text("left by the old build")
    cache_key.cached(out, {**parts, "args": ["--max_steps", "11"]}, build)
    assert len(builds) == 2 and (out / "adapter.txt").read_text() == "build 2"
    assert not (out / "stale.txt").exists()
    assert cache_key.stored_key(out)["parts"]["args"] == ["--max_steps", "11"]


def test_a_folder_without_a_key_or_with_a_failed_build_is_rebuilt(cache_key, tmp_path: Path) -> None:
    out = tmp_path / "grpo"
    out.mkdir()
    (out / "run_card.json").write_text("{}")  # what the old folder-exists check reused

    def fail(folder: Path) -> None:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        cache_key.cached(out, {"k": 1}, fail)
    assert not (out / "run_card.json").exists() and cache_key.stored_key(out) is None
    cache_key.cached(out, {"k": 1}, lambda folder: (folder / "done.txt").write_text("ok"))
    assert sorted(p.name for p in out.iterdir()) == [cache_key.KEY_FILE, "done.txt"]
