"""`affect-mllm demo OUT`: the pipeline end to end on the embedded default (SynthFACS, tiny models), on CPU.

Each step prints the `affect-mllm` command it runs, so the demo doubles as a walkthrough; finished steps are
skipped on a second run (their outputs exist). The demo sits in `data_synthesis/`, the top of the dependency chain
(synthesis uses training and inference), so it can reach every stage.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoSize:
    """Small enough for minutes on 2 CPU cores, large enough that SFT visibly teaches the answer format."""

    train_clips: int = 320
    test_clips: int = 48
    pool_clips: int = 24
    sft_steps: int = 150
    grpo_steps: int = 4


def register(app) -> None:
    """Add the `demo` command."""
    import typer

    @app.command("demo")
    def demo_command(out: str = typer.Argument("demo_out", help="Folder for everything the demo writes."),
                     serve: bool = typer.Option(True, help="Also start the vLLM server and query it once.")) -> None:
        """Run the pipeline on SynthFACS with a tiny model and print what each step did."""
        run_demo(Path(out), serve=serve)


def _cli(console, title: str, args: list[str], done: Path | None = None) -> None:
    """Run one `affect-mllm` command (skipped when its output exists), echoing it."""
    console.rule(title)
    console.print(f"$ affect-mllm {shlex.join(args)}", style="bold cyan", soft_wrap=True)
    if done is not None and done.exists():
        console.print(f"(already done: {done})")
        return
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "affect_mllm.cli", *args], check=True)
    console.print(f"[green]done[/] in {time.perf_counter() - started:.0f} s")


def run_demo(out: Path, serve: bool = True, size: DemoSize = DemoSize()) -> None:
    """Data -> base -> SFT -> evaluate -> GRPO -> synthesis -> batch predict -> export -> serve."""
    from rich.console import Console

    console = Console()
    started = time.perf_counter()
    data, sft, grpo = out / "data", out / "sft", out / "grpo"
    _cli(console, "1. SynthFACS training clips (faces and voices rendered from AU and prosody parameters)",
         ["data", "synthfacs", str(data), "--n", str(size.train_clips), "--seed", "0", "--split", "train",
          "--workers", "2"], data / "train.jsonl")
    _cli(console, "   held-out test clips (other identities, held-out rationale templates)",
         ["data", "synthfacs", str(data), "--n", str(size.test_clips), "--seed", "0", "--split", "test"],
         data / "test.jsonl")
    _show_base(console)
    _cli(console, "2. LoRA SFT of the base on <think>rationale</think><answer>emotions</answer>",
         ["train", "sft", "--config", "recipes/tiny-omni/sft.yaml", "--train_manifest", str(data / "train.jsonl"),
          "--eval_manifest", "", "--output_dir", str(sft), "--max_steps", str(size.sft_steps), "--save_steps",
          "100000", "--media_cache_clips", str(size.train_clips)], sft / "adapter_model.safetensors")
    _cli(console, "3. Batch prediction on the test clips (resumable; bad clips recorded, skipped)",
         ["predict", str(data / "test.jsonl"), "--out", str(out / "predictions.jsonl"), "--model", "tiny-omni-base",
          "--adapter", str(sft), "--backend", "hf"], out / "predictions.jsonl")
    _cli(console, "4. Evaluation: open-vocabulary wheel F, categorical, AU F1, grounding, with a report",
         ["evaluate", "--pred", str(out / "predictions.jsonl"), "--gold", str(data / "test.jsonl"), "--json",
          str(out / "evaluation.json"), "--report", str(out / "report")], out / "evaluation.json")
    _cli(console, "5. GRPO from the SFT adapter with the verifiable rewards (a few steps)",
         ["train", "grpo", "--config", "recipes/tiny-omni/grpo.yaml", "--adapter_path", str(sft), "--train_manifest",
          str(data / "train.jsonl"), "--output_dir", str(grpo), "--max_steps", str(size.grpo_steps),
          "--save_steps", "100000", "--media_cache_clips", "0"], grpo / "adapter_model.safetensors")
    _synthesis(console, out, size)
    _cli(console, "7. Export the SFT adapter for vLLM (the thinker. key prefix vLLM needs)",
         ["export", "--base", "tiny-omni-base", "--adapter", str(sft), "--out", str(out / "sft-vllm")],
         out / "sft-vllm" / "adapter_model.safetensors")
    if serve and importlib.util.find_spec("vllm") is not None:
        _serve_once(console, out, sft, data)
    console.rule(f"demo finished in {(time.perf_counter() - started) / 60:.1f} min; everything is in {out}/")


def _show_base(console) -> None:
    from affect_mllm.models.registry import resolve

    card = json.loads((Path(resolve("tiny-omni-base").source) / "model_card.json").read_text())
    console.rule("   the committed perception base: tiny-omni-base (no emotion word was ever tied to a clip)")
    console.print(f"held-out perception: {json.dumps(card['held_out'])}")


def _synthesis(console, out: Path, size: DemoSize) -> None:
    pool = out / "pool"
    _cli(console, "6. Rationale synthesis: the SFT model writes rationales, the rewards keep verified ones",
         ["data", "synthfacs", str(pool), "--n", str(size.pool_clips), "--seed", "1", "--split", "train"],
         pool / "train.jsonl")
    _cli(console, "   one round (generate -> verify -> clean -> shard -> retrain)",
         ["synthesize", "--config", "recipes/tiny-omni/synthesis.yaml", "--pool_manifests", str(pool / "train.jsonl"),
          "--seed_manifest", str(out / "data" / "train.jsonl"), "--adapter_path", str(out / "sft"),
          "--output_dir", str(out / "synthesis"), "--rounds", "1", "--candidates", "2", "--retries", "0",
          "--backend", "hf", "--sft_overrides", '{"max_steps": 20, "save_steps": 100000, "eval_manifest": ""}'],
         out / "synthesis" / "round_1" / "report.json")


def _serve_once(console, out: Path, sft: Path, data: Path) -> None:
    """Start `affect-mllm serve`, ask about one clip with the openai client, stop the server."""
    import socket
    import urllib.error
    import urllib.request

    from affect_mllm.schema import read_manifest
    from inference.client import AffectClient, Clip

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["serve", "--model", "tiny-omni-base", "--adapter", f"sft={sft}", "--port", str(port),
               "--media-root", str(data.resolve()), "--kv-cache-gib", "0.5"]
    console.rule("8. vLLM's OpenAI-compatible server with the adapter, queried with the openai client")
    console.print(f"$ affect-mllm {shlex.join(command)}", style="bold cyan", soft_wrap=True)
    log = (out / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "affect_mllm.cli", *command], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 600
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not come up; see {out / 'serve.log'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(2)
        manifest = read_manifest(data / "test.jsonl")
        sample = manifest.samples[0]
        answer = AffectClient(f"http://127.0.0.1:{port}", model="sft").analyze(Clip.from_sample(sample, manifest))
        console.print(f"clip {sample.id} (label: {sample.emotion}, {', '.join(sample.emotions or [])}) ->")
        console.print_json(json.dumps(answer.json))
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
