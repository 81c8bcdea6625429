"""Who answers a timeline's windows: the local engine (batched) or a running server (concurrent requests).

Both take windows in time order and yield one timeline record per window as soon as it is known. A window is
decoded by `affect_mllm.media.load_segment` (only its own stretch of the file) right before it is asked about, so
at most `batch_size` (engine) or `2 * concurrency` (server) windows are decoded at any moment, whatever the video's
length. A window that does not decode (a broken stretch) becomes a `broken` record and the run goes on.

The engine builds each window's conversation exactly as prediction does (`models.inputs.conversation_for`: the
system prompt, the modalities sentence, the task prompt, the window's subtitle). The server gets each window as a
short clip of its own: the decoded frames and audio re-encoded (H.264 at the model's fps, AAC) and sent through
the same client call as `affect-mllm predict --server` (`AffectClient.analyze`, media as data URLs; `guided`
decodes within each task's tag grammar, as `predict --guided` does).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from affect_mllm.media import MediaError, MediaSettings, SampleMedia, load_segment, write_video
from affect_mllm.timeline.records import answer_record, broken_record, error_record
from affect_mllm.timeline.windows import Window
from inference.engine import SamplingSettings

logger = logging.getLogger(__name__)

CLIP_STATUS_CODES = (400, 413, 422)  # server answers that concern the window, not the run
WINDOW_CRF = 18  # re-encoding a window for the server: near-lossless, it is decoded once more there


@dataclass(frozen=True)
class WindowJob:
    """A window to answer: where it lies in the file and the words spoken in it."""

    window: Window
    subtitle: str | None = None


def decode_window(video: Path, job: WindowJob, settings: MediaSettings) -> SampleMedia:
    """The window's frames (sampled at the model's fps) and audio; MediaError for a broken stretch."""
    return load_segment(video, job.window.start_s, job.window.end_s, settings)


class EngineAnswerer:
    """Windows answered by a local engine (`inference.engine`), `batch_size` windows per generate call."""

    def __init__(self, engine, tasks: Sequence[str], sampling: SamplingSettings, adapter: str | None = None,
                 batch_size: int = 8) -> None:
        self.engine, self.tasks, self.sampling, self.adapter = engine, tuple(tasks), sampling, adapter
        self.batch_size = batch_size
        self.media_settings = engine.spec.media

    def describe(self) -> str:
        """What answers (recorded so that a resumed run cannot mix two models)."""
        return f"engine:{self.engine.spec.source}:{self.adapter or '-'}"

    def answer(self, video: Path, jobs: Sequence[WindowJob]) -> Iterator[dict]:
        """Yield one record per job, in order; the next batch is decoded while this one generates."""
        batches = [jobs[i:i + self.batch_size] for i in range(0, len(jobs), self.batch_size)]
        if not batches:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="timeline-decode") as pool:
            pending = pool.submit(self._decode, video, batches[0])
            for number in range(len(batches)):
                decoded = pending.result()
                if number + 1 < len(batches):
                    pending = pool.submit(self._decode, video, batches[number + 1])
                yield from self._generate(decoded)

    def _decode(self, video: Path, batch: Sequence[WindowJob]) -> list[tuple[WindowJob, SampleMedia | Exception]]:
        out = []
        for job in batch:
            try:
                media = decode_window(video, job, self.media_settings)
                if not self.engine.spec.has_audio:
                    media.audio = None  # a video-only model never hears it, and its prompt must not claim it does
                out.append((job, media))
            except MediaError as error:
                out.append((job, error))
        return out

    def _generate(self, decoded: list[tuple[WindowJob, SampleMedia | Exception]]) -> Iterator[dict]:
        from affect_mllm.models.inputs import conversation_for
        from affect_mllm.schema import Sample
        from inference.engine import GenerationRequest

        requests, owners = [], []
        for job, media in decoded:
            if isinstance(media, Exception):
                continue
            sample = Sample(id=f"window-{job.window.index}", video="window", subtitle=job.subtitle)
            for task in self.tasks:
                conversation = conversation_for(sample, media, task, self.engine.spec)
                requests.append(GenerationRequest(conversation, adapter=self.adapter, request_id=sample.id))
                owners.append((job.window.index, task))
        results = self.engine.generate(requests, self.sampling) if requests else []
        texts: dict[int, dict[str, str]] = {}
        for (index, task), candidates in zip(owners, results, strict=True):
            texts.setdefault(index, {})[task] = candidates[0].text
        for job, media in decoded:
            if isinstance(media, Exception):
                yield broken_record(job.window, media, job.subtitle)
            else:
                yield answer_record(job.window, texts[job.window.index], job.subtitle)


class ServerAnswerer:
    """Windows answered by an OpenAI-compatible server through `AffectClient`, `concurrency` windows at a time."""

    def __init__(self, client, tasks: Sequence[str], sampling: SamplingSettings, model: str | None = None,
                 concurrency: int = 4, media_settings: MediaSettings = MediaSettings(), guided: bool = False) -> None:
        self.client, self.tasks, self.sampling, self.model = client, tuple(tasks), sampling, model
        self.concurrency, self.media_settings, self.guided = concurrency, media_settings, guided

    def describe(self) -> str:
        """What answers (recorded so that a resumed run cannot mix two models)."""
        return f"server:{self.client.openai.base_url}:{self.model or self.client.model}"

    def answer_one(self, video: Path, job: WindowJob) -> dict:
        """One window's record: decoded, re-encoded as a clip of its own, asked once per task."""
        from inference.client import Clip

        try:
            media = decode_window(video, job, self.media_settings)
        except MediaError as error:
            return broken_record(job.window, error, job.subtitle)
        with tempfile.TemporaryDirectory(prefix="affect-mllm-window-") as folder:
            clip = Clip(video=media_clip(media, Path(folder) / "window.mp4", self.media_settings),
                        subtitle=job.subtitle)
            try:
                answers = {task: self.client.analyze(clip, task, media="data", model=self.model,
                                                     sampling=self.sampling, guided=self.guided).text
                           for task in self.tasks}
            except Exception as error:
                if getattr(error, "status_code", None) in CLIP_STATUS_CODES:
                    return error_record(job.window, error, job.subtitle)
                raise  # the server is down, the key is wrong...: the run stops, finished windows are kept
        return answer_record(job.window, answers, job.subtitle)

    def answer(self, video: Path, jobs: Sequence[WindowJob]) -> Iterator[dict]:
        """Yield records as windows finish (any order), with at most 2 x concurrency windows submitted."""
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="timeline-request") as pool:
            yield from bounded_map(pool, lambda job: self.answer_one(video, job), jobs, 2 * self.concurrency)


def bounded_map(pool: ThreadPoolExecutor, func: Callable, items: Sequence, limit: int) -> Iterator:
    """Results of func over items as they finish, never more than `limit` submitted and unfinished."""
    queue = iter(items)
    running: set[Future] = set()
    try:
        while True:
            while len(running) < limit and (item := next(queue, None)) is not None:
                running.add(pool.submit(func, item))
            if not running:
                return
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:  # a run error (or the caller stopping): start nothing more
        for future in running:
            future.cancel()


def media_clip(media: SampleMedia, path: Path, settings: MediaSettings) -> Path:
    """Write decoded media as a clip (frames at the model's fps, its audio) that decodes to the same frames."""
    if media.video is None:
        raise MediaError(path, "no frames to encode")
    return write_video(path, media.video, settings.fps, media.audio, settings.sample_rate, crf=WINDOW_CRF)
