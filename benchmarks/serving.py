"""Serving throughput: vLLM's OpenAI server (`affect-mllm serve`) against the HF backend, same model, same clips.

Run: python benchmarks/serving.py [--model tiny-omni] [--clips 16] [--concurrency 1,4,8] [--max-new-tokens 64]
                                   [--threads 1]

SynthFACS clips (4 s, 8 frames of 112x112, 16 kHz voice) are generated into a temporary folder. The vLLM side is
the real server started by `affect-mllm serve` with that folder as its media root; N client threads send the
clips through `AffectClient.analyze` (file:// URLs, so the server decodes them, greedy). The HF side is
`HFEngine` on the same model, the same clips decoded by our pipeline inside the timing, batches of N. Both
sides produce the same greedy tokens (tests/test_engine.py), so they do the same work, on the same cores: this
process (the clients and the HF side) and the whole server process group (the wrapper, vLLM's API server front
end, its engine core) are pinned to the first `--threads` CPUs (the affinity is inherited by the server's
processes and checked on each of them), with as many compute threads (one by default: on a shared 2-core
machine a second OpenMP thread stalls). Completions/s are wall clock, measured one after the other in one run
(the server is stopped before HF starts), so their ratio holds on a shared machine even where the absolute
numbers do not. Latency is per request at the client. The last line is JSON: {"vllm_per_s", "hf_per_s", "ratio",
"p50_ms", "p95_ms", "cpus"} at the highest concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from affect_mllm.processes import free_port, stop_process_group, wait_for_health

REPO_ROOT = Path(__file__).resolve().parents[1]


def pin_to(cpus: list[int]) -> None:
    """Pin this process (and every process it starts from now on) to these CPUs."""
    os.sched_setaffinity(0, cpus)


def tree_affinities(pid: int) -> dict[int, list[int]]:
    """pid -> CPUs allowed, for a process and all its descendants."""
    import psutil

    root = psutil.Process(pid)
    return {p.pid: sorted(p.cpu_affinity()) for p in [root, *root.children(recursive=True)]}


def start_server(model: str, media_root: Path, port: int, log: Path, cpus: list[int]) -> subprocess.Popen:
    """`affect-mllm serve` in its own session, every process of it on `cpus` (inherited from this process, which
    `pin_to` pinned); its OpenMP threads bound to them too. Returns once /health answers 200."""
    command = [
        sys.executable,
        "-m",
        "affect_mllm.cli",
        "serve",
        "--model",
        model,
        "--port",
        str(port),
        "--media-root",
        str(media_root),
        "--kv-cache-gib",
        "0.5",
        "--max-num-seqs",
        "8",
    ]
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": ",".join(str(cpu) for cpu in cpus)}
    with log.open("w") as sink:
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    wait_for_health(f"http://127.0.0.1:{port}", server, timeout_s=600, log=log)
    return server


def time_server(url: str, clips: list, levels: list[int], max_new_tokens: int,
                model: str | None = None) -> dict[int, tuple[float, list]]:
    """Per concurrency level: (completions/s, per-request latencies in ms); `model`: a served LoRA's name."""
    from inference.client import AffectClient
    from inference.engine import SamplingSettings

    client = AffectClient(url, max_retries=0, model=model)
    sampling = SamplingSettings(max_new_tokens=max_new_tokens)

    def one(clip) -> float:
        started = time.perf_counter()
        client.analyze(clip, media="file", sampling=sampling)
        return 1000 * (time.perf_counter() - started)

    for clip in clips[:2]:
        one(clip)  # warm-up: first-request costs are not throughput
    results = {}
    for level in levels:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=level) as pool:
            latencies = list(pool.map(one, clips))
        results[level] = (len(clips) / (time.perf_counter() - started), latencies)
    return results


def time_hf(model: str, manifest, levels: list[int], max_new_tokens: int) -> dict[int, float]:
    """Per concurrency level (batch size): completions/s of the HF backend, decoding included."""
    from inference.engine import SamplingSettings, request_from_sample
    from inference.hf_engine import HFEngine

    engine = HFEngine.load(model, max_batch_size=max(levels))
    sampling = SamplingSettings(max_new_tokens=max_new_tokens)
    warm = [request_from_sample(s, manifest, "ov_emotion", engine.spec) for s in manifest.samples[:2]]
    engine.generate(warm, sampling)
    results = {}
    for level in levels:
        started = time.perf_counter()
        for start in range(0, len(manifest), level):
            batch = [
                request_from_sample(s, manifest, "ov_emotion", engine.spec)
                for s in manifest.samples[start : start + level]
            ]
            engine.generate(batch, sampling)
        results[level] = len(manifest) / (time.perf_counter() - started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-omni", help="Registry name or model folder.")
    parser.add_argument("--clips", type=int, default=16, help="Clips per concurrency level.")
    parser.add_argument("--concurrency", default="1,4,8", help="Comma-separated levels.")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPUs both sides are pinned to (the first N this process may use), and compute threads of each.",
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    cpus = sorted(os.sched_getaffinity(0))[: args.threads]
    pin_to(cpus)  # the clients and the HF side; the server inherits it

    from affect_mllm.models.registry import resolve
    from affect_mllm.schema import read_manifest
    from affect_mllm.synthfacs.generate import generate_synthfacs
    from inference.client import Clip

    model = resolve(args.model).source
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as folder:
        manifest = read_manifest(generate_synthfacs(Path(folder) / "clips", args.clips, seed=3, split="test"))
        clips = [Clip.from_sample(sample, manifest) for sample in manifest.samples]
        port = free_port()
        server = start_server(model, Path(folder), port, Path(folder) / "serve.log", cpus)
        try:
            affinities = tree_affinities(server.pid)
            if any(allowed != cpus for allowed in affinities.values()):
                raise RuntimeError(f"server processes not all on CPUs {cpus}: {affinities}")
            served = time_server(f"http://127.0.0.1:{port}", clips, levels, args.max_new_tokens)
        finally:
            stop_process_group(server)
        import torch

        torch.set_num_threads(args.threads)
        hf = time_hf(model, manifest, levels, args.max_new_tokens)
    print(
        f"{args.clips} SynthFACS clips, greedy, {args.max_new_tokens} new tokens at most, model {args.model}, "
        f"{args.threads} compute thread(s) per side; both sides on CPUs {cpus} (the {len(affinities)} server "
        "processes checked)"
    )
    print(f"{'concurrency':>11} {'vLLM/s':>8} {'HF/s':>8} {'ratio':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for level in levels:
        rate, latencies = served[level]
        p50, p95 = np.percentile(latencies, [50, 95])
        print(f"{level:>11} {rate:>8.2f} {hf[level]:>8.2f} {rate / hf[level]:>6.2f} {p50:>8.0f} {p95:>8.0f}")
    top = levels[-1]
    p50, p95 = np.percentile(served[top][1], [50, 95])
    print(
        json.dumps(
            {
                "vllm_per_s": round(served[top][0], 2),
                "hf_per_s": round(hf[top], 2),
                "ratio": round(served[top][0] / hf[top], 2),
                "p50_ms": round(float(p50)),
                "p95_ms": round(float(p95)),
                "cpus": cpus,
            }
        )
    )


if __name__ == "__main__":
    main()
