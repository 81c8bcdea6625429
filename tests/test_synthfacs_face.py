"""Tests of the SynthFACS face renderer and style sampling, measured from rendered pixels.

Run: .venv/bin/python -m pytest tests/test_synthfacs_face.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affect_mllm.synthfacs.face import render_face
from affect_mllm.synthfacs.measure import measure_geometry
from affect_mllm.synthfacs.nuisance import DIFFICULTIES, HeadPose, sample_appearance, sample_style

IDENTITIES = (0, 1, 2, 3)
LISTED_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 27, 43)


def _style(identity: int, difficulty: int = 0):
    return sample_style(np.random.default_rng(identity), difficulty, identity=identity)


def _series(aus: tuple[int, ...], key: str, identity: int, **kwargs) -> list[float]:
    """The measured `key` with every AU of `aus` at intensity 0, 2.5 and 5 (others 0)."""
    style = _style(identity)
    return [
        measure_geometry(render_face(dict.fromkeys(aus, level), style, **kwargs), style)[key] for level in (0, 2.5, 5)
    ]


# (AUs, measured key, +1 if it must rise, -1 if it must fall)
MONOTONE_CASES = [
    ((12,), "mouth_corner_height", 1),
    ((15,), "mouth_corner_height", -1),
    ((1, 2), "brow_height", 1),
    ((1,), "brow_height", 1),
    ((2,), "brow_height", 1),
    ((4,), "brow_height", -1),
    ((25,), "mouth_opening", 1),
    ((26,), "mouth_opening", 1),
    ((27,), "mouth_opening", 1),
    ((5,), "eye_opening", 1),
    ((43,), "eye_opening", -1),
    ((7,), "eye_opening", -1),
    ((6,), "eye_opening", -1),
    ((20,), "mouth_width", 1),
    ((9,), "nose_wrinkle", 1),
    ((10,), "upper_lip_height", 1),
    ((14,), "dimple", 1),
    ((17,), "chin_fold", 1),
    ((23,), "mouth_width", -1),
    ((24,), "lip_thickness", -1),
]


@pytest.mark.parametrize(("aus", "key", "direction"), MONOTONE_CASES)
@pytest.mark.parametrize("identity", IDENTITIES)
def test_measured_geometry_follows_au(aus, key, direction, identity):
    none, half, full = (direction * value for value in _series(aus, key, identity))
    # Strictly monotone from 0 to 5, never reversed at 2.5 (measures are whole pixels, so 2.5 may tie).
    assert none <= half <= full and none < full


@pytest.mark.parametrize("identity", IDENTITIES)
def test_fold_measures_see_only_their_fold(identity):
    # The nose-bridge and chin windows stay empty on a neutral face and under AUs that draw elsewhere.
    for aus in ({}, {10: 5, 4: 5, 12: 5}):
        measures = measure_geometry(render_face(aus, _style(identity)), _style(identity))
        assert measures["nose_wrinkle"] == 0.0 and measures["chin_fold"] < 0.002


@pytest.mark.parametrize("identity", IDENTITIES)
def test_blink_closes_the_eyes(identity):
    style = _style(identity)
    openings = [measure_geometry(render_face({}, style, blink=b), style)["eye_opening"] for b in (0.0, 0.5, 1.0)]
    assert openings[0] > openings[1] > openings[2] == 0.0


@pytest.mark.parametrize("identity", IDENTITIES)
def test_neutral_mouth_is_closed_and_level(identity):
    measures = measure_geometry(render_face({}, _style(identity)), _style(identity))
    assert measures["mouth_opening"] == 0.0
    assert abs(measures["mouth_corner_height_left"] - measures["mouth_corner_height_right"]) < 0.03


def test_unilateral_au12_lifts_only_that_corner():
    style = _style(1)
    neutral = measure_geometry(render_face({}, style), style)
    smirk = measure_geometry(render_face({12: 4, 14: 4}, style, sides={12: "left", 14: "left"}), style)
    assert smirk["mouth_corner_height_left"] > neutral["mouth_corner_height_left"] + 0.04
    assert abs(smirk["mouth_corner_height_right"] - neutral["mouth_corner_height_right"]) < 0.03


def test_jaw_drop_and_mouth_stretch_differ_in_shape():
    # AU27 opens further than AU26 and makes the mouth narrower, not wider: a tall oval against a jaw drop.
    style = _style(2)
    drop = measure_geometry(render_face({26: 4}, style), style)
    stretch = measure_geometry(render_face({27: 4}, style), style)
    assert stretch["mouth_opening"] > 1.4 * drop["mouth_opening"]
    assert stretch["mouth_width"] < drop["mouth_width"]


@pytest.mark.parametrize("size", [112, 56])
@pytest.mark.parametrize("au", LISTED_AUS)
def test_every_au_changes_pixels_at_intensity_3(au, size):
    # Mean |difference| over the whole frame; at 112 px a 0.1 mean is about 120 pixels changed by 30 levels.
    threshold = 0.1 if size == 112 else 0.08
    for identity in IDENTITIES[:2]:
        style = _style(identity)
        neutral = render_face({}, style, size=size).astype(float)
        moved = render_face({au: 3}, style, size=size).astype(float)
        assert np.abs(moved - neutral).mean() > threshold, (au, identity)


@pytest.mark.parametrize("difficulty", range(len(DIFFICULTIES)))
def test_rendering_is_deterministic(difficulty):
    style = _style(5, difficulty)
    head = HeadPose(dx=0.01, dy=-0.02, roll_deg=3.0, yaw=0.4, pitch=-0.3, scale=1.02)
    frames = [
        render_face({1: 2, 12: 3.5, 25: 1}, style, head=head, blink=0.3, rng=np.random.default_rng(9))
        for _ in range(2)
    ]
    assert frames[0].tobytes() == frames[1].tobytes()
    assert frames[0].shape == (112, 112, 3) and frames[0].dtype == np.uint8


@pytest.mark.parametrize("size", [56, 112, 160])
def test_output_shape_follows_size(size):
    assert render_face({}, _style(0), size=size).shape == (size, size, 3)


def test_difficulty_zero_is_clean_and_centred():
    for seed in range(20):
        style = sample_style(np.random.default_rng(seed), 0)
        assert style.centre == (0.0, 0.0) and style.roll_deg == 0.0 and style.shapes == ()
        assert style.noise_sigma == style.blur_sigma == style.offset == style.light_strength == 0.0
        assert style.gain == 1.0 and style.background[0] == style.background[1]


def test_difficulty_four_spans_the_full_nuisance():
    styles = [sample_style(np.random.default_rng(seed), 4) for seed in range(300)]
    shifts = np.array([style.centre for style in styles]) * 112
    scales = np.array([style.face_scale for style in styles])
    assert np.abs(shifts).max() <= 8.0 and np.abs(shifts).max() > 7.0
    assert scales.min() >= 0.85 and scales.max() <= 1.12
    assert max(len(style.shapes) for style in styles) == 5
    assert 0.1 < np.mean([style.blur_sigma > 0 for style in styles]) < 0.4
    assert min(style.noise_sigma for style in styles) >= 4.0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, len(DIFFICULTIES) - 1), st.integers(0, 2**31 - 2))
def test_style_ranges_hold_at_every_level(difficulty, seed):
    spec, style = DIFFICULTIES[difficulty], sample_style(np.random.default_rng(seed), difficulty)
    assert spec.scale[0] <= style.face_scale <= spec.scale[1]
    assert max(abs(c) for c in style.centre) * 112 <= spec.shift_px + 1e-9
    assert abs(style.roll_deg) <= spec.roll_deg and len(style.shapes) <= spec.max_shapes
    assert abs(style.gain - 1) <= spec.gain + 1e-9 and abs(style.offset) <= spec.offset


def test_identity_fixes_appearance_and_identities_differ():
    first = sample_style(np.random.default_rng(1), 0, identity=42).appearance
    second = sample_style(np.random.default_rng(2), 4, identity=42).appearance
    assert first == second == sample_appearance(42)
    looks = {sample_appearance(identity) for identity in range(50)}
    assert len(looks) == 50
    assert len({(look.skin, look.hair, look.hair_style) for look in looks}) > 20


def test_unknown_side_is_rejected():
    with pytest.raises(ValueError, match="side of AU12"):
        render_face({12: 3}, _style(0), sides={12: "up"})


def test_bad_difficulty_is_rejected():
    with pytest.raises(ValueError, match="difficulty"):
        sample_style(np.random.default_rng(0), 5)
