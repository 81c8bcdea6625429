"""Which launch a run will use (1 GPU, DDP, ZeRO-2, ZeRO-3, FSDP) and on how many processes, for the preflight.

A dry run usually runs in one process, long before the real launch, so the launch is named: `--launch MODE[:N]`
(MODE one of single, ddp, zero2, zero3, fsdp; N processes, default the process count of the matching
`training/accelerate/<MODE>.yaml`) or `--launch path/to/accelerate.yaml`. Without `--launch`, a dry run started by
`accelerate launch` or `torchrun` reads the launcher's environment (ACCELERATE_USE_DEEPSPEED,
ACCELERATE_DEEPSPEED_ZERO_STAGE, ACCELERATE_USE_FSDP, WORLD_SIZE); otherwise it is one process on one device.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from affect_mllm.memory_model import LAUNCH_MODES, Launch

ACCELERATE_CONFIGS = Path(__file__).with_name("accelerate")


def launch_from_accelerate_config(path: str | Path) -> Launch:
    """The launch an accelerate config file describes."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: accelerate config not found")
    config = yaml.safe_load(path.read_text()) or {}
    kind = str(config.get("distributed_type", "NO")).upper()
    processes = int(config.get("num_processes", 1))
    if kind == "DEEPSPEED":
        stage = int((config.get("deepspeed_config") or {}).get("zero_stage", 2))
        if stage not in (2, 3):
            raise ValueError(f"{path}: ZeRO stage {stage} is not modelled; use 2 or 3")
        return Launch(f"zero{stage}", processes, str(path))
    if kind == "FSDP":
        return Launch("fsdp", processes, str(path))
    if kind in ("MULTI_GPU", "MULTI_CPU", "MULTI_XPU", "MULTI_NPU"):
        return Launch("ddp", processes, str(path))
    if kind == "NO":
        return Launch("single", 1, str(path))
    raise ValueError(f"{path}: distributed_type {kind} is not modelled; supported: NO, MULTI_GPU, DEEPSPEED, FSDP")


def launch_from_option(option: str) -> Launch:
    """`MODE[:N]` or an accelerate config path."""
    mode, _, count = option.partition(":")
    if mode not in LAUNCH_MODES:
        if Path(option).suffix in (".yaml", ".yml") or Path(option).is_file():
            return launch_from_accelerate_config(option)
        raise ValueError(f"--launch {option!r}: use one of {', '.join(LAUNCH_MODES)} (optionally :N processes) "
                         "or an accelerate config file")
    if mode == "single":
        return Launch("single", 1, f"--launch {option}")
    default = launch_from_accelerate_config(ACCELERATE_CONFIGS / f"{mode}.yaml").processes
    try:
        processes = int(count) if count else default
    except ValueError:
        raise ValueError(f"--launch {option!r}: the process count after ':' must be an integer") from None
    return Launch(mode, processes, f"--launch {option}")


def launch_from_environment(env: Mapping[str, str]) -> Launch:
    """The launch that started this process (accelerate/torchrun environment), else a single process."""
    processes = int(env.get("WORLD_SIZE", "1"))
    if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return Launch(f"zero{env.get('ACCELERATE_DEEPSPEED_ZERO_STAGE', '2')}", processes, "environment")
    if env.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return Launch("fsdp", processes, "environment")
    if processes > 1:
        return Launch("ddp", processes, "environment")
    return Launch("single", 1, "default (no --launch, not started by a launcher)")


def resolve_launch(option: str | None, env: Mapping[str, str] | None = None) -> Launch:
    """The launch from `--launch`, else from the launcher's environment."""
    if option:
        return launch_from_option(option)
    return launch_from_environment(os.environ if env is None else env)
