"""`affect-mllm data ...`: dataset commands (SynthFACS generation, benchmark adapters)."""

from __future__ import annotations


def register(app) -> None:
    """Add the `data` command group (its commands are added by the modules that own them)."""
    import typer

    data_app = typer.Typer(help="Generate and convert datasets.", no_args_is_help=True)
    app.add_typer(data_app, name="data")
    _register_synthfacs(data_app)
    _register_synthfacs_long(data_app)
    _register_synthfacs_gallery(data_app)


def _register_synthfacs(data_app) -> None:
    """`data synthfacs`; the generator is imported only when the command runs."""
    import typer

    @data_app.command("synthfacs")
    def synthfacs_command(
        out: str = typer.Argument(..., help="Folder for <split>.jsonl, its .meta.json and clips/."),
        n: int = typer.Option(..., "--n", min=1, help="Number of clips."),
        seed: int = typer.Option(..., "--seed", help="Same seed and options, same manifest bytes."),
        split: str = typer.Option("train", help="train, val or test: disjoint identities and rationale templates."),
        difficulty: int = typer.Option(None,
                                       help="Nuisance level 0 (clean, centred face) .. 4 (full) "
                                            "[default: the generator's DEFAULT_DIFFICULTY]."),
        conflict_share: float = typer.Option(None,
                                             help="Share of clips whose voice shows another emotion "
                                                  "[default: the generator's DEFAULT_CONFLICT_SHARE]."),
        workers: int = typer.Option(1, min=1, help="Processes; the output does not depend on it."),
    ) -> None:
        """Generate SynthFACS face-and-voice clips with labels and a manifest."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from affect_mllm.synthfacs.generate import (
            DEFAULT_CONFLICT_SHARE,
            DEFAULT_DIFFICULTY,
            GeneratorSettings,
            generate_synthfacs,
        )

        settings = {"seed": seed, "split": split,
                    "difficulty": DEFAULT_DIFFICULTY if difficulty is None else difficulty,
                    "conflict_share": DEFAULT_CONFLICT_SHARE if conflict_share is None else conflict_share}
        try:
            GeneratorSettings(**settings)  # check the options before the progress bar starts
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns) as progress:
            task = progress.add_task(f"SynthFACS {split}", total=n)
            manifest = generate_synthfacs(out, n, **settings, workers=workers,
                                          progress=lambda done: progress.update(task, completed=done))
        typer.echo(str(manifest))


def _register_synthfacs_long(data_app) -> None:
    """`data synthfacs-long`: long clips with known segments, for timelines."""
    import typer

    @data_app.command("synthfacs-long")
    def synthfacs_long_command(
        out: str = typer.Argument(..., help="Folder for <split>-long.jsonl and clips/."),
        n: int = typer.Option(..., "--n", min=1, help="Number of long clips."),
        segments: int = typer.Option(6, "--segments", min=1, help="Expression episodes per clip (K)."),
        seed: int = typer.Option(0, "--seed", help="Same seed and options, same manifest bytes."),
        split: str = typer.Option("test", help="train, val or test: disjoint identities."),
        min_segment: float = typer.Option(6.0, "--min-segment", help="Shortest segment (s)."),
        max_segment: float = typer.Option(12.0, "--max-segment", help="Longest segment (s)."),
        difficulty: int = typer.Option(None, help="Nuisance level 0..4 [default: the generator's]."),
        conflict_share: float = typer.Option(0.0, help="Share of segments whose voice shows another emotion."),
    ) -> None:
        """Render long SynthFACS clips whose segments have known labels and boundaries."""
        from affect_mllm.synthfacs.generate import DEFAULT_DIFFICULTY
        from affect_mllm.synthfacs.long import LongSettings, generate_long

        try:
            settings = LongSettings(seed=seed, split=split, segments=segments, min_segment_s=min_segment,
                                    max_segment_s=max_segment, conflict_share=conflict_share,
                                    difficulty=DEFAULT_DIFFICULTY if difficulty is None else difficulty)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        typer.echo(str(generate_long(out, n, settings)))


def _register_synthfacs_gallery(data_app) -> None:
    """`data synthfacs-gallery`: the README's picture."""
    import typer

    @data_app.command("synthfacs-gallery")
    def synthfacs_gallery_command(
        out: str = typer.Argument(..., help="PNG file to write."),
        all_levels: bool = typer.Option(False, "--all-levels", help="One row per difficulty level 0-4."),
        seed: int = typer.Option(0, help="Seed of the first row's clips."),
    ) -> None:
        """Draw one apex frame per basic emotion (the README's picture)."""
        from affect_mllm.synthfacs.gallery import render_gallery
        from affect_mllm.synthfacs.generate import DEFAULT_DIFFICULTY
        from affect_mllm.synthfacs.nuisance import DIFFICULTIES

        levels = range(len(DIFFICULTIES)) if all_levels else (DEFAULT_DIFFICULTY,)
        typer.echo(str(render_gallery(out, levels, seed=seed)))
