"""The sample schema and JSONL manifests: one record per clip, its inputs and its (optional) labels.

This module owns the column names that rewards and metrics take as keyword arguments
(`emotion`, `emotions`, `aus`, `valence`, `arousal`, `rationale`). A manifest is a JSONL file, one `Sample` per
line, readable by `datasets.load_dataset("json", data_files=...)`. Media paths are relative to the manifest's
folder (its root); a path that resolves outside the root is rejected unless it lies under one of the extra media
roots that the manifest declares in its sidecar `<name>.meta.json` (`{"media_roots": ["../clips"]}`), which
is how synthesized shards point at clips of other datasets.

Example record:
    {"id": "c1", "video": "clips/c1.mp4", "emotion": "happy", "emotions": ["happy", "delighted"],
     "aus": [{"au": 6, "intensity": 3.2}, {"au": 12, "intensity": 4.1}], "valence": 0.8, "arousal": 0.5,
     "rationale": "Cheeks raised (AU6) and lip corners pulled up (AU12) ...", "source": {"dataset": "synthfacs"}}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from affect_mllm.jsonl import JsonlError, atomic_write_json, read_jsonl, write_jsonl

# An AU counts as present when its intensity reaches FACS level A (trace), i.e. 1 on the 0-5 scale. Every
# conversion from intensities to AU sets (rewards, metrics, prompts) goes through `Sample.au_set`/`present_aus`.
AU_PRESENCE_THRESHOLD = 1.0

MEDIA_FIELDS = ("video", "audio", "image", "frames")
LABEL_FIELDS = ("emotion", "emotions", "aus", "valence", "arousal", "rationale", "face_emotion", "voice_emotion")
# The one statement of the numeric labels' ranges: manifests (Sample) and evaluate's files (predictions.py) check
# values with `check_label_value`.
LABEL_RANGES = {"valence": (-1.0, 1.0), "arousal": (-1.0, 1.0), "intensity": (0.0, 5.0)}


def check_label_value(name: str, value: Any) -> float | None:
    """A numeric label (valence, arousal, AU intensity) as a float, or ValueError saying what is wrong with it.

    Example:
        >>> check_label_value("valence", -0.5), check_label_value("arousal", None)
        (-0.5, None)
        >>> check_label_value("valence", 7)
        Traceback (most recent call last):
        ...
        ValueError: valence 7 is outside [-1.0, 1.0]
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    low, high = LABEL_RANGES[name]
    if not low <= value <= high:
        raise ValueError(f"{name} {value!r} is outside [{low}, {high}]")
    return float(value)


class ManifestError(ValueError):
    """A manifest that cannot be read: names the file (and line) and the fault."""

    def __init__(self, path: str | Path, fault: str, line: int | None = None) -> None:
        self.path, self.fault, self.line = str(path), fault, line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {fault}")


class AUIntensity(BaseModel):
    """One action unit with its intensity on the FACS 0-5 scale (A-E = 1-5; 0 = absent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    au: int = Field(ge=1, le=99)
    intensity: float

    @field_validator("intensity", mode="before")
    @classmethod
    def _intensity_in_range(cls, value: Any) -> float:
        return check_label_value("intensity", value)


class Sample(BaseModel):
    """One clip: inputs (at least one of video/audio/image/frames) and optional labels."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    video: str | None = None
    audio: str | None = None
    image: str | None = None
    frames: str | None = Field(default=None, description="a folder of frame images, in name order")
    subtitle: str | None = None
    emotion: str | None = Field(default=None, description="categorical label")
    emotions: list[str] | None = Field(default=None, description="open-vocabulary label set")
    aus: list[AUIntensity] | None = None
    valence: float | None = None
    arousal: float | None = None
    rationale: str | None = None
    face_emotion: str | None = Field(default=None, description="emotion shown by the face, where it differs")
    voice_emotion: str | None = Field(default=None, description="emotion carried by the voice, where it differs")
    source: dict[str, Any] | None = Field(default=None, description="provenance: dataset, generator, model ...")

    @field_validator("aus", mode="before")
    @classmethod
    def _aus_as_list(cls, value: Any) -> Any:
        if isinstance(value, dict):
            raise ValueError("aus must be a list of {'au': int, 'intensity': float} records, not a dict")
        return value

    @field_validator("valence", "arousal", mode="before")
    @classmethod
    def _dimension_in_range(cls, value: Any, info) -> float | None:
        return check_label_value(info.field_name, value)

    @model_validator(mode="after")
    def _has_an_input(self) -> Sample:
        if not any(getattr(self, name) for name in MEDIA_FIELDS):
            raise ValueError(f"sample {self.id!r} has none of the inputs {', '.join(MEDIA_FIELDS)}")
        return self

    def au_set(self, threshold: float = AU_PRESENCE_THRESHOLD) -> set[int] | None:
        """AUs at or above the presence threshold; None when the sample has no AU labels."""
        return None if self.aus is None else present_aus(self.aus, threshold)

    def to_record(self) -> dict[str, Any]:
        """The JSON record, without unset (None) fields."""
        return self.model_dump(exclude_none=True)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Sample:
        """Build from a JSON/Arrow row; keys that are None (as Arrow fills them) count as absent."""
        return cls.model_validate(_drop_nones(record))


def present_aus(aus: Iterable[AUIntensity | dict], threshold: float = AU_PRESENCE_THRESHOLD) -> set[int]:
    """The set of AU numbers whose intensity reaches the threshold."""
    out = set()
    for item in aus:
        au, intensity = (item.au, item.intensity) if isinstance(item, AUIntensity) else (item["au"], item["intensity"])
        if intensity >= threshold:
            out.add(int(au))
    return out


def _drop_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nones(v) for v in value]
    return value


@dataclass
class Manifest:
    """Samples of one JSONL file and the roots their media paths may resolve into."""

    path: Path
    samples: list[Sample]
    media_roots: list[Path] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.path.parent.resolve()

    def allowed_roots(self) -> list[Path]:
        return [self.root, *self.media_roots]

    def media_path(self, sample: Sample, kind: str) -> Path | None:
        """Resolve a sample's media path (video/audio/image/frames) and confine it to the allowed roots.

        Raises:
            ManifestError: the path escapes the manifest root and every declared media root.
        """
        value = getattr(sample, kind)
        if value is None:
            return None
        return resolve_confined(value, self.root, self.media_roots, self.path, sample.id)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)


def resolve_confined(value: str, root: Path, extra_roots: Iterable[Path], manifest: Path, sample_id: str) -> Path:
    """Resolve `value` against `root`; reject a result outside `root` and `extra_roots`, or a link that loops."""
    try:
        resolved = (root / value).resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13, OSError after)
        fault = f"sample {sample_id!r}: media path {value!r} cannot be resolved ({exc})"
        raise ManifestError(manifest, fault) from None
    for allowed in (root, *extra_roots):
        if resolved.is_relative_to(allowed):
            return resolved
    raise ManifestError(manifest, f"sample {sample_id!r}: media path {value!r} escapes the manifest root {root} "
                                  "and every declared media root")


def meta_path(manifest_path: str | Path) -> Path:
    """The sidecar metadata file of a manifest: `train.jsonl` -> `train.meta.json`."""
    manifest_path = Path(manifest_path)
    return manifest_path.with_name(manifest_path.stem + ".meta.json")


def read_manifest(path: str | Path) -> Manifest:
    """Read and validate a JSONL manifest (and its sidecar's media roots).

    Raises:
        ManifestError: missing file, bad JSON, invalid record or duplicate id, naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(path, "manifest not found")
    samples, seen = [], set()
    try:
        for line, record in enumerate(read_jsonl(path), start=1):
            try:
                sample = Sample.from_record(record)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "record"
                raise ManifestError(path, f"invalid sample ({where}: {first['msg']})", line) from None
            if sample.id in seen:
                raise ManifestError(path, f"duplicate id {sample.id!r}", line)
            seen.add(sample.id)
            samples.append(sample)
    except JsonlError as exc:
        raise ManifestError(path, exc.fault, exc.line) from None
    return Manifest(path=path, samples=samples, media_roots=_read_media_roots(path))


def _read_media_roots(path: Path) -> list[Path]:
    sidecar = meta_path(path)
    if not sidecar.is_file():
        return []
    import json

    try:
        meta = json.loads(sidecar.read_text())
        roots = meta.get("media_roots", [])
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            raise ValueError("media_roots must be a list of paths")
    except (ValueError, AttributeError) as exc:
        raise ManifestError(sidecar, f"bad manifest metadata: {exc}") from None
    return [(path.parent / r).resolve() for r in roots]


def write_manifest(path: str | Path, samples: Iterable[Sample], media_roots: Iterable[str] = (),
                   meta: dict[str, Any] | None = None) -> Path:
    """Write a manifest atomically; declare extra media roots (relative to its folder) in the sidecar."""
    path = Path(path)
    write_jsonl(path, (s.to_record() for s in samples))
    roots = [str(r) for r in media_roots]
    if roots or meta:
        atomic_write_json(meta_path(path), {**(meta or {}), "media_roots": roots})
    return path
