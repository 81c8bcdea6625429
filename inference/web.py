"""`affect-mllm web`: a Gradio page to upload or record a clip and see the model's answer and its evidence.

    affect-mllm web --model tiny-omni-base --adapter runs/sft/adapter     # a local engine
    affect-mllm web --server http://127.0.0.1:8000 --api-key KEY          # a running `affect-mllm serve`

The page asks the trained open-vocabulary question about the clip and shows the answer: the emotion words, the
rationale with every cited AU highlighted, whether the answer followed the grammar, and valence/arousal (the
valence_arousal question, asked apart). A clip longer than one timeline window also gets the timeline figure
(`inference.timeline`, the same windows and smoothing as `affect-mllm timeline`). Follow-up questions are chat
turns about the same clip. Everything goes through the code `affect-mllm chat` uses (`inference.chat`:
`ServerChat` over the client helper, or `EngineChat` over a local engine), so the page sees what the terminal sees.
With a server, `--guided` asks the two analysis questions within the task's tag grammar (the client's
`tagged_answer_regex`, as `predict --guided` does), so even a weak model's answer parses; follow-ups stay free.

Gradio is an optional dependency (`pip install affect-mllm[web]`); the page loads nothing from the network (no
share link, no analytics, system fonts).
"""

from __future__ import annotations

import html
import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from inference.chat import ChatSession, EngineChat, ServerChat

logger = logging.getLogger(__name__)

WEB_MISSING = "the web page needs Gradio: install `affect-mllm[web]`"
TIMELINE_TASKS = ("ov_emotion", "valence_arousal")
_AU = re.compile(r"\bAU ?\d{1,2}[A-E]?\b")


@dataclass
class WebBackend:
    """What answers the page: a chat backend (server or engine) and whether the model hears audio."""

    chat: ServerChat | EngineChat
    hears_audio: bool = True
    guided: bool = False  # server only: the analysis questions decode within the task's tag grammar
    window_s: float = 4.0  # clips longer than this get a timeline
    timelines: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="affect-mllm-web-")))

    def answerer(self):
        """The timeline answerer over the same client or engine."""
        from inference.timeline_answer import EngineAnswerer, ServerAnswerer

        if isinstance(self.chat, ServerChat):
            return ServerAnswerer(self.chat.client, TIMELINE_TASKS, self.chat.sampling, self.chat.model)
        return EngineAnswerer(self.chat.engine, TIMELINE_TASKS, self.chat.sampling, self.chat.adapter)

    def __post_init__(self) -> None:
        if self.guided and not isinstance(self.chat, ServerChat):
            raise ValueError("guided decoding needs a server (the local engines have no grammar-constrained decoding)")

    def media_settings(self):
        from affect_mllm.media import MediaSettings

        return self.chat.engine.spec.media if isinstance(self.chat, EngineChat) else MediaSettings()


def highlight_aus(text: str) -> str:
    """HTML of a rationale with each cited AU marked.

    Example:
        >>> highlight_aus("Cheeks <up> (AU6) & AU 12C")
        'Cheeks &lt;up&gt; (<mark>AU6</mark>) &amp; <mark>AU 12C</mark>'
    """
    return _AU.sub(lambda m: f"<mark>{m.group(0)}</mark>", html.escape(text, quote=False))


def answer_html(text: str, va_text: str | None) -> str:
    """The answer panel: emotion words, parse status, valence/arousal and the highlighted rationale."""
    from affect_mllm.answer import parse_answer
    from affect_mllm.metrics.categorical import first_category

    parsed, va = parse_answer(text), parse_answer(va_text or "")
    words = parsed.emotion_words
    status = "parsed" if parsed.well_formed.all else "not in the answer format"

    def number(value):
        return "-" if value is None else f"{value:+.2f}"

    cited = ", ".join(f"AU{n}" for n in parsed.rationale_aus) or "-"
    return (f'<div id="answer-emotion" class="emotion">{html.escape(", ".join(words) or "no emotion named")}</div>'
            f'<div>category: <b id="answer-category">{html.escape(first_category(list(words)) or "-")}</b> '
            f'&middot; <span id="answer-parsed">{status}</span></div>'
            f'<div>valence <b id="answer-valence">{number(va.fields.valence)}</b> &middot; arousal '
            f'<b id="answer-arousal">{number(va.fields.arousal)}</b> &middot; cited AUs {cited}</div>'
            f'<p id="answer-rationale">{highlight_aus(parsed.fields.rationale or text)}</p>')


def _ask(backend: WebBackend, session: ChatSession, text: str, guided: bool = False) -> str:
    """One turn through the chat backend; `guided` (server) decodes the session's task within its tag grammar."""
    session.turns.append({"role": "user", "text": text})
    if guided:
        from inference.client import tagged_answer_regex

        chat = backend.chat
        [answer] = chat.client.complete(chat.messages(session), chat.sampling, model=chat.model,
                                        regex=tagged_answer_regex(session.task))
        reply = answer.text
    else:
        reply = "".join(backend.chat.reply(session))
    session.turns.append({"role": "assistant", "text": reply})
    return reply


def analyze(backend: WebBackend, video: str | None) -> tuple[str, list[dict], str | None, ChatSession | None]:
    """Ask about a clip: (answer HTML, chat history, timeline PNG path or None, the chat session)."""
    from inference.chat import first_question

    if not video:
        return "<p>Upload or record a clip first.</p>", [], None, None
    session = ChatSession(task="ov_emotion")
    session.attach(video=Path(video))
    question = first_question(session, backend.hears_audio)
    text = _ask(backend, session, question, backend.guided)
    va_session = ChatSession(task="valence_arousal")
    va_session.attach(video=Path(video))
    va_text = _ask(backend, va_session, first_question(va_session, backend.hears_audio), backend.guided)
    history = [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
    return answer_html(text, va_text), history, timeline_png(backend, Path(video)), session


def timeline_png(backend: WebBackend, video: Path) -> str | None:
    """The timeline figure of a clip longer than one window (None for a short clip)."""
    from inference.timeline import TimelineSettings, clip_duration, run_timeline

    if clip_duration(video) <= backend.window_s:
        return None
    out = Path(tempfile.mkdtemp(dir=backend.timelines))
    run_timeline(video, out, backend.answerer(), settings=TimelineSettings(window_s=backend.window_s,
                                                                           tasks=TIMELINE_TASKS),
                 media=backend.media_settings())
    return str(out / "timeline.png")


def follow_up(backend: WebBackend, message: str, history: list[dict],
              session: ChatSession | None) -> tuple[list[dict], str]:
    """One chat turn about the clip: (history with the question and the answer, "" for the input box)."""
    if not message.strip():
        return history, ""
    if session is None:
        return [*history, {"role": "assistant", "content": "Analyze a clip first."}], ""
    reply = _ask(backend, session, message.strip())
    return [*history, {"role": "user", "content": message.strip()}, {"role": "assistant", "content": reply}], ""


CSS = """
#answer .emotion{font-size:1.5em;font-weight:600}
#answer mark{background:#ffe08a;padding:0 2px}
"""


def build_app(backend: WebBackend):
    """The Gradio Blocks app (not launched)."""
    try:
        import gradio as gr
    except ImportError as exc:
        raise ImportError(WEB_MISSING) from exc

    with gr.Blocks(title="affect-mllm", analytics_enabled=False) as app:
        gr.Markdown("## affect-mllm: emotion and its evidence\nUpload or record a clip, then ask follow-ups.")
        session = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                video = gr.Video(sources=["upload", "webcam"], label="clip", elem_id="clip")
                run = gr.Button("Analyze", variant="primary", elem_id="analyze")
            with gr.Column(scale=1):
                answer = gr.HTML("<p>No clip yet.</p>", elem_id="answer")
                figure = gr.Image(label="timeline", visible=False, elem_id="timeline", type="filepath")
        chat = gr.Chatbot(label="conversation", elem_id="chat", height=320)
        message = gr.Textbox(placeholder="Ask a follow-up about the clip", show_label=False, elem_id="follow-up")
        def on_analyze(clip):
            panel, history, png, state = analyze(backend, clip)
            return panel, history, gr.update(value=png, visible=png is not None), state

        run.click(on_analyze, inputs=video, outputs=[answer, chat, figure, session])
        message.submit(lambda text, history, state: follow_up(backend, text, history, state),
                       inputs=[message, chat, session], outputs=[chat, message])
    return app


def launch(backend: WebBackend, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Serve the page on host:port (no share link, no server-side rendering, system fonts)."""
    import gradio as gr

    app = build_app(backend)
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    app.queue(default_concurrency_limit=1)  # one engine: one request at a time
    app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block, ssr_mode=False,
               theme=theme, css=CSS, quiet=True, allowed_paths=[str(backend.timelines)])
    return app
