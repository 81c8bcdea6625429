"""`affect-mllm synthesize --config recipes/<model>/synthesis.yaml [--field value ...]`: the data synthesis loop.

Typer owns the verb; the recipe's `TrlParser` owns the flags: the arguments are forwarded unchanged to
`data_synthesis.loop.main(argv)`, exactly as `python -m data_synthesis.loop` gets them. Resuming is running the
same command again.
"""

from __future__ import annotations

import typer


def register(app) -> None:
    """Add the `synthesize` command."""

    @app.command(
        "synthesize",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )
    def synthesize(context: typer.Context) -> None:
        """Write, verify and keep rationales round after round (--help lists the recipe fields)."""
        from data_synthesis.loop import main

        reports = main(list(context.args))
        print_summary(reports)


def print_summary(reports: list[dict]) -> None:
    """A table of each round's clips, candidates, kept and yield."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="synthesis rounds")
    for column in ("round", "clips", "candidates", "passing", "kept", "yield"):
        table.add_column(column, justify="right")
    for r in reports:
        table.add_row(
            str(r["round"]),
            str(r["clips"]),
            str(r["candidates"]),
            str(r["passing_candidates"]),
            str(r["kept"]),
            f"{r['yield']:.3f}",
        )
    Console().print(table)
