"""`affect-mllm serve`: the vLLM command line, the real server with the openai client, refusals (the key on every
route, no remote fetches, media over the caps, every URL spelling), concurrency, and what the served model sees on
the file-URL path compared with our pipeline and engine.

Run: pytest tests/test_serve.py tests/test_client.py tests/test_predict.py tests/test_chat.py -q
One server is started per session (tests/server_fixtures.py, ~1 min) and shared by the four files; the gate's
logic is tested without a server in tests/test_request_gate.py, the process supervision in
tests/test_serve_supervision.py.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

pytest.register_assert_rewrite("server_fixtures")

from server_fixtures import ADAPTER_NAME, MAX_CLIP_SECONDS, MAX_REQUEST_MB, chat_request  # noqa: E402

from affect_mllm.models.registry import resolve  # noqa: E402
from inference.client import Clip, clip_messages, clip_prompt, file_url  # noqa: E402
from inference.engine import SamplingSettings  # noqa: E402

pytest_plugins = ["server_fixtures"]

QUESTION = {"type": "text", "text": "How does the person feel?"}


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_server_command_uses_the_engine_settings(tiny_sft, tmp_path):
    from affect_mllm.models.adapter_export import VLLM_THINKER_KEY_PREFIX, adapter_keys
    from affect_mllm.models.inputs import processor_media_kwargs
    from inference.request_gate import POLICY_ENV, GatePolicy
    from inference.server_args import (
        GATE_MIDDLEWARE,
        ServeOptions,
        export_adapters,
        server_command,
        server_environment,
    )

    spec = resolve(str(tiny_sft["base"]))
    exported = export_adapters(spec, {"sft": tiny_sft["adapter"]}, tmp_path)
    options = ServeOptions(media_root=tmp_path, api_key="secret", kv_cache_gib=0.25)
    command = server_command(spec, exported, options, python="python")
    assert command[:3] == ["python", "-m", "inference.serve"]  # vLLM's server module, run by our launcher
    assert json.loads(_flag(command, "--mm-processor-kwargs")) == processor_media_kwargs(spec)  # engine's fps, caps
    assert json.loads(_flag(command, "--limit-mm-per-prompt")) == {"video": 1, "audio": 1, "image": 0}
    video_io = json.loads(_flag(command, "--media-io-kwargs"))["video"]
    assert (video_io["fps"], video_io["max_frames"], video_io["min_frames"]) == (
        spec.media.fps,
        spec.media.max_frames,
        spec.media.min_frames,
    )
    assert _flag(command, "--chat-template") == str(Path(spec.source) / "chat_template.jinja")
    assert _flag(command, "--allowed-local-media-path") == str(tmp_path.resolve())
    assert _flag(command, "--lora-modules") == f"sft={exported['sft']}"
    assert _flag(command, "--middleware") == GATE_MIDDLEWARE and "--allowed-media-domains" not in command
    assert all(key.startswith(VLLM_THINKER_KEY_PREFIX) for key in adapter_keys(exported["sft"]))  # the prefix trap
    assert "secret" not in " ".join(command) and "--enforce-eager" in command
    env = server_environment(spec, options, base={"VLLM_API_KEY": "inherited", "VLLM_SERVER_DEV_MODE": "1"})
    assert env["VLLM_API_KEY"] == "secret" and env["VLLM_MAX_AUDIO_DECODE_DURATION_S"] == "600"
    assert (env["VLLM_SERVER_DEV_MODE"], env["VLLM_MEDIA_URL_ALLOW_REDIRECTS"]) == ("0", "0")
    policy = GatePolicy(**json.loads(env[POLICY_ENV]))
    assert policy.media_root == str(tmp_path.resolve()) and policy.media["max_frame_pixels"] > 0
    assert "VLLM_API_KEY" not in server_environment(spec, ServeOptions(), base={"VLLM_API_KEY": "inherited"})
    for extra in (("--api-key", "k"), ("--allowed-media-domains=example.org",), ("--middleware", "x.Y")):
        with pytest.raises(ValueError, match="set through affect-mllm serve's own options"):
            server_command(spec, exported, ServeOptions(extra_args=extra))


def test_openai_client_sends_video_and_audio_with_and_without_the_adapter(served):
    """Data URLs, input_audio and file:// URLs under the media root all answer; the adapter changes the answer."""
    client = served.openai()
    clip = Clip(video=served.clips["av_16k"])
    shapes = {
        "data+input_audio": clip_messages(clip, "", "data", audio_part="input_audio"),
        "data+audio_url": clip_messages(clip, "", "data", audio_part="audio_url"),
        "file": clip_messages(clip, "", "file"),
    }
    answers = {}
    for shape, messages in shapes.items():
        parts = messages[-1]["content"][:-1] + [QUESTION]
        assert [p["type"] for p in parts][:1] == ["video_url"]
        for model in (served.model, served.adapter):
            response = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": parts}], max_tokens=24, temperature=0
            )
            answers[shape, model] = response.choices[0].message.content
            assert answers[shape, model] and response.usage.prompt_tokens > 100  # the media's tokens are there
    assert answers["file", served.model] != answers["file", served.adapter]  # the LoRA is applied, not ignored
    assert answers["data+input_audio", served.adapter] == answers["file", served.adapter]  # same media both ways
    assert {m.id for m in client.models.list().data} == {served.model, ADAPTER_NAME}


def _refusal_cases(served, tmp_path) -> dict[str, tuple[int, dict]]:
    """name -> (expected status, request keyword arguments for chat_request)."""
    import base64

    import soundfile
    from conftest import moving_frames, tone

    from affect_mllm.media import write_video

    root = served.media_root
    good = served.clips["av_16k"].read_bytes()
    (root / "broken.mp4").write_bytes(good[: len(good) // 3])
    soundfile.write(root / "long.wav", tone(MAX_CLIP_SECONDS + 10.0), 16000)
    write_video(root / "long.mp4", moving_frames(MAX_CLIP_SECONDS + 5, 32, 32), 1.0)
    outside = Path(write_video(tmp_path / "outside.mp4", moving_frames(8, 32, 32), 2.0))
    video = lambda url: {"type": "video_url", "video_url": {"url": url}}  # noqa: E731
    big = base64.b64encode(bytes(MAX_REQUEST_MB << 20)).decode()
    return {
        "broken clip": (400, {"content": [video(file_url(root / "broken.mp4")), QUESTION]}),
        "broken data URL": (
            400,
            {"content": [video("data:video/mp4;base64," + base64.b64encode(good[:500]).decode()), QUESTION]},
        ),
        "outside the media root": (400, {"content": [video(file_url(outside)), QUESTION]}),
        "escape with ..": (400, {"content": [video(f"file://{root}/../{outside.parent.name}/outside.mp4"), QUESTION]}),
        "missing file": (400, {"content": [video(file_url(root / "missing.mp4")), QUESTION]}),
        "oversize audio": (
            400,
            {"content": [{"type": "audio_url", "audio_url": {"url": file_url(root / "long.wav")}}, QUESTION]},
        ),
        "oversize video": (400, {"content": [video(file_url(root / "long.mp4")), QUESTION]}),
        "oversize body": (413, {"content": [video("data:video/mp4;base64," + big), QUESTION]}),
        "two videos": (400, {"content": [video(file_url(served.clips["av_16k"]))] * 2 + [QUESTION]}),
        "unknown adapter": (404, {"content": [QUESTION], "model": "no-such-adapter"}),
        "missing API key": (401, {"content": [QUESTION], "api_key": ""}),
        "wrong API key": (401, {"content": [QUESTION], "api_key": "wrong"}),
    }


def test_bad_requests_get_clear_4xx_and_the_server_stays_healthy(served, tmp_path):
    import openai

    for name, (status, request) in _refusal_cases(served, tmp_path).items():
        got, body = chat_request(served, **request)
        assert got == status, f"{name}: {got} {body}"
        assert served.health() == 200, f"unhealthy after: {name}"
        if got != 401:  # vLLM's key check answers {"error": "Unauthorized"}; the rest say what is wrong
            assert body["error"]["message"], name
    with pytest.raises(openai.BadRequestError, match="subpath"):  # the official client surfaces the reason
        served.openai().chat.completions.create(
            model=served.model,
            max_tokens=4,
            messages=[
                {"role": "user", "content": _refusal_cases(served, tmp_path)["outside the media root"][1]["content"]}
            ],
        )
    assert chat_request(served, [QUESTION])[0] == 200


def test_concurrent_clients_are_answered_or_cleanly_refused(served):
    clients = 12  # over the server's 8 sequences per step: the rest queue
    barrier, statuses, lock = threading.Barrier(clients), [], threading.Lock()
    clip_files = sorted(served.media_root.glob("synthfacs/clips/*val*.mp4"))

    def one(index: int) -> None:
        clip = clip_files[index % len(clip_files)]
        content = [
            {"type": "video_url", "video_url": {"url": file_url(clip)}},
            {"type": "audio_url", "audio_url": {"url": file_url(clip)}},
            QUESTION,
        ]
        barrier.wait()
        status, _ = chat_request(served, content, model=served.adapter, max_tokens=32)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    print(f"{clients} concurrent clients: statuses {sorted(statuses)}")
    assert len(statuses) == clients and set(statuses) <= {200, 429, 503}, statuses
    assert statuses.count(200) >= 1 and served.health() == 200


@pytest.fixture(scope="module")
def hf_sft_engine(tiny_sft):
    """The HF engine on the session's tiny SFT model: the reference the served vLLM model must equal."""
    from inference.hf_engine import HFEngine

    engine = HFEngine.load(str(tiny_sft["base"]), adapters={"sft": str(tiny_sft["adapter"])})
    yield engine
    engine.close()


def _hf_answer_requests(engine, clips: list[Clip], texts: list[str]) -> list:
    """HF requests for the same question about each clip, fed our decoded frames and audio."""
    from affect_mllm.media import load_sample_media
    from affect_mllm.models.inputs import Conversation, build_messages
    from affect_mllm.prompts import SYSTEM_PROMPT
    from inference.engine import GenerationRequest

    requests = []
    for clip, text in zip(clips, texts, strict=True):
        media = load_sample_media(video=clip.video, audio=clip.audio, settings=engine.spec.media)
        conversation = Conversation(build_messages(media, text, engine.spec, SYSTEM_PROMPT), media)
        requests.append(GenerationRequest(conversation, adapter="sft"))
    return requests


def test_file_url_path_sees_what_our_pipeline_sees(served, hf_sft_engine):
    """The served model, decoding file:// URLs itself, gets our pipeline's media: the same prompt tokens and the same
    greedy fp32 answer as the HF engine fed our decoded frames and audio through training's `encode` (HF and vLLM
    agree token for token in fp32, tests/test_engine.py), 48 kHz and AAC-padded tracks included."""
    from affect_mllm.models.inputs import encode

    engine = hf_sft_engine
    client = served.client(model=served.adapter)
    settings = SamplingSettings(max_new_tokens=32)
    for name in ("audio_48k", "av_16k"):
        clip = Clip(video=served.clips[name])
        text = clip_prompt(clip)
        served_answer = client.complete(clip_messages(clip, text, "file"), settings)[0]
        [request] = _hf_answer_requests(engine, [clip], [text])
        prompt_tokens = encode(engine.processor, engine.spec, [request.conversation])["input_ids"].shape[1]
        [[ours]] = engine.generate([request], settings)
        print(
            f"{name}: served {served_answer.prompt_tokens} prompt tokens, ours {prompt_tokens}; "
            f"greedy texts equal: {served_answer.text == ours.text}"
        )
        assert served_answer.prompt_tokens == prompt_tokens, name
        assert served_answer.text == ours.text, name


def test_served_sft_model_equals_the_hf_engine_on_a_batch_of_clips(served, hf_sft_engine):
    """Greedy fp32 answers of the tiny SFT model, whole answers on the held-out SynthFACS clips: vLLM (the server,
    with the exported adapter) and the HF engine (one batch, the raw peft adapter) write the same text."""
    from affect_mllm.schema import read_manifest

    manifest = read_manifest(served.val_manifest)
    clips = [Clip.from_sample(sample, manifest) for sample in manifest.samples]
    texts = [clip_prompt(clip) for clip in clips]
    settings = SamplingSettings(max_new_tokens=160)
    client = served.client(model=served.adapter)
    served_texts = [client.complete(clip_messages(clip, text, "file"), settings)[0].text
                    for clip, text in zip(clips, texts, strict=True)]
    hf_texts = [c[0].text for c in hf_sft_engine.generate(_hf_answer_requests(hf_sft_engine, clips, texts), settings)]
    assert len(clips) >= 8
    assert served_texts == hf_texts
    assert len(set(hf_texts)) > 1  # the clips get different answers: the media matter
