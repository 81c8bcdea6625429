"""`affect-mllm train STAGE --config recipes/<model>/<stage>.yaml [--flag value ...]`.

Typer owns the verbs; each stage's `TrlParser` owns the flags: the raw arguments after the stage name are
forwarded unchanged to the recipe script's `main(argv)`, exactly as `python -m training.<stage>` would get them.
"""

import importlib

import typer

STAGES = {
    "sft": "training.sft",
    "grpo": "training.grpo",
    "pretrain-tiny": "training.pretrain_tiny",
    "pretrain-vocab": "training.pretrain_vocab",
}


def register(app) -> None:
    """Add the `train` command group, one command per stage."""
    train_app = typer.Typer(help="Training stages (recipes in recipes/<model>/<stage>.yaml).", no_args_is_help=True)
    app.add_typer(train_app, name="train")
    for stage, module in STAGES.items():
        _add_stage(train_app, stage, module)


def _add_stage(train_app, stage: str, module: str) -> None:
    @train_app.command(stage, context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                       add_help_option=False)
    def run_stage(context: typer.Context) -> None:
        from affect_mllm.media import MediaError
        from affect_mllm.schema import ManifestError
        from training.preflight import PreflightError

        try:
            importlib.import_module(module).main(list(context.args))
        except (ManifestError, MediaError, PreflightError) as exc:  # the user's data or recipe: the message names
            # the file and the fault; a traceback would bury it
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    run_stage.__doc__ = f"Run `python -m {module}` with these arguments (--help lists the recipe fields)."
