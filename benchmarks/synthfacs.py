"""SynthFACS generation speed on one core at the defaults: total, render-only and encode-only clips per second.

Run: .venv/bin/python benchmarks/synthfacs.py [--n 120]

The process pins itself to one CPU core (Linux), so every thread it starts (x264's included) shares that core.
Each figure is given twice: per CPU second of this process (the one-core throughput, which other work on a shared
machine does not change) and per wall second (what you wait for; lower when other processes share the core).
The last line is JSON with the CPU-time figures: {"clips_per_s", "render_clips_per_s", "encode_clips_per_s"}.
Target (issue 10): clips_per_s >= 15.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from affect_mllm.media import write_video
from affect_mllm.synthfacs.generate import (
    GeneratorSettings,
    generate_synthfacs,
    plan_clip,
    render_audio,
    render_frames,
)

TARGET_CLIPS_PER_S = 15.0


def pin_to_one_core() -> str:
    """Restrict this process to its lowest-numbered allowed core; say which (or why not)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def timed(work: Callable[[], None]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) that `work` takes."""
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(n: int, seed: int) -> dict[str, tuple[float, float]]:
    """Seconds (CPU, wall) for n clips: full generation, render only (plan + frames + voice), encode only."""
    settings = GeneratorSettings(seed=seed)
    plan_clip(settings, 0)  # warm caches (lexicon, knowledge tables) outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        total = timed(lambda: generate_synthfacs(Path(tmp) / "full", n, seed=seed))
        rendered = []

        def render() -> None:
            for index in range(n):
                plan = plan_clip(settings, index)
                rendered.append((plan, render_frames(plan), render_audio(plan)))

        render_only = timed(render)

        def encode() -> None:
            for plan, frames, audio in rendered:
                write_video(Path(tmp) / "enc" / f"{plan.id}.mp4", frames, settings.fps, audio, settings.sample_rate,
                            crf=plan.crf)

        encode_only = timed(encode)
    return {"total": total, "render": render_only, "encode": encode_only}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=120, help="clips per measurement (120: about 10 s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"SynthFACS speed at the defaults ({GeneratorSettings()}); {pin_to_one_core()}; n={args.n}")
    seconds = measure(args.n, args.seed)
    print(f"{'phase':<8} {'ms/clip (cpu)':>14} {'clips/s (cpu)':>14} {'clips/s (wall)':>15}")
    rates = {}
    for phase, (cpu, wall) in seconds.items():
        rates[phase] = args.n / cpu
        print(f"{phase:<8} {1000 * cpu / args.n:>14.1f} {args.n / cpu:>14.1f} {args.n / wall:>15.1f}")
    verdict = "meets" if rates["total"] >= TARGET_CLIPS_PER_S else "misses"
    print(f"total {verdict} the target of {TARGET_CLIPS_PER_S:.0f} clips/s on one core")
    print(json.dumps({"clips_per_s": round(rates["total"], 2), "render_clips_per_s": round(rates["render"], 2),
                      "encode_clips_per_s": round(rates["encode"], 2)}))


if __name__ == "__main__":
    main()
