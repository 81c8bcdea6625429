"""Where LoRA lands: on every language-model decoder layer of every model we ship a recipe for, never in an encoder.

Run: pytest tests/test_lora_targets.py -q

Each real model of the registry is built on the meta device from its published config.json
(`affect_mllm.models.published`), so the real module tree is checked without downloading or allocating weights;
peft injects LoRA on meta tensors too (`low_cpu_mem_usage=True` keeps the new LoRA weights on meta). The tiny
models get the same checks from the folders the session fixtures build. Each model is built and injected once
(`probe`), because peft's injection takes about a second per real model.

Known trap, shown by `test_peft_keeps_the_registry_regex`: on transformers 5, peft (0.21) rewrites a regex
`target_modules` of an MoE model (Qwen3-Omni) into bare leaf names (`q_proj`, ...), which then also match the
audio tower's attention. Passing `ENCODER_EXCLUDE` as `exclude_modules` keeps LoRA off the encoders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import pytest
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from peft.tuners.tuners_utils import check_target_module_exists
from torch import nn

from affect_mllm.models.published import (
    CONFIG_FOLDER,
    RECONSTRUCTED,
    build_on_meta,
    loaded_part,
    meta_model,
    published_config,
    published_names,
)
from affect_mllm.models.registry import MODEL_REGISTRY
from training.lora import ENCODER_MODULES

ATTENTION = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
MLP = ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
# Per decoder layer, where LoRA goes. MoE experts are fused 3-D parameters (no nn.Linear), so attention only.
PROJECTIONS = {"qwen2_5_omni": ATTENTION + MLP, "qwen2_5_vl": ATTENTION + MLP, "qwen3_vl": ATTENTION + MLP,
               "qwen3_omni_moe": ATTENTION}

# The language model's decoder layers: `model.layers` in the omni thinkers (transformers 5.19),
# `model.language_model.layers` in the VL models.
DECODER_LAYERS = re.compile(r"^model\.(language_model\.)?layers$")
# The encoders of the loaded class (vision tower with its merger(s), audio tower), per architecture.
ENCODER_ROOTS = {"qwen2_5_omni": ("visual", "audio_tower"), "qwen3_omni_moe": ("visual", "audio_tower"),
                 "qwen2_5_vl": ("model.visual",), "qwen3_vl": ("model.visual",)}
ENCODER_EXCLUDE = ENCODER_MODULES  # what training passes as exclude_modules

BARE_LIST = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Qwen3-VL's vision blocks name their layers qkv/proj/linear_fc1/linear_fc2, so a bare list happens to miss them;
# every other vision or audio tower has q/k/v_proj or gate/up/down_proj layers that it would wrap.
BARE_LIST_HITS_ENCODERS = {"qwen2_5_omni": True, "qwen3_omni_moe": True, "qwen2_5_vl": True, "qwen3_vl": False}

# The published shapes the checks rest on: (decoder layers, text hidden, vision depth, audio layers, experts).
PUBLISHED_SHAPES = {
    "qwen2.5-omni-3b": (36, 2048, 32, 32, None),
    "qwen2.5-omni-7b": (28, 3584, 32, 32, None),
    "qwen2.5-vl-3b": (36, 2048, 32, None, None),
    "qwen2.5-vl-7b": (28, 3584, 32, None, None),
    "qwen3-vl-8b": (36, 4096, 27, None, None),
    "qwen3-omni-30b-a3b": (48, 2048, 27, 32, 128),
}
# LoRA modules the registry's regex must give: decoder layers x projections per layer (7, or 4 for the MoE).
EXPECTED_LORA_MODULES = {"qwen2.5-omni-3b": 252, "qwen2.5-omni-7b": 196, "qwen2.5-vl-3b": 252, "qwen2.5-vl-7b": 196,
                         "qwen3-vl-8b": 252, "qwen3-omni-30b-a3b": 192}

REAL = published_names()
MOE = [name for name in REAL if MODEL_REGISTRY[name].arch == "qwen3_omni_moe"]
@dataclass(frozen=True)
class Probe:
    """What one model's module tree says, read before LoRA is injected, and where peft put LoRA."""

    arch: str
    model: nn.Module  # after injection
    layer_count: int
    expected: frozenset[str]  # every decoder projection that must get LoRA
    encoders: frozenset[str]  # every module under a vision or audio encoder
    regex_matches: frozenset[str]  # module names the registry regex matches (re.fullmatch, as peft does)
    bare_list_encoder_hits: frozenset[str]  # encoder modules a bare projection list would target
    lora: frozenset[str]  # modules peft wrapped with LoRA


def decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The path and module list of the language model's decoder layers (exactly one per model)."""
    found = [(name, module) for name, module in model.named_modules() if DECODER_LAYERS.fullmatch(name)]
    assert len(found) == 1, f"expected one decoder layer list, found {[name for name, _ in found]}"
    return found[0]


def encoder_modules(model: nn.Module, arch: str) -> frozenset[str]:
    """Names of all modules under the encoders; asserts every encoder the architecture has is present."""
    names = [name for name, _ in model.named_modules()]
    for root in ENCODER_ROOTS[arch]:
        assert root in names, f"{arch}: encoder {root!r} missing from the module tree"
    return frozenset(name for name in names if name.startswith(tuple(f"{root}." for root in ENCODER_ROOTS[arch])))


def lora_modules(model: nn.Module, **lora_kwargs) -> frozenset[str]:
    """Inject LoRA (r=8) in place and return the names of the modules that got it."""
    inject_adapter_in_model(LoraConfig(r=8, **lora_kwargs), model, low_cpu_mem_usage=True)
    return frozenset(name for name, module in model.named_modules() if isinstance(module, LoraLayer))


def probe_model(model: nn.Module, arch: str, target_regex: str) -> Probe:
    """Read the module tree of a freshly built model, then inject LoRA as training configures it."""
    path, layers = decoder_layers(model)
    encoders = encoder_modules(model, arch)
    bare = LoraConfig(r=8, target_modules=BARE_LIST)
    return Probe(
        arch=arch,
        model=model,
        layer_count=len(layers),
        expected=frozenset(f"{path}.{index}.{proj}" for index in range(len(layers)) for proj in PROJECTIONS[arch]),
        encoders=encoders,
        regex_matches=frozenset(name for name, _ in model.named_modules() if re.fullmatch(target_regex, name)),
        bare_list_encoder_hits=frozenset(name for name in encoders if check_target_module_exists(bare, name)),
        lora=lora_modules(model, target_modules=target_regex, exclude_modules=ENCODER_EXCLUDE),
    )


@cache
def probe(name: str) -> Probe:
    """The probe of a real registry model, built once per session."""
    spec = MODEL_REGISTRY[name]
    return probe_model(meta_model(name), spec.arch, spec.lora_target_regex)


def check_targets(found: Probe, targets: frozenset[str]) -> None:
    """LoRA is on every decoder-layer projection of the architecture and on nothing else, no encoder included."""
    in_encoders, missing, extra = targets & found.encoders, found.expected - targets, targets - found.expected
    assert not in_encoders, f"LoRA landed in an encoder: {sorted(in_encoders)[:5]}"
    assert not missing, f"decoder projections without LoRA: {sorted(missing)[:5]}"
    assert not extra, f"LoRA outside the decoder projections: {sorted(extra)[:5]}"
    assert len(targets) == found.layer_count * len(PROJECTIONS[found.arch])


def test_every_real_model_has_a_published_config():
    assert set(REAL) == set(PUBLISHED_SHAPES) == set(EXPECTED_LORA_MODULES)
    assert set(REAL) >= RECONSTRUCTED
    folder = resources.files("affect_mllm.models").joinpath(CONFIG_FOLDER)
    assert {f"{name}.json" for name in REAL} | {"SOURCES.md"} <= {entry.name for entry in folder.iterdir()}


@pytest.mark.parametrize("name", REAL)
def test_meta_model_has_the_published_shape(name):
    found, config = probe(name), loaded_part(published_config(name))
    layers, hidden, vision_depth, audio_layers, experts = PUBLISHED_SHAPES[name]
    text = config.text_config
    assert (text.num_hidden_layers, text.hidden_size, found.layer_count) == (layers, hidden, layers)
    assert config.vision_config.depth == vision_depth
    assert getattr(getattr(config, "audio_config", None), "encoder_layers", None) == audio_layers
    assert getattr(text, "num_experts", None) == experts
    # LoRA included: nothing was allocated, the whole model lives on the meta device
    assert {tensor.device.type for tensor in found.model.parameters()} == {"meta"}


@pytest.mark.parametrize("name", REAL)
def test_registry_regex_names_exactly_the_decoder_projections(name):
    found = probe(name)
    check_targets(found, found.regex_matches)
    assert len(found.regex_matches) == EXPECTED_LORA_MODULES[name]


@pytest.mark.parametrize("name", REAL)
def test_training_lora_config_lands_on_the_decoder_only(name):
    found = probe(name)
    check_targets(found, found.lora)
    assert len(found.lora) == EXPECTED_LORA_MODULES[name]


@pytest.mark.parametrize("name", MOE)
def test_without_the_exclusion_peft_puts_moe_lora_on_the_audio_tower(name):
    # the trap ENCODER_EXCLUDE guards: peft 0.21 on transformers 5 turns an MoE model's regex target into bare
    # leaf names, so the audio tower's q/k/v_proj would get LoRA too
    spec = MODEL_REGISTRY[name]
    found = probe(name)
    targets = lora_modules(meta_model(name), target_modules=spec.lora_target_regex)
    assert targets & found.encoders


@pytest.mark.parametrize("name", REAL)
def test_bare_projection_list_is_a_trap(name):
    found = probe(name)
    assert bool(found.bare_list_encoder_hits) == BARE_LIST_HITS_ENCODERS[found.arch]


@pytest.mark.parametrize(("fixture", "registry_name"), [("tiny_omni_dir", "tiny-omni"), ("tiny_vl_dir", "tiny-vl")])
def test_tiny_models_pass_the_same_checks(fixture, registry_name, request):
    from transformers import AutoConfig

    spec = MODEL_REGISTRY[registry_name]
    config = AutoConfig.from_pretrained(request.getfixturevalue(fixture))
    found = probe_model(build_on_meta(config, spec.arch), spec.arch, spec.lora_target_regex)
    check_targets(found, found.regex_matches)
    check_targets(found, found.lora)
    assert bool(found.bare_list_encoder_hits) == BARE_LIST_HITS_ENCODERS[spec.arch]
