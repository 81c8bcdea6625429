"""Rewards (affect_mllm/rewards.py): hand-worked cases, ranges, registry, pickling, TRL call convention.

Run: pytest tests/test_rewards.py -q

The official-tables case runs only when ../shared/ovmer_emotion_wheel exists beside the repository and is
skipped, with the folder named, otherwise.
"""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affect_mllm.ovmer_tables import OvmerTablesError
from affect_mllm.rewards import (
    REWARDS,
    au_f1_reward,
    completion_text,
    consistency_reward,
    emotion_accuracy_reward,
    emotion_wheel_f1_reward,
    format_reward,
    get_reward_funcs,
    label_length_penalty,
    length_penalty_reward,
    reward_options,
    score_completions,
)

pytest_plugins = ["ovmer_tables_fixtures"]
TOL = 1e-12
GARBAGE = ["", "happyhappyhappy", "<think>", "</answer><answer>", "<think>x</think><answer>", "\x00\x01",
           "<answer>emotion: ; aus: AU; valence: nan</answer>", "<think><think>a</think></think><answer>b</answer>"]
SMILE = [{"au": 6, "intensity": 3.0}, {"au": 12, "intensity": 4.0}]
# (lower, upper) of each reward, as its docstring documents (consistency: default hallucination_weight = 1).
RANGES = {"format_reward": (0.0, 1.0), "emotion_accuracy_reward": (0.0, 1.0), "emotion_wheel_f1_reward": (0.0, 1.0),
          "au_f1_reward": (-1.0, 1.0), "consistency_reward": (-1.0, 1.0), "length_penalty_reward": (-1.0, 0.0),
          "modality_grounding_reward": (-1.0, 0.0)}


def answer(rationale: str, body: str) -> str:
    return f"<think>{rationale}</think><answer>{body}</answer>"


def test_registry_keys_are_the_function_names_and_each_reward_is_documented():
    assert set(RANGES) == set(REWARDS), "document the range of every registered reward here and in its docstring"
    for name, func in REWARDS.items():
        assert func.__name__ == name and name.endswith("_reward")
        assert "Range" in func.__doc__ and "Example" in func.__doc__
        assert func(completions=[]) == []


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_every_reward_pickles_bare_and_bound(name):
    completions = [answer("Cheeks raised (AU6C), lip corners up (AU12).", "emotion: happy"), "garbage"]
    columns = {"emotion": ["happy", "sad"], "emotions": [["happy"], "[sad]"], "aus": [SMILE, None]}
    bound = get_reward_funcs([name], {name: {}})[0]
    for func in (REWARDS[name], bound):
        clone = pickle.loads(pickle.dumps(func))
        assert clone.__name__ == name
        assert clone(completions=completions, **columns) == func(completions=completions, **columns)


def test_bound_settings_survive_pickling():
    func = get_reward_funcs(["length_penalty_reward"], {"length_penalty_reward": {"min_words": 1, "max_words": 2}})[0]
    clone = pickle.loads(pickle.dumps(func))
    assert clone.__name__ == "length_penalty_reward"
    assert clone([answer("one two three four", "emotions: happy")]) == [-1.0]  # (4 - 2) / 2 capped at 1


def test_get_reward_funcs_rejects_bad_configuration_at_config_time():
    with pytest.raises(ValueError, match="unknown reward"):
        get_reward_funcs(["format_rewards"])
    with pytest.raises(ValueError, match="no setting"):
        get_reward_funcs(["length_penalty_reward"], {"length_penalty_reward": {"max_word": 10}})
    with pytest.raises(ValueError, match="not in reward_funcs"):
        get_reward_funcs(["format_reward"], {"au_f1_reward": {"intensity_aware": True}})
    with pytest.raises(ValueError, match="no setting"):  # label columns are data, not settings
        get_reward_funcs(["au_f1_reward"], {"au_f1_reward": {"aus": []}})
    with pytest.raises(ValueError, match="length_penalty"):
        get_reward_funcs(["emotion_wheel_f1_reward"], {"emotion_wheel_f1_reward": {"length_penalty": "cubic"}})
    with pytest.raises(ValueError, match="min_words"):
        get_reward_funcs(["length_penalty_reward"], {"length_penalty_reward": {"min_words": 10, "max_words": 5}})
    with pytest.raises(ValueError, match="intensity_aware"):
        get_reward_funcs(["au_f1_reward"], {"au_f1_reward": {"intensity_aware": True, "source": "answer"}})
    with pytest.raises(OvmerTablesError, match="no-such-folder.*does not exist"):
        get_reward_funcs(["emotion_wheel_f1_reward"], {"emotion_wheel_f1_reward": {"ovmer_tables": "no-such-folder"}})


def test_reward_options_exclude_label_columns():
    assert reward_options(au_f1_reward) == {"source": "rationale", "intensity_aware": False,
                                           "presence_threshold": 1.0}
    assert reward_options(format_reward) == {}


@pytest.mark.parametrize(("completion", "expected"), [
    ("plain", "plain"),
    ([{"role": "assistant", "content": "conv"}], "conv"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "a"),
    ([{"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]}], "xy"),
    (None, ""), ([], ""), (42, ""), ([{"content": None}], ""),
])
def test_completion_text_handles_strings_and_conversations(completion, expected):
    assert completion_text(completion) == expected


@pytest.mark.parametrize(("completion", "expected"), [
    (answer("Smile (AU12).", "emotions: happy"), 1.0),
    (answer("Smile.", "[Happy, Relieved]"), 1.0),  # bare list, odd case and brackets
    ("  " + answer("Calm.", "valence: 0.10; arousal: -0.40") + "\n", 1.0),
    (answer("", "emotions: happy"), 0.0),  # empty rationale
    (answer("Smile.", "emotions: "), 0.0),  # no value
    ("<answer>emotions: happy</answer>", 0.0),  # no think
    (answer("Smile.", "emotions: happy") + " trailing", 0.0),
    ("<answer>happy</answer><think>late</think>", 0.0),  # wrong order
    (answer("a", "emotion: happy; emotion: sad"), 0.0),  # repeated field
    *[(garbage, 0.0) for garbage in GARBAGE],
])
def test_format_reward(completion, expected):
    assert format_reward([completion]) == [expected]


@pytest.mark.parametrize(("body", "task", "expected"), [
    ("emotion: angry; aus: AU4, AU7", "au_reasoning", 1.0),
    ("emotion: angry", "au_reasoning", 0.0),  # the AU task's second field dropped: what GRPO learned without it
    ("emotion: neutral; aus: ", "au_reasoning", 1.0),  # a neutral face: the AU field given, with no AU active
    ("aus: AU4", "au_reasoning", 0.0),
    ("aus: AU4", "au", 1.0),
    ("emotions: happy", "categorical", 0.0),  # the other emotion field
    ("valence: 0.10; arousal: -0.40", "valence_arousal", 1.0),
    ("valence: 0.10", "valence_arousal", 0.0),
    ("emotion: angry", None, 1.0),  # no task column: any field will do
])
def test_format_reward_asks_for_the_fields_of_the_samples_task(body, task, expected):
    assert format_reward([answer("Frown (AU4).", body)], task=[task]) == [expected]


def test_format_reward_names_an_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'emotion_only'"):
        format_reward([answer("Frown.", "emotion: angry")], task=["emotion_only"])


def test_format_reward_reads_conversational_completions():
    assert format_reward([[{"role": "assistant", "content": answer("Smile.", "happy")}]]) == [1.0]


@pytest.mark.parametrize(("body", "gold", "expected"), [
    ("emotion: happy", "happy", 1.0),
    ("emotion: Joyful", "HAP", 1.0),  # synonym of a category vs dataset code
    ("emotions: meh, furious, sad", "angry", 1.0),  # first word the lexicon places
    ("emotion: sad", "happy", 0.0),
    ("emotion: blorp", "blorp", 1.0),  # unknown word matches itself
    ("emotion: blorp", "happy", 0.0),
    ("emotion: happy", None, None),
    ("emotion: happy", "  ", None),
])
def test_emotion_accuracy_reward(body, gold, expected):
    assert emotion_accuracy_reward([answer("r", body)], emotion=[gold]) == [expected]


def test_emotion_accuracy_reward_on_garbage_is_zero():
    assert emotion_accuracy_reward(GARBAGE, emotion=["happy"] * len(GARBAGE)) == [0.0] * len(GARBAGE)


@pytest.mark.parametrize(("body", "gold", "expected"), [
    ("emotions: happy", ["happy"], 1.0),
    ("emotions: joyful, Joyful, JOYFUL", "[happy]", 1.0),  # duplicates and case collapse to one wheel word
    ("emotions: happy, sad", ["joyful"], 2 / 3),  # P 1/2, R 1 on both project wheels
    ("emotions: qwerty", ["happy"], 0.0),  # unknown predicted words are dropped: empty P
    ("emotions: happy", ["qwerty"], None),  # gold maps onto no wheel
    ("emotions: happy", [], None),
    ("emotions: happy", None, None),
])
def test_emotion_wheel_f1_reward(body, gold, expected):
    got = emotion_wheel_f1_reward([answer("r", body)], emotions=[gold])[0]
    assert got == expected if expected is None else abs(got - expected) < TOL


@pytest.mark.parametrize(("variant", "expected"), [
    # gold [happy, sad], answer [happy, sad, qwerty, asdf]: the unknown padding is dropped by the wheel metric
    # (F = 1), but it counts for the penalty: n_gold 2, n_pred 4 -> 1/3, 2/4, log 2 / log 4 = 1/2.
    ("none", 1.0), ("inverse", 1 / 3), ("ratio", 2 / 4), ("log", math.log(2) / math.log(4)),
])
def test_emotion_wheel_f1_length_penalties(variant, expected):
    completion = answer("r", "emotions: happy, sad, qwerty, asdf")
    got = emotion_wheel_f1_reward([completion], emotions=[["happy", "sad"]], length_penalty=variant)[0]
    assert abs(got - expected) < TOL


def test_length_penalty_never_touches_short_lists():
    assert [label_length_penalty(3, n, v) for n in (1, 3) for v in ("inverse", "ratio", "log")] == [1.0] * 6
    assert label_length_penalty(1, 3, "log") == 0.0  # log(1) = 0: any padding of a one-word gold


def test_emotion_wheel_f1_reward_on_official_tables(official_tables_dir):
    # README case: gold [happy, relieved], pred [joyful] -> P = R = 1 on every wheel at level1.
    func = get_reward_funcs(["emotion_wheel_f1_reward"],
                            {"emotion_wheel_f1_reward": {"ovmer_tables": str(official_tables_dir)}})[0]
    assert func([answer("r", "[joyful]")], emotions=["[happy, relieved]"]) == [1.0]


@pytest.mark.parametrize(("rationale", "gold", "expected"), [
    ("Cheeks raised (AU6), lip corners up (AU12).", SMILE, 1.0),
    ("Cheeks (AU6), lips (AU12), brows (AU4).", SMILE, 0.6),  # F1 = 4/5 -> 2F - 1 = 0.6
    ("Cheeks (AU6), cheeks again (AU 6).", SMILE, 1 / 3),  # duplicate citation counts once: F1 2/3 -> 1/3
    ("No action units named.", SMILE, -1.0),
    ("Brows (AU4).", SMILE, -1.0),  # F1 = 0
    ("Cheeks (AU6).", [{"au": 6, "intensity": 0.5}], 0.0),  # nothing present: Facial-R1 scores 0
    ("Cheeks (AU6).", [], 0.0),
    ("Cheeks (AU6).", None, None),
    ("cheeks (au6) in lower case are not AU names", SMILE, -1.0),
])
def test_au_f1_reward(rationale, gold, expected):
    got = au_f1_reward([answer(rationale, "emotion: happy")], aus=[gold])[0]
    assert got == expected if expected is None else abs(got - expected) < TOL


def test_au_f1_reward_on_garbage_is_minus_one():
    assert au_f1_reward(GARBAGE, aus=[SMILE] * len(GARBAGE)) == [-1.0] * len(GARBAGE)


def test_au_f1_reward_intensity_aware_and_answer_source():
    # AU6 gold 3.0 = C cited C -> 1; AU12 gold 4.0 = D cited A -> 1 - 3/4 = 1/4; F = 2 * 1.25 / 4 = 0.625.
    completion = answer("Cheeks (AU6C), lips (AU12A).", "emotion: happy; aus: AU6")
    got = au_f1_reward([completion], aus=[SMILE], intensity_aware=True)[0]
    assert abs(got - (2 * 0.625 - 1)) < TOL
    # answer source: {6} vs {6, 12} -> F1 2/3 -> 1/3.
    assert abs(au_f1_reward([completion], aus=[SMILE], source="answer")[0] - 1 / 3) < TOL


@pytest.mark.parametrize(("rationale", "body", "gold", "expected"), [
    # AU6 + AU12 support happy fully; answered sad -> coverage 0 (the example).
    ("Cheeks raised (AU6), lip corners up (AU12).", "emotion: happy", None, 1.0),
    ("Cheeks raised (AU6), lip corners up (AU12).", "emotion: sad", None, 0.0),
    # sad core 1+4+15 all cited, AU12 is core to happy -> 1 * (1 - 1/4) = 0.75.
    ("Brows (AU1, AU4), corners down (AU15), a smile (AU12).", "emotion: sad", None, 0.75),
    # AU12 cited but only AU6 labelled: 1 - 1 * 1/2.
    ("Cheeks raised (AU6), lip corners up (AU12).", "emotion: happy", [{"au": 6, "intensity": 2.0}], 0.5),
    # voice only: low pitch and quiet both agree with sad -> 1.0; loud disagrees -> 1/2 with one of two.
    ("A low-pitched, quiet voice.", "emotion: sad", None, 1.0),
    ("A low-pitched, loud voice.", "emotion: sad", None, 0.5),
    # AUs and voice: mean of AU support 1.0 and voice agreement 0.0.
    ("Cheeks (AU6), corners up (AU12), a trembling voice.", "emotion: happy", None, 0.5),
    ("Nothing to see.", "emotion: neutral", None, 1.0),  # no evidence supports neutral only
    ("Nothing to see.", "emotion: happy", None, 0.0),
    ("Cheeks (AU6).", "emotion: blorp", None, 0.0),  # answer in no category
])
def test_consistency_reward(rationale, body, gold, expected):
    got = consistency_reward([answer(rationale, body)], aus=[gold])[0]
    assert abs(got - expected) < TOL


def test_consistency_reward_weight_and_garbage():
    completion = answer("Brows (AU4), cheeks (AU6), corners up (AU12).", "emotion: happy")
    # support: happy core 6+12 covered; AU4 conflicts (core of sad/angry...) -> 1 * (1 - 1/3) = 2/3;
    # hallucinated: AU4 and AU12 absent from the label {6} -> 2/3; weight 0.5 -> 2/3 - 1/3 = 1/3.
    got = consistency_reward([completion], aus=[[{"au": 6, "intensity": 2.0}]], hallucination_weight=0.5)[0]
    assert abs(got - 1 / 3) < TOL
    assert consistency_reward(GARBAGE) == [0.0] * len(GARBAGE)


@pytest.mark.parametrize(("rationale", "expected"), [
    ("one two three four five", 0.0),
    ("one two", -0.6),  # (5 - 2) / 5
    ("", -1.0),
    (" ".join(["w"] * 200), 0.0),
    (" ".join(["w"] * 300), -0.5),  # (300 - 200) / 200
    (" ".join(["w"] * 900), -1.0),  # capped
])
def test_length_penalty_reward(rationale, expected):
    assert abs(length_penalty_reward([answer(rationale, "emotions: happy")])[0] - expected) < TOL


def test_length_penalty_reward_on_garbage():
    assert length_penalty_reward(["no tags at all"]) == [-1.0]


def test_score_completions_follows_the_trl_convention():
    funcs = get_reward_funcs(["format_reward", "emotion_accuracy_reward", "au_f1_reward"])
    completions = [answer("Cheeks (AU6), lips (AU12).", "emotion: happy"), "garbage"]
    columns = {"prompt": ["p1", "p2"], "emotion": ["happy", None], "aus": [None, None], "id": ["a", "b"]}
    result = score_completions(completions, columns, funcs, [1.0, 2.0, 0.5])
    assert result["names"] == ["format_reward", "emotion_accuracy_reward", "au_f1_reward"]
    assert result["rewards_per_func"]["format_reward"] == [1.0, 0.0]
    assert math.isnan(result["rewards_per_func"]["emotion_accuracy_reward"][1])
    # row 1: 1*1 + 2*1 + NaN -> nansum 3; row 2: 1*0 + NaN + NaN -> 0.
    assert result["rewards"] == [3.0, 0.0]
    only_labels = get_reward_funcs(["emotion_accuracy_reward"])
    assert math.isnan(score_completions(["x"], {"emotion": [None]}, only_labels)["rewards"][0])  # unscorable


def test_score_completions_rejects_bad_calls():
    funcs = get_reward_funcs(["format_reward"])
    with pytest.raises(ValueError, match="column 'emotion'"):
        score_completions(["a", "b"], {"emotion": ["happy"]}, funcs)
    with pytest.raises(ValueError, match="weights"):
        score_completions(["a"], {}, funcs, [1.0, 2.0])
    with pytest.raises(ValueError, match="unique"):
        score_completions(["a"], {}, funcs + funcs)


def test_trl_extra_keyword_arguments_are_accepted_and_log_extra_is_called():
    logged = {}
    out = emotion_wheel_f1_reward([answer("r", "emotions: happy")], emotions=[["happy"]], prompts=["p"],
                                  completion_ids=[[1]], trainer_state=None, log_metric=print,
                                  log_extra=lambda column, values: logged.setdefault(column, values))
    assert out == [1.0] and logged == {"answer_emotions": ["happy"]}


text_fragments = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "emotion: ", "emotions: ", "aus: ",
                                  "valence: ", "AU6", "AU12C", "AU99", "; ", ", ", "happy", "Sad", "qwerty", "0.5",
                                  "nan", "[", "]", "loud voice", "not", "\n"])
completion_strategy = st.one_of(st.text(max_size=60), st.lists(text_fragments, max_size=25).map("".join))
gold_aus = st.one_of(st.none(), st.lists(st.fixed_dictionaries(
    {"au": st.sampled_from([1, 4, 6, 12, 15, 99]), "intensity": st.floats(0.0, 5.0)}), max_size=4))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(completion_strategy, st.sampled_from([None, "happy", "sad", "qwerty"]),
                          st.sampled_from([None, [], ["happy"], "[sad, angry]", ["qwerty"]]), gold_aus),
                min_size=1, max_size=4))
def test_rewards_stay_in_their_documented_range(rows):
    completions = [row[0] for row in rows]
    columns = {"emotion": [r[1] for r in rows], "emotions": [r[2] for r in rows], "aus": [r[3] for r in rows]}
    variants = [REWARDS[name] for name in REWARDS] + get_reward_funcs(
        ["emotion_wheel_f1_reward", "au_f1_reward"],
        {"emotion_wheel_f1_reward": {"length_penalty": "log"}, "au_f1_reward": {"intensity_aware": True}})
    for func in variants:
        low, high = RANGES[func.__name__]
        for value in func(completions=completions, **columns):
            assert value is None or low - TOL <= value <= high + TOL, (func.__name__, value)


PROJECT_WORDS = ["happy", "sad", "angry", "fearful", "surprised", "disgusted", "calm", "anxious", "joyful",
                 "frustrated", "relieved", "furious", "nervous", "lonely", "contemptuous", "neutral"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(PROJECT_WORDS), min_size=1, max_size=4, unique=True))
def test_perfect_answer_scores_one_on_the_project_wheels(words):
    completion = answer("r", "emotion: " + words[0] + "; emotions: " + ", ".join(words))
    assert emotion_wheel_f1_reward([completion], emotions=[words], length_penalty="ratio") == [1.0]
    assert emotion_accuracy_reward([completion], emotion=[words[0].upper()]) == [1.0]


@pytest.fixture(scope="module")
def official_reward_and_words(official_tables_dir, official):
    from affect_mllm.wheels import map_word

    tables = official
    # Drawn at run time from the loaded tables; nothing of the tables is stored in this file.
    known = sorted(w for w in tables.format_mapping if any(map_word(w, tables, x) for x in tables.wheel_map))
    func = get_reward_funcs(["emotion_wheel_f1_reward"],
                            {"emotion_wheel_f1_reward": {"ovmer_tables": str(official_tables_dir)}})[0]
    return func, known


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_perfect_answer_scores_one_on_the_official_tables(official_reward_and_words, data):
    func, known = official_reward_and_words
    words = data.draw(st.lists(st.sampled_from(known), min_size=1, max_size=4, unique=True))
    assert func([answer("r", "[" + ", ".join(words) + "]")], emotions=[words]) == [1.0]
