"""Are SynthFACS labels in the pixels and the sound? Linear probes per difficulty level, against shuffled labels.

Run: .venv/bin/python benchmarks/learnability.py [--train 1200 --test 400 --workers 2]   (about 31 min on 2 cores)

For each difficulty level 0-4 a train and a test split are generated (disjoint identities; conflict share 0, so
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
voice only, each AU (present = intensity >= 1) from the face, and the same with the train labels shuffled.
A tiny CNN (three conv blocks, global pooling; one head for the emotion, one per AU) is trained on the face images
with and without shuffled labels: the AUs that change few pixels of a face that moves, scales and rolls (AU14's
dimple, AU26's jaw drop next to AU25's parted lips) are out of reach of a linear map of pixels, which is at chance
on them at levels 3-4, while convolutions find them wherever the face is. The AU figures in the JSON are the CNN's.
Chance is 1/8 for emotion (classes are balanced); for an AU, guessing at its base rate scores F1 = base rate.
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
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from affect_mllm.knowledge import CATEGORIES
from affect_mllm.media import MediaSettings, load_audio, load_video
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


def _au_f1(x_train: np.ndarray, aus_train: np.ndarray, x_test: np.ndarray, aus_test: np.ndarray) -> np.ndarray:
    """F1 on test per probed AU of one logistic regression per AU (an AU constant in train is predicted so)."""
    scores = []
    for column in range(aus_train.shape[1]):
        target = aus_train[:, column]
        if target.min() == target.max():
            predicted = np.full(len(x_test), target[0])
        else:
            predicted = _logistic().fit(x_train, target).predict(x_test)
        scores.append(f1_score(aus_test[:, column], predicted, zero_division=0.0))
    return np.array(scores)


def _conv_block(channels_in: int, channels_out: int) -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out), nn.ReLU(),
                         nn.Conv2d(channels_out, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out), nn.ReLU(),
                         nn.MaxPool2d(2))


def cnn_probe(train: dict, test: dict, order: np.ndarray | slice, seed: int) -> tuple[float, np.ndarray]:
    """A tiny CNN on the face images (emotion and AU heads), trained on train[order] labels: (accuracy, AU F1s).

    Augmentation keeps labels true: a mirror (one-sided AUs are labelled without a side) and a shift of a few
    pixels. AU losses are weighted by sqrt(negatives / positives): rare AUs are otherwise never predicted.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    nn = torch.nn
    x_train = torch.tensor(train["images"], dtype=torch.float32)
    mean, std = x_train.mean((0, 2, 3), keepdim=True), x_train.std((0, 2, 3), keepdim=True) + 1e-6
    x_train, x_test = (x_train - mean) / std, (torch.tensor(test["images"], dtype=torch.float32) - mean) / std
    emotions = torch.tensor(train["emotion"][order])
    aus = torch.tensor(train["aus"][order], dtype=torch.float32)
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
    accuracy = float((out[:, :classes].argmax(1).numpy() == test["emotion"]).mean())
    predicted = (out[:, classes:] > 0).int().numpy()
    f1 = [f1_score(test["aus"][:, j], predicted[:, j], zero_division=0.0) for j in range(predicted.shape[1])]
    return accuracy, np.array(f1)


def probe_level(train: dict, test: dict, seed: int) -> dict:
    """Every probe of one difficulty level, with labels as given and with train labels shuffled."""
    inputs = _inputs(train, test)
    shuffled = np.random.default_rng(seed).permutation(len(train["emotion"]))

    def accuracy(modality: str, order: np.ndarray | slice = slice(None)) -> tuple[float, np.ndarray]:
        x_train, x_test = inputs[modality]
        predicted = _logistic().fit(x_train, train["emotion"][order]).predict(x_test)
        return float(np.mean(predicted == test["emotion"])), predicted

    emotion_acc, predicted = accuracy("both")
    face_train, face_test = inputs["face"]
    cnn_acc, cnn_au_f1 = cnn_probe(train, test, slice(None), seed)
    cnn_shuffled_acc, cnn_shuffled_au_f1 = cnn_probe(train, test, shuffled, seed)
    return {
        "emotion_acc": emotion_acc, "emotion_acc_face_only": accuracy("face")[0],
        "emotion_acc_voice_only": accuracy("voice")[0], "emotion_acc_shuffled": accuracy("both", shuffled)[0],
        "emotion_acc_face_cnn": cnn_acc, "emotion_acc_face_cnn_shuffled": cnn_shuffled_acc,
        "au_f1_per_au": cnn_au_f1, "au_f1_shuffled_per_au": cnn_shuffled_au_f1,
        "au_f1_linear_per_au": _au_f1(face_train, train["aus"], face_test, test["aus"]),
        "au_f1_linear_shuffled_per_au": _au_f1(face_train, train["aus"][shuffled], face_test, test["aus"]),
        "au_base_rate": test["aus"].mean(axis=0), "predicted": predicted, "truth": test["emotion"],
    }


def print_level_table(results: dict[int, dict]) -> None:
    print(f"\n{'level':<6}{'emotion':>9}{'face':>7}{'voice':>7}{'shuffled':>10}{'face CNN':>10}{'CNN shuf':>10}"
          f"{'AU F1':>8}{'AU shuf':>9}{'AU lin':>8}{'AU chance':>11}  weakest AU (F1 - chance)")
    for level, r in results.items():
        margin = r["au_f1_per_au"] - r["au_base_rate"]
        weakest = int(np.argmin(margin))
        print(f"{level:<6}{r['emotion_acc']:>9.3f}{r['emotion_acc_face_only']:>7.3f}{r['emotion_acc_voice_only']:>7.3f}"
              f"{r['emotion_acc_shuffled']:>10.3f}{r['emotion_acc_face_cnn']:>10.3f}"
              f"{r['emotion_acc_face_cnn_shuffled']:>10.3f}{r['au_f1_per_au'].mean():>8.3f}"
              f"{r['au_f1_shuffled_per_au'].mean():>9.3f}{r['au_f1_linear_per_au'].mean():>8.3f}"
              f"{r['au_base_rate'].mean():>11.3f}  AU{PROBED_AUS[weakest]} {margin[weakest]:+.2f}")


def print_details(level: int, result: dict, results: dict[int, dict]) -> None:
    """Per-AU F1 at every level (CNN / linear / base rate) and the confusion matrix (face + voice) at one level."""
    print("\nper AU, CNN F1 / linear F1 / base rate, by level:")
    print(f"{'':6}" + "".join(f"{f'level {k}':>17}" for k in results))
    for j, au in enumerate(PROBED_AUS):
        cells = [f"{r['au_f1_per_au'][j]:.2f}/{r['au_f1_linear_per_au'][j]:.2f}/{r['au_base_rate'][j]:.2f}"
                 for r in results.values()]
        print(f"{f'AU{au}':6}" + "".join(f"{c:>17}" for c in cells))
    print(f"\nconfusion at level {level} (rows: truth, columns: predicted, face + voice):")
    print(" " * 14 + "".join(f"{c[:5]:>6}" for c in CATEGORIES))
    for row, name in enumerate(CATEGORIES):
        counts = [int(np.sum((result["truth"] == row) & (result["predicted"] == col))) for col in range(8)]
        print(f"{name:<14}" + "".join(f"{c:>6}" for c in counts))


def run(n_train: int, n_test: int, workers: int, seed: int, out: Path) -> dict[int, dict]:
    """Generate, decode, featurise and probe every difficulty level; print progress and the level table."""
    results = {}
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for level in range(len(DIFFICULTIES)):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1200, help="train clips per level")
    parser.add_argument("--test", type=int, default=400, help="test clips per level")
    parser.add_argument("--workers", type=int, default=2, help="processes for generation and decoding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated clips in this folder")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        results = run(args.train, args.test, args.workers, args.seed, args.keep or Path(tmp))
    print_level_table(results)
    headline = results[DEFAULT_DIFFICULTY]
    print_details(DEFAULT_DIFFICULTY, headline, results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; headline = level {DEFAULT_DIFFICULTY} (the default)")
    print(json.dumps({
        "emotion_acc": round(headline["emotion_acc"], 4),
        "emotion_acc_face_only": round(headline["emotion_acc_face_only"], 4),
        "emotion_acc_voice_only": round(headline["emotion_acc_voice_only"], 4),
        "emotion_acc_shuffled": round(headline["emotion_acc_shuffled"], 4),
        "au_f1": round(float(headline["au_f1_per_au"].mean()), 4),
        "au_f1_shuffled": round(float(headline["au_f1_shuffled_per_au"].mean()), 4),
        "chance": round(1 / len(CATEGORIES), 4),
        "au_f1_linear": round(float(headline["au_f1_linear_per_au"].mean()), 4),
        "emotion_acc_face_cnn": round(headline["emotion_acc_face_cnn"], 4),
        "weakest_au_margin_any_level": round(float(min((r["au_f1_per_au"] - r["au_base_rate"]).min()
                                                       for r in results.values())), 4),
    }))


if __name__ == "__main__":
    main()
