"""The server's one gate (ASGI middleware loaded by vLLM through `--middleware`), in front of every route.

In order, for every HTTP or WebSocket request:
1. `GET /health` passes (load balancers probe it without a key);
2. with an API key set, a request without that key gets 401, before its body is read or any file is touched;
3. a route this project does not serve gets 404: only `EXPOSED_ROUTES` exist (the LoRA load/unload routes only
   with `--allow-runtime-lora`), whatever routes a vLLM version adds; `expose_only` also removes the others
   from the app at start-up, so they are absent from the app itself;
4. at most `max_concurrent_requests` bodies are admitted at once (the rest wait, unread), and a body over
   `max_request_bytes` gets 413 (the rest of it is read and dropped, so the client sees the answer);
5. the body is parsed as JSON (400 otherwise) and its media checked by `media_guard.check_request` (400 naming
   the part and the fault) before vLLM reads or decodes anything.
Only then does the request reach vLLM, with the body replayed as it came.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

POLICY_ENV = "AFFECT_MLLM_SERVER_POLICY"  # the policy travels as JSON in the server process's environment
OPEN_ROUTES = {("GET", "/health"), ("HEAD", "/health")}
EXPOSED_ROUTES = {("GET", "/v1/models"), ("POST", "/v1/chat/completions")}  # what the client, chat and predict use
RUNTIME_LORA_ROUTES = {("POST", "/v1/load_lora_adapter"), ("POST", "/v1/unload_lora_adapter")}


@dataclass(frozen=True)
class GatePolicy:
    """What the gate admits; built by `affect-mllm serve`, read back in the server process."""

    max_request_bytes: int = 64 << 20
    max_concurrent_requests: int = 16
    media_root: str | None = None
    allowed_media_domains: tuple[str, ...] = ()
    allow_runtime_lora: bool = False
    media: dict = field(default_factory=dict)  # MediaSettings fields: the offline pipeline's caps

    @classmethod
    def from_environment(cls) -> GatePolicy:
        """The policy `affect-mllm serve` put in this process's environment (defaults where none)."""
        values = json.loads(os.environ.get(POLICY_ENV, "{}"))
        values["allowed_media_domains"] = tuple(values.get("allowed_media_domains", ()))
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def routes(self) -> set[tuple[str, str]]:
        """(method, path) of every route the server answers."""
        return OPEN_ROUTES | EXPOSED_ROUTES | (RUNTIME_LORA_ROUTES if self.allow_runtime_lora else set())

    def media_policy(self):
        """The media guard's view: root, domains and the caps as MediaSettings."""
        from affect_mllm.media import MediaSettings
        from inference.media_guard import MediaPolicy

        root = Path(self.media_root) if self.media_root is not None else None
        return MediaPolicy(root, self.allowed_media_domains, MediaSettings(**self.media))


def route_pairs(app) -> set[tuple[str, str]]:
    """(method, path) of every HTTP route of a Starlette/FastAPI app (mounts and WebSockets as ("*", path))."""
    pairs = set()
    for route in app.routes:
        methods = getattr(route, "methods", None) or {"*"}
        pairs |= {(method, route.path) for method in methods}
    return pairs


def expose_only(app, policy: GatePolicy) -> list[str]:
    """Remove from the app every route the policy does not expose; returns the removed ones ("METHOD path")."""
    allowed = policy.routes()
    kept, removed = [], []
    for route in app.routes:
        methods = getattr(route, "methods", None) or {"*"}
        (kept if {(m, route.path) for m in methods} <= allowed else removed).append(route)
    app.router.routes[:] = kept
    return sorted(f"{'/'.join(sorted(getattr(r, 'methods', None) or {'*'}))} {r.path}" for r in removed)


class RequestGate:
    """ASGI middleware: API key, exposed routes, admission and body limits, then the media guard (module doc)."""

    def __init__(self, app, policy: GatePolicy | None = None, api_key: str | None = None) -> None:
        self.app = app
        self.policy = policy or GatePolicy.from_environment()  # vLLM builds the class with the app alone
        key = api_key if api_key is not None else os.environ.get("VLLM_API_KEY")
        self._key_hash = hashlib.sha256(key.encode()).digest() if key else None
        self._routes = self.policy.routes()
        self._admission = asyncio.Semaphore(self.policy.max_concurrent_requests)
        self._media = None  # the media guard's policy, built on first use (it imports the media pipeline)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan events
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "*") if scope["type"] == "http" else "*"
        route = (method, scope.get("path", ""))
        if route in OPEN_ROUTES:
            await self.app(scope, receive, send)
            return
        status, fault = self._refusal(scope, route)
        if status is not None:
            await _refuse(scope, receive, send, status, fault)
            return
        if method != "POST":
            await self.app(scope, receive, send)
            return
        async with self._admission:
            await self._admit_body(scope, receive, send)

    def _refusal(self, scope, route: tuple[str, str]) -> tuple[int | None, str]:
        if self._key_hash is not None and not self._has_key(scope):
            return 401, "missing or wrong API key (send it as 'Authorization: Bearer KEY')"
        if route not in self._routes:
            return 404, "not found"
        return None, ""

    def _has_key(self, scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.decode("latin-1").partition(" ")
        digest = hashlib.sha256(token.strip().encode("latin-1")).digest()
        return scheme.lower() == "bearer" and secrets.compare_digest(digest, self._key_hash)

    async def _admit_body(self, scope, receive, send) -> None:
        body = await read_body(receive, self.policy.max_request_bytes)
        if body is None:
            await json_error(send, 413, f"request body over the server's limit of {self.policy.max_request_bytes} "
                                        "bytes: send media as file:// URLs under the media root, or shorter clips")
            return
        fault = await asyncio.to_thread(self.body_fault, body)  # parsing and probing off the event loop
        if fault is not None:
            await json_error(send, 400, fault)
            return
        await self.app(scope, replaying(body, receive), send)

    def body_fault(self, body: bytes) -> str | None:
        """Why the server will not take this JSON body, or None (it parses as vLLM's FastAPI parses it)."""
        from inference.media_guard import MediaRefused, check_request

        try:
            request = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return "the request body is not valid JSON"
        if self._media is None:
            self._media = self.policy.media_policy()
        try:
            check_request(request, self._media)
        except MediaRefused as refusal:
            return str(refusal)
        return None


async def _refuse(scope, receive, send, status: int, message: str) -> None:
    """Refuse without parsing anything the client sent beyond the headers (a body is drained, not kept: a reply
    before the client has sent it reaches the client as a reset connection)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    await drain(receive)
    await json_error(send, status, message)


async def read_body(receive, limit: int) -> bytes | None:
    """The request body, or None when it exceeds `limit` bytes (the rest is then read and dropped)."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        else:
            chunks.clear()
        more = message.get("more_body", False)
    return b"".join(chunks) if size <= limit else None


async def drain(receive) -> None:
    """Read and drop the rest of a refused request's body, so that the client reads the answer, not a reset."""
    more = True
    while more:
        message = await receive()
        more = message["type"] == "http.request" and message.get("more_body", False)


def replaying(body: bytes, receive):
    """A `receive` that gives the already read body once, then the client's later messages (disconnects)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay():
        return pending.pop() if pending else await receive()

    return replay


async def json_error(send, status: int, message: str) -> None:
    """An error in the OpenAI error shape, so the openai client raises it with the message."""
    kind = {401: "authentication_error", 404: "not_found_error"}.get(status, "invalid_request_error")
    body = json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
