"""`affect-mllm data-convert DATASET SRC OUT [--split S]`: a public dataset folder -> a project manifest."""

from __future__ import annotations

# Kept in step with affect_mllm.adapters.ADAPTERS (a test checks); listed here so that registering the command
# does not import the adapters (registration modules import nothing heavy).
DATASETS = ("mer2023", "mer2024", "mer2025", "ovmerdplus", "dfew", "mafw", "ferv39k", "meld", "fea20k", "disfa",
            "bp4d", "cmumosi", "cmumosei", "sims", "simsv2")


def register(app) -> None:
    """Add the top-level `data-convert` command."""
    import typer

    @app.command("data-convert")
    def data_convert_command(
        dataset: str = typer.Argument(..., help=f"One of: {', '.join(DATASETS)}."),
        src: str = typer.Argument(..., help="The dataset folder, in its published layout."),
        out: str = typer.Argument(..., help="The manifest (.jsonl) to write."),
        split: str = typer.Option(None, "--split", help="The dataset's split (see its adapter); default: its own."),
    ) -> None:
        """Convert a benchmark's annotations into a manifest and print one summary line."""
        from affect_mllm.adapters import convert, summarize
        from affect_mllm.schema import ManifestError

        try:
            path = convert(dataset, src, out, split=split)
            summary = summarize(path)
        except (ValueError, ManifestError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{dataset}{f' ({split})' if split else ''}: {summary.line()}")
