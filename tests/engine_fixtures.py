"""Session fixtures for the engine and export tests: a LoRA adapter on the tiny omni model, and engines.

Loaded by `pytest_plugins = ["engine_fixtures"]` in tests/test_engine.py and tests/test_export.py, so the
fixtures are registered once and the vLLM engine starts once per session (~15-40 s on 2 cores), however many
modules use it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from affect_mllm.media import load_sample_media
from affect_mllm.models.inputs import Conversation, build_messages
from affect_mllm.models.registry import ModelSpec
from inference.engine import GenerationRequest

PROMPT = "How does the person feel? Explain what you see and hear."
AV_CLIPS = ("av_16k", "odd_size", "odd_fps", "audio_48k")  # every clip fixture with an audio track


def make_adapter(model_dir: Path, out_dir: Path, seed: int = 1) -> Path:
    """A peft LoRA on the language model with random non-zero B, so that it changes the outputs."""
    import torch
    from peft import LoraConfig, get_peft_model

    from affect_mllm.models.registry import load_model_and_processor

    model, _, spec = load_model_and_processor(str(model_dir))
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(target_modules=spec.lora_target_regex, r=8,
                                                  init_lora_weights=False))
    peft_model.save_pretrained(out_dir)
    return out_dir


def clip_requests(spec: ModelSpec, clips: dict[str, Path], names=AV_CLIPS, audio_in_video: bool = False,
                  **request_fields) -> list:
    """One request per named clip, decoded with the model's media settings."""
    requests = []
    for name in names:
        media = load_sample_media(video=clips[name], settings=spec.media)
        conversation = Conversation(build_messages(media, PROMPT, spec, audio_in_video=audio_in_video), media)
        requests.append(GenerationRequest(conversation, audio_in_video=audio_in_video, request_id=name,
                                          **request_fields))
    return requests


@pytest.fixture(scope="session")
def omni_adapter_dir(tiny_omni_dir, tmp_path_factory) -> Path:
    """A LoRA adapter as peft saves it from the HF thinker (names vLLM would silently ignore)."""
    return make_adapter(tiny_omni_dir, tmp_path_factory.mktemp("adapters") / "omni-lora")


@pytest.fixture(scope="session")
def one_torch_thread():
    """One intra-op thread while the engine tests run (restored after).

    On the shared 2-core machine, torch's second OpenMP thread spin-waits whenever another process holds a
    core: a batch of 8 tiny-model requests then took 19 s instead of 0.2 s. The tiny model gains nothing from a
    second thread, and vLLM's in-process engine drops to one thread anyway when it starts.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def hf_omni_engine(tiny_omni_dir, omni_adapter_dir, one_torch_thread):
    """The HF engine on the tiny omni model with the adapter loaded as "lora"."""
    from inference.hf_engine import HFEngine

    engine = HFEngine.load(str(tiny_omni_dir), adapters={"lora": str(omni_adapter_dir)})
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def vllm_omni_engine(tiny_omni_dir, omni_adapter_dir, one_torch_thread):
    """The vLLM engine on the tiny omni model (fp32, in-process engine core), the adapter loaded as "lora"."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (install affect-mllm[cpu] or [gpu]); the vLLM backend is not tested")
    from inference.vllm_engine import VLLMEngine

    with pytest.MonkeyPatch.context() as patch:
        # in-process engine core: starts in ~13 s instead of ~30 s; set by the test, never by library code
        patch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        engine = VLLMEngine(str(tiny_omni_dir), adapters={"lora": str(omni_adapter_dir)}, kv_cache_gib=0.25)
        yield engine
        engine.close()
