"""Modality check: masking, cue reading, the ablation report and the modality_grounding reward.

Run: pytest tests/test_modality.py -q
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from affect_mllm.media import SampleMedia
from affect_mllm.modality import cited_cues, conflict_following, mask_media, modality_check, modality_markdown
from affect_mllm.prompts import Modalities, build_prompt
from affect_mllm.rewards import REWARDS, get_reward_funcs, modality_grounding_reward, score_completions

ANGRY = "<think>Brows drawn (AU4), lids tight (AU7), a loud, fast voice.</think><answer>emotions: angry</answer>"
FACE_ONLY = "<think>Cheeks raised (AU6), lip corners up (AU12).</think><answer>emotions: happy</answer>"
VOICE_ONLY = "<think>A shaky, high-pitched voice; not loud.</think><answer>emotions: fearful</answer>"
NO_CUES = "<think>Calm overall.</think><answer>emotions: neutral</answer>"


def test_mask_media_keeps_shapes_and_leaves_the_original():
    video = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    audio = np.linspace(-1, 1, 160, dtype=np.float32)
    media = SampleMedia(video=video.copy(), audio=audio.copy())
    muted = mask_media(media, "audio")
    assert muted.audio.shape == audio.shape and not muted.audio.any() and muted.video is media.video
    blank = mask_media(media, "video")
    assert blank.video.shape == video.shape and (blank.video == 128).all() and blank.audio is media.audio
    assert (media.video == video).all() and (media.audio == audio).all()  # the input is not changed
    assert mask_media(SampleMedia(video=video), "audio").audio is None  # absent stays absent
    assert (mask_media(SampleMedia(image=video[0]), "video").image == 128).all()
    with pytest.raises(ValueError, match="can remove"):
        mask_media(media, "text")


def test_cues_follow_the_consistency_lexicon():
    assert cited_cues(ANGRY) == {"video": (4, 7), "audio": (("loudness", "loud"), ("rate", "fast"))}
    # 'not loud' is negated: only the tremor and the pitch count
    assert cited_cues(VOICE_ONLY)["audio"] == (("tremor", "yes"), ("pitch_level", "high"))
    assert cited_cues(None) == {"video": (), "audio": ()}


@pytest.mark.parametrize(("completion", "modalities", "expected"), [
    (ANGRY, ("video", "audio"), 0.0),  # every cue has its modality
    (ANGRY, ("video",), -0.5),  # 2 AUs grounded, 2 voice cues not: -2/4
    (ANGRY, ("audio",), -0.5),  # the AUs are the ungrounded half
    (FACE_ONLY, ("audio",), -1.0),  # AUs with no picture at all
    (FACE_ONLY, ("image",), 0.0),  # an image carries the face too
    (VOICE_ONLY, "video", -1.0),  # a comma-separated column value; both voice cues ungrounded
    (NO_CUES, ("video",), 0.0),  # nothing cited, nothing to penalise
    ("no tags at all, AU4 and a loud voice", ("video",), 0.0),  # no rationale parsed: nothing cited
])
def test_modality_grounding_hand_worked(completion, modalities, expected):
    assert modality_grounding_reward([completion], modalities=[modalities]) == [pytest.approx(expected)]


def test_modality_grounding_reads_the_prompt_when_no_column_says():
    silent_video = build_prompt("ov_emotion", Modalities(video=True))
    with_audio = build_prompt("ov_emotion", Modalities(video=True, audio=True))
    conversation = [{"role": "system", "content": "You are an expert."},
                    {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": silent_video}]}]
    rewards = modality_grounding_reward([ANGRY, ANGRY, ANGRY, ANGRY],
                                        prompts=[silent_video, with_audio, conversation, "Describe it."])
    assert rewards == [-0.5, 0.0, -0.5, None]  # the last prompt states no modalities: cannot judge
    assert modality_grounding_reward([ANGRY]) == [None]


def test_modality_grounding_is_registered_and_pickles():
    assert REWARDS["modality_grounding_reward"] is modality_grounding_reward
    [bound] = get_reward_funcs(["modality_grounding_reward"])
    restored = pickle.loads(pickle.dumps(bound))
    assert restored.__name__ == "modality_grounding_reward"
    assert restored([ANGRY], modalities=[("video",)]) == [-0.5]
    # the trainer's call convention: a `prompt` column reaches the reward as `prompts`
    audio_only = build_prompt("ov_emotion", Modalities(audio=True))
    scores = score_completions([ANGRY, FACE_ONLY], {"prompt": [audio_only] * 2}, [bound])
    assert scores["rewards"] == [-0.5, -1.0]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_modality_check_hand_worked(tmp_path):
    gold = _write(tmp_path / "gold.jsonl", [
        {"id": "a", "video": "a.mp4", "emotion": "happy", "emotions": ["happy"]},
        {"id": "b", "video": "b.mp4", "emotion": "angry", "emotions": ["angry"], "face_emotion": "angry",
         "voice_emotion": "sad"},
        {"id": "c", "video": "c.mp4", "emotion": "fearful", "emotions": ["fearful"], "face_emotion": "fearful",
         "voice_emotion": "happy"},
        {"id": "d", "video": "d.mp4", "emotion": "neutral", "emotions": ["neutral"]},
    ])
    full = _write(tmp_path / "full.jsonl", [{"id": "a", "raw": FACE_ONLY}, {"id": "b", "raw": ANGRY},
                                            {"id": "c", "raw": VOICE_ONLY}, {"id": "d", "raw": NO_CUES}])
    # audio muted: a and d unchanged; b still cites a loud voice; c now answers happy and cites no voice
    muted = _write(tmp_path / "muted.jsonl", [
        {"id": "a", "raw": FACE_ONLY}, {"id": "b", "raw": ANGRY},
        {"id": "c", "raw": "<think>Lip corners up (AU12).</think><answer>emotions: happy</answer>"},
        {"id": "d", "raw": NO_CUES}])
    section = modality_check(full, gold, {"audio": muted}, n_resamples=50)
    assert set(section["conditions"]) == {"full", "no_audio"}
    assert section["conditions"]["full"]["emotion_acc"] == 1.0  # every full answer is right
    assert section["conditions"]["no_audio"]["emotion_acc"] == 0.75
    assert section["answer_changed"]["audio"]["rate"] == 0.25  # c: fearful -> happy
    # muted: 1 of 4 rationales (b) cites voice cues; full: b and c do (2 of 4)
    assert section["hallucination"]["audio"]["ablated"]["rate"] == 0.25
    assert section["hallucination"]["audio"]["full"]["rate"] == 0.5
    # conflict clips b (face angry, voice sad) and c (face fearful, voice happy)
    assert section["conflict"]["full"] == {"n": 2, "follows_face": 1.0, "follows_voice": 0.0, "neither": 0.0}
    assert section["conflict"]["no_audio"] == {"n": 2, "follows_face": 0.5, "follows_voice": 0.5, "neither": 0.0}
    text = "\n".join(modality_markdown(section))
    assert "## Modality check" in text and "| audio | 0.250" in text and "| no_audio | 2 | 0.500 | 0.500" in text
    with pytest.raises(ValueError, match="can ablate"):
        modality_check(full, gold, {"smell": muted})


def test_conflict_following_ignores_agreeing_and_missing_rows():
    from affect_mllm.predictions import LabelRecord

    preds = {"a": LabelRecord("a", emotions=("furious",))}
    rows = [{"id": "a", "face_emotion": "angry", "voice_emotion": "angry"}, {"id": "z", "face_emotion": "sad",
                                                                            "voice_emotion": "happy"}]
    assert conflict_following(preds, rows) == {"n": 0, "follows_face": None, "follows_voice": None, "neither": None}


def test_masked_clip_for_a_server(clips, tmp_path):
    from affect_mllm.media import load_sample_media
    from inference.client import Clip
    from inference.modality import masked_clip

    original = load_sample_media(video=clips["av_16k"])
    muted = load_sample_media(video=masked_clip(Clip(video=clips["av_16k"]), "audio", tmp_path / "a").video)
    assert float(np.abs(original.audio).max()) > 0.3 and float(np.abs(muted.audio).max()) < 1e-3
    assert muted.video.shape == original.video.shape
    # re-encoded near-losslessly: the same frames up to compression noise
    assert np.abs(muted.video.astype(int) - original.video.astype(int)).mean() < 3
    blank = load_sample_media(video=masked_clip(Clip(video=clips["av_16k"]), "video", tmp_path / "v").video)
    assert np.abs(blank.video.astype(int) - 128).max() <= 2 and blank.video.shape == original.video.shape
    assert np.abs(blank.audio[:len(original.audio)] - original.audio).mean() < 0.05  # the voice is kept


@pytest.mark.integration
def test_masking_engine_feeds_the_model_masked_media(tiny_omni_dir, clips):
    from affect_mllm.media import load_sample_media
    from affect_mllm.models.inputs import Conversation, build_messages
    from inference.engine import GenerationRequest, SamplingSettings
    from inference.hf_engine import HFEngine
    from inference.modality import MaskingEngine

    engine = HFEngine.load(str(tiny_omni_dir))
    prompt = build_prompt("ov_emotion", Modalities(video=True, audio=True))

    def requests(mask=None):
        out = []
        for name in ("av_16k", "odd_size", "odd_fps", "audio_48k"):
            media = load_sample_media(video=clips[name], settings=engine.spec.media)
            media = mask_media(media, mask) if mask else media
            out.append(GenerationRequest(Conversation(build_messages(media, prompt, engine.spec), media)))
        return out

    sampling = SamplingSettings(max_new_tokens=12)
    texts = {None: [c[0].text for c in engine.generate(requests(), sampling)]}
    for mask in ("audio", "video"):
        wrapped = MaskingEngine(engine, mask)
        assert wrapped.spec is engine.spec  # everything but generate is the wrapped engine's
        texts[mask] = [c[0].text for c in wrapped.generate(requests(), sampling)]
        assert texts[mask] == [c[0].text for c in engine.generate(requests(mask), sampling)]
    assert texts["video"] != texts[None]  # blank frames change what the model says: the mask reached it
    with pytest.raises(ValueError, match="can mask"):
        MaskingEngine(engine, "text")


def test_evaluate_ablate_writes_the_modality_section_into_the_report(tmp_path):
    from typer.testing import CliRunner

    from affect_mllm.cli import build_app

    gold = _write(tmp_path / "gold.jsonl", [
        {"id": "a", "video": "a.mp4", "emotion": "angry", "emotions": ["angry"], "face_emotion": "angry",
         "voice_emotion": "sad"},
        {"id": "b", "video": "b.mp4", "emotion": "happy", "emotions": ["happy"]}])
    full = _write(tmp_path / "full.jsonl", [{"id": "a", "raw": ANGRY}, {"id": "b", "raw": FACE_ONLY}])
    blank = _write(tmp_path / "blank.jsonl", [{"id": "a", "raw": VOICE_ONLY}, {"id": "b", "raw": FACE_ONLY}])
    args = ["evaluate", "--pred", str(full), "--gold", str(gold), "--json", str(tmp_path / "m.json"), "--report",
            str(tmp_path / "report"), "--bootstrap", "20", "--ablate", f"video={blank}"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    # blank frames: b still cites AU6 and AU12 (1 of 2 rationales), a now answers fearful (1 of 2 changed)
    assert metrics["modality"]["hallucination"]["video"]["ablated"]["rate"] == 0.5
    assert metrics["modality"]["answer_changed"]["video"]["rate"] == 0.5
    assert metrics["modality"]["conflict"]["no_video"] == {"n": 1, "follows_face": 0.0, "follows_voice": 0.0,
                                                           "neither": 1.0}
    assert "## Modality check" in (tmp_path / "report" / "report.md").read_text()
    assert "| video | 0.500" in result.output
    bad = CliRunner().invoke(build_app(), [*args[:-1], f"smell={blank}"])
    assert bad.exit_code != 0 and "MODALITY=PRED" in bad.output


@pytest.mark.integration
def test_predict_mask_reruns_the_set_without_a_modality(tiny_omni_dir, synthfacs_small, tmp_path):
    from typer.testing import CliRunner

    from affect_mllm.cli import build_app
    from affect_mllm.predictions import read_records

    common = ["predict", str(synthfacs_small["val"]), "--model", str(tiny_omni_dir), "--backend", "hf",
              "--max-new-tokens", "8"]
    outs = {}
    for mask in (None, "video"):
        outs[mask] = tmp_path / f"{mask}.jsonl"
        result = CliRunner().invoke(build_app(), [*common, "--out", str(outs[mask]),
                                                  *(["--mask", mask] if mask else [])])
        assert result.exit_code == 0, result.output
    full, blank = ({r.id: r.raw for r in read_records(outs[m])} for m in (None, "video"))
    assert full.keys() == blank.keys() and len(full) == 8
    assert full != blank  # the frames the model saw were blanked
    bad = CliRunner().invoke(build_app(), [*common, "--out", str(tmp_path / "x.jsonl"), "--mask", "smell"])
    assert bad.exit_code == 2 and "can mask" in bad.output
