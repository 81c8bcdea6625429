"""`affect-mllm chat`: commands, follow-ups that keep the context, and the real command driven through stdin.

Run: pytest tests/test_chat.py -q   (the stdin test uses the shared vLLM server)
"""

from __future__ import annotations

import io
import os
import subprocess

from process_helpers import affect_mllm_command
from rich.console import Console

from inference.chat import ChatSession, EngineChat, ServerChat, run_chat
from inference.engine import SamplingSettings

pytest_plugins = ["server_fixtures"]

TAGGED = "<think>Lip corners pulled up (AU12).</think><answer>emotions: happy</answer>"


class RecordingBackend:
    """A backend that answers TAGGED in two chunks and remembers the messages each turn sent."""

    def __init__(self) -> None:
        self.sent: list[list[dict]] = []
        self.messages = ServerChat(client=None, sampling=SamplingSettings(), media="file").messages

    def reply(self, session: ChatSession):
        self.sent.append(self.messages(session))
        yield TAGGED[:20]
        yield TAGGED[20:]


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, force_terminal=False), out


def test_follow_ups_keep_the_clip_and_the_conversation(clips, tmp_path):
    backend, (console, out) = RecordingBackend(), _console()
    session = ChatSession()
    session.attach(video=clips["av_16k"])
    lines = ["And the voice?", f"/video {clips['silent']}", "/reset", "hello", "/nope", "/quit", "never read"]
    assert run_chat(backend, lines, console, session) == 4  # analysis, follow-up, new clip's analysis, hello
    first, follow_up, new_clip, plain = backend.sent
    assert [p["type"] for p in first[1]["content"]] == ["video_url", "audio_url", "text"]
    assert "with its audio track" in first[1]["content"][-1]["text"]
    assert follow_up[:2] == first and follow_up[2:] == [
        {"role": "assistant", "content": TAGGED},
        {"role": "user", "content": "And the voice?"},
    ]
    assert [p["type"] for p in new_clip[1]["content"]] == ["video_url", "text"]  # a silent clip: no audio part
    assert "There is no audio." in new_clip[1]["content"][-1]["text"] and len(new_clip) == 2
    assert plain[1:] == [{"role": "user", "content": "hello"}]  # after /reset: no clip, no history
    shown = out.getvalue()
    assert "rationale" in shown and "Lip corners pulled up (AU12)." in shown and "'emotions': ['happy']" in shown
    assert "commands:" in shown  # /nope lists the commands


def test_a_failing_turn_is_reported_and_forgotten(clips):
    class Failing:
        def reply(self, session):
            raise RuntimeError("server down")
            yield ""  # a generator, like the real backends

    console, out = _console()
    session = ChatSession()
    assert run_chat(Failing(), ["hi"], console, session) == 0
    assert session.turns == [] and "server down" in out.getvalue()


def test_local_engine_chat(tiny_sft, clips):
    from inference.hf_engine import HFEngine

    engine = HFEngine.load(str(tiny_sft["base"]), adapters={"sft": str(tiny_sft["adapter"])})
    backend = EngineChat(engine, SamplingSettings(max_new_tokens=16), adapter="sft")
    console, out = _console()
    session = ChatSession()
    session.attach(video=clips["audio_48k"])
    assert run_chat(backend, ["Why?"], console, session) == 2
    conversation = backend.conversation(session)
    assert [m["role"] for m in conversation.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert conversation.media.audio is not None and "answer" in out.getvalue()


def test_chat_command_through_stdin(served):
    """The real command, driven through a pipe, shows what the served model answers: its first answer is the one
    the server gives the same first turn (greedy), and the clip attached with /audio gets an answer of its own."""
    from inference.chat import answer_summary
    from inference.client import Clip, clip_messages, clip_prompt

    launcher = affect_mllm_command()
    command = [
        *launcher,
        "chat",
        str(served.clips["av_16k"]),
        "--server",
        served.url,
        "--model",
        served.adapter,
        "--media",
        "file",
        "--max-new-tokens",
        "48",
    ]
    stdin = f"What does the voice say?\n/audio {served.clips['audio_48k']}\n/quit\n"
    env = {**os.environ, "AFFECT_MLLM_API_KEY": served.api_key, "COLUMNS": "200"}
    done = subprocess.run(command, input=stdin, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    client = served.client(model=served.adapter)
    clip = Clip(video=served.clips["av_16k"])
    first = client.complete(clip_messages(clip, clip_prompt(clip), "file"), SamplingSettings(max_new_tokens=48))[0]
    attached = Clip(video=served.clips["av_16k"], audio=served.clips["audio_48k"])
    second = client.complete(clip_messages(attached, clip_prompt(attached), "file"),
                             SamplingSettings(max_new_tokens=48))[0]
    summaries = [line.strip() for line in done.stdout.splitlines() if line.strip().endswith(("well-formed)",
                                                                                              "answer format)"))]
    assert len(summaries) == 3, done.stdout[-3000:]  # the analysis, the follow-up, the new clip's analysis
    assert (summaries[0], summaries[2]) == (answer_summary(first.text), answer_summary(second.text))
    assert "error: " not in done.stdout
