"""DISFA (AU intensities) and BP4D (AU occurrences): one sample per labelled video frame.

Layouts, as the AU-detection code of ``CVI-SZU/ME-GraphAU`` reads them (``tool/DISFA_image_label_process.py``,
``tool/BP4D_image_label_process.py``, ``tool/README.md``):

- DISFA: ``ActionUnit_Labels/<SN001>/<SN001>_au<N>.txt``, one file per subject and AU (AUs 1, 2, 4, 5, 6, 9, 12,
  15, 17, 20, 25, 26), lines ``<frame>,<intensity>`` with intensities 0-5 on the FACS scale. Frame images are
  extracted by the user; ME-GraphAU's convention, followed here, is ``img/<SN001>/<i>.png`` with i the 0-based
  position of the frame in the label files.
- BP4D: ``AUCoding/AU_OCC/<F001>_<T1>.csv``, one file per subject and task; the header names the frame column
  ``0`` and each AU column by its number; cells are 1 (present), 0 (absent) or 9 (not coded). Frame images
  follow ME-GraphAU's ``img/<F001>/<T1>/<frame>.jpg``.

Splits: a comma-separated list of subjects (``SN001,SN002`` / ``F001,M007``); None reads every subject. The
subject-exclusive 3-fold partitions that AU papers report are listed in ME-GraphAU's tool scripts.

AU values: DISFA intensities are kept as they are (0-5). BP4D occurrences become intensity
`AU_PRESENCE_THRESHOLD` (present) or 0 (absent); "not coded" AUs are left out of the sample, and
`source["au_scale"]` ("intensity" / "occurrence") tells metrics whether intensities are real. Note that AU
papers usually count a DISFA AU as present from intensity 2 (ME-GraphAU does); the project's threshold is 1,
and a metric can pass its own threshold to `Sample.au_set`.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType

from affect_mllm.adapters.common import (
    AdapterError,
    Where,
    build_sample,
    cell,
    check_unique,
    first_existing,
    read_table,
)
from affect_mllm.schema import AU_PRESENCE_THRESHOLD, Sample

DISFA_LABELS = "ActionUnit_Labels"
DISFA_FILE = re.compile(r"(?P<subject>SN\d+)_au(?P<au>\d+)\.txt", re.IGNORECASE)
BP4D_LABELS = "AUCoding/AU_OCC"
BP4D_FILE = re.compile(r"(?P<subject>[FM]\d+)_(?P<task>T\d+)\.csv", re.IGNORECASE)
BP4D_FRAME_COLUMN = "0"
BP4D_CODES = MappingProxyType({"1": AU_PRESENCE_THRESHOLD, "0": 0.0})
BP4D_NOT_CODED = "9"
FACS_MAX = 5


def _chosen_subjects(split: str | None, available: list[str], dataset: str) -> list[str]:
    """The subjects a split names (comma-separated), or all of them for None."""
    if split is None:
        return available
    wanted = [s.strip() for s in split.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in available]
    if unknown or not wanted:
        raise ValueError(f"{dataset}: unknown subject(s) {unknown or split!r}; the folder has {available}")
    return wanted


def _disfa_intensities(path: Path) -> dict[int, float]:
    """frame -> intensity of one DISFA AU file."""
    intensities = {}
    for where, row in read_table(path, ["frame", "intensity"], names=["frame", "intensity"]):
        frame, value = cell(row, "frame", where), cell(row, "intensity", where)
        if not frame.isdigit() or not value.isdigit() or int(value) > FACS_MAX:
            raise where.error(f"expected '<frame>,<intensity 0-5>', got {frame!r},{value!r}")
        intensities[int(frame)] = float(value)
    return intensities


def _disfa_subject(root: Path, subject: str) -> list[Sample]:
    """The frames of one DISFA subject, with every AU file of that subject merged per frame."""
    folder = root / DISFA_LABELS / subject
    files = {int(m["au"]): p for p in sorted(folder.iterdir()) if (m := DISFA_FILE.fullmatch(p.name))}
    if not files:
        raise AdapterError(folder, f"no {subject}_au<N>.txt label files")
    per_au = {au: _disfa_intensities(path) for au, path in sorted(files.items())}
    frames = sorted(next(iter(per_au.values())))
    for au, intensities in per_au.items():
        if sorted(intensities) != frames:
            raise AdapterError(files[au], f"frames differ from those of {files[min(per_au)].name}")
    samples = []
    for position, frame in enumerate(frames):
        where = Where(files[min(per_au)], position + 1)
        image = first_existing(root, [f"img/{subject}/{position}.png", f"img/{subject}/{position}.jpg"])
        samples.append(build_sample(
            f"disfa_{subject}_{frame:05d}", where,
            {"dataset": "disfa", "subject": subject, "frame": frame, "au_scale": "intensity"},
            image=image, aus=[{"au": au, "intensity": per_au[au][frame]} for au in per_au]))
    return samples


def read_disfa(root: Path, split: str | None = None) -> list[Sample]:
    """DISFA frames with AU intensities; split = comma-separated subjects (None: all)."""
    labels = root / DISFA_LABELS
    if not labels.is_dir():
        raise AdapterError(labels, "DISFA label folder not found")
    available = sorted(p.name for p in labels.iterdir() if p.is_dir())
    samples = []
    for subject in _chosen_subjects(split, available, "disfa"):
        samples += _disfa_subject(root, subject)
    return check_unique(samples, Where(labels))


def _bp4d_aus(row: dict[str, str], au_columns: list[str], where: Where) -> list[dict[str, float]]:
    """The coded AUs of one BP4D frame row (present -> threshold, absent -> 0; not coded left out)."""
    aus = []
    for column in au_columns:
        value = row[column]
        if value == BP4D_NOT_CODED:
            continue
        if value not in BP4D_CODES:
            raise where.error(f"AU{column} is {value!r}; BP4D occurrence cells are 0, 1 or 9 (not coded)")
        aus.append({"au": int(column), "intensity": BP4D_CODES[value]})
    return aus


def _bp4d_file(root: Path, path: Path, subject: str, task: str) -> list[Sample]:
    """The frames of one BP4D subject-task occurrence file."""
    rows = read_table(path, [BP4D_FRAME_COLUMN])
    au_columns = [c for c in (rows[0][1] if rows else {}) if c != BP4D_FRAME_COLUMN]
    bad = [c for c in au_columns if not c.isdigit() or not 1 <= int(c) <= 99]
    if bad:
        raise AdapterError(path, f"column(s) {bad} are not AU numbers")
    samples = []
    for where, row in rows:
        frame = cell(row, BP4D_FRAME_COLUMN, where)
        if not frame.isdigit():
            raise where.error(f"frame {frame!r} is not a frame number")
        samples.append(build_sample(
            f"bp4d_{subject}_{task}_{frame}", where,
            {"dataset": "bp4d", "subject": subject, "task": task, "frame": int(frame), "au_scale": "occurrence"},
            image=f"img/{subject}/{task}/{frame}.jpg", aus=_bp4d_aus(row, au_columns, where)))
    return samples


def read_bp4d(root: Path, split: str | None = None) -> list[Sample]:
    """BP4D frames with AU occurrences; split = comma-separated subjects (None: all)."""
    labels = root / BP4D_LABELS
    if not labels.is_dir():
        raise AdapterError(labels, "BP4D occurrence folder not found")
    files = [(m["subject"], m["task"], p) for p in sorted(labels.iterdir()) if (m := BP4D_FILE.fullmatch(p.name))]
    if not files:
        raise AdapterError(labels, "no <subject>_<task>.csv occurrence files")
    chosen = set(_chosen_subjects(split, sorted({s for s, _, _ in files}), "bp4d"))
    samples = []
    for subject, task, path in files:
        if subject in chosen:
            samples += _bp4d_file(root, path, subject, task)
    return check_unique(samples, Where(labels))
