"""Modality check on SynthFACS: does the tuned tiny model's answer rest on the face, the voice, or on neither?

The tiny omni model tuned for `benchmarks/timeline.py` (LoRA SFT of `tiny-omni-base` on ov_emotion and
valence_arousal; the same cached adapter) answers held-out SynthFACS clips (level 2, half of them conflict clips
whose voice shows another emotion than the face) three times, as `affect-mllm predict` does: with every modality,
with the audio muted, and with the frames blanked (`inference.modality.MaskingEngine`; the prompt unchanged). The
three prediction sets go through the evaluation's modality section (`affect_mllm.modality.modality_check`, every
condition scored by `evaluation.evaluate_files`): metrics per condition, how often the answer changes, how many
rationales cite cues of the removed modality (beside the same share with every modality: the control), and which
modality conflict clips follow. Intervals are bootstrap 95 % over clips.

    flock /tmp/affect_heavy.lock .venv/bin/python benchmarks/modality.py    # minutes once the adapter is cached
    .venv/bin/python benchmarks/modality.py --quick                         # a smoke run

Last line: {"conditions": {...}, "answer_changed": {...}, "hallucination": {...}, "conflict": {...}, ...}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cache_key import cached, code_digest, file_digest, stored_key
from heldout import predict
from timeline import BASE, QUICK, Budget, tuned_adapter

CONDITIONS = (None, "audio", "video")  # None: every modality


def test_set(work: Path, n: int, code: dict) -> Path:
    """Held-out clips at level 2, half of them conflict clips; cached by their arguments and the library's code."""
    from affect_mllm.synthfacs.generate import generate_synthfacs

    args = {"n": n, "seed": 11, "split": "test", "difficulty": 2, "conflict_share": 0.5}
    cached(work / "test", {"code": code["affect_mllm"], **args},
           lambda out: generate_synthfacs(out, workers=2, **args))
    return work / "test" / "test.jsonl"


def main() -> None:
    from affect_mllm.modality import modality_check, modality_markdown
    from affect_mllm.report import json_safe
    from inference.engine import load_engine
    from inference.modality import MaskingEngine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget: checks every step runs")
    parser.add_argument("--work", default="runs/timeline", help="the timeline benchmark's folder (shared adapter)")
    parser.add_argument("--clips", type=int, default=160, help="held-out clips")
    args = parser.parse_args()
    budget = QUICK if args.quick else Budget()
    work = Path(args.work) / ("quick" if args.quick else "full")
    clips = 16 if args.quick else args.clips
    started = time.time()
    code = code_digest()
    adapter = tuned_adapter(work, budget, code)
    gold = test_set(work / "modality", clips, code)
    engine = load_engine(BASE, "hf", adapters={"sft": str(adapter)}, max_batch_size=16)
    paths = {}
    for mask in CONDITIONS:
        name = mask or "full"
        key = {"code": code, "adapter": stored_key(adapter)["digest"], "gold": file_digest(gold), "mask": mask,
               "max_new_tokens": budget.max_new_tokens}
        answering = MaskingEngine(engine, mask) if mask else engine
        cached(work / "modality" / name, key, lambda out, e=answering: predict(
            e, gold, out / "pred.jsonl", task="ov_emotion", adapter="sft", max_new_tokens=budget.max_new_tokens))
        paths[name] = work / "modality" / name / "pred.jsonl"
    engine.close()
    section = modality_check(paths["full"], gold, {"audio": paths["audio"], "video": paths["video"]},
                             task="ov_emotion")
    print("\n".join(modality_markdown(section)))
    results = {**json_safe(section), "clips": clips, "adapter": stored_key(adapter)["digest"][:12],
               "minutes": round((time.time() - started) / 60, 1)}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
