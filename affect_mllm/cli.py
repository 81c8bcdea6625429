"""The `affect-mllm` command line: verbs only.

Each capability registers its own sub-commands through the `affect_mllm.commands` entry-point group
(see pyproject.toml): an entry point names a `register(app)` function that adds commands to the Typer app.
So the library never imports `training/`, `inference/` or `data_synthesis/`, and no single file is
everyone's bottleneck. Registration modules import nothing heavy; commands import their work lazily.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points

import typer

ENTRY_POINT_GROUP = "affect_mllm.commands"


def build_app() -> typer.Typer:
    """Create the Typer app with every registered command group."""
    app = typer.Typer(
        name="affect-mllm",
        help="Teach video+audio LLMs to recognise emotions and explain them.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        add_completion=False,
    )
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        entry.load()(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = build_app()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="affect-mllm")


if __name__ == "__main__":
    main()
