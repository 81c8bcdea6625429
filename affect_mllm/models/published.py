"""The published shapes of the real checkpoints we ship recipes for, built on the meta device.

`published_configs/<registry-name>.json` holds each checkpoint's own config.json (where each came from is in
`published_configs/SOURCES.md`). Building the class our registry loads from one of them under
`torch.device("meta")` gives the real module tree (names, layer counts, projection shapes) without downloading or
allocating any weights, so tests can check where LoRA lands on the real architectures on any machine.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING

from affect_mllm.models.registry import MODEL_REGISTRY, model_class

if TYPE_CHECKING:
    from torch import nn
    from transformers import PretrainedConfig

CONFIG_FOLDER = "published_configs"

# Registry names whose file is not the published config.json verbatim but rebuilt from cited values
# (SOURCES.md lists each value's source): no copy of the original file could be found.
RECONSTRUCTED = frozenset({"qwen2.5-omni-7b"})


def published_names() -> list[str]:
    """Registry names of the real (hub-hosted) models, i.e. every model that has a published config."""
    return [name for name, spec in MODEL_REGISTRY.items() if spec.source not in ("tiny", "bundled")]


def published_json(name: str) -> dict:
    """The config.json of a real registry model, as a dict.

    Raises:
        KeyError: `name` is not a real model of the registry.
    """
    if name not in published_names():
        raise KeyError(f"{name!r} has no published config; real models: {', '.join(published_names())}")
    path = resources.files("affect_mllm.models").joinpath(CONFIG_FOLDER, f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8"))


def published_config(name: str) -> PretrainedConfig:
    """The transformers config of a real registry model (the whole checkpoint: thinker and talker for omni)."""
    from transformers import AutoConfig

    from affect_mllm.models.upstream_warnings import quiet_default_talker_warnings

    quiet_default_talker_warnings()
    return AutoConfig.for_model(**published_json(name))


def loaded_part(config: PretrainedConfig) -> PretrainedConfig:
    """The part of a checkpoint config that the registry's class is built from.

    The registry loads only the thinker of an omni checkpoint (text out, no talker), so its class takes the
    `thinker_config`; VL checkpoints and thinker-only folders are loaded whole.
    """
    return getattr(config, "thinker_config", config)


def build_on_meta(config: PretrainedConfig, arch: str) -> nn.Module:
    """Instantiate the registry's class for `arch` from `config` with every tensor on the meta device."""
    import torch

    with torch.device("meta"):
        return model_class(arch)(loaded_part(config))


def meta_model(name: str) -> nn.Module:
    """The real architecture of a registry model (the class our registry loads), without weights."""
    return build_on_meta(published_config(name), MODEL_REGISTRY[name].arch)
