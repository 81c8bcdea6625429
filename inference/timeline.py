"""`affect-mllm timeline VIDEO --out DIR`: emotion over time, window by window, resumable.

    affect-mllm timeline talk.mp4 --out runs/talk --model tiny-omni --adapter runs/sft/adapter
    affect-mllm timeline talk.mp4 --out runs/talk --server http://127.0.0.1:8000 --subtitle talk.srt

The video is cut into sliding windows on the model's frame grid (`affect_mllm.timeline.windows`); each window is
decoded alone and asked the open-vocabulary question and the valence/arousal question (`EngineAnswerer`,
`ServerAnswerer`). Every finished window is appended at once to DIR/timeline.jsonl (`jsonl.AppendLog`: one fsynced
line), so a run killed with SIGKILL keeps every finished window and the rerun asks only the others: none is
redone or duplicated. DIR/timeline.meta.json records what the timeline is of (the video, the window grid, the
tasks, who answers); a rerun that differs is refused rather than mixed. At the end the log is rewritten in window
order and the outputs are derived from it: timeline.csv, segments.json (the smoothing of
`affect_mllm.timeline.segments`), timeline.png and timeline.html.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from affect_mllm.jsonl import AppendLog, atomic_write_bytes, atomic_write_json, atomic_write_text, write_jsonl
from affect_mllm.media import MediaError, MediaSettings, probe_media
from affect_mllm.timeline.records import csv_text
from affect_mllm.timeline.segments import SmoothingSettings, segment_list
from affect_mllm.timeline.subtitles import read_srt, words_in
from affect_mllm.timeline.windows import Window, WindowGrid, owned_spans, plan_windows, snap_grid
from inference.timeline_answer import WindowJob

logger = logging.getLogger(__name__)

DEFAULT_TASKS = ("ov_emotion", "valence_arousal")
OUTPUTS = ("timeline.jsonl", "timeline.csv", "segments.json", "timeline.png", "timeline.html")


class TimelineError(ValueError):
    """A timeline that cannot be made or resumed: names the file and the fault."""

    def __init__(self, path: str | Path, fault: str) -> None:
        self.path, self.fault = str(path), fault
        super().__init__(f"{path}: {fault}")


@dataclass(frozen=True)
class TimelineSettings:
    """What a timeline is made of (window grid, tasks) and how it is shown (smoothing, page)."""

    window_s: float = 4.0
    stride_s: float = 2.0
    tasks: tuple[str, ...] = DEFAULT_TASKS
    smoothing: SmoothingSettings = field(default_factory=SmoothingSettings)
    embed_video_mb: float = 16.0  # timeline.html carries the video inside it up to this size

    def __post_init__(self) -> None:
        from affect_mllm.prompts import TASKS

        unknown = [task for task in self.tasks if task not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be some of {', '.join(TASKS)}, got {list(self.tasks)}")


@dataclass(frozen=True)
class TimelineRun:
    """What a run did: windows in the timeline, resumed from the log, answered now, broken or refused in all;
    the seconds the answering took and the video seconds it covered (the spans its windows speak for)."""

    out: Path
    windows: int
    resumed: int
    answered: int
    broken: int
    segments: int
    seconds: float
    video_s: float


def clip_duration(video: Path) -> float:
    """The video's duration in seconds from its header (MediaError when it states none)."""
    header = probe_media(video)
    duration = header.video_duration_s or header.duration_s
    if not duration:
        raise MediaError(video, "the header states no duration: a timeline needs one (remux the file, e.g. to mp4)")
    return float(duration)


def run_meta(video: Path, grid: WindowGrid, duration_s: float, settings: TimelineSettings, answerer: str) -> dict:
    """What determines a timeline's records; a resumed run must match it."""
    stat = video.stat()
    return {"video": str(video.resolve()), "video_bytes": stat.st_size, "video_mtime_ns": stat.st_mtime_ns,
            "duration_s": duration_s, "grid": asdict(grid), "tasks": list(settings.tasks), "answerer": answerer}


def _check_meta(path: Path, meta: dict) -> None:
    import json

    if not path.exists():
        atomic_write_json(path, meta)
        return
    old = json.loads(path.read_text())
    changed = sorted(key for key in meta if old.get(key) != meta[key])
    if changed:
        raise TimelineError(path, f"this folder holds a timeline made with other {', '.join(changed)} "
                                  f"({', '.join(f'{k}={old.get(k)!r}' for k in changed)}); use another --out")


def _jobs(windows: Sequence[Window], subtitle: Path | None) -> list[WindowJob]:
    cues = read_srt(subtitle) if subtitle is not None else []
    return [WindowJob(w, words_in(cues, w.start_s, w.end_s)) for w in windows]


def run_timeline(video: str | Path, out: str | Path, answerer, *, settings: TimelineSettings = TimelineSettings(),
                 media: MediaSettings = MediaSettings(), subtitle: str | Path | None = None,
                 on_record: Callable[[dict], None] | None = None,
                 on_start: Callable[[int, int], None] | None = None) -> TimelineRun:
    """Answer every window the log does not hold yet, then write the outputs.

    Args:
        video: the video file.
        out: the output folder (created; resumed when it holds a timeline of the same video and settings).
        answerer: an `EngineAnswerer` or `ServerAnswerer`.
        settings: window grid, tasks, smoothing.
        media: the model's media settings (its fps sets the frame grid).
        subtitle: an SRT file; each window gets the words spoken in it.
        on_record: called after each window is logged (progress display).
        on_start: called once with (windows in all, windows still to answer).

    Returns:
        The run's counts.

    Raises:
        MediaError: the video cannot be read. SubtitleError: a bad SRT file. TimelineError: `out` holds a
            different timeline.
    """
    video, out = Path(video), Path(out)
    duration = clip_duration(video)
    grid = snap_grid(settings.window_s, settings.stride_s, media.fps, media.temporal_patch_size)
    windows = plan_windows(duration, grid)
    out.mkdir(parents=True, exist_ok=True)
    _check_meta(out / "timeline.meta.json", run_meta(video, grid, duration, settings, answerer.describe()))
    log = AppendLog(out / "timeline.jsonl", key="window")  # cuts a torn last line left by a kill
    done = log.done_keys()
    todo = [job for job in _jobs(windows, subtitle and Path(subtitle)) if job.window.index not in done]
    if on_start is not None:
        on_start(len(windows), len(todo))
    started, answered = time.monotonic(), 0
    for record in answerer.answer(video, todo):
        log.append(record)
        answered += 1
        if on_record is not None:
            on_record(record)
    seconds = time.monotonic() - started
    records = finish_outputs(out, video, windows, duration, settings)
    return TimelineRun(out=out, windows=len(windows), resumed=len(windows) - len(todo), answered=answered,
                       broken=sum(r["status"] != "ok" for r in records), segments=_count_segments(out),
                       seconds=seconds, video_s=_covered_s(windows, duration, {job.window.index for job in todo}))


def _covered_s(windows: Sequence[Window], duration_s: float, indices: set[int]) -> float:
    spans = owned_spans(list(windows), duration_s)
    return round(sum(end - start for w, (start, end) in zip(windows, spans, strict=True) if w.index in indices), 6)


def _count_segments(out: Path) -> int:
    import json

    return len(json.loads((out / "segments.json").read_text())["segments"])


def finish_outputs(out: Path, video: Path, windows: Sequence[Window], duration_s: float,
                   settings: TimelineSettings) -> list[dict]:
    """Rewrite the log in window order and derive the other outputs from it (each written atomically)."""
    from affect_mllm.timeline.page import timeline_html, video_source
    from affect_mllm.timeline.plot import timeline_png

    by_window = {r["window"]: r for r in AppendLog(out / "timeline.jsonl", key="window").records()}
    missing = [w.index for w in windows if w.index not in by_window]
    if missing:
        raise TimelineError(out / "timeline.jsonl", f"{len(missing)} windows have no record (first: {missing[0]})")
    records = [by_window[w.index] for w in windows]
    write_jsonl(out / "timeline.jsonl", records)
    atomic_write_text(out / "timeline.csv", csv_text(records))
    segments = segment_list(records, windows, duration_s, settings.smoothing)
    atomic_write_json(out / "segments.json", {"smoothing": asdict(settings.smoothing),
                                              "duration_s": duration_s, "segments": segments})
    png = timeline_png(records, windows, segments, duration_s)
    atomic_write_bytes(out / "timeline.png", png)
    page = out / "timeline.html"
    source = video_source(video, page, settings.embed_video_mb)
    atomic_write_text(page, timeline_html(records, segments, duration_s, source, png, title=video.name))
    return records
