"""The `web` command (a row of the command table in affect_mllm/cli.py); imports its work when it runs."""

from __future__ import annotations


def register(app) -> None:
    """Add `web`."""
    import typer

    @app.command("web")
    def web_command(
        server: str = typer.Option(None, "--server", help="URL of a running server (else --model runs locally)."),
        api_key: str = typer.Option(None, "--api-key", envvar="AFFECT_MLLM_API_KEY", help="The server's key."),
        model: str = typer.Option(None, "--model", help="Local: the model to load. Server: the served model name."),
        adapter: str = typer.Option(None, "--adapter", help="Local: an adapter folder. Server: a LoRA name."),
        backend: str = typer.Option("auto", help="Local engine: auto (vLLM where installed), hf or vllm."),
        host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback unless you mean it)."),
        port: int = typer.Option(7860, help="Port."),
        max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1, help="Longest answer."),
        guided: bool = typer.Option(False, "--guided", help="Server: analysis answers within the task's grammar."),
    ) -> None:
        """A web page: upload or record a clip, see the answer, its evidence and timeline; ask follow-ups."""
        from inference.chat import EngineChat, ServerChat
        from inference.engine import SamplingSettings, load_engine
        from inference.web import WebBackend, launch

        sampling = SamplingSettings(max_new_tokens=max_new_tokens)
        try:
            if server:
                from inference.client import AffectClient

                client = AffectClient(server, api_key=api_key)
                web = WebBackend(ServerChat(client, sampling, "data", adapter or model), guided=guided)
            elif guided:
                raise typer.BadParameter("guided decoding needs --server", param_hint="--guided")
            elif model:
                engine = load_engine(model, backend, adapters={"adapter": adapter} if adapter else None)
                web = WebBackend(EngineChat(engine, sampling, "adapter" if adapter else None), engine.spec.has_audio)
            else:
                raise typer.BadParameter("give --server URL or --model M", param_hint="--model")
            typer.echo(f"affect-mllm web on http://{host}:{port} (Ctrl-C stops it)")
            launch(web, host, port)
        except (ImportError, OSError, ValueError) as exc:  # no gradio, no such model folder, a bad adapter
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
