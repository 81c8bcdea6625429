"""Prompts: every task's text states the modalities, and the stated modalities read back from it.

Run: pytest tests/test_prompts.py -q
"""

from __future__ import annotations

import itertools

import pytest

from affect_mllm.prompts import TASKS, Modalities, build_prompt

COMBOS = [Modalities(video=v, image=i, audio=a, subtitle=t)
          for v, i, a, t in itertools.product((False, True), repeat=4) if not (v and i)]


@pytest.mark.parametrize("modalities", COMBOS, ids=str)
def test_stated_modalities_read_back(modalities):
    for task in TASKS:
        prompt = build_prompt(task, modalities, subtitle="hello there" if modalities.subtitle else None,
                              variant=1, cot=True)
        assert Modalities.from_prompt(prompt) == modalities


def test_no_audio_is_said_and_unknown_text_states_nothing():
    assert "There is no audio." in build_prompt("ov_emotion", Modalities(video=True))
    assert "There is no video." in build_prompt("ov_emotion", Modalities(audio=True))
    assert Modalities.from_prompt("What do you feel about this?") is None
    with pytest.raises(ValueError, match="unknown task"):
        build_prompt("sing", Modalities(video=True))
