"""Benchmark adapters: read public emotion datasets, in their published layouts, into project manifests.

Each reader is ``read_<name>(root, split=None) -> list[Sample]``; its module docstring names the public files
whose layout it follows, its splits and its label table (dataset label -> one of the 8 categories or None; the
dataset's own word is always kept in `emotions`). Readers give media paths relative to `root`; `convert`
rebases them onto the output manifest and, when the dataset folder lies outside the manifest's folder, declares
it as a media root in the manifest's sidecar. Clips missing on disk are kept (their expected path is written),
logged and counted, never fatal; bad label files raise `AdapterError` naming the file, row and fault.

Example:
    >>> from affect_mllm.adapters import convert, summarize             # doctest: +SKIP
    >>> convert("mafw", "/data/MAFW", "manifests/mafw.jsonl", split="single_test_1")  # doctest: +SKIP
    >>> summarize("manifests/mafw.jsonl").line()                        # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from affect_mllm.adapters.au_datasets import read_bp4d, read_disfa
from affect_mllm.adapters.common import AdapterError, Reader
from affect_mllm.adapters.dfew import read_dfew
from affect_mllm.adapters.fea20k import read_fea20k
from affect_mllm.adapters.ferv39k import read_ferv39k
from affect_mllm.adapters.mafw import read_mafw
from affect_mllm.adapters.meld import read_meld
from affect_mllm.adapters.mer import read_mer2023, read_mer2024, read_mer2025, read_ovmerdplus
from affect_mllm.adapters.sentiment import read_cmumosei, read_cmumosi, read_sims, read_simsv2
from affect_mllm.schema import LABEL_FIELDS, MEDIA_FIELDS, Sample, read_manifest, write_manifest

__all__ = ["ADAPTERS", "AdapterError", "ConversionSummary", "convert", "summarize"]

logger = logging.getLogger(__name__)

ADAPTERS: Mapping[str, Reader] = MappingProxyType({
    "mer2023": read_mer2023, "mer2024": read_mer2024, "mer2025": read_mer2025, "ovmerdplus": read_ovmerdplus,
    "dfew": read_dfew, "mafw": read_mafw, "ferv39k": read_ferv39k, "meld": read_meld, "fea20k": read_fea20k,
    "disfa": read_disfa, "bp4d": read_bp4d,
    "cmumosi": read_cmumosi, "cmumosei": read_cmumosei, "sims": read_sims, "simsv2": read_simsv2,
})
MISSING_EXAMPLES = 3  # how many missing paths a warning quotes


@dataclass(frozen=True)
class ConversionSummary:
    """What a converted manifest holds: samples, how many carry each label field, media files not on disk."""

    manifest: Path
    samples: int
    labels: Mapping[str, int]
    missing_media: int

    def line(self) -> str:
        """One line for people: '12 samples in OUT; labels: emotion 10, emotions 12; missing media: 0'."""
        labels = ", ".join(f"{name} {count}" for name, count in self.labels.items() if count) or "none"
        return f"{self.samples} samples in {self.manifest}; labels: {labels}; missing media: {self.missing_media}"


def _relative(path: Path, start: Path) -> str:
    """`path` relative to `start`, with POSIX separators (manifests are shared across systems)."""
    return Path(os.path.relpath(path, start)).as_posix()


def _rebase(samples: list[Sample], root: Path, out_dir: Path) -> tuple[list[Sample], list[str]]:
    """Media paths re-expressed relative to the manifest folder, and the media roots that this needs.

    Raises:
        AdapterError: a media path that is absolute or climbs out of the dataset folder.
    """
    rebased = []
    for sample in samples:
        update = {}
        for field in MEDIA_FIELDS:
            value = getattr(sample, field)
            if value is None:
                continue
            if Path(value).is_absolute() or ".." in Path(value).parts:
                raise AdapterError(root, f"sample {sample.id!r}: {field} {value!r} leaves the dataset folder")
            update[field] = _relative(root / value, out_dir)
        rebased.append(sample.model_copy(update=update))
    roots = [] if root.is_relative_to(out_dir) else [_relative(root, out_dir)]
    return rebased, roots


def _missing_media(samples: list[Sample], root: Path) -> list[str]:
    """Media paths (relative to root) that are not on disk."""
    return [value for sample in samples for field in MEDIA_FIELDS
            if (value := getattr(sample, field)) is not None and not (root / value).exists()]


def convert(name: str, src_folder: str | Path, out_manifest: str | Path, split: str | None = None) -> Path:
    """Read dataset `name` from `src_folder` and write it as a manifest at `out_manifest`.

    Args:
        name: a key of ADAPTERS.
        src_folder: the dataset folder, in its published layout.
        out_manifest: the JSONL manifest to write (its sidecar records adapter, split, counts, media roots).
        split: the dataset's split (see the adapter's docstring); None: its default.
    Returns:
        the manifest path.
    Raises:
        ValueError: unknown dataset or split; AdapterError (a ValueError) for bad input files.
    """
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(ADAPTERS)}")
    root = Path(src_folder).resolve()
    if not root.is_dir():
        raise AdapterError(src_folder, "dataset folder not found")
    samples = ADAPTERS[name](root, split)
    missing = _missing_media(samples, root)
    if missing:
        logger.warning("%s: %d media file(s) not found under %s, e.g. %s", name, len(missing), root,
                       ", ".join(missing[:MISSING_EXAMPLES]))
    out = Path(out_manifest)
    rebased, media_roots = _rebase(samples, root, out.parent.resolve())
    meta = {"adapter": name, "split": split, "samples": len(samples), "missing_media": len(missing)}
    return write_manifest(out, rebased, media_roots=media_roots, meta=meta)


def summarize(manifest_path: str | Path) -> ConversionSummary:
    """Count the samples, the label fields they carry and the media files missing, of a written manifest."""
    manifest = read_manifest(manifest_path)
    labels = {field: sum(getattr(s, field) not in (None, []) for s in manifest) for field in LABEL_FIELDS}
    missing = sum(not path.exists() for s in manifest for field in MEDIA_FIELDS
                  if (path := manifest.media_path(s, field)) is not None)
    return ConversionSummary(Path(manifest_path), len(manifest), MappingProxyType(labels), missing)
