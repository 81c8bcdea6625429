"""Reference rationales written from a clip's ground truth, and short subtitles that never name an emotion.

A rationale says which AUs the face shows (cited as "AU6", "AU12" or with an intensity letter, "AU12D", as
`answer.cited_aus` reads them), what the voice does (in phrases of the knowledge base's voice vocabulary, so
`voice_cues.voice_cues_in` reads the claims back) and why that means the emotion. It is plain text: it becomes the
<think> part of the answer. It cites exactly the labelled AUs and claims only the voice cues of the voice's
category, so consistency rewards score a reference rationale 1.

Templates. 32 templates for clips whose face and voice agree and 10 for conflict clips, in several styles
(prose, lists of cues, "key observations -> interpretation -> conclusion", question and answer, numbered steps).
HELD_OUT_TEMPLATES (10 of them, both kinds and both structured and prose styles) are used only for the val and
test splits and never for train, so that a later stage cannot score on held-out data by reproducing the wording
of training rationales; val and test use nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from affect_mllm.knowledge import au_cue, intensity_letter
from affect_mllm.voice_cues import voice_profile

NOUNS: Mapping[str, str] = MappingProxyType({
    "neutral": "a neutral state", "happy": "happiness", "sad": "sadness", "surprised": "surprise",
    "fearful": "fear", "angry": "anger", "disgusted": "disgust", "contemptuous": "contempt",
})

# Why the face's AUs mean the emotion, in words only: an AU number here would cite an AU the clip may lack.
WHY: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "neutral": ("The relaxed face gives no emotional signal.",
                "No muscle moves beyond a trace, so the face stays at rest.",
                "A resting face without any marked action means no emotion is shown."),
    "happy": ("Raised cheeks with lifted lip corners are the signature of a genuine smile.",
              "A smile that reaches the eyes, with the cheeks pushed up, is the clearest sign of happiness.",
              "Lip corners pulled up and back while the cheeks rise mark enjoyment."),
    "sad": ("Inner brows drawn up and together above down-turned lip corners is the classic look of sadness.",
            "The oblique brows and the falling mouth corners show sorrow.",
            "Sadness shows in the raised inner brows and the lip corners pulled down."),
    "surprised": ("High brows, wide-open eyes and an open mouth form the typical surprise display.",
                  "The whole brow lifts, the eyes widen and the jaw drops: a reaction to something unexpected.",
                  "Raised brows over wide eyes with the mouth falling open mark surprise."),
    "fearful": ("Brows raised yet pulled together, wide eyes and lips stretched sideways mark fear; the mouth "
                "stays closed, unlike in surprise.",
                "Unlike surprise, the brows are drawn together and the lips pulled sideways: this is fear.",
                "Wide eyes under tense, knitted brows with horizontally stretched lips are the fear display."),
    "angry": ("Lowered, knitted brows over a hard stare with tightened lips form the anger display.",
              "A glare under lowered brows with narrowed or pressed lips signals anger.",
              "The brows pull down and together while the lids tighten: a confrontational, angry face."),
    "disgusted": ("A wrinkled nose and a raised upper lip, with the brows left level, point to disgust rather "
                  "than anger.",
                  "The nose wrinkles and the upper lip curls up, as if repelled by a bad smell: disgust.",
                  "Disgust centres on the nose and upper lip, while the brows stay relaxed."),
    "contemptuous": ("A one-sided tightening and lift of the lip corner is the hallmark of contempt.",
                     "Only one side of the mouth moves, in a lopsided half-smile that signals contempt.",
                     "The asymmetric smirk, with the lip corner pulled up and dimpled on one side, shows contempt."),
})

# Noun phrases per voice cue, all in knowledge's voice vocabulary (attribute, value) -> phrases.
VOICE_PHRASES: Mapping[tuple[str, str], tuple[str, ...]] = MappingProxyType({
    ("pitch_level", "low"): ("a low-pitched voice", "a low pitch", "a deep voice"),
    ("pitch_level", "mid"): ("a mid-range pitch", "a normal pitch"),
    ("pitch_level", "high"): ("a high-pitched voice", "a high pitch", "a raised pitch"),
    ("pitch_range", "narrow"): ("a monotone delivery", "a narrow pitch range", "little pitch variation"),
    ("pitch_range", "normal"): ("normal intonation",),
    ("pitch_range", "wide"): ("a wide pitch range", "varied intonation", "lively intonation"),
    ("contour", "falling"): ("falling intonation", "a falling pitch", "a downward inflection"),
    ("contour", "flat"): ("flat intonation", "a level tone"),
    ("contour", "rising"): ("rising intonation", "a rising pitch", "an upward inflection"),
    ("loudness", "quiet"): ("a quiet voice", "a soft voice", "low volume", "a subdued voice"),
    ("loudness", "normal"): ("moderate volume", "normal volume"),
    ("loudness", "loud"): ("a loud voice", "a raised voice", "a forceful voice"),
    ("rate", "slow"): ("slow speech", "a slow pace", "drawn-out speech"),
    ("rate", "normal"): ("an even pace", "a normal pace"),
    ("rate", "fast"): ("fast speech", "rapid speech", "hurried speech"),
    ("tremor", "no"): ("a steady voice", "a firm voice"),
    ("tremor", "yes"): ("a trembling voice", "a shaky voice", "a quavering voice"),
})
VOICE_CUES_SHOWN = (2, 4)  # how many voice cues a rationale names: enough to justify, short enough to learn
NEUTRAL_FACE = {"face": "no action unit above trace", "face_codes": "no AU above trace"}

AGREE_TEMPLATES: Mapping[str, str] = MappingProxyType({
    "a01": "The face shows {face}, and the audio has {voice}. {why} The emotion is {emotion}.",
    "a02": "Key observations: {face_lines}; voice: {voice_list}. Interpretation: {why} Conclusion: {emotion}.",
    "a03": "{face_lead}. Together with {voice}, this points to {noun}.",
    "a04": "Observed action units: {face_codes}. The speech carries {voice}. {why} So the person is {emotion}.",
    "a05": "I see {face}. I hear {voice}. Both fit {noun}: the person seems {fine}.",
    "a06": "Face: {face_coded}. Voice: {voice_list}. Reading: {emotion}.",
    "a07": "Looking at the face first: {face}. {why} The voice agrees, with {voice}. Overall: {emotion}.",
    "a08": "The expression is built from {face}, and the speech brings {voice}. {why} Answer: {emotion}.",
    "a09": "Step 1, face: {face_lead}. Step 2, voice: {voice_list}. Step 3, interpretation: {why} "
           "Step 4, conclusion: {emotion}.",
    "a10": "At the apex the face shows {face}, while the audio has {voice}. This combination reads as {fine}, "
           "a form of {noun}.",
    "a11": "Evidence from the face: {face_codes} ({face_words}). Evidence from the voice: {voice_list}. {why} "
           "Verdict: {emotion}.",
    "a12": "The audio carries {voice}, and the face shows {face}. {why} The person feels {emotion}.",
    "a13": "Signals: {face_lines}. Prosody: {voice_list}. Interpretation: {why} Label: {emotion}.",
    "a14": "The clip starts neutral and peaks with {face}. The speaker talks with {voice}. {why} Emotion: {emotion}.",
    "a15": "Which AUs are active? {face_coded}. What does the audio carry? {voice}. What does that mean? {why} "
           "Final answer: {emotion}.",
    "a16": "{face_codes} at the apex, {voice_list} in the voice: {noun}, leaning {fine}.",
    "a17": "The person's face: {face}. Their voice: {voice_list}. {why} I'd call this {emotion}, or more precisely "
           "{fine}.",
    "a18": "First the face: {face_lead}. Then the voice: {voice_list}. Putting both together gives {emotion}.",
    "a19": "Facial action units: {face_coded}; vocal cues: {voice_list}. {why} Emotion: {emotion}.",
    "a20": "What stands out is {face}, along with {voice}. {why} This is {emotion}.",
    "a21": "Reasoning: the face shows {face}; the audio carries {voice}. {why} Therefore the emotion is {emotion}.",
    "a22": "{a_fine} look: {face}. The audio matches, with {voice}. {why} Emotion: {emotion}.",
    "a23": "{why} Here the face shows {face} and the audio has {voice}, so the emotion is {emotion}.",
    "a24": "Observations -> face: {face_lines}; voice: {voice_list}. Interpretation -> {why} Conclusion -> {emotion}.",
    "a25": "The key facial actions are {face_coded}, that is {face_words}. The voice: {voice_list}. This is how "
           "{noun} looks and sounds.",
    "a26": "Face: {face}. Voice: {voice}. {why} Emotion: {emotion}.",
    "a27": "In the face, {face_lead}; in the voice, {voice_list}. The most likely emotion is {emotion}.",
    "a28": "Cues: {face_codes} plus {voice_list}. {why} The person appears {fine}, so the basic emotion is {emotion}.",
    "a29": "The apex frame shows {face}. The soundtrack has {voice}. These cues indicate {noun}.",
    "a30": "Looking closely: {face_coded}. Listening: {voice_list}. Interpretation: {why} Conclusion: the person is "
           "{emotion}.",
    "a31": "Both channels agree. Face: {face}. Voice: {voice}. {why} Emotion: {emotion}.",
    "a32": "{face_words} ({face_codes}), with {voice}. {why} That makes the emotion {emotion}.",
})
CONFLICT_TEMPLATES: Mapping[str, str] = MappingProxyType({
    "c01": "The face shows {face}, {a_face_emotion} display, but the audio has {voice}, which sounds "
           "{voice_emotion}. The face is the clearer channel, so the emotion is {emotion}.",
    "c02": "Key observations: face {face_lines}; voice {voice_list}. Interpretation: {why} The voice, however, "
           "suggests {voice_noun}. Conclusion: {emotion}, with {a_voice_emotion} voice.",
    "c03": "Face and voice disagree. Face: {face_coded}, which means {face_noun}. Voice: {voice_list}, which fits "
           "{voice_noun}. Following the face: {emotion}.",
    "c04": "{face_lead}: this points to {face_noun}. Yet the audio has {voice}, which suggests {voice_noun}. "
           "The facial evidence wins: {emotion}.",
    "c05": "Mixed signals: the face shows {face} ({face_emotion}), the voice {voice_list} ({voice_emotion}). "
           "Going by the face, the emotion is {emotion}.",
    "c06": "The expression reads as {face_emotion} ({face_codes}): {why} The voice does not match, with {voice} "
           "typical of {voice_noun}. Label: {emotion}.",
    "c07": "Step 1, face: {face_codes}, {a_face_emotion} pattern. Step 2, voice: {voice_list}, {a_voice_emotion} "
           "pattern. Step 3, the two conflict and the face decides. Answer: {emotion}.",
    "c08": "Despite {voice}, which sounds {voice_emotion}, the face shows {face}. {why} Emotion: {emotion}.",
    "c09": "Observations: {face_coded} on the face; {voice_list} in the voice. The face says {face_emotion}, the "
           "voice says {voice_emotion}. Conclusion: {emotion}, judged by the face.",
    "c10": "The person looks {face_emotion} ({face}) but sounds {voice_emotion} ({voice_list}). Since the face "
           "carries the expression, the answer is {emotion}.",
})
TEMPLATES: Mapping[str, str] = MappingProxyType({**AGREE_TEMPLATES, **CONFLICT_TEMPLATES})
HELD_OUT_TEMPLATES = frozenset({"a05", "a10", "a15", "a20", "a24", "a28", "a31", "c04", "c08", "c10"})
HELD_OUT_SPLITS = ("val", "test")

# Everyday lines with no emotion word, so a subtitle never gives the label away (tests check it on the lexicon).
SUBTITLES = (
    "I just got back from the station.", "Can you pass me that folder?", "The meeting is on Thursday now.",
    "We are out of milk again.", "She said the bus comes at seven.", "Did you see the message I sent?",
    "The window in the kitchen is open.", "They painted the fence last week.", "Turn left after the bridge.",
    "I put the keys on the table.", "The printer needs new paper.", "He is bringing the car around.",
    "It has been raining since noon.", "The package came this morning.", "Let me check the schedule.",
    "We should leave in ten minutes.", "The lights are still on upstairs.", "That is the third time today.",
    "Who took my chair?", "The store closes at nine.", "I found the letter under the door.",
    "Your phone is ringing.", "The water is boiling now.", "They changed the password again.",
    "I will call you back tonight.", "The train was on time.", "Someone left the gate open.",
    "There is a dog in the garden.", "The results come out tomorrow.", "I read the whole report.",
)


@dataclass(frozen=True)
class RationaleFacts:
    """The ground truth a rationale is written from."""

    emotion: str  # the categorical label
    face_emotion: str
    voice_emotion: str
    aus: Mapping[int, float]  # labelled apex AUs -> intensity (0-5)
    side: str  # "left"/"right" for a one-sided expression, else "both"
    fine_word: str  # a fine-grained word of the face's emotion

    @property
    def conflict(self) -> bool:
        return self.face_emotion != self.voice_emotion


def templates_for(split: str, conflict: bool) -> tuple[str, ...]:
    """Template ids a clip of `split` may use: held-out ones for val/test, the others for train."""
    pool = CONFLICT_TEMPLATES if conflict else AGREE_TEMPLATES
    held_out = split in HELD_OUT_SPLITS
    return tuple(t for t in pool if (t in HELD_OUT_TEMPLATES) == held_out)


def _join(items: Sequence[str], last: str = " and ") -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + last + items[-1]


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _cue(au: int, side: str) -> str:
    """The cue phrase of an AU; a one-sided expression names its lip corner ("left lip corner pulled up")."""
    cue = au_cue(au)
    return cue.replace("lip corners", f"{side} lip corner") if side != "both" else cue


def _face_slots(facts: RationaleFacts) -> dict[str, str]:
    """The ways templates describe the face: cue (AU) lists, AU (cue) lists, codes, codes with letters."""
    aus = sorted(facts.aus)
    if not aus:
        return {"face": NEUTRAL_FACE["face"], "face_lead": NEUTRAL_FACE["face"], "face_lines": NEUTRAL_FACE["face"],
                "face_words": NEUTRAL_FACE["face"], "face_codes": NEUTRAL_FACE["face_codes"],
                "face_coded": NEUTRAL_FACE["face_codes"]}
    cues = {au: _cue(au, facts.side) for au in aus}
    return {
        "face": _join([f"{cues[au]} (AU{au})" for au in aus]),
        "face_lead": _join([f"AU{au} ({cues[au]})" for au in aus]),
        "face_lines": "; ".join(f"AU{au}: {cues[au]}" for au in aus),
        "face_words": _join([cues[au] for au in aus]),
        "face_codes": _join([f"AU{au}" for au in aus]),
        "face_coded": ", ".join(f"AU{au}{intensity_letter(facts.aus[au])}" for au in aus),
    }


def voice_cues(emotion: str, rng: np.random.Generator) -> list[tuple[str, str]]:
    """2-4 cues of the category's voice profile, in profile order; marked cues (unlike neutral) first choice."""
    cues = voice_profile(emotion).cues()
    neutral = voice_profile("neutral").cues()
    marked = [(a, v) for a, v in cues.items() if emotion == "neutral" or v != neutral[a]]
    count = min(len(marked), int(rng.integers(VOICE_CUES_SHOWN[0], VOICE_CUES_SHOWN[1] + 1)))
    chosen = sorted(rng.choice(len(marked), size=count, replace=False))
    return [marked[int(i)] for i in chosen]


def _voice_slots(emotion: str, rng: np.random.Generator) -> dict[str, str]:
    phrases = [VOICE_PHRASES[cue][int(rng.integers(len(VOICE_PHRASES[cue])))] for cue in voice_cues(emotion, rng)]
    bare = [re.sub(r"^an? ", "", phrase) for phrase in phrases]
    return {"voice": _join(phrases), "voice_list": ", ".join(bare)}


def _capitalise(text: str) -> str:
    """Upper-case the first letter of the text and of every sentence."""
    return re.sub(r"(^|[.?!] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def write_rationale(facts: RationaleFacts, split: str, rng: np.random.Generator) -> tuple[str, str]:
    """Write a reference rationale for a clip of `split`.

    Args:
        facts: the clip's ground truth.
        split: "train", "val" or "test" (decides the template pool, see HELD_OUT_TEMPLATES).
        rng: draws the template, the wording and the voice cues named.

    Returns:
        (rationale text, template id).
    """
    pool = templates_for(split, facts.conflict)
    template_id = pool[int(rng.integers(len(pool)))]
    why = WHY[facts.face_emotion]
    slots = {
        **_face_slots(facts), **_voice_slots(facts.voice_emotion, rng),
        "why": why[int(rng.integers(len(why)))], "emotion": facts.emotion, "noun": NOUNS[facts.emotion],
        "fine": facts.fine_word, "a_fine": _article(facts.fine_word),
        "face_emotion": facts.face_emotion, "voice_emotion": facts.voice_emotion,
        "a_face_emotion": _article(facts.face_emotion), "a_voice_emotion": _article(facts.voice_emotion),
        "face_noun": NOUNS[facts.face_emotion], "voice_noun": NOUNS[facts.voice_emotion],
    }
    return _capitalise(TEMPLATES[template_id].format(**slots)), template_id


def sample_subtitle(rng: np.random.Generator) -> str:
    """A short line of speech that names no emotion."""
    return SUBTITLES[int(rng.integers(len(SUBTITLES)))]
