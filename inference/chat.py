"""`affect-mllm chat [VIDEO]`: a multi-turn terminal chat about a clip, against a server or a local engine.

    affect-mllm chat clips/c1.mp4 --server http://127.0.0.1:8000 --api-key KEY
    affect-mllm chat clips/c1.mp4 --model tiny-omni --adapter runs/sft/adapter

Attaching a clip (the VIDEO argument, `/video PATH`, `/audio PATH`) starts a conversation about it with the
trained task question, so the first answer is the model's analysis; lines typed afterwards are follow-ups that
keep the whole conversation as context. A prompt holds one video and one audio, so a new clip starts a new
conversation. `/reset` forgets the conversation and the clip, `/quit` (or end of input) leaves. Answers stream
as they are generated (from a server; the local engine gives them whole), the rationale shown apart from the
answer, then the parsed fields. Input is read line by line, so the chat can be driven through a pipe.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from inference.client import Clip
from inference.engine import SamplingSettings

COMMANDS = {
    "/video PATH": "talk about a new video (its own audio track included)",
    "/audio PATH": "add a separate audio file to the clip (or talk about an audio file alone)",
    "/reset": "forget the conversation and the clip",
    "/quit": "leave",
}


@dataclass
class ChatSession:
    """The conversation so far: the clip it is about (if any) and its turns, the first one about the clip."""

    task: str = "ov_emotion"
    clip: Clip | None = None
    turns: list[dict] = field(default_factory=list)  # {"role": "user"|"assistant", "text": str}

    def attach(self, video: Path | None = None, audio: Path | None = None) -> None:
        """Start a conversation about a new video, or about the current video with a separate audio file."""
        if video is not None:
            self.clip = Clip(video=video, audio=audio)
        else:
            self.clip = Clip(video=self.clip.video if self.clip else None, audio=audio)
        self.turns = []

    def reset(self) -> None:
        """Forget the clip and the conversation."""
        self.clip, self.turns = None, []


class ChatBackend(Protocol):
    """Whatever answers a session's last user turn."""

    def reply(self, session: ChatSession) -> Iterator[str]:
        """Yield the answer's text as it comes."""
        ...


class ServerChat:
    """Answers from an OpenAI-compatible server (streamed), through the client helper."""

    def __init__(self, client, sampling: SamplingSettings, media: str = "data", model: str | None = None) -> None:
        self.client, self.sampling, self.media, self.model = client, sampling, media, model

    def messages(self, session: ChatSession) -> list[dict]:
        """OpenAI messages: the clip's media in the first user turn, as SFT's conversations have them."""
        from affect_mllm.prompts import SYSTEM_PROMPT
        from inference.client import clip_messages

        if session.clip is None:
            first = [{"role": "system", "content": SYSTEM_PROMPT}, _message(session.turns[0])]
        else:
            first = clip_messages(session.clip, session.turns[0]["text"], self.media)
        return first + [_message(turn) for turn in session.turns[1:]]

    def reply(self, session: ChatSession) -> Iterator[str]:
        yield from self.client.stream(self.messages(session), self.sampling, model=self.model)


class EngineChat:
    """Answers from a local engine (`inference.engine`), given whole."""

    def __init__(self, engine, sampling: SamplingSettings, adapter: str | None = None) -> None:
        self.engine, self.sampling, self.adapter = engine, sampling, adapter

    def conversation(self, session: ChatSession):
        """The engine's Conversation: our decoder's media and the same messages SFT trains on."""
        from affect_mllm.media import SampleMedia, load_sample_media
        from affect_mllm.models.inputs import Conversation, build_messages
        from affect_mllm.prompts import SYSTEM_PROMPT

        spec = self.engine.spec
        media = (
            SampleMedia()
            if session.clip is None
            else load_sample_media(video=session.clip.video, audio=session.clip.audio, settings=spec.media)
        )
        if not spec.has_audio:
            media.audio = None
        messages = build_messages(media, session.turns[0]["text"], spec, SYSTEM_PROMPT)
        return Conversation(messages + [_message(turn) for turn in session.turns[1:]], media)

    def reply(self, session: ChatSession) -> Iterator[str]:
        from inference.engine import GenerationRequest

        request = GenerationRequest(self.conversation(session), adapter=self.adapter)
        [[generation]] = self.engine.generate([request], self.sampling)
        yield generation.text


def _message(turn: dict) -> dict:
    return {"role": turn["role"], "content": turn["text"]}


def first_question(session: ChatSession, hears_audio: bool = True) -> str:
    """The trained task prompt for the session's clip, stating the modalities the clip really has."""
    from inference.client import clip_prompt

    return clip_prompt(session.clip, session.task, hears_audio=hears_audio)


def run_chat(
    backend: ChatBackend, lines: Iterable[str], console, session: ChatSession, hears_audio: bool = True
) -> int:
    """Drive a chat: ask about the session's clip first (if any), then one turn per input line.

    Args:
        backend: ServerChat or EngineChat.
        lines: the user's input lines (stdin).
        console: a rich Console for the output.
        session: the session (its clip, if given at start).
        hears_audio: whether the model hears audio (the prompt's modality sentence).

    Returns:
        The number of answers given.
    """
    answers = 0
    if session.clip is not None:
        answers += _ask(backend, session, first_question(session, hears_audio), console)
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.startswith("/"):
            if _command(line, session, console) == "quit":
                break
            if session.clip is not None and not session.turns:  # a clip was just attached
                answers += _ask(backend, session, first_question(session, hears_audio), console)
            continue
        answers += _ask(backend, session, line, console)
    return answers


def _command(line: str, session: ChatSession, console) -> str | None:
    """Apply a slash command; "quit" to stop."""
    name, _, argument = line.partition(" ")
    argument = argument.strip()
    if name == "/quit":
        return "quit"
    if name == "/reset":
        session.reset()
        console.print("[dim]conversation and clip forgotten[/dim]")
    elif name in ("/video", "/audio") and argument:
        path = Path(argument).expanduser()
        if not path.is_file():
            console.print(f"[red]no such file: {path}[/red]")
            return None
        session.attach(**{name[1:]: path})
        console.print(f"[dim]clip: {session.clip.video or '-'} (video), {session.clip.audio or '-'} (audio)[/dim]")
    else:
        console.print("commands: " + "; ".join(f"{usage}: {what}" for usage, what in COMMANDS.items()))
    return None


def _ask(backend: ChatBackend, session: ChatSession, text: str, console) -> int:
    """One turn: send it, show the answer as it streams, keep it in the conversation; 0 if it failed."""
    session.turns.append({"role": "user", "text": text})
    try:
        reply = show_streamed_answer(backend.reply(session), console)
    except Exception as error:  # a refused request or a bad clip: say so and let the user go on
        session.turns.pop()
        console.print(f"[red]error: {type(error).__name__}: {error}[/red]")
        return 0
    session.turns.append({"role": "assistant", "text": reply})
    return 1


def show_streamed_answer(chunks: Iterable[str], console) -> str:
    """Show the rationale and the answer apart while the text streams in; then the parsed fields."""
    from rich.live import Live

    text = ""
    if console.is_terminal:
        with Live(_answer_view("", ""), console=console, auto_refresh=False) as live:
            for chunk in chunks:
                text += chunk
                live.update(_answer_view(*_split(text)), refresh=True)
    else:  # a pipe or a file: no redrawing, the answer once it is complete
        text = "".join(chunks)
        console.print(_answer_view(*_split(text)))
    console.print(_fields_line(text))
    return text


def typed_lines(console, prompt: str = "[bold]you>[/bold] ") -> Iterator[str]:
    """The user's lines, read from stdin after a prompt, until end of input (piped lines are echoed)."""
    import sys

    while True:
        try:
            line = console.input(prompt)
        except EOFError:
            return
        if not sys.stdin.isatty():  # a terminal echoes what is typed; a pipe does not
            console.print(line, markup=False, highlight=False)
        yield line


def _split(text: str) -> tuple[str, str]:
    from inference.client import split_tagged

    return split_tagged(text)


def _answer_view(rationale: str, answer: str):
    from rich.console import Group
    from rich.panel import Panel

    return Group(
        Panel(rationale or "...", title="rationale", border_style="cyan"),
        Panel(answer or "...", title="answer", border_style="green"),
    )


def answer_summary(text: str) -> str:
    """The parsed answer in one plain line (what `predict` would record), or why it did not parse."""
    from affect_mllm.answer import answer_to_json, parse_answer

    parsed = answer_to_json(parse_answer(text))
    shown = {key: parsed[key] for key in ("emotion", "emotions", "aus", "valence", "arousal") if parsed[key]}
    form = "well-formed" if all(parsed["well_formed"].values()) else "not in the answer format"
    return f"{shown or 'no fields'} ({form})"


def _fields_line(text: str) -> str:
    from rich.markup import escape

    fields, _, form = answer_summary(text).rpartition(" (")
    return f"[bold]{escape(fields)}[/bold] [dim]({escape(form)}[/dim]"
