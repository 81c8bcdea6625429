"""Are SynthFACS labels in the pixels and the sound? Probes per difficulty level, beside the chance lines.

Run: .venv/bin/python benchmarks/learnability.py [--train 1200 --test 400 --levels 0 1 2 3 4 --workers 2]
     (about 25 min on 2 cores at that size; a smaller run widens the printed intervals)

For each difficulty level a train and a test split are generated (disjoint identities; conflict share 0, so
that the voice-only row measures what the voice carries, not the conflict rule), decoded through the media
pipeline (`media.load_video`, `media.load_audio`: the probes see H.264 frames and AAC audio, as a model would), and
turned into features:
- face: the frame that differs most from the first (always neutral) one, i.e. the apex, and its change from the
  first frame, in grey and in redness (lips), with the left-right asymmetry of each change, at 40 x 40, reduced by
  PCA fitted on train; no face detection, so nuisance (shift, scale, roll, clutter, noise, head motion) stays in
  the way exactly as the difficulty level sets it;
- voice: frame energy statistics, an autocorrelation pitch track (level, spread, slope, wobble), band energies,
  spectral flatness and the syllable-rate modulation spectrum.
- face images for the CNN: the apex and its change from the first frame, grey and redness, at 64 x 64.
Scikit-learn logistic regression is trained on train and scored on test: emotion from face + voice, face only and
voice only (and face + voice on shuffled train labels: the emotion chance line, 1/8 for balanced classes), and
each AU (present = intensity >= 1) from the face. A tiny CNN (three conv blocks, global pooling; one head for the
emotion, one per AU) is trained on the face images: the AUs that change few pixels of a face that moves, scales
and rolls (AU14's dimple, AU26's jaw drop next to AU25's parted lips) are out of reach of a linear map of pixels,
while convolutions find them wherever the face is. The AU figures in the JSON are the CNN's.

AU chance lines, per AU on the test clips (p = its base rate): base-rate F1 = p (guessing "present" at random with
probability p) and always-present F1 = 2p / (1 + p), the best any constant guess scores. (A CNN trained on
shuffled labels is no chance line for F1: with nothing to learn its weighted loss drives every AU to "absent",
F1 near 0; it was dropped.) Most SynthFACS AUs follow from the class, so AU F1 largely restates emotion
recognition; the within-class F1 of the AUs a class shows only sometimes (AU25 in happy, AU17 in sad, AU26 vs
AU27 in surprised, AU23 vs AU24 in angry, AU15 and AU17 in disgusted; heldout.optional_aus) measures AU
perception itself, beside the always-present F1 within that class. Intervals: 95 % bootstrap over test clips.
The last line is JSON with the figures at the default difficulty (generate.DEFAULT_DIFFICULTY).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from heldout import always_present_f1, optional_aus
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from affect_mllm.knowledge import CATEGORIES
from affect_mllm.media import MediaSettings, load_audio, load_video
from affect_mllm.metrics.au import per_au_f1_from_matrices
from affect_mllm.metrics.bootstrap import bootstrap_ci
from affect_mllm.schema import read_manifest
from affect_mllm.synthfacs.generate import DEFAULT_DIFFICULTY, generate_synthfacs
from affect_mllm.synthfacs.nuisance import DIFFICULTIES
from affect_mllm.synthfacs.profiles import FACE_PROFILES

PROBE_SIDE = 40  # frames shrink to 40 x 40: mouth and brow shapes survive, 6 x 1600 features stay cheap
FACE_COMPONENTS = 256  # PCA components of the face features: enough for the AU shapes, fast to fit
CNN_SIDE = 64  # the CNN's face images: AU14's dimple and AU26's chin are a pixel or two at 40 px
CNN_EPOCHS = 30
PROBE_C = 0.05  # inverse L2 strength of the logistic regressions: strong, as features outnumber what 1600 clips pin
AUDIO_FRAME, AUDIO_HOP = 512, 256  # 32 ms frames, 16 ms hop at 16 kHz
PITCH_HZ = (70.0, 450.0)  # covers every SynthFACS speaker times every pitch factor
BANDS_HZ = np.geomspace(100.0, 7000.0, 13)  # 12 log-spaced bands
MODULATION_HZ = np.arange(1.0, 10.5, 1.0)  # syllable rates live between 2.5 and 7.5 Hz
PROBED_AUS = tuple(sorted(set().union(*(profile.aus for profile in FACE_PROFILES.values()))))
SETTINGS = MediaSettings()


def _grey(frame: np.ndarray, side: int) -> np.ndarray:
    small = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (side, side), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def _redness(frame: np.ndarray, side: int) -> np.ndarray:
    """Red minus green, where lips, mouth and blush stand out from skin of any tone."""
    red = np.clip(frame[..., 0].astype(np.float32) - frame[..., 1], 0.0, 255.0)
    return cv2.resize(red, (side, side), interpolation=cv2.INTER_AREA) / 255.0


def apex_channels(frames: np.ndarray, side: int) -> tuple[np.ndarray, ...]:
    """Apex (the frame most unlike the neutral first one) at `side` px: grey, its change, redness, its change."""
    grey = np.stack([_grey(frame, side) for frame in frames])
    apex = int(np.argmax(np.abs(grey - grey[0]).mean(axis=(1, 2))))
    red_apex = _redness(frames[apex], side)
    return grey[apex], grey[apex] - grey[0], red_apex, red_apex - _redness(frames[0], side)


def face_features(frames: np.ndarray) -> np.ndarray:
    """The linear probes' face input: the apex channels at 40 px and the left-right asymmetry of each change.

    The asymmetry, |d - mirror(d)|, lets a linear probe see a one-sided expression (contempt's AU12 + AU14)
    whichever side it is on.
    """
    grey_apex, grey_change, red_apex, red_change = apex_channels(frames, PROBE_SIDE)
    blocks = (grey_apex, grey_change, red_apex, red_change, np.abs(grey_change - grey_change[:, ::-1]),
              np.abs(red_change - red_change[:, ::-1]))
    return np.concatenate([block.ravel() for block in blocks])


def face_images(frames: np.ndarray) -> np.ndarray:
    """The CNN's input: the apex channels at 64 px (4 x 64 x 64)."""
    return np.stack(apex_channels(frames, CNN_SIDE)).astype(np.float16)


def _pitch_track(frames: np.ndarray, voiced: np.ndarray, sample_rate: int) -> np.ndarray:
    """f0 in semitones re 100 Hz per voiced frame, from the autocorrelation peak (FFT-based)."""
    spectrum = np.fft.rfft(frames[voiced] * np.hanning(AUDIO_FRAME), n=2 * AUDIO_FRAME)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2)[:, :AUDIO_FRAME]
    low, high = int(sample_rate / PITCH_HZ[1]), int(sample_rate / PITCH_HZ[0])
    lag = low + np.argmax(autocorrelation[:, low:high], axis=1)
    return 12 * np.log2(sample_rate / lag / 100.0)


def _modulation(energy: np.ndarray, frame_rate: float) -> np.ndarray:
    """Share of the energy envelope's modulation power near each MODULATION_HZ (the syllable rate)."""
    envelope = energy - energy.mean()
    power = np.abs(np.fft.rfft(envelope, n=4 * len(envelope))) ** 2
    frequencies = np.fft.rfftfreq(4 * len(envelope), 1 / frame_rate)
    bins = [power[np.abs(frequencies - f) < 0.5].sum() for f in MODULATION_HZ]
    return np.array(bins) / (sum(bins) + 1e-9)


def voice_features(audio: np.ndarray, sample_rate: int = SETTINGS.sample_rate) -> np.ndarray:
    """Energy, pitch, spectral and rate statistics of a voice track (a fixed-length vector)."""
    count = 1 + (len(audio) - AUDIO_FRAME) // AUDIO_HOP
    frames = np.lib.stride_tricks.sliding_window_view(audio, AUDIO_FRAME)[::AUDIO_HOP][:count]
    energy = np.sqrt(np.mean(frames**2, axis=1) + 1e-10)
    log_energy = 20 * np.log10(energy)
    voiced = log_energy > log_energy.max() - 25  # within 25 dB of the loudest frame
    pitch = _pitch_track(frames, voiced, sample_rate)
    times = np.nonzero(voiced)[0] * AUDIO_HOP / sample_rate
    slope = np.polyfit(times, pitch, 1)[0] if voiced.sum() > 2 else 0.0
    wobble = np.abs(np.diff(pitch)).mean() if voiced.sum() > 2 else 0.0
    spectrum = np.abs(np.fft.rfft(frames[voiced] * np.hanning(AUDIO_FRAME))) ** 2 + 1e-12
    frequencies = np.fft.rfftfreq(AUDIO_FRAME, 1 / sample_rate)
    bands = np.array([spectrum[:, (frequencies >= lo) & (frequencies < hi)].sum(axis=1).mean()
                      for lo, hi in zip(BANDS_HZ[:-1], BANDS_HZ[1:], strict=True)])
    flatness = np.exp(np.log(spectrum).mean(axis=1)) / spectrum.mean(axis=1)
    stats = [log_energy[voiced].mean(), log_energy[voiced].std(), np.percentile(log_energy, 90), voiced.mean(),
             np.median(pitch), np.percentile(pitch, 90) - np.percentile(pitch, 10), pitch.std(), slope, wobble,
             flatness.mean(), (spectrum[:, frequencies > 3000].sum(1) / spectrum.sum(1)).mean()]
    return np.concatenate([stats, np.log(bands / bands.sum()), _modulation(energy, sample_rate / AUDIO_HOP)])


def clip_features(video: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one clip through the media pipeline and return (face features, voice features, face images)."""
    frames = load_video(video, SETTINGS).frames
    audio = load_audio(video, SETTINGS)
    return face_features(frames), voice_features(audio), face_images(frames)


def load_split(manifest_path: Path, pool) -> dict[str, np.ndarray]:
    """Features and labels of a generated split."""
    manifest = read_manifest(manifest_path)
    jobs = [str(manifest.media_path(sample, "video")) for sample in manifest]
    features = pool.map(clip_features, jobs, chunksize=16)
    return {
        "face": np.stack([f for f, _, _ in features]), "voice": np.stack([v for _, v, _ in features]),
        "images": np.stack([i for _, _, i in features]),
        "emotion": np.array([CATEGORIES.index(sample.emotion) for sample in manifest]),
        "aus": np.array([[au in sample.au_set() for au in PROBED_AUS] for sample in manifest], dtype=int),
    }


def _logistic() -> LogisticRegression:
    return LogisticRegression(C=PROBE_C, max_iter=3000)


def _inputs(train: dict, test: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Probe inputs per modality: face (scaled, PCA fitted on train), voice (scaled) and both."""
    components = min(FACE_COMPONENTS, len(train["face"]) // 2)  # small runs have fewer clips than components
    face = make_pipeline(StandardScaler(), PCA(components, random_state=0)).fit(train["face"])
    voice = StandardScaler().fit(train["voice"])
    face_pair = (face.transform(train["face"]), face.transform(test["face"]))
    voice_pair = (voice.transform(train["voice"]), voice.transform(test["voice"]))
    both = tuple(np.hstack([f, v]) for f, v in zip(face_pair, voice_pair, strict=True))
    return {"face": face_pair, "voice": voice_pair, "both": both}


def _au_predictions(x_train: np.ndarray, aus_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Test predictions (clips x probed AUs) of one logistic regression per AU (a constant AU is predicted so)."""
    columns = []
    for column in range(aus_train.shape[1]):
        target = aus_train[:, column]
        if target.min() == target.max():
            columns.append(np.full(len(x_test), target[0]))
        else:
            columns.append(_logistic().fit(x_train, target).predict(x_test))
    return np.stack(columns, axis=1).astype(int)


def _conv_block(channels_in: int, channels_out: int) -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out), nn.ReLU(),
                         nn.Conv2d(channels_out, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out), nn.ReLU(),
                         nn.MaxPool2d(2))


def cnn_probe(train: dict, test: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A tiny CNN on the face images (emotion and AU heads): (predicted emotions, predicted AUs) of the test clips.

    Augmentation keeps labels true: a mirror (one-sided AUs are labelled without a side) and a shift of a few
    pixels. AU losses are weighted by sqrt(negatives / positives): rare AUs are otherwise never predicted.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    nn = torch.nn
    x_train = torch.tensor(train["images"], dtype=torch.float32)
    mean, std = x_train.mean((0, 2, 3), keepdim=True), x_train.std((0, 2, 3), keepdim=True) + 1e-6
    x_train, x_test = (x_train - mean) / std, (torch.tensor(test["images"], dtype=torch.float32) - mean) / std
    emotions = torch.tensor(train["emotion"])
    aus = torch.tensor(train["aus"], dtype=torch.float32)
    rate = aus.mean(0).clamp(0.02, 0.98)
    au_weight = ((1 - rate) / rate).sqrt()
    classes = len(CATEGORIES)
    net = nn.Sequential(_conv_block(x_train.shape[1], 16), _conv_block(16, 32), _conv_block(32, 64),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, classes + aus.shape[1]))
    batch = 64
    optimizer = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=CNN_EPOCHS * -(-len(x_train) // batch))
    net.train()
    for _ in range(CNN_EPOCHS):
        for rows in torch.randperm(len(x_train)).split(batch):
            x = x_train[rows]
            mirrored = torch.rand(len(x)) < 0.5
            x[mirrored] = x[mirrored].flip(-1)
            x = torch.roll(x, tuple(int(v) for v in rng.integers(-4, 5, 2)), (2, 3))
            out = net(x)
            loss = (nn.functional.cross_entropy(out[:, :classes], emotions[rows])
                    + nn.functional.binary_cross_entropy_with_logits(out[:, classes:], aus[rows],
                                                                     pos_weight=au_weight))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()
    with torch.no_grad():
        out = net(x_test)
    return out[:, :classes].argmax(1).numpy(), (out[:, classes:] > 0).int().numpy()


def au_f1s(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """F1 per column (AU) of two presence matrices, the evaluation's formula (metrics.au)."""
    return per_au_f1_from_matrices(truth.astype(bool), predicted.astype(bool))


def _accuracy_ci(truth: np.ndarray, predicted: np.ndarray, seed: int) -> list[float] | None:
    hits = (truth == predicted).astype(float)
    return bootstrap_ci(lambda idx: float(hits[idx].mean()), len(hits), seed=seed)


def _mean_f1_ci(truth: np.ndarray, predicted: np.ndarray, seed: int) -> list[float] | None:
    return bootstrap_ci(lambda idx: float(au_f1s(truth[idx], predicted[idx]).mean()), len(truth),
                        seed=seed)


def within_class(truth: dict, predicted: np.ndarray, seed: int) -> dict[str, dict]:
    """F1 of each optional AU on the test clips of its class, with the class's always-present F1 and an interval."""
    out = {}
    for emotion, au in optional_aus():
        rows = truth["emotion"] == CATEGORIES.index(emotion)
        column = PROBED_AUS.index(au)
        gold, guess = truth["aus"][rows][:, [column]], predicted[rows][:, [column]]
        if not len(gold) or not gold.any():
            continue
        out[f"AU{au} in {emotion}"] = {
            "f1": float(au_f1s(gold, guess)[0]),
            "ci95": bootstrap_ci(lambda idx, g=gold, p=guess: float(au_f1s(g[idx], p[idx])[0]),
                                 len(gold), seed=seed),
            "always_present": always_present_f1(float(gold.mean())), "n": int(len(gold)),
        }
    return out


def probe_level(train: dict, test: dict, seed: int) -> dict:
    """Every probe of one difficulty level; emotion also with shuffled train labels; AU chance lines from test."""
    inputs = _inputs(train, test)
    shuffled = np.random.default_rng(seed).permutation(len(train["emotion"]))

    def predict_emotion(modality: str, order: np.ndarray | slice = slice(None)) -> np.ndarray:
        x_train, x_test = inputs[modality]
        return _logistic().fit(x_train, train["emotion"][order]).predict(x_test)

    def accuracy(predicted: np.ndarray) -> float:
        return float(np.mean(predicted == test["emotion"]))

    predicted = predict_emotion("both")
    cnn_emotion, cnn_aus = cnn_probe(train, test, seed)
    face_train, face_test = inputs["face"]
    linear_aus = _au_predictions(face_train, train["aus"], face_test)
    base_rate = test["aus"].mean(axis=0)
    return {
        "emotion_acc": accuracy(predicted), "emotion_acc_face_only": accuracy(predict_emotion("face")),
        "emotion_acc_voice_only": accuracy(predict_emotion("voice")),
        "emotion_acc_shuffled": accuracy(predict_emotion("both", shuffled)),
        "emotion_acc_face_cnn": accuracy(cnn_emotion),
        "au_f1_per_au": au_f1s(test["aus"], cnn_aus),
        "au_f1_linear_per_au": au_f1s(test["aus"], linear_aus),
        "au_base_rate": base_rate, "au_always_present": np.array([always_present_f1(p) for p in base_rate]),
        "ci95": {"emotion_acc": _accuracy_ci(test["emotion"], predicted, seed),
                 "emotion_acc_face_cnn": _accuracy_ci(test["emotion"], cnn_emotion, seed),
                 "au_f1": _mean_f1_ci(test["aus"], cnn_aus, seed)},
        "within_class": within_class(test, cnn_aus, seed),
        "within_class_linear": within_class(test, linear_aus, seed),
        "predicted": predicted, "truth": test["emotion"],
    }


def print_level_table(results: dict[int, dict]) -> None:
    print(f"\n{'level':<6}{'emotion':>9}{'face':>7}{'voice':>7}{'shuffled':>10}{'face CNN':>10}"
          f"{'AU F1 CNN [95% CI]':>21}{'AU lin':>8}{'base-rate':>11}{'always':>8}"
          f"{'optional AUs in class':>23}  weakest AU (F1 - always)")
    for level, r in results.items():
        margin = r["au_f1_per_au"] - r["au_always_present"]
        weakest = int(np.argmin(margin))
        low, high = r["ci95"]["au_f1"]
        optional = r["within_class"].values()
        mean_f1 = np.mean([v["f1"] for v in optional])
        mean_always = np.mean([v["always_present"] for v in optional])
        print(f"{level:<6}{r['emotion_acc']:>9.3f}{r['emotion_acc_face_only']:>7.3f}{r['emotion_acc_voice_only']:>7.3f}"
              f"{r['emotion_acc_shuffled']:>10.3f}{r['emotion_acc_face_cnn']:>10.3f}"
              f"{r['au_f1_per_au'].mean():>8.3f} [{low:.3f}, {high:.3f}]{r['au_f1_linear_per_au'].mean():>8.3f}"
              f"{r['au_base_rate'].mean():>11.3f}{r['au_always_present'].mean():>8.3f}"
              f"{f'{mean_f1:.3f} vs {mean_always:.3f}':>23}  AU{PROBED_AUS[weakest]} {margin[weakest]:+.2f}")


def print_details(level: int, result: dict, results: dict[int, dict]) -> None:
    """Per-AU F1 at every level, within-class F1 of the optional AUs, and the confusion matrix at one level."""
    print("\nper AU, CNN F1 / linear F1 / base-rate F1 / always-present F1, by level:")
    print(f"{'':6}" + "".join(f"{f'level {k}':>22}" for k in results))
    for j, au in enumerate(PROBED_AUS):
        cells = [f"{r['au_f1_per_au'][j]:.2f}/{r['au_f1_linear_per_au'][j]:.2f}/{r['au_base_rate'][j]:.2f}/"
                 f"{r['au_always_present'][j]:.2f}" for r in results.values()]
        print(f"{f'AU{au}':6}" + "".join(f"{c:>22}" for c in cells))
    print("\nwithin-class F1 of the optional AUs, CNN [95% CI] / linear / always-present in the class, by level:")
    for name in results[level]["within_class"]:
        cells = []
        for r in results.values():
            cnn, linear = r["within_class"].get(name), r["within_class_linear"].get(name)
            cells.append("-" if cnn is None else f"{cnn['f1']:.2f} [{cnn['ci95'][0]:.2f},{cnn['ci95'][1]:.2f}]/"
                         f"{linear['f1']:.2f}/{cnn['always_present']:.2f}")
        print(f"{name:18}" + "".join(f"{c:>28}" for c in cells))
    print(f"\nconfusion at level {level} (rows: truth, columns: predicted, face + voice):")
    print(" " * 14 + "".join(f"{c[:5]:>6}" for c in CATEGORIES))
    for row, name in enumerate(CATEGORIES):
        counts = [int(np.sum((result["truth"] == row) & (result["predicted"] == col))) for col in range(8)]
        print(f"{name:<14}" + "".join(f"{c:>6}" for c in counts))


def run(n_train: int, n_test: int, levels: list[int], workers: int, seed: int, out: Path) -> dict[int, dict]:
    """Generate, decode, featurise and probe each difficulty level; print progress."""
    results = {}
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for level in levels:
            started = time.perf_counter()
            splits = {}
            for split, n in (("train", n_train), ("test", n_test)):
                manifest = generate_synthfacs(out / f"level{level}", n, seed=seed, split=split, difficulty=level,
                                              conflict_share=0.0, workers=workers)
                splits[split] = load_split(manifest, pool)
            results[level] = probe_level(splits["train"], splits["test"], seed)
            print(f"level {level}: {n_train} + {n_test} clips generated, decoded and probed in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
    return results


def headline_json(headline: dict, results: dict[int, dict]) -> dict:
    """The JSON line: the headline level's figures, its intervals and the weakest AU margins over all levels."""
    def r4(value: float) -> float:
        return round(float(value), 4)

    keys = ("emotion_acc", "emotion_acc_face_only", "emotion_acc_voice_only", "emotion_acc_shuffled",
            "emotion_acc_face_cnn")
    return {
        **{key: r4(headline[key]) for key in keys},
        "chance": r4(1 / len(CATEGORIES)),
        "au_f1": r4(headline["au_f1_per_au"].mean()), "au_f1_linear": r4(headline["au_f1_linear_per_au"].mean()),
        "au_f1_base_rate": r4(headline["au_base_rate"].mean()),
        "au_f1_always_present": r4(headline["au_always_present"].mean()),
        "ci95": {k: [r4(v) for v in ci] for k, ci in headline["ci95"].items()},
        "within_class": {name: {"f1": r4(v["f1"]), "ci95": [r4(x) for x in v["ci95"]],
                                "always_present": r4(v["always_present"]), "n": v["n"]}
                         for name, v in headline["within_class"].items()},
        "weakest_au_margin_over_base_rate_any_level": r4(min((r["au_f1_per_au"] - r["au_base_rate"]).min()
                                                             for r in results.values())),
        "weakest_au_margin_over_always_present_any_level": r4(min((r["au_f1_per_au"] - r["au_always_present"]).min()
                                                                  for r in results.values())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1200, help="train clips per level")
    parser.add_argument("--test", type=int, default=400, help="test clips per level")
    parser.add_argument("--levels", type=int, nargs="+", default=list(range(len(DIFFICULTIES))),
                        help="difficulty levels to probe (the default level is always among them)")
    parser.add_argument("--workers", type=int, default=2, help="processes for generation and decoding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated clips in this folder")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(args.workers)
    levels = sorted({*args.levels, DEFAULT_DIFFICULTY})
    with tempfile.TemporaryDirectory() as tmp:
        results = run(args.train, args.test, levels, args.workers, args.seed, args.keep or Path(tmp))
    print_level_table(results)
    headline = results[DEFAULT_DIFFICULTY]
    print_details(DEFAULT_DIFFICULTY, headline, results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; headline = level {DEFAULT_DIFFICULTY} (the default)")
    print(json.dumps(headline_json(headline, results)))


if __name__ == "__main__":
    main()
