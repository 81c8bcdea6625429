"""`affect-mllm predict`: a manifest (or a folder of clips) -> predictions `affect-mllm evaluate --pred` reads.

    affect-mllm predict data/val.jsonl --out runs/pred.jsonl --model tiny-omni --adapter runs/sft/adapter
    affect-mllm predict clips/ --out runs/pred.csv --server http://127.0.0.1:8000 --api-key KEY

Each clip's completion is appended to a progress log (`OUT.progress.jsonl`, `affect_mllm.jsonl.AppendLog`: one
fsynced line per clip) the moment it is known, so a run killed with SIGKILL loses nothing it finished, and the
restarted run skips every id the log holds: none is redone, none duplicated. A clip that cannot be used (a
MediaError, a path outside the manifest's roots, a 400/413 from the server) is logged with its error and
skipped; a later run retries those only with `--retry-errors`. Per clip means: its media, a prompt longer than
the engine's `max_model_len` (counted before the engine sees it), the engine refusing that one request, and
the server's 4xx and 5xx answers after the client's bounded retries. Faults that concern every clip (server down
or failing clip after clip, wrong key, unknown model) stop the run with a `RunError` that says so; the log keeps
what was done. The output is written at the end,
atomically, in manifest order, from the log: project JSONL, the official `name,openset` CSV or `*-openset.npz`
(`affect_mllm.predictions.write_records`); clips with errors are left out (evaluate counts them as missing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from affect_mllm.jsonl import read_jsonl
from affect_mllm.media import MediaError
from affect_mllm.schema import MEDIA_FIELDS, Manifest, ManifestError, Sample
from inference.engine import SamplingSettings, prompt_tokens

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus")
CLIP_ERRORS = (MediaError, ManifestError)  # faults of one clip: recorded, and the run goes on
CLIP_STATUS_CODES = (400, 413, 422)  # server answers that concern the clip, not the run
MAX_SERVER_FAILURES_IN_A_ROW = 5  # 5xx answers (after the client's retries) in a row: the server, not the clips


class RunError(RuntimeError):
    """A fault that concerns every clip (the server, the key, the model): the run stops."""


class PromptTooLong(ValueError):
    """A clip whose prompt does not fit the engine's model length."""


def manifest_of_folder(folder: str | Path) -> Manifest:
    """Samples for every video and audio file under a folder (ids: the relative path without suffix).

    Symbolic links with a media suffix are samples even when broken or looping: reading them then fails, and the
    failure is recorded like any other clip's, rather than the file silently missing from the run.
    """
    folder = Path(folder).resolve()
    samples = []
    for path in sorted(p for p in folder.rglob("*") if p.is_symlink() or p.is_file()):
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


def error_entry(sample: Sample, error: BaseException) -> dict:
    """The progress-log line of a clip that could not be used: its id, its file(s) and the fault."""
    files = [getattr(sample, kind) for kind in MEDIA_FIELDS if getattr(sample, kind)]
    return {"id": sample.id, "file": ", ".join(files), "error": f"{type(error).__name__}: {error}"}


def is_clip_error(error: BaseException) -> bool:
    """Whether an exception concerns one clip (recorded, skipped) rather than the run (raised).

    A server's 5xx or timeout after the client's retries counts as the clip's (the predictor stops the run when
    they come clip after clip); no connection, 401/403 (the key) and 404 (the model) concern every clip.
    """
    import openai

    if isinstance(error, CLIP_ERRORS):
        return True
    if isinstance(error, openai.APITimeoutError):
        return True
    status = getattr(error, "status_code", None)
    return status in CLIP_STATUS_CODES or (status is not None and status >= 500)


def is_server_failure(entry: dict) -> bool:
    """Whether a log entry records a server error (5xx, timeout) rather than a refusal of the clip."""
    error = entry.get("error", "")
    return error.startswith(("InternalServerError", "APITimeoutError", "APIStatusError"))


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

    def __init__(self, engine, manifest: Manifest, task: str, sampling: SamplingSettings,
                 adapter: str | None = None, batch_size: int = 8) -> None:
        self.engine, self.manifest, self.task, self.sampling = engine, manifest, task, sampling
        self.adapter, self.batch_size = adapter, batch_size

    def request(self, sample: Sample):
        """The sample's request; MediaError, ManifestError or PromptTooLong when this clip cannot be asked."""
        from inference.engine import request_from_sample

        request = request_from_sample(sample, self.manifest, self.task, self.engine.spec, adapter=self.adapter)
        limit = getattr(self.engine, "max_model_len", None)
        if limit is not None:
            tokens = prompt_tokens(self.engine, request)
            if tokens >= limit:
                raise PromptTooLong(f"the prompt has {tokens} tokens (media included), over the engine's "
                                    f"max_model_len of {limit}: shorten the clip or raise --max-model-len")
        return request

    def predict(self, samples: Sequence[Sample]) -> Iterator[Outcome]:
        """Yield each sample's log entry; a batch's entries come once the batch is generated."""
        for start in range(0, len(samples), self.batch_size):
            requests = {}
            for sample in samples[start : start + self.batch_size]:
                try:
                    requests[sample.id] = (sample, self.request(sample))
                except (*CLIP_ERRORS, PromptTooLong) as error:
                    yield sample.id, error_entry(sample, error)
            for (sample, _), outcome in zip(requests.values(), self._generate([r for _, r in requests.values()]),
                                            strict=True):
                if isinstance(outcome, Exception):
                    yield sample.id, error_entry(sample, outcome)
                else:
                    yield sample.id, prediction_entry(sample.id, outcome.text, outcome.finish_reason)

    def _generate(self, requests: list) -> list:
        """The best candidate of each request, or the ValueError the engine raised for that request alone.

        Engines validate a batch as a whole (vLLM refuses it for one bad prompt): a refused batch is asked again
        one request at a time, so only the clip at fault is recorded. Other exceptions concern the run.
        """
        if not requests:
            return []
        try:
            return [candidates[0] for candidates in self.engine.generate(requests, self.sampling)]
        except ValueError as error:
            if len(requests) == 1:
                return [error]
            logger.warning("the engine refused a batch (%s); asking for its clips one at a time", error)
            return [outcome for request in requests for outcome in self._generate([request])]


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
                return error_entry(sample, error)
            raise
        return prediction_entry(sample.id, answer.text, answer.finish_reason)

    def predict(self, samples: Sequence[Sample]) -> Iterator[Outcome]:
        """Yield entries as requests finish (any order); the caller appends them from this one thread.

        Raises:
            RunError: the server failed `MAX_SERVER_FAILURES_IN_A_ROW` clips in a row (it is the server's fault).
        """
        failures_in_a_row = 0
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self.predict_one, sample): sample.id for sample in samples}
            try:
                for future in as_completed(futures):
                    entry = future.result()
                    yield futures[future], entry
                    failures_in_a_row = failures_in_a_row + 1 if is_server_failure(entry) else 0
                    if failures_in_a_row >= MAX_SERVER_FAILURES_IN_A_ROW:
                        raise RunError(f"the server failed {failures_in_a_row} clips in a row (the last: "
                                       f"{entry['error']}): it is failing every request, not one clip")
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
