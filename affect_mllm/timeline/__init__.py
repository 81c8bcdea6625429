"""Emotion over time: the library side of `affect-mllm timeline` (no model, no engine).

- `windows`: sliding windows on the model's frame grid.
- `subtitles`: SRT cues and the words spoken in a window.
- `records`: one timeline.jsonl record per window, built from the parsed answers; timeline.csv.
- `segments`: the documented smoothing that turns window records into a segment list.
- `plot`: timeline.png (emotion band, valence/arousal curves, AU presence strip).
- `page`: the self-contained timeline.html that plays the video beside the current segment's answer.

The runner that decodes windows and asks a model lives in `inference/timeline.py` (arrows point one way).
"""
