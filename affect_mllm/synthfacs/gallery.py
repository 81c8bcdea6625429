"""A picture of SynthFACS: one apex frame per basic emotion, optionally one row per difficulty level.

`affect-mllm data synthfacs-gallery docs/synthfacs_gallery.png --all-levels` makes the README's picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from affect_mllm.knowledge import CATEGORIES
from affect_mllm.synthfacs.generate import DEFAULT_DIFFICULTY, GeneratorSettings, plan_clip, render_frames

TILE_SCALE = 1.5  # 112-px frames shown at 168 px: AU details stay readable, the PNG stays small
CANDIDATES = 6  # clips drawn per tile; the strongest expression is shown
HEADER_PX = 22
LABEL_PX = 64
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)


def apex_frame(settings: GeneratorSettings, emotion: str) -> np.ndarray:
    """The first apex frame of the most intense of CANDIDATES clips of `emotion` (clip indices 0..5)."""
    plans = [plan_clip(settings, index, emotion=emotion) for index in range(CANDIDATES)]
    plan = max(plans, key=lambda p: p.intensity)
    return render_frames(plan)[plan.apex_frames[0]]


def render_gallery(path: str | Path, difficulties: Sequence[int] = (DEFAULT_DIFFICULTY,), seed: int = 0) -> Path:
    """Write a PNG grid, a column per category and a row per difficulty level; return its path."""
    # One person per row (seed + row), so a row compares the eight expressions on one face.
    settings = [GeneratorSettings(seed=seed + row, difficulty=level, conflict_share=0.0)
                for row, level in enumerate(difficulties)]
    tile = round(settings[0].size * TILE_SCALE)
    width, height = LABEL_PX + tile * len(CATEGORIES), HEADER_PX + tile * len(settings)
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for column, emotion in enumerate(CATEGORIES):
        draw.text((LABEL_PX + column * tile + 6, 5), emotion, fill=_TEXT, font=font)
    for row, level_settings in enumerate(settings):
        top = HEADER_PX + row * tile
        draw.text((6, top + tile // 2 - 6), f"level {level_settings.difficulty}", fill=_TEXT, font=font)
        for column, emotion in enumerate(CATEGORIES):
            frame = Image.fromarray(apex_frame(level_settings, emotion)).resize((tile, tile), Image.LANCZOS)
            canvas.paste(frame, (LABEL_PX + column * tile, top))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours: a quarter of the bytes of full RGB (pixel noise does not compress), fine for a README picture
    canvas.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path
