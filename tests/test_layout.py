"""Layout rules that a reviewer would otherwise check by hand: arrows point one way, no machine paths.

Run: pytest tests/test_layout.py -q
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
UPPER_LAYERS = ("training", "inference", "data_synthesis")
CODE_FOLDERS = ("affect_mllm", "training", "inference", "data_synthesis", "benchmarks", "tests")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_library_imports_no_upper_layer():
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(name for name in _imported_modules(path)
                                                 if name.split(".")[0] in UPPER_LAYERS)
        for path in (REPO_ROOT / "affect_mllm").rglob("*.py")
    }
    assert not {path: names for path, names in offenders.items() if names}


def test_no_machine_paths_in_the_code():
    # An absolute checkout path, or a note outside the repository, means nothing on another machine.
    pattern = re.compile(rf"cd /\w|{re.escape(str(REPO_ROOT))}|(?<![\w/.])shared/notes/")  # this checkout's path
    found = [f"{path.relative_to(REPO_ROOT)}:{number}"
             for folder in CODE_FOLDERS for path in sorted((REPO_ROOT / folder).rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if pattern.search(line) and path.name != "test_layout.py"]
    assert not found, found
