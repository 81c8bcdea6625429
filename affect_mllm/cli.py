"""The `affect-mllm` command line: every verb, listed in one table.

`COMMANDS` is the one place that names every capability's commands: each row is a verb (or command group) and the
`module:register` function that adds it to the Typer app. Rows name modules by string and are imported when the app
is built, so importing the library never imports `training/`, `inference/` or `data_synthesis/` (arrows point one
way); only this entry point, the top of the program, reaches them. Registration modules import nothing heavy;
commands import their work when they run. A new verb is one new row here (no plugin entry points: a checkout that
was not re-installed still shows every verb).
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

COMMANDS: tuple[tuple[str, str], ...] = (
    ("doctor", "affect_mllm.doctor:register"),
    ("media", "affect_mllm.media_cli:register"),
    ("data", "affect_mllm.data_cli:register"),
    ("data-convert", "affect_mllm.adapters.cli:register"),
    ("tiny-model", "affect_mllm.models.cli:register"),
    ("train", "training.cli:register"),
    ("export", "training.export:register"),
    ("evaluate", "affect_mllm.evaluate_cli:register"),
    ("serve", "inference.cli:register_serve"),
    ("chat", "inference.cli:register_chat"),
    ("predict", "inference.cli:register_predict"),
    ("timeline", "inference.timeline_cli:register"),
    ("web", "inference.web_cli:register"),
    ("synthesize", "data_synthesis.cli:register"),
    ("demo", "affect_mllm.demo:register"),
)


def _load(target: str):
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def build_app() -> typer.Typer:
    """Create the Typer app with every command of `COMMANDS`."""
    app = typer.Typer(
        name="affect-mllm",
        help="Teach video+audio LLMs to recognise emotions and explain them.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        add_completion=False,
    )
    for _verb, target in COMMANDS:
        _load(target)(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from affect_mllm.models.upstream_warnings import quiet_default_talker_warnings

    quiet_default_talker_warnings()  # 7 lines transformers 5.19 prints for every Qwen2.5-Omni config
    app = build_app()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="affect-mllm")


if __name__ == "__main__":
    main()
