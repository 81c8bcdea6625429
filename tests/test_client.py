"""The client helper: messages like SFT's, media as file or data URLs, parsed answers, and the parse rate of the
tiny SFT model served by vLLM.

Run: pytest tests/test_client.py -q   (the server tests start one vLLM server, ~1 min)
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from affect_mllm.answer import parse_answer
from affect_mllm.media import MediaError, SampleMedia, load_audio
from affect_mllm.models.inputs import build_messages
from affect_mllm.models.registry import resolve
from affect_mllm.prompts import SYSTEM_PROMPT, TASK_FIELDS, TASKS
from affect_mllm.schema import read_manifest
from inference.client import (
    Clip,
    clip_messages,
    clip_prompt,
    media_parts,
    sampling_request,
    split_tagged,
    tagged_answer_regex,
)
from inference.engine import SamplingSettings

pytest_plugins = ["server_fixtures"]



def test_prompt_states_the_modalities_the_clip_has(clips):
    assert "with its audio track" in clip_prompt(Clip(video=clips["av_16k"]))
    assert "There is no audio." in clip_prompt(Clip(video=clips["silent"]))
    assert "There is no audio." in clip_prompt(Clip(video=clips["av_16k"]), hears_audio=False)
    with pytest.raises(MediaError, match="file not found"):
        clip_prompt(Clip(video=clips["av_16k"].with_name("nope.mp4")))


def test_messages_follow_the_sft_conversation(clips, tiny_omni_dir):
    """Same roles, system prompt and part order as `models.inputs.build_messages`, which SFT trains on."""
    clip = Clip(video=clips["av_16k"], subtitle="I did not expect that.")
    text = clip_prompt(clip)
    ours = clip_messages(clip, text, "file")
    spec = resolve(str(tiny_omni_dir))
    sft = build_messages(
        SampleMedia(video=np.zeros((2, 4, 4, 3), np.uint8), audio=np.zeros(16)), text, spec, SYSTEM_PROMPT
    )
    assert ours[0] == sft[0] == {"role": "system", "content": SYSTEM_PROMPT}
    kinds = [p["type"].removesuffix("_url") for p in ours[1]["content"]]
    assert kinds == [p["type"] for p in sft[1]["content"]] == ["video", "audio", "text"]
    assert ours[1]["content"][-1]["text"].endswith("Subtitle: I did not expect that.")
    assert ours[1]["content"][0]["video_url"]["url"] == clips["av_16k"].resolve().as_uri()
    assert [p["type"] for p in media_parts(Clip(video=clips["silent"]))] == ["video_url"]


def test_data_mode_sends_our_decoded_audio_losslessly(clips):
    import soundfile

    parts = media_parts(Clip(video=clips["audio_48k"]), "data", audio_part="input_audio")
    assert parts[0]["video_url"]["url"].startswith("data:video/mp4;base64,")
    sent, rate = soundfile.read(io.BytesIO(base64.b64decode(parts[1]["input_audio"]["data"])), dtype="float32")
    assert rate == 16000 and np.array_equal(sent, load_audio(clips["audio_48k"]))
    url = media_parts(Clip(audio=clips["av_16k"]), "data")[0]["audio_url"]["url"]
    assert url.startswith("data:audio/wav;base64,")


def test_sampling_fields_are_explicit():
    greedy = sampling_request(SamplingSettings(max_new_tokens=16))
    assert (greedy["temperature"], greedy["max_tokens"], greedy["extra_body"]["repetition_penalty"]) == (0.0, 16, 1.0)
    regex = tagged_answer_regex("categorical")
    sampled = sampling_request(SamplingSettings(greedy=False, temperature=0.7, top_p=0.9, n=2), seed=5, regex=regex)
    assert (sampled["temperature"], sampled["top_p"], sampled["n"], sampled["seed"]) == (0.7, 0.9, 2, 5)
    assert sampled["extra_body"]["structured_outputs"] == {"regex": regex}
    assert "structured_outputs" not in greedy["extra_body"]


@pytest.mark.parametrize("task", TASKS)
def test_guided_grammar_is_the_trained_tag_grammar(task):
    """The guiding regex accepts what SFT targets look like for the task (and parses well-formed), nothing else."""
    import re

    from affect_mllm.answer import AnswerFields, render_answer

    example = {
        "emotion": "angry",
        "emotions": ("happy", "delighted"),
        "aus": (4, 12),
        "valence": -0.25,
        "arousal": 1.0,
    }
    target = render_answer(
        AnswerFields(
            rationale="Brows drawn (AU4C); a tense voice.", **{name: example[name] for name in TASK_FIELDS[task]}
        )
    )
    regex = tagged_answer_regex(task)
    assert re.fullmatch(regex, target), target
    assert parse_answer(target).well_formed.all
    assert not re.fullmatch(regex, target.replace("</think>", ""))
    assert not re.fullmatch(regex, "<think> </think>" + target.partition("</think>")[2])  # empty rationale
    assert not re.fullmatch(tagged_answer_regex(task, max_rationale_chars=10), target)  # bounded rationale
    if "aus" in TASK_FIELDS[task]:  # a neutral face's SFT target: the AU field with no AU
        neutral = render_answer(AnswerFields(rationale="A still face.",
                                             **{name: () if name == "aus" else example[name]
                                                for name in TASK_FIELDS[task]}))
        assert re.fullmatch(regex, neutral) and "aus: </answer>" in neutral, neutral


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "<think>Brows drawn (AU4).</think><answer>emotions: angry</answer>",
            ("Brows drawn (AU4).", "emotions: angry"),
        ),
        ("<think>Brows dra", ("Brows dra", "")),  # still streaming the rationale
        ("happy, relieved", ("", "happy, relieved")),  # a model that ignores the format: all of it is the answer
    ],
)
def test_split_tagged(text, expected):
    assert split_tagged(text) == expected


def test_served_sft_model_answers_in_the_trained_format(served):
    """Parse rate of the adapter on the held-out SynthFACS clips, through `AffectClient.analyze` (file URLs).

    The session's tiny SFT model trains for 120 steps only: free decoding's rate is printed, not asserted (HF gives
    the same texts, tests/test_serve.py). Guided by its own tag grammar, every answer must parse.
    """
    client = served.client(model=served.adapter)
    manifest = read_manifest(served.val_manifest)
    clips = [Clip.from_sample(sample, manifest) for sample in manifest.samples]
    free = [client.analyze(clip, "ov_emotion", media="file") for clip in clips]
    guided = [client.analyze(clip, "ov_emotion", media="file", guided=True) for clip in clips]
    rates = {
        name: sum(a.answer.well_formed.all for a in answers) / len(answers)
        for name, answers in (("free", free), ("guided", guided))
    }
    print(f"parse rate over {len(clips)} held-out SynthFACS clips: {rates}")  # shown by pytest -rP
    assert rates["guided"] == 1.0, f"{rates}: " + " | ".join(a.text[:80] for a in guided)
    well = guided[0]
    assert well.json["rationale"] and well.json["emotions"] and well.json["raw"] == well.text
    assert all(a.finish_reason == "stop" for a in guided)


def test_guided_decoding_imposes_a_grammar_the_model_would_not_write(served):
    """Asked the ov_emotion question, the SFT model answers with `emotions: ...` and never with valence and
    arousal; guided by the valence/arousal grammar, every answer must be that grammar, well-formed. A server that
    ignored the constraint would give the free answers and fail."""
    from affect_mllm.answer import answer_regex, gives_fields

    client = served.client(model=served.adapter)
    manifest = read_manifest(served.val_manifest)
    clips = [Clip.from_sample(sample, manifest) for sample in manifest.samples[:4]]
    regex = answer_regex(("valence", "arousal"), max_rationale_chars=120)
    settings = SamplingSettings(max_new_tokens=200)
    free, guided = [], []
    for clip in clips:
        messages = clip_messages(clip, clip_prompt(clip, "ov_emotion"), "file")
        free.append(client.complete(messages, settings)[0].answer)
        guided.append(client.complete(messages, settings, regex=regex)[0].answer)
    assert not any(gives_fields(a, ("valence",)) or gives_fields(a, ("arousal",)) for a in free)
    assert all(a.well_formed.all and gives_fields(a, ("valence", "arousal")) and not a.fields.emotions
               for a in guided), [a.raw for a in guided]


def test_streaming_gives_the_same_text_and_guided_decoding_keeps_the_grammar(served):
    client = served.client(model=served.adapter)
    manifest = read_manifest(served.val_manifest)
    clip = Clip.from_sample(manifest.samples[0], manifest)
    messages = clip_messages(clip, clip_prompt(clip), "file")
    settings = SamplingSettings(max_new_tokens=64)
    chunks = list(client.stream(messages, settings))
    assert len(chunks) > 1 and "".join(chunks) == client.complete(messages, settings)[0].text
    guided = client.analyze(clip, media="file", guided=True, sampling=SamplingSettings(max_new_tokens=200))
    assert guided.answer.well_formed.all, guided.text
