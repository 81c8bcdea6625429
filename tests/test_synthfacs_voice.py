"""Tests of the SynthFACS voice renderer, measured from the waveform.

Run: .venv/bin/python -m pytest tests/test_synthfacs_voice.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import find_peaks

from affect_mllm.synthfacs.voice import VoiceParams, sample_speaker, synthesize_voice, voice_attributes

RATE = 16000


def _render(seed: int = 0, duration_s: float = 3.0, **fields: float) -> np.ndarray:
    return synthesize_voice(VoiceParams(**fields), duration_s, sample_rate=RATE, rng=np.random.default_rng(seed))


def _f0_frames(signal: np.ndarray) -> np.ndarray:
    """(time s, f0 Hz) of 40 ms frames louder than 30 % of the clip RMS, by autocorrelation peak in 60-500 Hz."""
    frame, hop, level = 640, 320, np.sqrt(np.mean(signal**2))
    result = []
    for start in range(0, signal.size - frame, hop):
        window = signal[start : start + frame]
        if np.sqrt(np.mean(window**2)) < 0.3 * level:
            continue
        spectrum = np.fft.rfft(window - window.mean(), 2048)
        autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2)[:frame]
        lag = RATE // 500 + int(np.argmax(autocorrelation[RATE // 500 : RATE // 60]))
        result.append((start / RATE, RATE / lag))
    return np.array(result)


def _syllable_peaks(signal: np.ndarray) -> int:
    """Peaks of the 10 ms RMS envelope that stand out by 30 % of its maximum (at least 80 ms apart)."""
    power = np.convolve(signal**2, np.ones(160) / 160, mode="same")[::160]
    envelope = np.convolve(np.sqrt(power), np.ones(3) / 3, mode="same")
    peaks, _ = find_peaks(envelope, prominence=0.3 * envelope.max(), distance=8)
    return len(peaks)


def test_f0_follows_the_pitch_parameter():
    medians = [np.median(_f0_frames(_render(pitch_factor=factor))[:, 1]) for factor in (0.8, 1.0, 1.3)]
    # Speaker base 150 Hz: expect about 120, 150 and 195 Hz (within 8 %).
    assert medians[0] < medians[1] < medians[2]
    assert medians == pytest.approx([120.0, 150.0, 195.0], rel=0.08)


@pytest.mark.parametrize("identity", range(4))
def test_speaker_base_pitch_is_heard(identity):
    speaker = sample_speaker(identity)
    signal = synthesize_voice(VoiceParams.for_speaker(speaker), 2.0, rng=np.random.default_rng(identity))
    assert np.median(_f0_frames(signal)[:, 1]) == pytest.approx(speaker.base_f0_hz, rel=0.08)


def test_rms_rises_with_loudness():
    levels = [np.sqrt(np.mean(_render(loudness_db=db) ** 2)) for db in (-12.0, -3.0, 0.0, 6.0)]
    assert levels == sorted(levels) and len(set(levels)) == 4
    # 6 dB is twice the amplitude before the soft limiter; allow it a little compression.
    assert 1.7 < levels[3] / levels[2] <= 2.0


@pytest.mark.parametrize("seed", range(3))
def test_syllable_peaks_rise_with_rate(seed):
    counts = [_syllable_peaks(_render(seed, 4.0, syllable_rate_hz=rate)) for rate in (2.5, 4.5, 7.0)]
    assert counts[0] < counts[1] < counts[2]
    # 4 s with 15 % pauses: about 3.4 s of speech, so about 8, 15 and 24 syllables.
    assert counts[1] == pytest.approx(15, abs=3)


@pytest.mark.parametrize("slope", [-3.0, 3.0])
def test_contour_slope_sign_is_recovered(slope):
    frames = _f0_frames(_render(contour_st_per_s=slope, pitch_range_st=2.0))
    fitted = np.polyfit(frames[:, 0], 12 * np.log2(frames[:, 1]), 1)[0]
    assert np.sign(fitted) == np.sign(slope) and abs(fitted) > 1.5


def test_tremor_makes_f0_wobble():
    steady, shaky = (_f0_frames(_render(pitch_range_st=0.0, tremor_depth_st=depth))[:, 1] for depth in (0.0, 0.8))

    # Interquartile range (robust to the odd octave error): a 0.8-semitone sine spans 2 * 0.707 * 0.8 = 1.13
    # semitones; a steady 150 Hz voice only the 0.16-semitone step between whole-sample lags.
    def spread(f0: np.ndarray) -> float:
        return float(np.subtract(*np.percentile(12 * np.log2(f0), [75, 25])))

    assert spread(steady) < 0.3 < 0.7 < spread(shaky)


@settings(max_examples=20, deadline=None)
@given(st.floats(0.2, 5.0), st.sampled_from([8000, 16000, 22050]), st.floats(-20.0, 12.0))
def test_length_dtype_and_range(duration_s, sample_rate, loudness_db):
    signal = synthesize_voice(
        VoiceParams(loudness_db=loudness_db), duration_s, sample_rate=sample_rate, rng=np.random.default_rng(0)
    )
    assert signal.dtype == np.float32 and signal.shape == (round(duration_s * sample_rate),)
    assert np.all(np.isfinite(signal)) and np.abs(signal).max() <= 1.0


def test_pauses_are_silent():
    signal = _render(pause_share=0.4)
    assert np.mean(signal == 0.0) > 0.2


def test_same_seed_same_audio_other_seed_other_audio():
    assert _render(7).tobytes() == _render(7).tobytes()
    assert _render(7).tobytes() != _render(8).tobytes()


def test_attributes_follow_documented_thresholds():
    neutral = VoiceParams()
    aroused = VoiceParams(
        pitch_factor=1.3, loudness_db=8, syllable_rate_hz=6.5, contour_st_per_s=3, tremor_depth_st=0.6, breathiness=0.5
    )
    subdued = VoiceParams(pitch_factor=0.85, loudness_db=-10, syllable_rate_hz=2.8, contour_st_per_s=-3)
    assert voice_attributes(neutral) == {
        "pitch": "mid",
        "loudness": "normal",
        "rate": "normal",
        "contour": "flat",
        "tremor": "no",
        "quality": "modal",
    }
    assert voice_attributes(aroused) == {
        "pitch": "high",
        "loudness": "loud",
        "rate": "fast",
        "contour": "rising",
        "tremor": "yes",
        "quality": "breathy",
    }
    assert voice_attributes(subdued) == {
        "pitch": "low",
        "loudness": "quiet",
        "rate": "slow",
        "contour": "falling",
        "tremor": "no",
        "quality": "modal",
    }


def test_speakers_are_stable_and_varied():
    assert sample_speaker(3) == sample_speaker(3)
    bases = [sample_speaker(identity).base_f0_hz for identity in range(40)]
    assert min(bases) < 140 < 175 < max(bases)
