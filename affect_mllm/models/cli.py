"""`affect-mllm tiny-model OUT`: build a tiny random-init model of a real architecture, offline."""


def register(app) -> None:
    """Add the `tiny-model` command."""
    import typer

    @app.command("tiny-model")
    def tiny_model_command(
        out: str = typer.Argument(..., help="Destination folder."),
        arch: str = typer.Option("qwen2_5_omni", help="qwen2_5_omni or qwen2_5_vl."),
        seed: int = typer.Option(0, help="Random-init seed."),
    ) -> None:
        """Build a ~1 MB Qwen2.5-Omni thinker or Qwen2.5-VL with its real processor; HF and vLLM load it."""
        from affect_mllm.models.tiny import build_tiny_omni, build_tiny_vl

        builders = {"qwen2_5_omni": build_tiny_omni, "qwen2_5_vl": build_tiny_vl}
        if arch not in builders:
            raise typer.BadParameter(f"unknown arch {arch!r}; choose from {', '.join(builders)}")
        path = builders[arch](out, seed=seed)
        typer.echo(f"built tiny {arch} model in {path}")
