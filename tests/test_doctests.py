"""Every docstring example in the project's packages runs and gives the output it shows.

Run: pytest tests/test_doctests.py -q

Modules are found by reading the source for ``>>>`` (a module without examples is not imported, so no heavy
optional dependency is loaded for nothing); each one with examples is imported and run with `doctest.testmod`
(examples marked ``# doctest: +SKIP``, such as ones that need a dataset, are not run).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("affect_mllm", "inference", "training", "data_synthesis")


def modules_with_examples() -> list[str]:
    """Dotted names of the package modules whose source holds a docstring example."""
    names = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = path.relative_to(REPO_ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = modules_with_examples()


def test_the_examples_are_found():
    # Modules known to carry examples; a scan that misses them finds nothing to check.
    assert {"affect_mllm.answer", "affect_mllm.wheels", "affect_mllm.metrics.wheel", "affect_mllm.jsonl",
            "affect_mllm.rewards"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
