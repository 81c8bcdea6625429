"""`affect-mllm tiny-model OUT`: build a tiny random-init model of a real architecture, offline, or (`--like`) a
real-width model at reduced depth."""


def register(app) -> None:
    """Add the `tiny-model` command."""
    import typer

    @app.command("tiny-model")
    def tiny_model_command(
        out: str = typer.Argument(..., help="Destination folder."),
        arch: str = typer.Option("qwen2_5_omni", help="Tiny model: qwen2_5_omni or qwen2_5_vl (ignored with --like)."),
        like: str = typer.Option(None, help="Real-width model with the shapes of qwen2.5-omni-3b, qwen2.5-omni-7b "
                                            "or qwen2.5-vl-7b, the real tokenizer and processor."),
        layers: int = typer.Option(2, help="With --like: decoder layers (and vision blocks, audio layers)."),
        seed: int = typer.Option(0, help="Random-init seed."),
    ) -> None:
        """Build a ~1 MB Qwen2.5-Omni thinker or Qwen2.5-VL with its real processor, or with --like a real-width
        model at reduced depth; HF and vLLM load either."""
        if like is not None:
            from affect_mllm.models.real_width import build_real_width

            try:
                path = build_real_width(out, like, layers, seed=seed)
            except ValueError as error:
                raise typer.BadParameter(str(error)) from error
            typer.echo(f"built a {like}-width model with {layers} layers in {path}")
            return
        from affect_mllm.models.tiny import build_tiny_omni, build_tiny_vl

        builders = {"qwen2_5_omni": build_tiny_omni, "qwen2_5_vl": build_tiny_vl}
        if arch not in builders:
            raise typer.BadParameter(f"unknown arch {arch!r}; choose from {', '.join(builders)}")
        path = builders[arch](out, seed=seed)
        typer.echo(f"built tiny {arch} model in {path}")
