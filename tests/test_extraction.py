"""Free text -> labels (affect_mllm/extraction.py): the lexicon extractor, and the LLM extractor against a fake server.

Run: pytest tests/test_extraction.py -q

The LLM extractor is tested against a tiny OpenAI-compatible HTTP server started here on 127.0.0.1 (a fake: it
answers canned replies and records the requests), so the real `openai` client, the cache and the error path are
exercised without any network or model.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from affect_mllm.extraction import (
    ExtractionError,
    LexiconExtractor,
    LLMExtractor,
    fill_emotions,
    needs_extraction,
    parse_label_reply,
)
from affect_mllm.predictions import LabelRecord


@pytest.mark.parametrize(("text", "expected"), [
    ("She is happy.", ["happy"]),
    ("She is HAPPY, then Happy again, then happiness.", ["happy"]),  # case, repeats and forms collapse
    ("He is not happy but angry.", ["angry"]),  # negation stays within its clause
    ("He doesn't seem happy; he is nervous.", ["nervous"]),
    ("Without any fear, she is calm.", ["calm"]),
    ("He seems fed up and on edge.", ["frustrated", "edgy"]),  # phrases, first mention first
    ("Brows drawn down, a warm light, lips tense.", []),  # face and scene words are not feelings
    ("She feels down and looks a bit lost.", ["dejected", "lost"]),  # ... unless a feeling verb precedes
    ("Qwerty asdf zxcv.", []),
    ("", []),
])
def test_lexicon_extractor(text, expected):
    assert LexiconExtractor().extract(text) == expected


def test_lexicon_extractor_never_raises_on_odd_input():
    assert LexiconExtractor().extract(None) == []
    assert LexiconExtractor().extract("[]{}()\x00 n't not") == []


@pytest.mark.parametrize(("reply", "expected"), [
    ("[happy, sad]", ["happy", "sad"]),
    ("The emotions are: [Anxious, 'tense'].", ["anxious", "tense"]),
    ("[]", []),
    ("happy, happy, calm\nextra line", ["happy", "calm"]),
    ("", []), ("   ", []),
])
def test_parse_label_reply(reply, expected):
    assert parse_label_reply(reply) == expected


def test_fill_emotions_only_where_labels_are_missing():
    records = [LabelRecord("a", emotions=("sad",), rationale="She is happy."),
               LabelRecord("b", raw="He is furious."), LabelRecord("c", rationale="She is nervous."),
               LabelRecord("d"), LabelRecord("e", emotions=(), rationale="She is happy.")]
    filled, n = fill_emotions(records, LexiconExtractor())
    assert n == 2 and [r.emotions for r in filled] == [("sad",), ("furious",), ("nervous",), None, ()]
    assert not needs_extraction(filled[3]) and not needs_extraction(filled[4])  # an empty answer stays empty


class _FakeChatServer:
    """A local OpenAI-compatible /chat/completions endpoint with canned replies (a mock, for the client path)."""

    def __init__(self, reply: str = "[happy, relieved]", status: int = 200) -> None:
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, **body})
                payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": reply}}]}
                data = json.dumps(payload if status == 200 else {"error": {"message": "nope"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> _FakeChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_llm_extractor_is_greedy_and_cached_on_disk(tmp_path):
    cache = tmp_path / "extractions.jsonl"
    with _FakeChatServer() as server:
        extractor = LLMExtractor(base_url=server.base_url, model="judge-7b", cache_path=cache)
        assert extractor.extract("She smiles with relief.") == ["happy", "relieved"]
        assert extractor.extract("She smiles with relief.") == ["happy", "relieved"]
        assert len(server.requests) == 1  # second call from the cache
        request = server.requests[0]
        assert request["path"] == "/v1/chat/completions" and request["temperature"] == 0.0
        assert request["model"] == "judge-7b" and "She smiles with relief." in request["messages"][0]["content"]
        reloaded = LLMExtractor(base_url=server.base_url, model="judge-7b", cache_path=cache)
        assert reloaded.extract("She smiles with relief.") == ["happy", "relieved"]
        assert len(server.requests) == 1  # a new process reads the cache file
        other_model = LLMExtractor(base_url=server.base_url, model="other", cache_path=cache)
        other_model.extract("She smiles with relief.")
        assert len(server.requests) == 2  # the cache is keyed by (model, text)
    settings = extractor.settings()
    assert settings["extractor"] == "llm" and settings["model"] == "judge-7b" and settings["temperature"] == 0.0
    assert "api_key" not in json.dumps(settings)


def test_llm_extractor_errors_name_the_endpoint():
    with _FakeChatServer(status=400) as server:
        extractor = LLMExtractor(base_url=server.base_url, model="judge")
        with pytest.raises(ExtractionError, match="127.0.0.1"):
            extractor.extract("text")
    with pytest.raises(ValueError):
        LLMExtractor(base_url="", model="judge")
