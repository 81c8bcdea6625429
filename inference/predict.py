"""`affect-mllm predict`: a manifest (or a folder of clips) -> predictions `affect-mllm evaluate --pred` reads.

    affect-mllm predict data/val.jsonl --out runs/pred.jsonl --model tiny-omni --adapter runs/sft/adapter
    affect-mllm predict clips/ --out runs/pred.csv --server http://127.0.0.1:8000 --api-key KEY

Each clip's completion is appended to a progress log (`OUT.progress.jsonl`, `affect_mllm.jsonl.AppendLog`: one
fsynced line per clip) the moment it is known, so a run killed with SIGKILL loses nothing it finished, and the
restarted run skips every id the log holds: none is redone, none duplicated. A clip that cannot be used (a
MediaError, a path outside the manifest's roots, a 400/413 from the server) is logged with its error and
skipped; a later run retries those only with `--retry-errors`. Failures that concern the whole run (server
down, wrong key, unknown model) stop it; the log keeps what was done. The output is written at the end,
atomically, in manifest order, from the log: project JSONL, the official `name,openset` CSV or `*-openset.npz`
(`affect_mllm.predictions.write_records`); clips with errors are left out (evaluate counts them as missing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from affect_mllm.jsonl import read_jsonl
from affect_mllm.media import MediaError
from affect_mllm.schema import Manifest, ManifestError, Sample
from inference.engine import SamplingSettings

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus")
CLIP_ERRORS = (MediaError, ManifestError)  # faults of one clip: recorded, and the run goes on
CLIP_STATUS_CODES = (400, 413, 422)  # server answers that concern the clip, not the run


def manifest_of_folder(folder: str | Path) -> Manifest:
    """Samples for every video and audio file under a folder (ids: the relative path without suffix)."""
    folder = Path(folder).resolve()
    samples = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        suffix, relative = path.suffix.lower(), path.relative_to(folder).as_posix()
        if suffix in VIDEO_SUFFIXES:
            samples.append(Sample(id=relative[: -len(suffix)], video=relative))
        elif suffix in AUDIO_SUFFIXES:
            samples.append(Sample(id=relative[: -len(suffix)], audio=relative))
    if not samples:
        raise ManifestError(folder, f"no video ({' '.join(VIDEO_SUFFIXES)}) or audio file in the folder")
    ids = [s.id for s in samples]
    if len(set(ids)) != len(ids):
        raise ManifestError(folder, "two files differ only in their suffix; give a manifest instead")
    return Manifest(path=folder / ".folder.jsonl", samples=samples)  # the path only sets the root: the folder


def load_inputs(path: str | Path) -> Manifest:
    """A manifest file, or a folder of clips turned into samples on the fly."""
    from affect_mllm.schema import read_manifest

    return manifest_of_folder(path) if Path(path).is_dir() else read_manifest(path)


def progress_log_path(out: str | Path) -> Path:
    """Where a run writing `out` keeps its progress: `pred.csv` -> `pred.csv.progress.jsonl`."""
    out = Path(out)
    return out.with_name(out.name + ".progress.jsonl")


def prediction_entry(sample_id: str, text: str, finish_reason: str) -> dict:
    """The progress-log line of a completed clip (the output's fields are parsed from `raw` when written)."""
    from affect_mllm.answer import parse_answer

    return {
        "id": sample_id,
        "raw": text,
        "finish_reason": finish_reason,
        "well_formed": parse_answer(text).well_formed.all,
    }


def error_entry(sample_id: str, error: BaseException) -> dict:
    """The progress-log line of a clip that could not be used."""
    return {"id": sample_id, "error": f"{type(error).__name__}: {error}"}


def is_clip_error(error: BaseException) -> bool:
    """Whether an exception concerns one clip (recorded, skipped) rather than the run (raised)."""
    status = getattr(error, "status_code", None)
    return isinstance(error, CLIP_ERRORS) or (status in CLIP_STATUS_CODES)


@dataclass(frozen=True)
class LogState:
    """What a progress log holds: the ids predicted, and those that failed (and were never predicted)."""

    predicted: dict[str, dict]
    failed: dict[str, dict]


def read_log(path: Path) -> LogState:
    """Read a progress log (a torn last line, from a kill, is ignored); a prediction outranks an error."""
    predicted: dict[str, dict] = {}
    failed: dict[str, dict] = {}
    if path.exists():
        for entry in read_jsonl(path, appended_log=True):
            if "error" in entry:
                failed.setdefault(entry["id"], entry)
            else:
                predicted.setdefault(entry["id"], entry)
    return LogState(predicted, {k: v for k, v in failed.items() if k not in predicted})


Outcome = tuple[str, dict]  # (sample id, log entry)


class EnginePredictor:
    """Predictions from a local engine (HF or vLLM), in batches."""

    def __init__(
        self,
        engine,
        manifest: Manifest,
        task: str,
        sampling: SamplingSettings,
        adapter: str | None = None,
        batch_size: int = 8,
    ) -> None:
        self.engine, self.manifest, self.task, self.sampling = engine, manifest, task, sampling
        self.adapter, self.batch_size = adapter, batch_size

    def predict(self, samples: Sequence[Sample]) -> Iterator[Outcome]:
        """Yield each sample's log entry; a batch's entries come once the batch is generated."""
        from inference.engine import request_from_sample

        for start in range(0, len(samples), self.batch_size):
            requests = []
            for sample in samples[start : start + self.batch_size]:
                try:
                    requests.append(
                        request_from_sample(sample, self.manifest, self.task, self.engine.spec, adapter=self.adapter)
                    )
                except CLIP_ERRORS as error:
                    yield sample.id, error_entry(sample.id, error)
            if not requests:
                continue
            results = self.engine.generate(requests, self.sampling)
            for request, candidates in zip(requests, results, strict=True):
                best = candidates[0]
                yield request.request_id, prediction_entry(request.request_id, best.text, best.finish_reason)


class ServerPredictor:
    """Predictions from a running server through the client helper, `concurrency` requests at a time."""

    def __init__(
        self,
        client,
        manifest: Manifest,
        task: str,
        sampling: SamplingSettings,
        media: str = "data",
        model: str | None = None,
        concurrency: int = 4,
        guided: bool = False,
    ) -> None:
        self.client, self.manifest, self.task, self.sampling = client, manifest, task, sampling
        self.media, self.model, self.concurrency, self.guided = media, model, concurrency, guided

    def predict_one(self, sample: Sample) -> dict:
        """One sample's log entry; clip errors become error entries, run errors propagate."""
        from inference.client import Clip

        try:
            clip = Clip.from_sample(sample, self.manifest)
            answer = self.client.analyze(
                clip, self.task, media=self.media, model=self.model, sampling=self.sampling, guided=self.guided
            )
        except Exception as error:
            if is_clip_error(error):
                return error_entry(sample.id, error)
            raise
        return prediction_entry(sample.id, answer.text, answer.finish_reason)

    def predict(self, samples: Sequence[Sample]) -> Iterator[Outcome]:
        """Yield entries as requests finish (any order); the caller appends them from this one thread."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self.predict_one, sample): sample.id for sample in samples}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:  # a run error (or the caller stopping): send no more requests
                for future in futures:
                    future.cancel()


@dataclass(frozen=True)
class RunSummary:
    """How a run went: clips in the input, already in the log before it, predicted and failed now."""

    total: int
    resumed: int
    predicted: int
    failed: int


def run_predictions(
    manifest: Manifest,
    predictor,
    log_path: Path,
    *,
    retry_errors: bool = False,
    on_outcome: Callable[[str, dict], None] | None = None,
) -> RunSummary:
    """Predict every sample the log does not hold yet, appending each outcome durably as it comes.

    Args:
        manifest: the samples.
        predictor: an EnginePredictor or ServerPredictor.
        log_path: the progress log (created; resumed when present).
        retry_errors: predict again the clips whose last attempt failed.
        on_outcome: called after each append (progress display).

    Returns:
        The run's counts.
    """
    from affect_mllm.jsonl import AppendLog

    log = AppendLog(log_path)  # cuts a torn last line left by a kill before appending
    state = read_log(log_path)
    skip = set(state.predicted) | (set() if retry_errors else set(state.failed))
    todo = [sample for sample in manifest.samples if sample.id not in skip]
    predicted = failed = 0
    for sample_id, entry in predictor.predict(todo):
        log.append(entry)
        failed += "error" in entry
        predicted += "error" not in entry
        if on_outcome is not None:
            on_outcome(sample_id, entry)
    return RunSummary(total=len(manifest), resumed=len(manifest) - len(todo), predicted=predicted, failed=failed)


def write_output(manifest: Manifest, log_path: Path, out: Path) -> int:
    """Write the predictions of the log in manifest order, in the format of `out`'s suffix (atomic).

    Returns:
        The number of records written.
    """
    from affect_mllm.answer import parse_answer
    from affect_mllm.predictions import record_from_answer, write_records

    predicted = read_log(log_path).predicted
    records = [
        record_from_answer(sample.id, parse_answer(predicted[sample.id]["raw"]))
        for sample in manifest.samples
        if sample.id in predicted
    ]
    write_records(out, records)
    return len(records)


def well_formed_share(log_path: Path, ids: Iterable[str]) -> float:
    """The share of these ids whose prediction followed the answer grammar."""
    predicted = read_log(log_path).predicted
    entries = [predicted[i] for i in ids if i in predicted]
    return sum(e["well_formed"] for e in entries) / len(entries) if entries else 0.0
