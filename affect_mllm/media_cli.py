"""`affect-mllm media ...`: check media files the way the pipeline will read them."""

from __future__ import annotations

import json


def register(app) -> None:
    """Add the `media` command group."""
    import typer

    media_app = typer.Typer(help="Inspect media files as model inputs.", no_args_is_help=True)
    app.add_typer(media_app, name="media")

    @media_app.command("inspect")
    def inspect_command(
        files: list[str] = typer.Argument(..., help="Video files to check."),
        fps: float = typer.Option(2.0, help="Sampling rate used for the check."),
        decoder: str = typer.Option("auto", help="auto, decord or pyav."),
    ) -> None:
        """Print one JSON line per good file and one error line per bad file; exit 1 if any failed."""
        from affect_mllm.media import MediaError, MediaSettings, inspect_video

        settings = MediaSettings(fps=fps, decoder=decoder)
        failed = 0
        for path in files:
            try:
                typer.echo(json.dumps(inspect_video(path, settings)))
            except MediaError as exc:
                failed += 1
                typer.echo(f"error: {exc}", err=True)
        if failed:
            raise typer.Exit(1)
