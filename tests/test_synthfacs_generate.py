"""Tests of the SynthFACS clip generator: media, apex geometry, determinism, splits, labels, rationales, CLI.

Run: .venv/bin/python -m pytest tests/test_synthfacs_generate.py -q
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from affect_mllm.answer import cited_aus
from affect_mllm.knowledge import CATEGORIES, prototype
from affect_mllm.lexicon import normalize_word, to_category
from affect_mllm.media import MediaSettings, load_audio, load_video
from affect_mllm.schema import AU_PRESENCE_THRESHOLD, read_manifest
from affect_mllm.synthfacs.generate import (
    CLIP_SECONDS,
    FRAME_SIZE,
    GeneratorSettings,
    generate_synthfacs,
    plan_clip,
    render_frames,
)
from affect_mllm.synthfacs.measure import measure_geometry
from affect_mllm.synthfacs.profiles import FACE_PROFILES, conflict_partners, sample_voice
from affect_mllm.synthfacs.rationales import (
    AGREE_TEMPLATES,
    CONFLICT_TEMPLATES,
    HELD_OUT_TEMPLATES,
    NOUNS,
    SUBTITLES,
    VOICE_PHRASES,
)
from affect_mllm.synthfacs.voice import sample_speaker, voice_attributes
from affect_mllm.voice_cues import voice_claim_agreement, voice_cues_in

SETTINGS = MediaSettings()


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """16 clips (two of each class) at difficulty 1 with a high conflict share, written once."""
    out = tmp_path_factory.mktemp("synthfacs")
    return generate_synthfacs(out, 16, seed=7, difficulty=1, conflict_share=0.4)


def test_clips_decode_with_audio_at_2_fps(small_set):
    manifest = read_manifest(small_set)
    for sample in manifest.samples[:4]:
        path = manifest.media_path(sample, "video")
        clip = load_video(path, SETTINGS)
        expected = int(CLIP_SECONDS * SETTINGS.fps)
        assert clip.frames.shape == (expected, FRAME_SIZE, FRAME_SIZE, 3) and clip.has_audio
        assert clip.native_fps == pytest.approx(SETTINGS.fps)
        audio = load_audio(path, SETTINGS)
        assert abs(len(audio) - CLIP_SECONDS * SETTINGS.sample_rate) < 0.01 * SETTINGS.sample_rate
        assert np.sqrt(np.mean(audio**2)) > 0.005  # a voice, not silence


def test_decoded_apex_frame_matches_the_rendered_one(small_set):
    sample = read_manifest(small_set).samples[0]
    plan = plan_clip(GeneratorSettings(seed=7, difficulty=1, conflict_share=0.4), 0)
    apex = plan.apex_frames[0]
    decoded = load_video(small_set.parent / sample.video, SETTINGS).frames[apex].astype(float)
    error = np.mean((decoded - render_frames(plan)[apex].astype(float)) ** 2)
    assert 10 * np.log10(255**2 / error) > 28  # PSNR in dB: only H.264 at crf <= 24 stands between them


def _apex_and_neutral(emotion: str, index: int) -> tuple[dict, dict]:
    plan = plan_clip(GeneratorSettings(seed=1, difficulty=0, conflict_share=0.0), index, emotion=emotion)
    frames = render_frames(plan)
    return measure_geometry(frames[plan.apex_frames[0]], plan.style), measure_geometry(frames[0], plan.style)


# Measured change from the first (neutral) frame to the first apex frame, in face units (1 = head half-height);
# thresholds about half the smallest change measured over 6 clips per class at difficulty 0.
APEX_CHECKS = {
    "happy": lambda a, n: a["mouth_corner_height"] - n["mouth_corner_height"] > 0.02,
    "sad": lambda a, n: a["mouth_corner_height"] - n["mouth_corner_height"] < -0.012,
    "surprised": lambda a, n: a["mouth_opening"] > 0.05 and a["brow_height"] - n["brow_height"] > 0.05,
    # fear: brows up and lips stretched like nothing else, with the mouth (nearly) closed: no jaw drop
    "fearful": lambda a, n: (a["brow_height"] - n["brow_height"] > 0.02 and a["mouth_width"] - n["mouth_width"] > 0.06
                             and a["mouth_opening"] < 0.05),
    "angry": lambda a, n: a["brow_height"] - n["brow_height"] < -0.03,
    # disgust: the nose wrinkles (AU9; no other class draws it) and the upper lip rises (AU10), and the brows stay
    # nearly where they were (anger lowers them by more than 0.05). Smallest changes over 6 clips: 0.0102, 0.061.
    "disgusted": lambda a, n: (a["nose_wrinkle"] - n["nose_wrinkle"] > 0.005
                               and a["upper_lip_height"] - n["upper_lip_height"] > 0.03
                               and a["brow_height"] - n["brow_height"] > -0.025),
    "contemptuous": lambda a, n: abs(a["mouth_corner_height_left"] - a["mouth_corner_height_right"]) > 0.02,
    # neutral: trace twitches only, at most 3 px (0.065 face units at difficulty 0) anywhere
    "neutral": lambda a, n: all(abs(a[k] - n[k]) < 0.065 for k in ("mouth_corner_height", "brow_height",
                                                                   "mouth_width", "eye_opening", "mouth_opening")),
}


@pytest.mark.parametrize("emotion", CATEGORIES)
def test_apex_frames_show_the_class_aus(emotion):
    for index in range(3):
        apex, neutral = _apex_and_neutral(emotion, index)
        assert APEX_CHECKS[emotion](apex, neutral), (emotion, index, apex, neutral)
        if emotion != "disgusted":  # the disgust check can fail: no other class passes it
            assert not APEX_CHECKS["disgusted"](apex, neutral), (emotion, index)


def test_apex_is_held_for_two_frames_and_the_clip_starts_neutral():
    settings = GeneratorSettings(seed=2)
    for index in range(200):
        plan = plan_clip(settings, index)
        assert len(plan.apex_frames) >= 2
        assert plan.timeline.level(settings.frame_times)[0] == 0.0
        assert all(plan.timeline.level(settings.frame_times)[plan.apex_frames] == 1.0)


def test_same_seed_same_manifest_bytes_with_one_and_two_workers(tmp_path):
    one = generate_synthfacs(tmp_path / "one", 6, seed=11, split="val")
    two = generate_synthfacs(tmp_path / "two", 6, seed=11, split="val", workers=2)
    other = generate_synthfacs(tmp_path / "other", 6, seed=12, split="val")
    assert one.read_bytes() == two.read_bytes() != other.read_bytes()


def test_clips_do_not_depend_on_chunking():
    # Clip 21 is the same whether it is planned alone or after 0..20.
    settings = GeneratorSettings(seed=5)
    plans = [plan_clip(settings, index) for index in range(22)]
    alone = plan_clip(settings, 21)
    assert (alone.rationale, alone.identity, alone.face, alone.voice) == (
        plans[21].rationale, plans[21].identity, plans[21].face, plans[21].voice)


def test_classes_are_balanced_in_blocks_of_eight():
    settings = GeneratorSettings(seed=3)
    classes = [plan_clip(settings, index).face_emotion for index in range(64)]
    assert Counter(classes) == dict.fromkeys(CATEGORIES, 8)


def test_split_identities_are_disjoint():
    identities = {split: {plan_clip(GeneratorSettings(seed=0, split=split), i).identity for i in range(150)}
                  for split in ("train", "val", "test")}
    assert not identities["train"] & identities["val"]
    assert not identities["train"] & identities["test"] and not identities["val"] & identities["test"]
    assert len(identities["train"]) > 100  # many people, not a handful


def test_held_out_templates_never_in_train():
    def used(split: str) -> set[str]:
        settings = GeneratorSettings(seed=0, split=split, conflict_share=0.3)
        return {plan_clip(settings, index).template for index in range(400)}

    train, val = used("train"), used("val")
    assert not train & HELD_OUT_TEMPLATES and val <= HELD_OUT_TEMPLATES
    assert len(AGREE_TEMPLATES) + len(CONFLICT_TEMPLATES) >= 30 and len(train) >= 25
    assert {"a02", "a24"} <= set(AGREE_TEMPLATES)  # "key observations -> interpretation -> conclusion" on both sides


def test_manifest_records_are_valid_samples(small_set):
    manifest = read_manifest(small_set)  # validates every record against schema.Sample
    assert len(manifest) == 16 and len({s.id for s in manifest}) == 16
    assert len({tuple(sorted(s.source)) for s in manifest}) == 1  # the same provenance keys on every record
    assert len({tuple(sorted(s.source["voice"])) for s in manifest}) == 1
    for sample in manifest:
        assert sample.emotion in CATEGORIES and sample.emotions[0] == sample.emotion
        assert all(to_category(word) in (sample.face_emotion, sample.voice_emotion) for word in sample.emotions)
        assert all(item.intensity >= AU_PRESENCE_THRESHOLD for item in sample.aus)
        assert sample.au_set() <= prototype(sample.face_emotion).aus
        assert -1 <= sample.valence <= 1 and -1 <= sample.arousal <= 1


def test_rationales_cite_the_labelled_aus_and_the_true_voice():
    settings = GeneratorSettings(seed=4, conflict_share=0.3)
    for index in range(160):
        plan = plan_clip(settings, index)
        assert set(cited_aus(plan.rationale)[0]) == set(plan.face.aus), plan.rationale
        claims = voice_cues_in(plan.rationale)
        assert claims and voice_claim_agreement(claims, plan.voice_emotion) == 1.0, plan.rationale
        assert plan.emotion in plan.rationale or NOUNS[plan.emotion] in plan.rationale, plan.rationale
        assert "{" not in plan.rationale


def test_conflict_share_and_rule():
    settings = GeneratorSettings(seed=9, conflict_share=0.3)
    plans = [plan_clip(settings, index) for index in range(800)]
    conflicts = [p for p in plans if p.face_emotion != p.voice_emotion]
    assert 0.25 < len(conflicts) / len(plans) < 0.35
    for plan in conflicts:
        assert plan.emotion == plan.face_emotion  # the face decides the categorical label
        assert {plan.face_emotion, plan.voice_emotion} <= set(plan.emotions)
        assert plan.voice_emotion in conflict_partners(plan.face_emotion)
    assert all(p.emotion == p.face_emotion == p.voice_emotion for p in plans if p not in conflicts)


@pytest.mark.parametrize("emotion", CATEGORIES)
def test_voice_attributes_follow_the_profile(emotion):
    from affect_mllm.voice_cues import voice_profile

    profile = voice_profile(emotion)
    rng = np.random.default_rng(0)
    for identity in range(30):
        params = sample_voice(emotion, sample_speaker(identity), float(rng.uniform(-0.35, 0.35)), rng)
        attributes = voice_attributes(params)
        assert (attributes["pitch"], attributes["loudness"], attributes["rate"], attributes["contour"],
                attributes["tremor"]) == (profile.pitch_level, profile.loudness, profile.rate, profile.contour,
                                          profile.tremor)


def test_profiles_are_emfacs_based_and_distinct():
    for emotion, profile in FACE_PROFILES.items():
        assert profile.aus <= prototype(emotion).aus, emotion
    assert 26 not in FACE_PROFILES["fearful"].aus and 27 not in FACE_PROFILES["fearful"].aus
    assert 4 not in FACE_PROFILES["disgusted"].aus
    assert FACE_PROFILES["contemptuous"].one_sided == {12, 14}


def test_subtitles_never_name_an_emotion():
    for line in SUBTITLES:
        words = re.findall(r"[a-z']+", line.lower())
        grams = words + [" ".join(pair) for pair in zip(words, words[1:], strict=False)]
        assert not [g for g in grams if normalize_word(g) is not None], line


def test_voice_phrases_read_back_as_their_cue():
    for cue, phrases in VOICE_PHRASES.items():
        for phrase in phrases:
            assert voice_cues_in(phrase) == [cue], phrase


def test_cli_generates_a_manifest(tmp_path):
    from typer.testing import CliRunner

    from affect_mllm.cli import build_app

    result = CliRunner().invoke(build_app(), ["data", "synthfacs", str(tmp_path), "--n", "3", "--seed", "1",
                                              "--split", "test", "--difficulty", "3", "--conflict-share", "0.5"])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(tmp_path / "test.jsonl")
    assert len(manifest) == 3 and {s.source["difficulty"] for s in manifest} == {3}
    assert all(s.source["template"] in HELD_OUT_TEMPLATES for s in manifest)
