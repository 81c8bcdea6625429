"""`affect-mllm demo OUT`: the pipeline end to end on the embedded default (SynthFACS, a tiny model), on CPU.

It sits in `data_synthesis/`, the top of the dependency chain (synthesis uses training and inference), so it
can call every stage. Each step prints what it did and where its output is.
"""

from __future__ import annotations

import time
from pathlib import Path


def register(app) -> None:
    """Add the `demo` command."""
    import typer

    @app.command("demo")
    def demo_command(out: str = typer.Argument("demo_out", help="Folder for everything the demo writes.")) -> None:
        """Run the pipeline on SynthFACS with a tiny model and print what each step did."""
        run_demo(Path(out))


def run_demo(out: Path) -> None:
    """Build a tiny model, decode a clip, generate and parse an answer."""
    from rich.console import Console

    from affect_mllm.answer import answer_to_json, parse_answer
    from affect_mllm.media import load_sample_media, write_video
    from affect_mllm.models.generate import generate_texts
    from affect_mllm.models.inputs import Conversation, build_messages
    from affect_mllm.models.registry import load_model_and_processor
    from affect_mllm.models.tiny import build_tiny_omni
    from affect_mllm.prompts import Modalities, build_prompt

    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model_dir = out / "models" / "tiny-omni"
    if not (model_dir / "config.json").is_file():
        build_tiny_omni(model_dir)
    console.print(f"[bold]1. tiny model[/]: random-init Qwen2.5-Omni thinker in {model_dir}")
    model, processor, spec = load_model_and_processor(str(model_dir))
    clip = _demo_clip(out / "clips" / "demo.mp4", write_video)
    media = load_sample_media(video=clip, settings=spec.media)
    console.print(f"[bold]2. decoded[/] {clip}: {media.video.shape[0]} frames {media.video.shape[1:3]}, "
                  f"{0 if media.audio is None else len(media.audio) / spec.media.sample_rate:.1f} s audio")
    prompt = build_prompt("ov_emotion", Modalities(video=True, audio=media.audio is not None))
    text = generate_texts(model, processor, spec, [Conversation(build_messages(media, prompt, spec), media)],
                          max_new_tokens=32)[0]
    console.print(f"[bold]3. generated[/] (untrained weights, so expect noise): {text!r}")
    console.print(f"   parsed: {answer_to_json(parse_answer(text))['well_formed']}")
    console.print(f"done in {time.perf_counter() - started:.1f} s")


def _demo_clip(path: Path, write_video) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(8, 112, 112, 3), dtype=np.uint8)
    t = np.arange(64000) / 16000
    return write_video(path, frames, 2.0, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
