"""The `timeline` command (a row of the command table in affect_mllm/cli.py); imports its work when it runs."""

from __future__ import annotations

from pathlib import Path

from inference.cli import FACE_CROP_HELP, refuse_server_face_crop


def register(app) -> None:
    """Add `timeline`."""
    import typer

    @app.command("timeline")
    def timeline_command(
        video: Path = typer.Argument(..., help="The video (any length: it is decoded one window at a time)."),
        out: Path = typer.Option(..., "--out", help="Output folder; a rerun of the same command resumes it."),
        model: str = typer.Option(None, "--model", help="Local: the model to load. Server: the served model name."),
        adapter: str = typer.Option(None, "--adapter", help="Local: an adapter folder. Server: a LoRA name."),
        server: str = typer.Option(None, "--server", help="URL of a running server (else --model runs locally)."),
        api_key: str = typer.Option(None, "--api-key", envvar="AFFECT_MLLM_API_KEY", help="The server's key."),
        backend: str = typer.Option("auto", help="Local engine: auto (vLLM where installed), hf or vllm."),
        window: float = typer.Option(4.0, "--window", help="Window length in seconds (snapped to the model's fps)."),
        stride: float = typer.Option(2.0, "--stride", help="Seconds between window starts (snapped likewise)."),
        subtitle: Path = typer.Option(None, "--subtitle", help="SRT file: each window gets the words spoken in it."),
        tasks: str = typer.Option("ov_emotion,valence_arousal", help="Questions asked of each window (comma list)."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Local engine: windows per generate call."),
        concurrency: int = typer.Option(4, "--concurrency", min=1, help="Server: windows in flight."),
        guided: bool = typer.Option(False, "--guided", help="Server: decode within each task's tag grammar."),
        max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Longest answer."),
        kv_cache_gib: float = typer.Option(None, "--kv-cache-gib", help="vLLM engine: KV cache size."),
        face_crop: bool = typer.Option(False, "--face-crop", help=FACE_CROP_HELP),
        smooth_windows: int = typer.Option(3, "--smooth-windows", help="Mode filter span in windows (odd; 1: off)."),
        min_segment: float = typer.Option(4.0, "--min-segment", help="Shorter segments are absorbed (seconds)."),
        embed_video_mb: float = typer.Option(16.0, "--embed-video-mb", help="timeline.html embeds smaller videos."),
    ) -> None:
        """Emotion over time: sliding windows answered by the model -> jsonl, csv, segments, png, html."""
        import openai

        from affect_mllm.timeline.segments import SmoothingSettings
        from inference.timeline import TimelineSettings

        try:
            settings = TimelineSettings(window_s=window, stride_s=stride, tasks=tuple(tasks.split(",")),
                                        smoothing=SmoothingSettings(smooth_windows, min_segment),
                                        embed_video_mb=embed_video_mb)
            answerer, media = _answerer(server, api_key, model, adapter, backend, settings.tasks, batch_size,
                                        concurrency, max_new_tokens, kv_cache_gib, guided, face_crop)
            run = _run_with_progress(video, out, answerer, settings, media, subtitle)
        except (ValueError, OSError, ImportError, openai.APIError) as exc:
            typer.echo(f"error: {type(exc).__name__}: {exc}\n(finished windows are kept in {out}/timeline.jsonl: "
                       "run the same command again to go on)", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{run.windows} windows ({run.resumed} from the log, {run.answered} now, {run.broken} broken or "
                   f"refused), {run.segments} segments -> {out}")


def _answerer(server, api_key, model, adapter, backend, tasks, batch_size, concurrency, max_new_tokens,
              kv_cache_gib, guided, face_crop=False):
    """(EngineAnswerer or ServerAnswerer, the media settings whose fps sets the window grid)."""
    import typer

    from affect_mllm.media import MediaSettings
    from inference.engine import SamplingSettings, load_engine, vllm_available
    from inference.timeline_answer import EngineAnswerer, ServerAnswerer

    sampling = SamplingSettings(max_new_tokens=max_new_tokens)
    if server:
        from inference.client import AffectClient

        refuse_server_face_crop(face_crop)
        client = AffectClient(server, api_key=api_key)
        return ServerAnswerer(client, tasks, sampling, adapter or model, concurrency, guided=guided), MediaSettings()
    if not model:
        raise typer.BadParameter("give --server URL or --model M", param_hint="--model")
    if guided:  # the local engines have no grammar-constrained decoding
        raise typer.BadParameter("guided decoding needs --server", param_hint="--guided")
    vllm = backend == "vllm" or (backend == "auto" and vllm_available())
    options = {"kv_cache_gib": kv_cache_gib} if vllm else {"max_batch_size": batch_size * len(tasks)}
    engine = load_engine(model, backend, adapters={"adapter": adapter} if adapter else None, face_crop=face_crop,
                         **options)
    answerer = EngineAnswerer(engine, tasks, sampling, "adapter" if adapter else None, batch_size)
    return answerer, engine.spec.media


def _run_with_progress(video, out, answerer, settings, media, subtitle):
    """run_timeline under a rich progress bar: windows done, and video seconds answered per second."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from affect_mllm.timeline.windows import snap_grid
    from inference.timeline import run_timeline

    stride_s = snap_grid(settings.window_s, settings.stride_s, media.fps, media.temporal_patch_size).stride_s
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[rate]} video-s/s  {task.fields[broken]} broken"))
    with Progress(*columns) as progress:
        bar = progress.add_task("timeline", total=None, rate="-", broken=0)
        state = {"started": progress.get_time(), "video_s": 0.0}

        def start(total: int, todo: int) -> None:
            progress.update(bar, total=total, completed=total - todo)

        def advance(record: dict) -> None:
            state["video_s"] += stride_s  # each window moves the timeline on by one stride
            rate = state["video_s"] / max(progress.get_time() - state["started"], 1e-9)
            broken = progress.tasks[bar].fields["broken"] + (record["status"] != "ok")
            progress.update(bar, advance=1, rate=f"{rate:.2f}", broken=broken)

        return run_timeline(video, out, answerer, settings=settings, media=media, subtitle=subtitle,
                            on_record=advance, on_start=start)
