"""`affect-mllm data ...`: dataset commands (SynthFACS generation, benchmark adapters)."""


def register(app) -> None:
    """Add the `data` command group (its commands are added by the modules that own them)."""
    import typer

    data_app = typer.Typer(help="Generate and convert datasets.", no_args_is_help=True)
    app.add_typer(data_app, name="data")
