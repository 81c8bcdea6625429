"""The `serve`, `chat` and `predict` commands (rows of the command table in affect_mllm/cli.py).

Registration imports nothing heavy; each command imports its work when it runs.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PREDICTION_FORMATS = ("jsonl", "csv", "npz")
KV_CACHE_HELP = "vLLM's KV cache in GiB (default: what max_model_len x max_num_seqs needs for this model)."
FACE_CROP_HELP = ("Local engine: crop the frames to the tracked face, for adapters trained with --face_crop true "
                  "(no face found: whole frames).")


def register(app) -> None:
    """Add `serve`, `chat` and `predict`."""
    register_serve(app)
    register_chat(app)
    register_predict(app)


def parse_adapter_options(values: Sequence[str]) -> dict[str, str]:
    """`NAME=PATH` options -> {name: path}; ValueError names a malformed or repeated one."""
    adapters: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"adapter {value!r}: expected NAME=PATH")
        if name in adapters:
            raise ValueError(f"adapter name {name!r} given twice")
        adapters[name] = path
    return adapters


def register_serve(app) -> None:
    """Add `serve`."""
    import typer

    @app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def serve_command(
        context: typer.Context,
        model: str = typer.Option(..., "--model", help="Registry name, model folder or hub id."),
        adapter: list[str] = typer.Option(
            [], "--adapter", help="LoRA adapter NAME=PATH (repeatable); clients ask for it as the model NAME."
        ),
        host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback unless you mean it)."),
        port: int = typer.Option(8000, help="Port."),
        media_root: Path = typer.Option(None, "--media-root", help="Clients may send file:// URLs under it only."),
        api_key: str = typer.Option(
            None,
            "--api-key",
            envvar="AFFECT_MLLM_API_KEY",
            help="Key clients must send (Bearer); also read from $AFFECT_MLLM_API_KEY.",
        ),
        served_name: str = typer.Option(None, "--served-model-name", help="Model name clients ask for."),
        dtype: str = typer.Option("float32", help="float32 (CPU parity with HF) or bfloat16."),
        max_model_len: int = typer.Option(4096, "--max-model-len", help="Prompt + completion tokens."),
        max_num_seqs: int = typer.Option(8, "--max-num-seqs", help="Requests decoded together."),
        kv_cache_gib: float = typer.Option(None, "--kv-cache-gib", help=KV_CACHE_HELP),
        max_clip_seconds: float = typer.Option(
            None, "--max-clip-seconds", help="Longest clip (default: the model's media settings)."
        ),
        max_request_mb: float = typer.Option(64.0, "--max-request-mb", help="Largest request body (data URLs)."),
        max_concurrent_requests: int = typer.Option(
            None, "--max-concurrent-requests", min=1, help="Request bodies admitted at once (default: 2 x seqs)."
        ),
        allowed_media_domains: list[str] = typer.Option(
            [], "--allowed-media-domains", help="Hosts remote media URLs may name (repeatable; default: none)."
        ),
        allow_runtime_lora: bool = typer.Option(
            False, "--allow-runtime-lora", help="Expose vLLM's LoRA load/unload routes (behind the key)."
        ),
    ) -> None:
        """Serve the model with vLLM's OpenAI-compatible server, with training's media settings.

        Arguments after the options go to vLLM unchanged (e.g. --tensor-parallel-size 2).
        """
        from inference.serve import run_server
        from inference.server_args import ServeOptions

        try:
            adapters = parse_adapter_options(adapter)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--adapter") from None
        options = ServeOptions(
            host=host,
            port=port,
            media_root=media_root,
            api_key=api_key,
            served_name=served_name,
            dtype=dtype,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            kv_cache_gib=kv_cache_gib,
            max_clip_seconds=max_clip_seconds,
            max_request_mb=max_request_mb,
            max_concurrent_requests=max_concurrent_requests,
            allowed_media_domains=tuple(allowed_media_domains),
            allow_runtime_lora=allow_runtime_lora,
            extra_args=tuple(context.args),
        )
        try:
            status = run_server(model, adapters, options)
        except (ImportError, OSError, ValueError) as exc:  # no vllm, no such folder, a bad model or adapter
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        raise typer.Exit(status if status >= 0 else 128 - status)  # killed by signal N: 128 + N, as shells say


def register_chat(app) -> None:
    """Add `chat`."""
    import typer

    @app.command("chat")
    def chat_command(
        video: Path = typer.Argument(None, help="Clip to talk about (or attach one later with /video PATH)."),
        audio: Path = typer.Option(None, "--audio", help="A separate audio file for the clip."),
        server: str = typer.Option(None, "--server", help="URL of a running server (else --model runs locally)."),
        api_key: str = typer.Option(None, "--api-key", envvar="AFFECT_MLLM_API_KEY", help="The server's key."),
        model: str = typer.Option(None, "--model", help="Local: the model to load. Server: the served model name."),
        adapter: str = typer.Option(None, "--adapter", help="Local: an adapter folder. Server: a LoRA name."),
        backend: str = typer.Option("auto", help="Local engine: auto (vLLM where installed), hf or vllm."),
        task: str = typer.Option("ov_emotion", help="The question asked about each new clip."),
        media: str = typer.Option("data", help="How clips reach a server: data (URLs) or file (under its root)."),
        max_new_tokens: int = typer.Option(256, "--max-new-tokens", help="Longest answer."),
        kv_cache_gib: float = typer.Option(None, "--kv-cache-gib", help="Local vLLM: " + KV_CACHE_HELP),
        face_crop: bool = typer.Option(False, "--face-crop", help=FACE_CROP_HELP),
    ) -> None:
        """Chat about a clip: its analysis first, then follow-ups; /video, /audio, /reset, /quit."""
        from rich.console import Console

        from inference.chat import ChatSession, run_chat, typed_lines

        console = Console()
        try:
            chat_backend, hears_audio = _chat_backend(server, api_key, model, adapter, backend, media, max_new_tokens,
                                                      kv_cache_gib, face_crop)
        except (ImportError, OSError, ValueError) as exc:  # no vllm, no such model folder, a bad adapter
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        session = ChatSession(task=task)
        if video is not None or audio is not None:
            session.attach(video=video, audio=audio)
        console.print("[dim]type a follow-up, /video PATH, /audio PATH, /reset or /quit[/dim]")
        run_chat(chat_backend, typed_lines(console), console, session, hears_audio=hears_audio)


def refuse_server_face_crop(face_crop: bool) -> None:
    """A server decodes the clips it is sent and never crops: crops are written before sending."""
    import typer

    if face_crop:
        raise typer.BadParameter("a server does not crop faces: write the cropped clip first with `affect-mllm media "
                                 "face-crop IN OUT --model M` and send that", param_hint="--face-crop")


def _chat_backend(server, api_key, model, adapter, backend, media, max_new_tokens, kv_cache_gib, face_crop=False):
    """(ServerChat or EngineChat, whether the model hears audio)."""
    import typer

    from inference.chat import EngineChat, ServerChat
    from inference.engine import SamplingSettings, load_engine

    sampling = SamplingSettings(max_new_tokens=max_new_tokens)
    if server:
        from inference.client import AffectClient

        refuse_server_face_crop(face_crop)
        return ServerChat(AffectClient(server, api_key=api_key), sampling, media, adapter or model), True
    if not model:
        raise typer.BadParameter("give --server URL or --model M", param_hint="--model")
    engine = load_engine(model, backend, adapters={"adapter": adapter} if adapter else None, kv_cache_gib=kv_cache_gib,
                         face_crop=face_crop)
    return EngineChat(engine, sampling, "adapter" if adapter else None), engine.spec.has_audio


def register_predict(app) -> None:
    """Add `predict`."""
    import typer

    @app.command("predict")
    def predict_command(
        inputs: Path = typer.Argument(..., help="A manifest (.jsonl) or a folder of video/audio files."),
        out: Path = typer.Option(..., "--out", help="Predictions: .jsonl, official .csv or .npz (evaluate --pred)."),
        model: str = typer.Option(None, "--model", help="Local: the model to load. Server: the served model name."),
        adapter: str = typer.Option(None, "--adapter", help="Local: an adapter folder. Server: a LoRA name."),
        server: str = typer.Option(None, "--server", help="URL of a running server (else --model runs locally)."),
        api_key: str = typer.Option(None, "--api-key", envvar="AFFECT_MLLM_API_KEY", help="The server's key."),
        task: str = typer.Option("ov_emotion", help="Task prompt."),
        output_format: str = typer.Option(None, "--format", help="jsonl, csv or npz (default: OUT's suffix)."),
        backend: str = typer.Option("auto", help="Local engine: auto (vLLM where installed), hf or vllm."),
        media: str = typer.Option("data", help="How clips reach a server: data (URLs) or file (under its root)."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Local engine: prompts per batch."),
        concurrency: int = typer.Option(4, "--concurrency", min=1, help="Server: requests in flight."),
        max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Longest answer."),
        log: Path = typer.Option(None, "--log", help="Progress log (default: OUT.progress.jsonl)."),
        retry_errors: bool = typer.Option(False, "--retry-errors", help="Predict again the clips that failed."),
        guided: bool = typer.Option(False, "--guided", help="Server: decode within the task's tag grammar."),
        kv_cache_gib: float = typer.Option(None, "--kv-cache-gib", help="Local vLLM: " + KV_CACHE_HELP),
        mask: str = typer.Option(None, "--mask", help="audio or video: rerun with it removed (muted audio, blank "
                                                      "frames) for `evaluate --ablate`."),
        face_crop: bool = typer.Option(False, "--face-crop", help=FACE_CROP_HELP),
    ) -> None:
        """Predict every clip, resumably (kill -9 safe), and write OUT for `affect-mllm evaluate --pred`."""
        from inference.predict import load_inputs, progress_log_path, write_output

        _check_format(out, output_format)
        log_path = log or progress_log_path(out)
        try:  # nothing has run yet: a fault here is only reported
            manifest = load_inputs(inputs)
            options = PredictOptions(model, adapter, server, api_key, task, backend, media, batch_size, concurrency,
                                     max_new_tokens, guided, kv_cache_gib, mask, face_crop)
            predictor = _predictor(manifest, options)
        except _setup_errors() as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        try:
            summary = _run_with_progress(manifest, predictor, log_path, retry_errors)
            written = write_output(manifest, log_path, out)
        except _run_errors() as exc:
            typer.echo(
                f"error: the run stopped on a fault that concerns every clip, not one: {type(exc).__name__}: {exc}"
                f"\n(finished clips are kept in {log_path}: run the same command again to go on)",
                err=True,
            )
            raise typer.Exit(1) from None
        typer.echo(
            f"{written} predictions -> {out} ({summary.predicted} new, {summary.resumed} from the log "
            f"{log_path}, {summary.failed} failed now; failures are in the log)"
        )


@dataclass(frozen=True)
class PredictOptions:
    """How `predict` reaches its model: a server or a local engine, and the generation settings."""

    model: str | None
    adapter: str | None
    server: str | None
    api_key: str | None
    task: str
    backend: str
    media: str
    batch_size: int
    concurrency: int
    max_new_tokens: int
    guided: bool
    kv_cache_gib: float | None
    mask: str | None = None  # "audio" or "video": the modality removed (inference.modality)
    face_crop: bool = False  # local engines: frames cropped to the tracked face, as `--face_crop true` trained


def _setup_errors() -> tuple[type[Exception], ...]:
    """Faults before anything runs: a bad manifest or folder, no vLLM, a bad model or adapter."""
    return (ValueError, OSError, ImportError)


def _run_errors() -> tuple[type[Exception], ...]:
    """Faults that stop a run with a message rather than a traceback: every clip would fail the same way."""
    import openai

    from inference.predict import RunError

    return (RunError, ValueError, OSError, openai.APIError)


def _check_format(out: Path, output_format: str | None) -> None:
    import typer

    suffix = out.suffix.lower().lstrip(".")
    if suffix not in PREDICTION_FORMATS:
        raise typer.BadParameter(f"OUT must end in .{', .'.join(PREDICTION_FORMATS)}", param_hint="--out")
    if output_format is not None and output_format != suffix:
        raise typer.BadParameter(f"--format {output_format} but OUT ends in .{suffix}", param_hint="--format")


def _predictor(manifest, options: PredictOptions):
    import typer

    from inference.engine import SamplingSettings, load_engine
    from inference.modality import MaskingClient, MaskingEngine
    from inference.predict import EnginePredictor, ServerPredictor

    sampling = SamplingSettings(max_new_tokens=options.max_new_tokens)
    if options.server:
        from inference.client import AffectClient

        refuse_server_face_crop(options.face_crop)
        client = AffectClient(options.server, api_key=options.api_key)
        client = MaskingClient(client, options.mask) if options.mask else client
        return ServerPredictor(client, manifest, options.task, sampling, options.media,
                               options.adapter or options.model, options.concurrency, options.guided)
    if not options.model:
        raise typer.BadParameter("give --server URL or --model M", param_hint="--model")
    if options.guided:  # the local engines have no grammar-constrained decoding
        raise typer.BadParameter("guided decoding needs --server", param_hint="--guided")
    engine = load_engine(options.model, options.backend, adapters={"adapter": options.adapter} if options.adapter
                         else None, kv_cache_gib=options.kv_cache_gib, face_crop=options.face_crop)
    engine = MaskingEngine(engine, options.mask) if options.mask else engine
    return EnginePredictor(engine, manifest, options.task, sampling, "adapter" if options.adapter else None,
                           options.batch_size)


def _run_with_progress(manifest, predictor, log_path: Path, retry_errors: bool):
    """run_predictions under a rich progress bar with the throughput in clips/s."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from inference.predict import read_log, run_predictions

    state = read_log(log_path)
    done = len(state.predicted) + (0 if retry_errors else len(state.failed))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[rate]} clips/s  {task.fields[failed]} failed"),
    )
    with Progress(*columns) as progress:
        bar = progress.add_task(
            "predict", total=len(manifest), completed=min(done, len(manifest)), rate="-", failed=len(state.failed)
        )
        started = progress.get_time()
        fresh = 0

        def advance(_sample_id: str, entry: dict) -> None:
            nonlocal fresh
            fresh += 1
            rate = fresh / max(progress.get_time() - started, 1e-9)
            failed = progress.tasks[bar].fields["failed"] + ("error" in entry)
            progress.update(bar, advance=1, rate=f"{rate:.2f}", failed=failed)

        return run_predictions(manifest, predictor, log_path, retry_errors=retry_errors, on_outcome=advance)
