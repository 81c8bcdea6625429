"""Memory per device of a training step or an inference call, from the model config and the token budget alone.

No weights are loaded: parameter counts come from the model class built on the meta device, everything else from
the config's widths and the batch's tokens. The model follows what autograd and the kernels actually keep alive:

- weights: every parameter in the load dtype; sharded over the processes by ZeRO-3 and FSDP (plus the layers
  gathered for the current forward).
- trainable state: gradient + AdamW's two moments per trainable parameter (LoRA adapters are float32: peft's
  `autocast_adapter_dtype`), plus DeepSpeed's float32 master copy; sharded by ZeRO-2/3 and FSDP, and a second
  gradient copy for DDP's buckets.
- activations, per decoder layer and token, what the backward needs (`layer_saved_bytes`): the two RMSNorms'
  float32 upcasts, LoRA's dropout outputs and masks (or the shared inputs when dropout is 0), the attention kernel's
  q, k, v, output and log-sum-exp (flash attention / SDPA: no seq x seq matrix), the MLP's gate, SiLU and up
  outputs. With gradient checkpointing only each layer's input is kept, and one layer is recomputed in the backward.
- logits: transformers' Qwen2.5-Omni thinker computes logits at every position (it has no `logits_to_keep`), so a
  training step holds the batch's logits, their float32 copy for the loss and its gradient (12 bytes x vocab per
  token at the loss), and HF generation holds the whole prompt's logits after the prefill.
- generation (GRPO rollouts, inference): the KV cache of prompt + completion, the prefill's largest per-layer
  intermediate, and the vision tower's per-patch working set while it encodes the frames.

What is left out: the CUDA context and kernels' workspaces (about 0.5-1 GiB a process), allocator fragmentation, and
anything a framework adds that its docs do not state (DeepSpeed's communication buckets are counted at their
default size). `benchmarks/preflight_check.py` compares the estimates with measured peaks.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

GIB = 2**30
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
LAUNCH_MODES = ("single", "ddp", "zero2", "zero3", "fsdp")
SHARDED_PARAMS = ("zero3", "fsdp")
SHARDED_STATE = ("zero2", "zero3", "fsdp")
DEEPSPEED_BUCKET_ELEMENTS = 500_000_000  # DeepSpeed's default reduce_bucket_size (ZeRO-2/3 gradient reduction)


@dataclass(frozen=True)
class LayerShape:
    """Widths of one transformer block (decoder layer or encoder block)."""

    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    layers: int

    @property
    def q_width(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim


@dataclass(frozen=True)
class ModelShape:
    """What the estimates need from a model: block widths, vocabulary, parameter counts by part."""

    text: LayerShape
    vocab: int
    vision: LayerShape | None
    audio: LayerShape | None
    params: dict[str, int]  # "language", "vision", "merger", "audio" (+ "talker", "token2wav": whole omni checkpoint)
    lora_width: int  # sum over LoRA's target projections of (in + out): LoRA parameters = rank x this
    logits_every_position: bool  # the forward has no `logits_to_keep`: generation's prefill computes all logits
    merge: int = 2  # spatial merge of the vision tower (patches per token = merge**2)

    @property
    def total_params(self) -> int:
        return sum(self.params.values())


def _text_layer(text: Mapping) -> LayerShape:
    heads = int(text["num_attention_heads"])
    head_dim = int(text.get("head_dim") or text["hidden_size"] // heads)
    return LayerShape(int(text["hidden_size"]), int(text["intermediate_size"]), heads,
                      int(text.get("num_key_value_heads") or heads), head_dim, int(text["num_hidden_layers"]))


def _vision_layer(vision: Mapping | None) -> LayerShape | None:
    if not vision:
        return None
    hidden = int(vision.get("hidden_size") or vision["embed_dim"])
    heads = int(vision["num_heads"])
    return LayerShape(hidden, int(vision["intermediate_size"]), heads, heads, hidden // heads, int(vision["depth"]))


def _audio_layer(audio: Mapping | None) -> LayerShape | None:
    if not audio:
        return None
    hidden, heads = int(audio["d_model"]), int(audio["encoder_attention_heads"])
    return LayerShape(hidden, int(audio["encoder_ffn_dim"]), heads, heads, hidden // heads,
                      int(audio["encoder_layers"]))


def _part(name: str) -> str:
    if "visual.merger." in name:
        return "merger"
    for part in ("talker", "token2wav", "visual", "audio_tower"):
        if name.startswith(part + ".") or f".{part}." in f".{name}":
            return {"visual": "vision", "audio_tower": "audio"}.get(part, part)
    return "language"


def model_shape(config, arch: str, lora_regex: str, whole_checkpoint: bool = False) -> ModelShape:
    """The shape of the registry's class for `arch` built from `config` on the meta device (no memory, no weights).

    Args:
        config: a transformers config of the checkpoint (omni: the whole checkpoint; its thinker is used).
        arch: registry architecture key.
        lora_regex: the LoRA target pattern of the architecture (`ModelSpec.lora_target_regex`).
        whole_checkpoint: count the talker and token2wav of an omni checkpoint too (what a full-model load holds).
    """
    import torch
    from torch import nn

    from affect_mllm.models.published import build_on_meta, loaded_part
    from affect_mllm.models.registry import model_class

    part = loaded_part(config)
    model = build_on_meta(config, arch)
    params: dict[str, int] = {}
    for name, tensor in model.named_parameters():
        params[_part(name)] = params.get(_part(name), 0) + tensor.numel()
    if whole_checkpoint and part is not config:
        import transformers

        with torch.device("meta"):
            whole = transformers.Qwen2_5OmniForConditionalGeneration(config)
        for name, tensor in whole.named_parameters():
            if _part(name) in ("talker", "token2wav"):
                params[_part(name)] = params.get(_part(name), 0) + tensor.numel()
    pattern = re.compile(lora_regex)
    lora_width = sum(m.in_features + m.out_features for n, m in model.named_modules()
                     if isinstance(m, nn.Linear) and pattern.search(n))
    text, vision = part.text_config.to_dict(), getattr(part, "vision_config", None)
    audio = getattr(part, "audio_config", None)
    vision = vision.to_dict() if vision is not None else None
    return ModelShape(
        text=_text_layer(text), vocab=int(text["vocab_size"]), vision=_vision_layer(vision),
        audio=_audio_layer(audio.to_dict() if audio is not None else None), params=params, lora_width=lora_width,
        logits_every_position="logits_to_keep" not in inspect.signature(model_class(arch).forward).parameters,
        merge=int((vision or {}).get("spatial_merge_size", 2)))


@dataclass(frozen=True)
class Launch:
    """How a run is launched: the mode and the number of processes (one device each)."""

    mode: str = "single"
    processes: int = 1
    source: str = "default"

    def __post_init__(self) -> None:
        if self.mode not in LAUNCH_MODES:
            raise ValueError(f"unknown launch mode {self.mode!r}; choose from {', '.join(LAUNCH_MODES)}")
        if self.processes < 1 or (self.mode == "single" and self.processes != 1):
            raise ValueError(f"launch {self.mode} with {self.processes} processes is not possible")


@dataclass(frozen=True)
class TrainSetup:
    """What a training step keeps in memory besides the model shape."""

    weight_dtype: str = "bfloat16"
    autocast_bf16: bool = False  # bf16 autocast over float32 weights (saves a bf16 copy of each frozen weight)
    use_lora: bool = True
    lora_r: int = 16
    lora_dropout: float = 0.05
    trained_parts: tuple[str, ...] = ()  # "vision", "audio", "merger" trained in full beside LoRA
    optimizer_bytes: int = 8  # AdamW: two float32 moments per trainable parameter (8-bit optimizers: 2)
    attention: str = "sdpa"  # "flash_attention_2" or "sdpa": neither keeps a seq x seq matrix
    device: str = "cuda"  # "cuda" or "cpu": dropout keeps a 1-byte mask on CUDA, a 4-byte one on CPU
    launch: Launch = field(default_factory=Launch)

    @property
    def activation_bytes(self) -> int:
        return 2 if self.autocast_bf16 or BYTES[self.weight_dtype] == 2 else 4


def layer_saved_bytes(layer: LayerShape, act: int, lora: bool, dropout: bool, kv_expanded: bool,
                      lora_r: int = 16, dropout_mask_bytes: int = 1) -> int:
    """Bytes per token that one block keeps for the backward (see the module docstring for each term).

    LoRA: peft keeps adapters in float32 and casts each adapted projection's input to float32 for its `lora_A`;
    with 2-byte activations every projection therefore keeps its own 4-byte copy (or its dropout output plus a
    mask), while with float32 activations and no dropout the projections that share an input share it. The
    dropout mask is 1 byte on CUDA (`native_dropout` keeps a bool mask) and 4 on CPU (the unfused dropout keeps
    its float32 noise tensor): `dropout_mask_bytes`.
    """
    h, i, q, kv = layer.hidden, layer.intermediate, layer.q_width, layer.kv_width
    norms = 2 * (4 * h + 4)  # both RMSNorms keep their float32 input and the per-token rsqrt
    attention = act * (q + 2 * (q if kv_expanded else kv)) + act * q + 4 * layer.heads  # q, k, v, out, lse
    mlp = 3 * act * i  # gate (SiLU input), SiLU output, up
    if not lora:  # full fine-tuning: each linear keeps its input (shared where shared), the norms their output
        return norms + attention + mlp + 2 * act * h + act * q + act * i + 2 * act * h
    per_input = 4 + (dropout_mask_bytes if dropout else 0)
    # one copy per adapted projection (q, k, v, gate, up read h; o reads q; down reads i), else one per input
    inputs = per_input * (5 * h + q + i) if dropout or act != 4 else 4 * (2 * h + q + i)
    return norms + attention + mlp + inputs + 7 * 4 * lora_r  # + the float32 lora_A outputs lora_B keeps


def logits_loss_bytes(vocab: int) -> int:
    """Bytes per token at the SFT loss: float32 logits' log-softmax (saved), its gradient and the input gradient."""
    return 3 * 4 * vocab


def trainable_params(shape: ModelShape, setup: TrainSetup) -> int:
    """Parameters the optimizer updates."""
    if not setup.use_lora:
        return sum(shape.params.get(part, 0) for part in ("language", "vision", "merger", "audio"))
    return setup.lora_r * shape.lora_width + sum(shape.params.get(part, 0) for part in setup.trained_parts)


def state_bytes(shape: ModelShape, setup: TrainSetup) -> float:
    """Gradient + optimizer state (+ DeepSpeed master weights) per device."""
    launch, trainable = setup.launch, trainable_params(shape, setup)
    param_bytes = 4 if setup.use_lora else BYTES[setup.weight_dtype]  # peft keeps adapters in float32
    grad = trainable * param_bytes
    moments = trainable * (setup.optimizer_bytes if param_bytes == 4 else setup.optimizer_bytes // 2)
    master = trainable * 4 if launch.mode.startswith("zero") and param_bytes == 2 else 0
    if launch.mode in SHARDED_STATE:
        shards = launch.processes
        buckets = min(trainable, DEEPSPEED_BUCKET_ELEMENTS) * param_bytes if launch.mode.startswith("zero") else 0
        grad_full = grad if launch.mode == "zero2" else 0  # ZeRO-2 keeps full gradients until reduce-scatter
        return (grad_full or grad / shards) + (moments + master) / shards + buckets
    ddp_buckets = grad if launch.mode == "ddp" else 0
    return grad + moments + master + ddp_buckets


def weight_bytes(shape: ModelShape, setup: TrainSetup, params: int | None = None) -> float:
    """Weights per device (sharded by ZeRO-3/FSDP, plus two gathered decoder layers)."""
    total = shape.total_params if params is None else params
    size = total * BYTES[setup.weight_dtype]
    if setup.launch.mode in SHARDED_PARAMS:
        layer = (shape.params.get("language", 0) - 2 * shape.vocab * shape.text.hidden) / shape.text.layers
        size = size / setup.launch.processes + 2 * layer * BYTES[setup.weight_dtype]
    return size


def activation_bytes(shape: ModelShape, setup: TrainSetup, batch: int, tokens: int, checkpointing: bool) -> float:
    """Activations of one micro-batch at the loss (all layers' saved tensors, or checkpoints + one recomputed layer),
    plus the frozen-weight bf16 copies autocast saves."""
    act = setup.activation_bytes
    kv_expanded = setup.attention == "sdpa" and batch > 1  # a padding mask sends SDPA through repeat_kv
    per_layer = layer_saved_bytes(shape.text, act, setup.use_lora, setup.lora_dropout > 0, kv_expanded,
                                  setup.lora_r, 1 if setup.device == "cuda" else 4)
    text = shape.text
    if checkpointing:
        saved = batch * tokens * (text.layers * act * text.hidden + per_layer)
    else:
        saved = batch * tokens * text.layers * per_layer
    if setup.autocast_bf16 and BYTES[setup.weight_dtype] == 4:
        layer_weights = (shape.params.get("language", 0) - 2 * shape.vocab * text.hidden) / text.layers
        saved += 2 * layer_weights * (1 if checkpointing else text.layers)
    return saved


def logits_bytes(shape: ModelShape, setup: TrainSetup, batch: int, tokens: int, loss_tokens: int) -> float:
    """Logits at the loss: the model's logits at every position plus the float32 loss working set."""
    out = BYTES[setup.weight_dtype] if not setup.autocast_bf16 else 4
    return batch * (tokens * shape.vocab * out + loss_tokens * logits_loss_bytes(shape.vocab))


def tower_working_bytes(layer: LayerShape | None, positions: int, act: int) -> float:
    """Peak transient memory of a frozen encoder over `positions` (patches or audio frames), no graph kept."""
    if layer is None or positions <= 0:
        return 0.0
    h, i = layer.hidden, layer.intermediate
    attention = 2 * 4 * h + 4 * act * h  # q, k upcast to float32 by the rotary, qkv and the output
    mlp = 3 * act * i  # up, SiLU output and their product alive together
    return positions * (act * h + max(attention, mlp) + 3 * 4 * 2 * layer.head_dim)  # + residual, rotary cos/sin


def encoder_outputs_bytes(shape: ModelShape, patches: int, act: int) -> float:
    """The vision tower's outputs that the model's forward keeps as locals through the whole decoder pass
    (transformers' Qwen2.5-Omni thinker and Qwen2.5-VL forwards): the tower's last hidden state (one row per
    patch) and its merged output twice (the per-video split and the concatenated copy scattered into the inputs)."""
    if shape.vision is None or patches <= 0:
        return 0.0
    return patches * act * (shape.vision.hidden + 2 * shape.text.hidden / shape.merge**2)


def kv_cache_bytes(shape: ModelShape, tokens: int, dtype: str) -> float:
    """KV cache of `tokens` positions over all decoder layers."""
    return 2 * shape.text.layers * shape.text.kv_width * tokens * BYTES[dtype]


def prefill_bytes(shape: ModelShape, prompt: int, dtype: str, keep_hidden_states: bool = False) -> float:
    """What an HF generation's prefill of one prompt adds to the weights and the KV cache, at its peak.

    The peak is either inside a layer (the MLP's intermediates) or at the LM head (the logits of every position for
    the Qwen2.5-Omni thinker, of the last one otherwise). `keep_hidden_states`: every layer's output is kept, as
    Qwen2.5-Omni's `generate` asks of the thinker when the talker speaks.
    """
    act = BYTES[dtype]
    text = shape.text
    logits = prompt * shape.vocab * act if shape.logits_every_position else shape.vocab * 4
    hidden_states = (text.layers + 1) * text.hidden * act * prompt if keep_hidden_states else 0
    residual = 2 * text.hidden * act * prompt  # the residual stream and the normed input of the current block
    in_layer = prompt * act * max(3 * text.intermediate, text.q_width + 2 * text.kv_width + text.q_width)
    return hidden_states + residual + max(in_layer, logits)


def to_gib(values: Mapping[str, float]) -> dict[str, float]:
    """Bytes -> GiB rounded to 3 decimals."""
    return {k: round(v / GIB, 3) for k, v in values.items()}


def inference_bytes(shape: ModelShape, prompt: int, patches: int, new_tokens: int, dtype: str = "bfloat16",
                    keep_hidden_states: bool = False) -> dict[str, float]:
    """One HF `generate` call on one prompt: weights, then the larger of the vision tower's pass over the frames
    and the language model's prefill (its KV cache, logits, kept hidden states, the tower's outputs still held);
    the pixel values stay on the device throughout (3 x 2 x 14 x 14 values a patch in the model's dtype)."""
    act = BYTES[dtype]
    weights = shape.total_params * act
    pixels = patches * 3 * 2 * 14 * 14 * act
    vision = tower_working_bytes(shape.vision, patches, act)
    kv = kv_cache_bytes(shape, prompt + new_tokens, dtype)
    prefill = prefill_bytes(shape, prompt, dtype, keep_hidden_states)
    encoded = encoder_outputs_bytes(shape, patches, act)
    return {"weights": weights, "pixel_values": pixels, "vision_tower": vision, "kv_cache": kv, "prefill": prefill,
            "encoder_outputs": encoded, "total": weights + pixels + max(vision, kv + prefill + encoded)}
