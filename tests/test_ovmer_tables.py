"""Tests of the OV-MER table loader in affect_mllm/ovmer_tables.py.

Run: pytest tests/test_ovmer_tables.py -q

Most tests write small invented tables (weather words, not the official ones) into a temporary folder in the
official file layout. The npz-versus-rebuild test on the official tables runs only when
../shared/ovmer_emotion_wheel (beside the repository) exists and is skipped, with the folder named, otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from affect_mllm.metrics.wheel import wheel_scores
from affect_mllm.ovmer_tables import ENV_VAR, OvmerTablesError, load_ovmer_tables, resolve_tables_dir
from affect_mllm.wheels import map_word

pytest_plugins = ["ovmer_tables_fixtures"]

# wheel1: " Fair " is stored lower-cased and stripped; blank cells repeat the cell above.
WHEEL1_ROWS = [
    (" Fair ", "sunny", "radiant"),
    (None, None, "glowing"),
    (None, "breezy", "airy"),
    ("foul", "rainy", "drizzly"),
    (None, "windy", "gusty"),
]
# wheel2: glowing appears twice; the later row wins, as in the reference's dict.
WHEEL2_ROWS = [
    ("calm", "still", "hushed"),
    (None, "mild", "glowing"),
    ("wild", "raging", "gusty"),
    (None, None, "glowing"),
]
# Per run: (wheel word, synonyms cell). Runs 3-8 repeat run 3.
SYNONYM_RUNS = {
    1: [("radiant", "[shining, beaming, beaming]"), ("gusty", "blustery"), ("hushed", None)],
    2: [("Radiant", "['shining', 'bright']"), ("gusty", "[blustery]"), ("hushed", "quiet")],
    3: [("glowing", "bright"), ("gusty", None), ("hushed", None)],
}
FORMAT_ROWS = [
    ("radiant", "radiantly,radiance"),
    ("shining", "shine,shines"),
    ("beaming", "beam"),
    ("bright", None),
    ("gusty", "gust,gusts"),
    ("blustery", ""),
    ("hushed", "hush"),
    ("quiet", "quietly"),
    ("glowing", "glow,shine"),
]


def write_toy_tables(folder: Path, with_npz: bool = False) -> Path:
    """Write the invented tables above in the official layout; optionally also their npz."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("wheel1", WHEEL1_ROWS), ("wheel2", WHEEL2_ROWS)):
        pd.DataFrame(rows, columns=["level1", "level2", "level3"]).to_excel(folder / f"{name}.xlsx", index=False)
    columns = {}
    for run in range(1, 9):
        rows = SYNONYM_RUNS[min(run, 3)]
        columns[f"word_run{run}"] = [word for word, _ in rows]
        columns[f"synonym_run{run}"] = [synonyms for _, synonyms in rows]
    pd.DataFrame(columns).to_excel(folder / "synonym.xlsx", index=False)
    pd.DataFrame(FORMAT_ROWS, columns=["name", "format"]).to_csv(folder / "format.csv", index=False)
    if with_npz:
        rebuilt = load_ovmer_tables(folder, rebuild=True)
        # The reference's npz holds set-ordered synonym lists; reverse them to show order does not matter.
        np.savez(
            folder / "wheel_mapping.npz",
            format_mapping={form: list(bases) for form, bases in rebuilt.format_mapping.items()},
            raw_mapping={word: list(reversed(targets)) for word, targets in rebuilt.raw_mapping.items()},
            wheel_map_whole={w: {lv: dict(m) for lv, m in levels.items()} for w, levels in rebuilt.wheel_map.items()},
        )
    return folder


@pytest.fixture
def toy_folder(tmp_path) -> Path:
    return write_toy_tables(tmp_path / "toy_tables")


def test_resolve_prefers_the_named_folder(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "from/env")
    assert resolve_tables_dir("from/flag") == Path("from/flag")
    assert resolve_tables_dir(None) == Path("from/env")
    assert resolve_tables_dir("") == Path("from/env")
    assert os.environ[ENV_VAR] == "from/env"


def test_resolve_returns_none_when_nothing_is_set(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_tables_dir(None) is None
    assert ENV_VAR not in os.environ


def test_rebuilt_wheel_map_fills_blanks_and_applies_the_level2_rule(toy_folder):
    wheels = load_ovmer_tables(toy_folder)
    level1, level2 = wheels.wheel_map["wheel1"]["level1"], wheels.wheel_map["wheel1"]["level2"]
    # Blank level1/level2 cells repeat the cell above: glowing sits under fair/sunny, airy under fair/breezy.
    assert level1 == {w: "fair" for w in ("fair", "sunny", "radiant", "glowing", "breezy", "airy")} | {
        w: "foul" for w in ("foul", "rainy", "drizzly", "windy", "gusty")
    }
    # A level1 word maps at level2 to its alphabetically first child: fair -> breezy (before sunny), foul -> rainy.
    assert [level2[w] for w in ("fair", "foul", "glowing", "airy")] == ["breezy", "rainy", "sunny", "breezy"]
    # wheel2: glowing under calm/mild, then under wild/raging; the later row wins on both levels.
    assert wheels.wheel_map["wheel2"]["level1"]["glowing"] == "wild"
    assert wheels.wheel_map["wheel2"]["level2"]["glowing"] == "raging"
    assert wheels.wheel_map["wheel2"]["level2"]["wild"] == "raging"


def test_rebuilt_synonyms_merge_the_eight_runs(toy_folder):
    raw_mapping = load_ovmer_tables(toy_folder).raw_mapping
    # bright: run 2 -> radiant, runs 3-8 -> glowing; merged through a set, stored sorted.
    assert raw_mapping["bright"] == ("glowing", "radiant")
    # Every wheel word of a run maps to itself; "Radiant" in run 2 is lower-cased first.
    assert raw_mapping["radiant"] == ("radiant",)
    assert raw_mapping["quiet"] == ("hushed",)
    # beaming is listed twice in run 1 only; the reference de-duplicates only words seen in two runs.
    assert raw_mapping["beaming"] == ("radiant", "radiant")
    assert "airy" not in raw_mapping  # a wheel word no run lists gets no synonym entry, as in the reference


def test_rebuilt_format_mapping_keeps_file_order(toy_folder):
    format_mapping = load_ovmer_tables(toy_folder).format_mapping
    # shine is a form of shining (row 2) and of glowing (row 9); each base also maps to itself.
    assert format_mapping["shine"] == ("shining", "glowing")
    assert format_mapping["radiance"] == ("radiant",)
    assert format_mapping["bright"] == ("bright",)  # blank format cell: only the self-mapping
    assert format_mapping["blustery"] == ("blustery",)


def test_rebuilt_toy_tables_drive_the_metric(toy_folder):
    wheels = load_ovmer_tables(toy_folder)
    # shine -> bases shining, glowing -> candidates [radiant, glowing] -> sorted: glowing first.
    assert map_word("Shine", wheels, "wheel1") == "fair"
    assert map_word("shine", wheels, "wheel2") == "wild"
    scores = wheel_scores(["[radiant, hushed]"], ["[bright, quiet, beam]"], wheels)
    # wheel1: radiant -> fair, hushed not in wheel1 -> G = {fair}; bright -> glowing -> fair, quiet -> hushed
    # (dropped), beam -> beaming -> radiant -> fair -> P = {fair}: F = 1.
    # wheel2: radiant dropped, hushed -> calm -> G = {calm}; bright -> wild, quiet -> calm, beam dropped
    # -> P = {wild, calm}: precision 1/2, recall 1, F = 2/3.  Mean over wheels: F = 5/6, P = 3/4, R = 1.
    assert [scores["per_wheel"][w]["f"] for w in ("wheel1", "wheel2")] == pytest.approx([1, 2 / 3], abs=1e-12)
    assert (scores["f"], scores["precision"], scores["recall"]) == pytest.approx((5 / 6, 3 / 4, 1), abs=1e-12)


def test_npz_and_rebuilt_routes_give_identical_toy_tables(tmp_path):
    folder = write_toy_tables(tmp_path / "with_npz", with_npz=True)
    from_npz = load_ovmer_tables(folder)
    rebuilt = load_ovmer_tables(folder, rebuild=True)
    assert from_npz == rebuilt
    assert dict(from_npz.raw_mapping) == dict(rebuilt.raw_mapping)


def test_loaded_tables_are_read_only_and_cached(toy_folder):
    wheels = load_ovmer_tables(toy_folder)
    with pytest.raises(TypeError):
        wheels.format_mapping["new"] = ("new",)
    with pytest.raises(TypeError):
        wheels.wheel_map["wheel1"]["level1"]["new"] = "fair"
    assert load_ovmer_tables(str(toy_folder)) is wheels


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(OvmerTablesError, match="does not exist") as caught:
        load_ovmer_tables(tmp_path / "absent")
    assert caught.value.path == (tmp_path / "absent").resolve()


def test_folder_without_tables_is_named(tmp_path):
    with pytest.raises(OvmerTablesError, match="neither wheel_mapping.npz nor any wheelN.xlsx"):
        load_ovmer_tables(tmp_path)


@pytest.mark.parametrize("missing", ["synonym.xlsx", "format.csv"])
def test_missing_source_file_is_named(toy_folder, missing):
    (toy_folder / missing).unlink()
    with pytest.raises(OvmerTablesError, match="is missing") as caught:
        load_ovmer_tables(toy_folder)
    assert caught.value.path.name == missing


def test_missing_column_is_named(toy_folder):
    pd.DataFrame({"level1": ["fair"], "level2": ["sunny"]}).to_excel(toy_folder / "wheel1.xlsx", index=False)
    with pytest.raises(OvmerTablesError, match=r"lacks the columns \['level3'\]") as caught:
        load_ovmer_tables(toy_folder)
    assert caught.value.path.name == "wheel1.xlsx"


def test_synonym_word_outside_the_wheels_is_rejected(toy_folder):
    frame = pd.read_excel(toy_folder / "synonym.xlsx")
    frame.loc[0, "word_run4"] = "cloudy"
    frame.to_excel(toy_folder / "synonym.xlsx", index=False)
    with pytest.raises(OvmerTablesError, match="'word_run4' row 2: 'cloudy' is in no wheel"):
        load_ovmer_tables(toy_folder)


def test_non_text_cell_is_rejected(toy_folder):
    pd.DataFrame([("fair", "sunny", 7)], columns=["level1", "level2", "level3"]).to_excel(
        toy_folder / "wheel2.xlsx", index=False
    )
    with pytest.raises(OvmerTablesError, match="'level3' row 2 holds 7, not text"):
        load_ovmer_tables(toy_folder)


def test_form_whose_base_has_no_synonyms_is_rejected(toy_folder):
    rows = [*FORMAT_ROWS, ("cloudy", "clouds")]
    pd.DataFrame(rows, columns=["name", "format"]).to_csv(toy_folder / "format.csv", index=False)
    with pytest.raises(OvmerTablesError, match="base 'cloudy', which no synonym entry lists"):
        load_ovmer_tables(toy_folder)


def test_unreadable_npz_is_named(tmp_path):
    (tmp_path / "wheel_mapping.npz").write_bytes(b"not an archive")
    with pytest.raises(OvmerTablesError, match="cannot be read as an npz archive") as caught:
        load_ovmer_tables(tmp_path)
    assert caught.value.path.name == "wheel_mapping.npz"


def test_npz_missing_an_array_is_named(tmp_path):
    np.savez(tmp_path / "wheel_mapping.npz", format_mapping={}, raw_mapping={})
    with pytest.raises(OvmerTablesError, match=r"lacks the arrays \['wheel_map_whole'\]"):
        load_ovmer_tables(tmp_path)


def test_npz_with_a_malformed_table_is_named(tmp_path):
    wheel_map = {"wheel1": {"level1": {"fair": "fair"}}}  # no level2
    np.savez(tmp_path / "wheel_mapping.npz", format_mapping={}, raw_mapping={}, wheel_map_whole=wheel_map)
    with pytest.raises(OvmerTablesError, match="does not map exactly the levels"):
        load_ovmer_tables(tmp_path)


class _RunsCode:
    """Pickles as a call of os.remove on a marker file: what a crafted npz could do under np.load(allow_pickle)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return os.remove, (str(self.target),)


def test_npz_naming_any_other_callable_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "marker"
    marker.write_text("still here")
    np.savez(tmp_path / "wheel_mapping.npz", format_mapping={"x": _RunsCode(marker)}, raw_mapping={},
             wheel_map_whole={})
    with pytest.raises(OvmerTablesError, match="refused to load posix.remove"):
        load_ovmer_tables(tmp_path)
    assert marker.exists()
    with np.load(tmp_path / "wheel_mapping.npz", allow_pickle=True) as archive:  # the control: numpy would run it
        archive["format_mapping"]
    assert not marker.exists()


def test_official_npz_and_rebuild_are_identical(official_tables_dir):
    from_npz = load_ovmer_tables(official_tables_dir)
    rebuilt = load_ovmer_tables(official_tables_dir, rebuild=True)
    assert from_npz is not rebuilt
    assert from_npz == rebuilt
    # Sizes documented in the tables' README.
    assert (len(rebuilt.format_mapping), len(rebuilt.raw_mapping), len(rebuilt.wheel_map)) == (7356, 1255, 5)


def test_official_rebuild_matches_the_shipped_npz_entry_by_entry(official_tables_dir):
    with np.load(official_tables_dir / "wheel_mapping.npz", allow_pickle=True) as archive:
        shipped = {key: archive[key].item() for key in archive.files}
    rebuilt = load_ovmer_tables(official_tables_dir, rebuild=True)
    # format lists match exactly, order and repeats included; key order too.
    assert [(form, list(bases)) for form, bases in rebuilt.format_mapping.items()] == list(
        shipped["format_mapping"].items()
    )
    # synonym lists match as multisets (their order in the npz came from a Python set).
    assert list(rebuilt.raw_mapping) == list(shipped["raw_mapping"])
    assert all(list(rebuilt.raw_mapping[word]) == sorted(targets) for word, targets in shipped["raw_mapping"].items())
    assert rebuilt.wheel_map == shipped["wheel_map_whole"]
