"""The launch of vLLM's OpenAI server for `affect-mllm serve`: its command line and its environment.

- the engine arguments come from `vllm_engine_args`, exactly as the offline engine gets them: dtype, model
  length, the KV cache size, one video/audio per prompt, and the processor's fps and pixel caps;
- vLLM decodes `video_url` files itself with its `qwen2_vl` frame sampler, which ports the same formula as our
  decoder (`media.sample_indices`): `--media-io-kwargs` gives it our fps and frame bounds, so the served model
  gets the frames training got (tests/test_serve.py compares them on a clip with a 48 kHz audio track);
- the chat template is the model folder's own `chat_template.jinja`;
- LoRA adapters are exported with vLLM's `thinker.` names first (`adapter_export`): vLLM would otherwise load
  peft's names without a warning and serve the base model;
- every request passes `request_gate.RequestGate` first (vLLM's own `--middleware`): the key on every route, only
  the routes this project needs, body and concurrency limits, and the media guard (`media_guard.py`) with the
  offline pipeline's caps, which travel to it as JSON in the environment (`GatePolicy`);
- local files are readable only under `--media-root` (`--allowed-local-media-path`); remote URLs only from the
  operator's `--allowed-media-domains` (none by default; redirects are not followed, nothing is cached on disk);
- the API key reaches vLLM through its `VLLM_API_KEY` environment variable rather than the command line, where
  every local user could read it in the process list; vLLM's development routes stay off.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from affect_mllm.models.registry import ModelSpec
from inference.request_gate import POLICY_ENV, GatePolicy

SERVE_MODULE = "inference.serve"  # the server process's launcher (`python -m inference.serve`)
GATE_MIDDLEWARE = "inference.request_gate.RequestGate"
_NOT_FLAGS = ("model",)  # engine arguments that are not command-line flags of the server, or that we set ourselves
# vLLM environment settings the server process must not inherit: development routes (sleep, cache reset, RPC),
# runtime LoRA routes (unless asked for), following redirects of fetched media, a disk cache of fetched media
_FORCED_ENV = {"VLLM_SERVER_DEV_MODE": "0", "VLLM_MEDIA_URL_ALLOW_REDIRECTS": "0", "VLLM_MEDIA_CACHE": ""}
# vLLM flags that would bypass the gate or widen what the server reads: set only through our own options
GUARDED_FLAGS = ("--api-key", "--middleware", "--allowed-local-media-path", "--allowed-media-domains",
                 "--enable-mm-embeds", "--enable-prompt-embeds", "--trust-request-chat-template")


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
    kv_cache_gib: float | None = None  # None: derived from the model, max_model_len and max_num_seqs
    enforce_eager: bool = True
    max_clip_seconds: float | None = None  # None: the model's media settings' max_duration_s
    max_clip_mb: float = 25.0  # audio files (vLLM's own default)
    max_request_mb: float = 64.0
    max_concurrent_requests: int | None = None  # bodies admitted at once; None: twice max_num_seqs
    decode_threads: int = 2  # media decoded at once (each bounded by the caps)
    allowed_media_domains: tuple[str, ...] = ()  # remote media URLs allowed only from these hosts
    allow_runtime_lora: bool = False  # expose vLLM's LoRA load/unload routes
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
    return {"video": {"fps": media.fps, "min_frames": media.min_frames, "max_frames": media.max_frames,
                      "temporal_patch_size": media.temporal_patch_size}}


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


def server_command(spec: ModelSpec, adapter_dirs: Mapping[str, Path], options: ServeOptions,
                   python: str = sys.executable) -> list[str]:
    """The command line of vLLM's OpenAI server for this model, adapters (already exported) and options.

    Returns:
        `python -m inference.serve` and vLLM's server arguments (the key is not among them: `server_environment`).

    Raises:
        ValueError: the extra arguments set one of `GUARDED_FLAGS`.
    """
    from inference.vllm_engine import vllm_engine_args

    guarded = sorted({arg.partition("=")[0] for arg in options.extra_args} & set(GUARDED_FLAGS))
    if guarded:
        raise ValueError(f"{', '.join(guarded)}: set through affect-mllm serve's own options, which the request "
                         "gate knows about, not as vLLM arguments")
    args = vllm_engine_args(spec, dtype=options.dtype, adapter_dirs=list(adapter_dirs.values()),
                            max_model_len=options.max_model_len, max_num_seqs=options.max_num_seqs,
                            kv_cache_gib=options.kv_cache_gib, enforce_eager=options.enforce_eager, seed=options.seed)
    command = [python, "-m", SERVE_MODULE, "--model", spec.source, "--served-model-name",
               options.served_name or spec.name, "--host", options.host, "--port", str(options.port),
               *engine_flags(args), "--media-io-kwargs", json.dumps(video_io_kwargs(spec), sort_keys=True),
               # the request's own sampling settings, not the checkpoint's generation_config, as the engine does
               "--generation-config", "vllm", "--middleware", GATE_MIDDLEWARE, "--disable-fastapi-docs"]
    template = chat_template_file(spec)
    if template is not None:
        command += ["--chat-template", str(template)]
    if options.media_root is not None:
        command += ["--allowed-local-media-path", str(Path(options.media_root).resolve())]
    if options.allowed_media_domains:
        command += ["--allowed-media-domains", *options.allowed_media_domains]
    if adapter_dirs:
        command += ["--lora-modules", *(f"{name}={path}" for name, path in adapter_dirs.items())]
    return [*command, *options.extra_args]


def gate_policy(spec: ModelSpec, options: ServeOptions) -> GatePolicy:
    """The request gate's policy: limits, media root, allowed domains, the caps of the model's media settings."""
    seconds = options.max_clip_seconds if options.max_clip_seconds is not None else spec.media.max_duration_s
    media = replace(spec.media, max_duration_s=float(seconds))
    return GatePolicy(
        max_request_bytes=int(options.max_request_mb * 2**20),
        max_concurrent_requests=options.max_concurrent_requests or 2 * options.max_num_seqs,
        media_root=str(Path(options.media_root).resolve()) if options.media_root is not None else None,
        allowed_media_domains=tuple(options.allowed_media_domains), allow_runtime_lora=options.allow_runtime_lora,
        media=asdict(media))


def server_environment(spec: ModelSpec, options: ServeOptions, base: Mapping[str, str] | None = None
                       ) -> dict[str, str]:
    """The server process's environment: the caller's plus the API key, the gate's policy and vLLM's media limits."""
    env = dict(os.environ if base is None else base)
    policy = gate_policy(spec, options)
    env.update(_FORCED_ENV, VLLM_ALLOW_RUNTIME_LORA_UPDATING="1" if options.allow_runtime_lora else "0",
               VLLM_MAX_AUDIO_DECODE_DURATION_S=str(math.ceil(policy.media["max_duration_s"])),
               VLLM_MAX_AUDIO_CLIP_FILESIZE_MB=str(max(1, math.floor(options.max_clip_mb))),
               VLLM_MEDIA_LOADING_THREAD_COUNT=str(options.decode_threads), **{POLICY_ENV: policy.to_json()})
    if options.api_key:
        env["VLLM_API_KEY"] = options.api_key
    else:
        env.pop("VLLM_API_KEY", None)  # an inherited key would lock clients out of a server meant to be open
    return env
