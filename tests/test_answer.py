"""Answer grammar: render, tolerant parse (never raises), round-trip property, JSON form.

Run: .venv/bin/python -m pytest tests/test_answer.py -q
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from affect_mllm.answer import (
    AnswerFields,
    answer_to_json,
    cited_aus,
    gives_fields,
    is_emotion_word,
    parse_answer,
    render_answer,
)


@pytest.mark.parametrize(
    ("text", "emotions", "emotion", "aus", "rationale_aus", "all_ok"),
    [
        ("<think>Cheeks raised (AU6), corners up (AU12).</think><answer>emotions: happy, delighted</answer>",
         ("happy", "delighted"), None, None, (6, 12), True),
        # bare label list, AffectGPT-R1 style, with brackets and odd case
        ("<think>Smiling.</think><answer>[Happy, Relieved]</answer>", ("happy", "relieved"), None, None, (), True),
        # categorical + AUs, whitespace between the blocks is allowed
        ("<think>Brows lowered (AU4), lips pressed (AU 24).</think>\n<answer>emotion: angry; aus: AU4, AU24</answer>",
         None, "angry", (4, 24), (4, 24), True),
        # no think block: answer still read, not well-formed
        ("<answer>emotions: sad</answer>", ("sad",), None, None, (), False),
        # garbage
        ("happyhappyhappy", None, None, None, (), False),
        ("", None, None, None, (), False),
        # unclosed answer
        ("<think>x</think><answer>emotions: sad", None, None, None, (), False),
        # duplicates collapse, order kept
        ("<think>x</think><answer>emotions: sad, Sad, gloomy, sad</answer>", ("sad", "gloomy"), None, None, (), True),
        # text after the answer breaks the order rule
        ("<think>x</think><answer>emotions: sad</answer> trailing", ("sad",), None, None, (), False),
    ],
)
def test_parse_cases(text, emotions, emotion, aus, rationale_aus, all_ok):
    parsed = parse_answer(text)
    assert parsed.fields.emotions == emotions
    assert parsed.fields.emotion == emotion
    assert parsed.fields.aus == aus
    assert parsed.rationale_aus == rationale_aus
    assert parsed.well_formed.all is all_ok


def test_rationale_and_answer_aus_are_kept_apart():
    parsed = parse_answer("<think>AU6 and AU12C are visible.</think><answer>aus: AU6, AU25</answer>")
    assert parsed.rationale_aus == (6, 12) and parsed.fields.aus == (6, 25)
    assert parsed.rationale_au_intensity == {12: "C"}


def test_bad_fields_are_flagged_not_raised():
    parsed = parse_answer("<think>x</think><answer>valence: lots; arousal: 0.5</answer>")
    assert parsed.fields.valence is None and parsed.fields.arousal == 0.5
    assert not parsed.well_formed.fields
    parsed = parse_answer("<think>x</think><answer>emotion: happy, sad</answer>")  # two words for one label
    assert parsed.fields.emotion == "happy" and not parsed.well_formed.fields
    parsed = parse_answer("<think>x</think><answer>valence: nan</answer>")
    assert parsed.fields.valence is None


@pytest.mark.parametrize(("body", "emotions", "emotion"), [
    # rationale leaked into the field: the comma splits "(AU4, AU1)" into two non-words, kept as written
    ("emotions: inner brows raised (AU4, AU1)", ("inner brows raised (au4", "au1)"), None),
    ("emotions: sad, brows pulled together and raised in the middle", ("sad", "brows pulled together and raised in "
                                                                      "the middle"), None),
    ("emotion: AU12", None, "au12"),
    ("Cheeks raised (AU6) so she is happy", ("cheeks raised (au6) so she is happy",), None),  # a bare "list"
])
def test_rationale_text_in_an_emotion_field_is_malformed(body, emotions, emotion):
    parsed = parse_answer(f"<think>Brows raised (AU1).</think><answer>{body}</answer>")
    assert parsed.fields.emotions == emotions and parsed.fields.emotion == emotion
    assert parsed.well_formed.think and parsed.well_formed.answer and parsed.well_formed.order
    assert not parsed.well_formed.fields and not parsed.well_formed.all


@pytest.mark.parametrize(("word", "ok"), [
    ("happy", True), ("ill-at-ease", True), ("at ease", True), ("sick and tired of", True),
    ("sick and tired of it", False), ("au4", False), ("(sad)", False), ("sad.", False), ("-", False), ("", False),
])
def test_emotion_word_rule(word, ok):
    assert is_emotion_word(word) is ok


def test_gives_fields_checks_the_task_fields():
    au_answer = parse_answer("<think>Smile (AU12).</think><answer>aus: AU12</answer>")
    assert not gives_fields(au_answer) and gives_fields(au_answer, ("aus",))
    both = parse_answer("<think>Smile (AU12).</think><answer>emotion: happy; aus: AU12</answer>")
    assert gives_fields(both, ("emotion", "aus")) and not gives_fields(both, ("emotions",))
    empty = parse_answer("<think>x</think><answer>emotions: </answer>")
    assert not gives_fields(empty) and not gives_fields(empty, ("emotions",))
    neutral = parse_answer("<think>A still face.</think><answer>emotion: neutral; aus: </answer>")
    assert neutral.well_formed.all and neutral.fields.aus == () and gives_fields(neutral, ("emotion", "aus"))


def test_cited_aus_ignores_lookalikes():
    assert cited_aus("AU6, AU 12, AU12 again, AUX, BAU7, AU123") == ((6, 12), {})


@given(st.one_of(st.none(), st.binary(), st.integers(), st.text(max_size=200)))
def test_parser_never_raises(value):
    parse_answer(value)


_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(lambda w: w.strip("-"))
_numbers = st.integers(min_value=-100, max_value=100).map(lambda n: n / 100)
_rationales = st.text(alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)),
                      min_size=1, max_size=80).map(str.strip).filter(bool)


@given(
    rationale=_rationales,
    emotion=st.one_of(st.none(), _words),
    emotions=st.one_of(st.none(), st.lists(_words, max_size=5, unique=True).map(tuple)),
    aus=st.one_of(st.none(), st.lists(st.integers(1, 46), max_size=6, unique=True).map(tuple)),
    valence=st.one_of(st.none(), _numbers),
    arousal=st.one_of(st.none(), _numbers),
)
def test_parse_render_round_trip(rationale, emotion, emotions, aus, valence, arousal):
    fields = AnswerFields(rationale=rationale, emotion=emotion, emotions=emotions, aus=aus, valence=valence,
                          arousal=arousal)
    parsed = parse_answer(render_answer(fields))
    if all(v is None for v in (emotion, emotions, aus, valence, arousal)):
        assert parsed.fields.rationale == rationale  # an empty answer body has nothing else to return
        return
    assert parsed.fields == fields
    assert parsed.well_formed.all


def test_json_rendering_has_the_same_content():
    parsed = parse_answer("<think>Cheeks raised (AU6).</think><answer>emotions: happy; aus: AU6</answer>")
    data = answer_to_json(parsed)
    assert data["emotions"] == ["happy"] and data["aus"] == [6] and data["rationale_aus"] == [6]
    assert data["rationale"] == "Cheeks raised (AU6)." and data["well_formed"]["fields"] is True
