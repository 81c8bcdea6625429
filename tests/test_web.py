"""The web page: answer panel and chat turns in-process, then end to end in a real headless Chromium.

The in-process test runs the page's functions on the session's tiny SFT model in the HF engine. The browser test
drives Debian's chromium (`apt-get install chromium`; no browser download) through Playwright's Python API against
the page serving the session's vLLM server (`affect-mllm serve` on the same tiny SFT model) with guided analysis:
it loads the page, uploads a SynthFACS clip, waits for the answer and checks that it parsed and shows an emotion and
a rationale, then asks a follow-up. Set AFFECT_MLLM_WEB_SCREENSHOT=PATH to keep the page's screenshot (the README's
picture: docs/web_page.png).

Run: pytest tests/test_web.py -q
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from inference.web import answer_html, highlight_aus

pytest_plugins = ["server_fixtures"]

CHROMIUM = "/usr/bin/chromium"
# as the probe of this machine starts it: headless, no sandbox (root), and no background network (none is reachable)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]
SMILE = "<think>Cheeks raised (AU6), lip corners up (AU12C).</think><answer>emotions: happy, delighted</answer>"


def test_answer_panel_shows_words_status_va_and_highlighted_aus():
    panel = answer_html(SMILE, "<think>Warm.</think><answer>valence: 0.62; arousal: -0.10</answer>")
    assert '<div id="answer-emotion" class="emotion">happy, delighted</div>' in panel
    assert '<span id="answer-parsed">parsed</span>' in panel and '<b id="answer-category">happy</b>' in panel
    assert '<b id="answer-valence">+0.62</b>' in panel and '<b id="answer-arousal">-0.10</b>' in panel
    assert "(<mark>AU6</mark>)" in panel and "<mark>AU12C</mark>" in panel
    unparsed = answer_html("I think <b>happy</b> maybe", None)
    assert "not in the answer format" in unparsed and "&lt;b&gt;" in unparsed  # the model's text is escaped
    assert highlight_aus("no units") == "no units"


@pytest.fixture(scope="module")
def web_backend(tiny_sft):
    from inference.chat import EngineChat
    from inference.engine import SamplingSettings
    from inference.hf_engine import HFEngine
    from inference.web import WebBackend

    engine = HFEngine.load(str(tiny_sft["base"]), adapters={"adapter": str(tiny_sft["adapter"])})
    yield WebBackend(EngineChat(engine, SamplingSettings(max_new_tokens=200), "adapter"), engine.spec.has_audio)
    engine.close()


@pytest.fixture(scope="module")
def clip(synthfacs_small) -> Path:
    from affect_mllm.schema import read_manifest

    manifest = read_manifest(synthfacs_small["val"])
    return manifest.media_path(manifest.samples[0], "video")


@pytest.mark.integration
def test_analyze_and_follow_up_in_process(web_backend, clip, tmp_path):
    from affect_mllm.answer import parse_answer
    from inference.web import analyze, follow_up

    panel, history, figure, session = analyze(web_backend, str(clip))
    assert [m["role"] for m in history] == ["user", "assistant"]
    # the panel says what the parser says of the model's own answer (the session's tiny model may not parse)
    status = "parsed" if parse_answer(history[1]["content"]).well_formed.all else "not in the answer format"
    assert f'<span id="answer-parsed">{status}</span>' in panel
    assert figure is None  # a 4-second clip is one window: no timeline
    history, box = follow_up(web_backend, "Which cue matters most?", history, session)
    assert box == "" and [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert len(session.turns) == 4  # the follow-up kept the first exchange as context
    long_clip = tmp_path / "long.mp4"  # two clips back to back: longer than a window, so a timeline is drawn
    from affect_mllm.media import load_sample_media, write_video

    media = load_sample_media(video=clip)
    import numpy as np

    write_video(long_clip, np.concatenate([media.video, media.video]), 2.0, np.concatenate([media.audio] * 2))
    _, _, figure, _ = analyze(web_backend, str(long_clip))
    assert figure is not None and Path(figure).read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def served_backend(served):
    from inference.chat import ServerChat
    from inference.engine import SamplingSettings
    from inference.web import WebBackend

    chat = ServerChat(served.client(), SamplingSettings(max_new_tokens=200), "data", served.adapter)
    return WebBackend(chat, guided=True)


def test_guided_analysis_needs_a_server(web_backend):
    from inference.web import WebBackend

    with pytest.raises(ValueError, match="needs a server"):
        WebBackend(web_backend.chat, guided=True)


@pytest.mark.integration
def test_page_in_a_headless_browser(served_backend, clip, tmp_path):
    if importlib.util.find_spec("playwright") is None or importlib.util.find_spec("gradio") is None:
        pytest.skip("install affect-mllm[web] (gradio, playwright) to test the page in a browser")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM}: `apt-get install chromium` (the browser test uses Debian's chromium)")
    from playwright.sync_api import sync_playwright

    from affect_mllm.processes import free_port
    from inference.web import launch

    port = free_port()
    app = launch(served_backend, port=port, block=False)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 980})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.locator("#analyze").wait_for(timeout=60_000)
            page.locator("#clip input[type=file]").set_input_files(str(clip))
            page.locator("#clip video").wait_for(timeout=60_000)  # uploaded and shown
            page.click("#analyze")
            page.locator("#answer-emotion").wait_for(timeout=180_000)
            assert page.inner_text("#answer-parsed") == "parsed"
            assert page.inner_text("#answer-emotion").strip() not in ("", "no emotion named")
            assert len(page.inner_text("#answer-rationale").split()) >= 3
            page.fill("#follow-up textarea", "Which cue matters most?")
            page.press("#follow-up textarea", "Enter")
            page.locator("#chat [data-testid=bot]").nth(1).wait_for(timeout=120_000)  # the follow-up's answer
            shot = tmp_path / "web_page.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        assert shot.stat().st_size > 10_000
        if os.environ.get("AFFECT_MLLM_WEB_SCREENSHOT"):
            shutil.copy(shot, os.environ["AFFECT_MLLM_WEB_SCREENSHOT"])
    finally:
        app.close()
