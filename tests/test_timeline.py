"""Timeline: windows on the frame grid, subtitles, records, the smoothing, and runs on a tiny model.

Run: pytest tests/test_timeline.py -q
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affect_mllm.timeline.records import answer_record, broken_record, csv_text
from affect_mllm.timeline.segments import SmoothingSettings, mode_filter, segment_list
from affect_mllm.timeline.subtitles import SubtitleError, parse_srt, read_srt, words_in
from affect_mllm.timeline.windows import Window, owned_spans, plan_windows, snap_grid

pytest_plugins = ["timeline_fixtures"]

HAPPY = "<think>Cheeks raised (AU6), lip corners up (AU12).</think><answer>emotions: joyful, content</answer>"
VA = "<think>Warm and lively.</think><answer>valence: 0.70; arousal: 0.40</answer>"


@settings(max_examples=200, deadline=None)
@given(duration=st.floats(0.3, 400.0), window=st.floats(0.5, 12.0), stride=st.floats(0.3, 12.0),
       fps=st.sampled_from([1.0, 2.0, 4.0]))
def test_windows_cover_the_clip_on_the_frame_grid(duration, window, stride, fps):
    grid = snap_grid(window, stride, fps)
    windows = plan_windows(duration, grid)
    assert windows[0].start_s == 0.0 and windows[-1].end_s == pytest.approx(duration, abs=1e-6)
    for w in windows:
        assert w.start_s * fps == pytest.approx(round(w.start_s * fps), abs=1e-6)  # starts on a frame time
    # every window has the full length, except a clip shorter than one window and a tail up to a frame longer
    for w in windows[:-1]:
        assert w.end_s - w.start_s == pytest.approx(grid.window_s, abs=1e-6)
    tail = windows[-1].end_s - windows[-1].start_s
    assert min(grid.window_s, duration) - 1e-6 <= tail < grid.window_s + grid.frame_s
    assert [w.index for w in windows] == list(range(len(windows)))
    assert all(b.start_s > a.start_s for a, b in zip(windows, windows[1:], strict=False))
    if grid.stride_s <= grid.window_s:  # no stretch left unseen (a longer stride skips some, by choice)
        assert all(b.start_s <= a.end_s for a, b in zip(windows, windows[1:], strict=False))
    spans = owned_spans(windows, duration)  # they tile the clip
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(duration)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_grid_snaps_to_whole_patches_and_frames():
    # 4.3 s at 2 fps = 8.6 frames -> 4 patches of 2 frames = 4.0 s; stride 1.9 s -> 4 frames = 2.0 s
    assert snap_grid(4.3, 1.9, fps=2.0) == snap_grid(4.0, 2.0, fps=2.0)
    assert snap_grid(4.3, 1.9, fps=2.0).window_s == 4.0
    # 13 s, window 4, stride 2: starts 0, 2, 4, 6, 8 (end 12), then the tail window 9-13
    assert [(w.start_s, w.end_s) for w in plan_windows(13.0, snap_grid(4, 2, 2.0))][-2:] == [(8.0, 12.0),
                                                                                           (9.0, 13.0)]
    assert plan_windows(2.5, snap_grid(4, 2, 2.0)) == [Window(0, 0.0, 2.5)]  # shorter than a window
    with pytest.raises(ValueError, match="duration"):
        plan_windows(0.0, snap_grid(4, 2, 2.0))


def test_srt_cues_and_words_per_window(tmp_path):
    srt = tmp_path / "talk.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:02,000\nI can't <b>believe</b> it\n\n"
                   "2\n00:00:05,000 --> 00:00:07,250\nThat's wonderful\nreally\n", encoding="utf-8")
    cues = read_srt(srt)
    assert [(c.start_s, c.end_s, c.text) for c in cues] == [(0.5, 2.0, "I can't believe it"),
                                                           (5.0, 7.25, "That's wonderful really")]
    assert words_in(cues, 0.0, 4.0) == "I can't believe it"
    assert words_in(cues, 2.0, 5.0) is None  # touching ends are not overlaps
    assert words_in(cues, 1.0, 6.0) == "I can't believe it That's wonderful really"
    (tmp_path / "bad.srt").write_text("1\n00:00:03,000 --> 00:00:01,000\nbackwards\n")
    with pytest.raises(SubtitleError, match=r"bad\.srt:2: cue ends"):
        read_srt(tmp_path / "bad.srt")
    with pytest.raises(SubtitleError, match="not an SRT file"):
        parse_srt("just words\n", "notes.txt")


def test_record_merges_the_tasks_answers():
    record = answer_record(Window(3, 6.0, 10.0), {"ov_emotion": HAPPY, "valence_arousal": VA}, "hello")
    assert record["emotion"] == "happy"  # 'joyful' is in the happy category of the lexicon
    assert record["emotions"] == ["joyful", "content"] and record["aus"] == [6, 12]
    assert (record["valence"], record["arousal"], record["parsed"]) == (0.7, 0.4, True)
    assert record["rationale"].startswith("Cheeks raised") and record["subtitle"] == "hello"
    unparsed = answer_record(Window(0, 0.0, 4.0), {"ov_emotion": "I think happy", "valence_arousal": VA})
    assert unparsed["parse"] == {"ov_emotion": False, "valence_arousal": True} and not unparsed["parsed"]
    broken = broken_record(Window(1, 2.0, 6.0), "frames 4..7 do not decode")
    assert broken["status"] == "broken" and broken["emotion"] is None and set(broken) == set(record)
    rows = csv_text([record, broken]).splitlines()
    assert rows[0].startswith("window,start_s,end_s,status") and "joyful; content" in rows[1]
    assert "AU6; AU12" in rows[1] and rows[2].startswith("1,2.0,6.0,broken")


def test_mode_filter_removes_blips_and_keeps_ties():
    assert mode_filter(["sad", "happy", "sad"], 3) == ["sad", "sad", "sad"]
    # i=1: sad 1, happy 1, angry 1 -> tie, own label kept
    assert mode_filter(["sad", "happy", "angry"], 3) == ["sad", "happy", "angry"]
    assert mode_filter([None, None, "sad"], 3) == [None, "sad", "sad"]  # unlabelled windows do not vote
    assert mode_filter(["sad", "happy"], 1) == ["sad", "happy"]


def _records(labels, windows, status=None):
    status = status or ["ok"] * len(labels)
    return [{"status": s, "emotion": e, "emotions": [e] if e else [], "aus": [], "start_s": w.start_s,
             "end_s": w.end_s, "valence": None, "arousal": None, "rationale": e} for e, w, s in
            zip(labels, windows, status, strict=True)]


def test_segments_hand_worked():
    windows = plan_windows(20.0, snap_grid(4, 2, 2.0))  # 9 windows, centres 2, 4, ..., 18 s
    labels = ["sad"] * 4 + ["happy"] * 5
    segments = segment_list(_records(labels, windows), windows, 20.0)
    # the change lies halfway between the centres of windows 3 (8 s) and 4 (10 s)
    assert [(s["start_s"], s["end_s"], s["emotion"]) for s in segments] == [(0.0, 9.0, "sad"), (9.0, 20.0, "happy")]
    assert segments[1]["windows"] == [4, 8] and segments[1]["agreement"] == 1.0
    # a 2-window run (4 s owned) survives min 4 s; min 5 s absorbs it into the longer neighbour
    labels = ["sad"] * 3 + ["angry"] * 2 + ["happy"] * 4
    kept = segment_list(_records(labels, windows), windows, 20.0, SmoothingSettings(1, 4.0))
    assert [s["emotion"] for s in kept] == ["sad", "angry", "happy"]
    absorbed = segment_list(_records(labels, windows), windows, 20.0, SmoothingSettings(1, 5.0))
    # sad owns 0-7 s, happy 11-20 s (longer): angry (7-11 s) joins happy
    assert [(s["start_s"], s["emotion"]) for s in absorbed] == [(0.0, "sad"), (7.0, "happy")]
    assert absorbed[1]["agreement"] == pytest.approx(4 / 6, abs=1e-3)


def test_broken_stretches_stay_visible_as_gaps():
    windows = plan_windows(20.0, snap_grid(4, 2, 2.0))
    status = ["ok"] * 4 + ["broken"] * 3 + ["ok"] * 2
    labels = ["sad"] * 4 + [None] * 3 + ["sad"] * 2
    segments = segment_list(_records(labels, windows, status), windows, 20.0, SmoothingSettings(1, 4.0))
    assert [(s["emotion"], s["broken_windows"]) for s in segments] == [("sad", 0), (None, 3), ("sad", 0)]


def _run(clip, out, engine, tasks=("ov_emotion",), **options):
    from inference.engine import SamplingSettings
    from inference.timeline import TimelineSettings, run_timeline
    from inference.timeline_answer import EngineAnswerer

    answerer = EngineAnswerer(engine, tasks, SamplingSettings(max_new_tokens=6), batch_size=4)
    return run_timeline(clip, out, answerer, settings=TimelineSettings(tasks=tasks), media=engine.spec.media,
                        **options)


@pytest.fixture(scope="module")
def tiny_engine(tiny_omni_dir):
    from inference.hf_engine import HFEngine

    engine = HFEngine.load(str(tiny_omni_dir), max_batch_size=8)
    yield engine
    engine.close()


@pytest.mark.integration
def test_engine_timeline_writes_every_output(timeline_clip, tiny_engine, tmp_path):
    srt = tmp_path / "talk.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:03,000\nwell hello\n")
    run = _run(timeline_clip, tmp_path / "out", tiny_engine, subtitle=srt)
    assert (run.windows, run.resumed, run.answered, run.broken) == (6, 0, 6, 0)
    assert run.video_s == pytest.approx(13.0)
    lines = (tmp_path / "out" / "timeline.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["window"] for r in records] == list(range(6))
    assert [(r["start_s"], r["end_s"]) for r in records][-1] == (9.0, 13.0)
    assert [r["subtitle"] for r in records[:3]] == ["well hello", "well hello", None]
    assert all(set(r["answers"]) == {"ov_emotion"} and r["status"] == "ok" for r in records)
    assert len((tmp_path / "out" / "timeline.csv").read_text().splitlines()) == 7
    segments = json.loads((tmp_path / "out" / "segments.json").read_text())
    assert segments["segments"][0]["start_s"] == 0.0 and segments["segments"][-1]["end_s"] == 13.0
    assert (tmp_path / "out" / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "out" / "timeline.html").read_text()
    assert "data:video/x-matroska;base64," in page or "data:video/mp4;base64," in page
    assert not re.search(r"(src|href)=\"https?:", page)  # self-contained: nothing fetched from the network
    data = json.loads(re.search(r'id="timeline-data">(.*?)</script>', page, re.S).group(1).replace("<\\/", "</"))
    assert len(data["windows"]) == 6 and data["duration_s"] == 13.0


@pytest.mark.integration
def test_broken_stretch_is_recorded_and_skipped(broken_clip, tiny_engine, tmp_path):
    run = _run(broken_clip, tmp_path / "out", tiny_engine)
    records = [json.loads(line) for line in (tmp_path / "out" / "timeline.jsonl").read_text().splitlines()]
    broken = [r for r in records if r["status"] == "broken"]
    # packets in [8, 10) s are zeroed: the windows starting at 6 and 8 s hold those frames
    assert [(r["start_s"], r["end_s"]) for r in broken] == [(6.0, 10.0), (8.0, 12.0)]
    assert all("broken stretch" in r["error"] for r in broken) and run.broken == 2
    assert [r["status"] for r in records].count("ok") == len(records) - 2


@pytest.mark.integration
def test_resume_refuses_another_grid(timeline_clip, tiny_engine, tmp_path):
    from inference.engine import SamplingSettings
    from inference.timeline import TimelineError, TimelineSettings, run_timeline
    from inference.timeline_answer import EngineAnswerer

    _run(timeline_clip, tmp_path / "out", tiny_engine)
    again = _run(timeline_clip, tmp_path / "out", tiny_engine)
    assert (again.resumed, again.answered) == (6, 0)
    answerer = EngineAnswerer(tiny_engine, ("ov_emotion",), SamplingSettings(max_new_tokens=6))
    with pytest.raises(TimelineError, match="grid"):
        run_timeline(timeline_clip, tmp_path / "out", answerer, settings=TimelineSettings(stride_s=1.0,
                                                                                          tasks=("ov_emotion",)))
