"""The official OV-MER tables, for the tests that check the metric against them.

Loaded by `pytest_plugins = ["ovmer_tables_fixtures"]` in the test modules that use them. The tables are never
shipped: the cases run only when shared/ovmer_emotion_wheel exists beside the repository, and are skipped, with
the folder named, otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

OFFICIAL_TABLES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "ovmer_emotion_wheel"


@pytest.fixture(scope="session")
def official_tables_dir() -> Path:
    """The folder of the official tables; skips the test when it is absent."""
    if not OFFICIAL_TABLES_DIR.is_dir():
        pytest.skip(f"official OV-MER tables not found at {OFFICIAL_TABLES_DIR}")
    return OFFICIAL_TABLES_DIR


@pytest.fixture(scope="session")
def official(official_tables_dir):
    """The official tables, loaded once per session."""
    from affect_mllm.ovmer_tables import load_ovmer_tables

    return load_ovmer_tables(official_tables_dir)
