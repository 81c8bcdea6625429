"""Write: a versioned dataset shard of the kept rationales, in the project schema, with provenance on every record.

`shards/shard-<round>.jsonl` is a manifest like any other (`schema.read_manifest` reads it, SFT trains on it): each
record is the pool clip with its labels, its media paths rewritten relative to the shard's folder, `rationale` =
the kept rationale and `source` = how it was made (model, adapter, round, prompt, sampling settings, reward
scores, attempt, candidate index and seed, plus the clip's original `source` under `origin`). The sidecar
`shard-<round>.meta.json` declares the media roots the records point into (the pool manifests' roots), the shard
format version, the record count and the SHA-256 of the JSONL bytes. Both files are written atomically; the
sidecar last, so a sidecar whose hash matches marks a finished shard.

Media paths are relative, so two runs whose output folders sit at the same depth next to the same pool write
byte-identical shards.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from affect_mllm.jsonl import atomic_write_json
from affect_mllm.schema import MEDIA_FIELDS, Manifest, Sample, meta_path, read_manifest, write_manifest

SHARD_VERSION = "affect-mllm.synthesis-shard/1"
SHARD_DIR = "shards"


def shard_path(output_dir: str | Path, round_index: int) -> Path:
    """Where round `round_index`'s shard lives."""
    return Path(output_dir) / SHARD_DIR / f"shard-{round_index}.jsonl"


def relocate(sample: Sample, manifest: Manifest, folder: Path) -> Sample:
    """The sample with every media path resolved (and confined) by its manifest, then made relative to `folder`.

    Raises:
        ManifestError: a media path escapes the manifest's roots.
    """
    updates = {}
    for kind in MEDIA_FIELDS:
        path = manifest.media_path(sample, kind)
        if path is not None:
            updates[kind] = Path(os.path.relpath(path, folder.resolve())).as_posix()
    return sample.model_copy(update=updates)


def media_roots_for(manifests: Iterable[Manifest], folder: Path) -> list[str]:
    """Every root the manifests' media may lie in, relative to `folder`, sorted and without repeats."""
    roots = {
        Path(os.path.relpath(root, folder.resolve())).as_posix()
        for manifest in manifests
        for root in manifest.allowed_roots()
    }
    return sorted(roots)


def synthetic_id(clip_id: str, round_index: int) -> str:
    """A shard record's id: the clip's id and the round, so a clip kept in two rounds trains as two samples."""
    return f"{clip_id}.synth{round_index}"


def synthetic_sample(
    sample: Sample, manifest: Manifest, folder: Path, round_index: int, rationale: str, provenance: Mapping[str, Any]
) -> Sample:
    """A pool clip turned into a shard record: its own id, relocated media, the kept rationale, provenance."""
    source = {**provenance, "clip_id": sample.id, "round": round_index}
    if sample.source:
        source["origin"] = sample.source
    update = {"id": synthetic_id(sample.id, round_index), "rationale": rationale, "source": source}
    return relocate(sample, manifest, folder).model_copy(update=update)


def content_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_shard(
    path: str | Path, samples: Sequence[Sample], media_roots: Sequence[str], meta: Mapping[str, Any]
) -> dict:
    """Write a shard and its sidecar atomically.

    Args:
        path: the shard's JSONL path.
        samples: its records (already relocated relative to the shard's folder).
        media_roots: the roots the records point into, relative to the shard's folder.
        meta: what to record about the shard (round, model ...).

    Returns:
        The sidecar's content: version, records, sha256, media_roots and `meta`.
    """
    path = Path(path)
    write_manifest(path, samples, media_roots=media_roots)
    info = {
        "version": SHARD_VERSION,
        **meta,
        "records": len(samples),
        "sha256": content_sha256(path),
        "media_roots": list(media_roots),
    }
    atomic_write_json(meta_path(path), info)
    return info


def read_shard(path: str | Path) -> Manifest:
    """Read a shard as a manifest, checking its version and content hash.

    Raises:
        ManifestError: unreadable records or escaping media paths.
        ValueError: a missing sidecar, another format version, or bytes that do not match the recorded hash.
    """
    import json

    path = Path(path)
    sidecar = meta_path(path)
    if not sidecar.is_file():
        raise ValueError(f"{path}: no shard sidecar {sidecar.name}")
    meta = json.loads(sidecar.read_text())
    if meta.get("version") != SHARD_VERSION:
        raise ValueError(f"{sidecar}: shard version {meta.get('version')!r}, expected {SHARD_VERSION!r}")
    if meta.get("sha256") != content_sha256(path):
        raise ValueError(f"{path}: content does not match the sha256 in {sidecar.name} (changed or half-written)")
    return read_manifest(path)


def write_training_manifest(path: str | Path, parts: Sequence[Manifest]) -> Path:
    """One manifest of every sample of `parts` (seed data and shards), relocated next to `path`, for SFT.

    Raises:
        ValueError: two parts share a sample id.
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    samples, seen = [], set()
    for manifest in parts:
        for sample in manifest.samples:
            if sample.id in seen:
                raise ValueError(f"sample id {sample.id!r} appears twice in the retraining data ({manifest.path})")
            seen.add(sample.id)
            samples.append(relocate(sample, manifest, folder))
    return write_manifest(path, samples, media_roots=media_roots_for(parts, folder))
