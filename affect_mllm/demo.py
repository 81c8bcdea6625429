"""`affect-mllm demo OUT`: the pipeline end to end on the embedded default (SynthFACS, tiny models), on CPU.

Every step is an `affect-mllm` command run as a subprocess and printed first, so the demo shows exactly what a user
would type, and the library imports nothing from `training/`, `inference/` or `data_synthesis/` to run it.
Finished steps are skipped on a second run (their outputs exist). The evaluation step is `affect-mllm evaluate`,
the one evaluation path.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from affect_mllm.jsonl import read_jsonl
from affect_mllm.processes import free_port, stop_process_group, wait_for_health


@dataclass(frozen=True)
class DemoSize:
    """Small enough for minutes on 2 CPU cores, large enough that SFT visibly teaches the answer format."""

    train_clips: int = 320
    test_clips: int = 48
    pool_clips: int = 24
    sft_steps: int = 150
    grpo_steps: int = 4
    served_clips: int = 2


def register(app) -> None:
    """Add the `demo` command."""
    import typer

    @app.command("demo")
    def demo_command(out: str = typer.Argument("demo_out", help="Folder for everything the demo writes."),
                     serve: bool = typer.Option(True, help="Also start the vLLM server and query it.")) -> None:
        """Run the pipeline on SynthFACS with a tiny model and print what each step did."""
        run_demo(Path(out), serve=serve)


def _command(args: list[str]) -> list[str]:
    """The argv that runs `affect-mllm ARGS` with this interpreter (works in a checkout not re-installed)."""
    return [sys.executable, "-m", "affect_mllm.cli", *args]


def _cli(console, title: str, args: list[str], done: Path | None = None) -> None:
    """Run one `affect-mllm` command (skipped when its output exists), echoing it."""
    console.rule(title)
    console.print(f"$ affect-mllm {shlex.join(args)}", style="bold cyan", soft_wrap=True)
    if done is not None and done.exists():
        console.print(f"(already done: {done})")
        return
    started = time.perf_counter()
    subprocess.run(_command(args), check=True)
    console.print(f"[green]done[/] in {time.perf_counter() - started:.0f} s")


def run_demo(out: Path, serve: bool = True, size: DemoSize = DemoSize()) -> None:
    """Data -> base -> SFT -> predict -> evaluate -> GRPO -> synthesis -> export -> serve + predict."""
    from rich.console import Console

    console = Console()
    started = time.perf_counter()
    data, sft = out / "data", out / "sft"
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
          "--adapter", str(sft), "--backend", "hf", "--task", "ov_emotion"], out / "predictions.jsonl")
    _cli(console, "4. Evaluation: wheel F, emotion accuracy (unmapped answers in their own column), AU F1 of the "
                  "answer and of the rationale, grounding, format rate, 95 % intervals, a report",
         ["evaluate", "--pred", str(out / "predictions.jsonl"), "--gold", str(data / "test.jsonl"), "--task",
          "ov_emotion", "--json", str(out / "evaluation.json"), "--report", str(out / "report")])
    _later_steps(console, out, size, serve)
    console.rule(f"demo finished in {(time.perf_counter() - started) / 60:.1f} min; everything is in {out}/")


def _later_steps(console, out: Path, size: DemoSize, serve: bool) -> None:
    """GRPO, one synthesis round, the vLLM export and (where vLLM is installed) serving."""
    data, sft, grpo, pool = out / "data", out / "sft", out / "grpo", out / "pool"
    _cli(console, "5. GRPO from the SFT adapter with the verifiable rewards (a few steps)",
         ["train", "grpo", "--config", "recipes/tiny-omni/grpo.yaml", "--adapter_path", str(sft), "--train_manifest",
          str(data / "train.jsonl"), "--output_dir", str(grpo), "--max_steps", str(size.grpo_steps),
          "--save_steps", "100000", "--media_cache_clips", "0"], grpo / "adapter_model.safetensors")
    _cli(console, "6. Rationale synthesis: the SFT model writes rationales, the rewards keep verified ones",
         ["data", "synthfacs", str(pool), "--n", str(size.pool_clips), "--seed", "1", "--split", "train"],
         pool / "train.jsonl")
    _cli(console, "   one round (generate -> verify -> clean -> shard -> retrain)",
         ["synthesize", "--config", "recipes/tiny-omni/synthesis.yaml", "--pool_manifests", str(pool / "train.jsonl"),
          "--seed_manifest", str(data / "train.jsonl"), "--adapter_path", str(sft), "--output_dir",
          str(out / "synthesis"), "--rounds", "1", "--candidates", "2", "--retries", "0", "--backend", "hf",
          "--sft_overrides", '{"max_steps": 20, "save_steps": 100000, "eval_manifest": ""}'],
         out / "synthesis" / "round_1" / "report.json")
    _cli(console, "7. Export the SFT adapter for vLLM (the thinker. key prefix vLLM needs)",
         ["export", "--base", "tiny-omni-base", "--adapter", str(sft), "--out", str(out / "sft-vllm")],
         out / "sft-vllm" / "adapter_model.safetensors")
    if serve and importlib.util.find_spec("vllm") is not None:
        _serve_and_predict(console, out, sft, size)


def _show_base(console) -> None:
    from affect_mllm.models.registry import resolve

    card = json.loads((Path(resolve("tiny-omni-base").source) / "model_card.json").read_text())
    console.rule("   the committed perception base: tiny-omni-base (no emotion word was ever tied to a clip)")
    console.print(f"held-out perception: {json.dumps(card['held_out'])}")


def _serve_and_predict(console, out: Path, sft: Path, size: DemoSize) -> None:
    """`affect-mllm serve` in the background, `affect-mllm predict --server` on a folder of clips, then stop it."""
    clips = out / "my_clips"  # a user's folder of videos: any files, no manifest
    clips.mkdir(exist_ok=True)
    for sample in list(read_jsonl(out / "data" / "test.jsonl"))[: size.served_clips]:
        shutil.copy(out / "data" / sample["video"], clips / Path(sample["video"]).name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = ["serve", "--model", "tiny-omni-base", "--adapter", f"sft={sft}", "--port", str(port), "--media-root",
             str(clips.resolve()), "--kv-cache-gib", "0.5"]
    console.rule("8. vLLM's OpenAI-compatible server with the adapter, then batch prediction through it")
    console.print(f"$ affect-mllm {shlex.join(serve)} &", style="bold cyan", soft_wrap=True)
    log = out / "serve.log"
    with log.open("w") as sink:  # own session: stopping it stops vLLM's engine processes too
        server = subprocess.Popen(_command(serve), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        console.print(f"(waiting for {url}/health; log: {log})")
        wait_for_health(url, server, timeout_s=600, log=log)
        served = out / "served_predictions.jsonl"
        _cli(console, "   predict through the server (file:// media under its --media-root)",
             ["predict", str(clips), "--server", url, "--adapter", "sft", "--media", "file", "--out", str(served)])
        for record in read_jsonl(served):
            console.print_json(json.dumps(record))
    finally:
        stop_process_group(server)
