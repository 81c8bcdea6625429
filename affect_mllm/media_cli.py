"""`affect-mllm media ...`: check media files as the pipeline reads them; crop clips to the face for a server."""

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

    @media_app.command("face-crop")
    def face_crop_command(
        video: str = typer.Argument(..., help="The clip to crop."),
        out: str = typer.Argument(..., help="The cropped clip (.mp4) to send to a server."),
        model: str = typer.Option("tiny-omni", help="The served model (its fps and pixel budget)."),
    ) -> None:
        """Write the clip as the model sees it with face crops (sampled frames, face-cropped, its audio), for a
        server, which does not crop: print {"face": true|false}; false means no face was found, the frames are
        whole, and the prompt must say so (prompts.build_prompt(face=False))."""
        from dataclasses import replace

        from affect_mllm.media import MediaError, load_sample_media, write_video
        from affect_mllm.models.registry import resolve

        settings = replace(resolve(model).media, face_crop=True)
        try:
            media = load_sample_media(video=video, settings=settings)
        except MediaError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        # at the sampling fps, the server's sampler keeps every frame written; crf 10: near-lossless
        write_video(out, media.video, settings.fps, media.audio, settings.sample_rate, crf=10)
        typer.echo(json.dumps({"path": out, "face": media.face, "frames": len(media.video)}))
