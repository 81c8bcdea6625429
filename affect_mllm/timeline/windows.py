"""Sliding windows over a clip, on the model's frame grid.

A window of `window_s` seconds starts every `stride_s` seconds. Both are snapped to the frames the model samples
(`MediaSettings.fps`, 2 by default): the window to a whole number of temporal patches (2 frames, so 1 s at 2 fps)
and the stride to a whole number of frames, so every window gives the processor the same frame count and no
frame time falls between two grids. When the regular grid would leave the tail unseen, one more window starts at
the last grid time a whole window before the clip's end and runs to the end (so it may be up to one frame period
longer than the others); a clip shorter than one window is one window over the whole clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_EPSILON_S = 1e-6


@dataclass(frozen=True)
class Window:
    """One stretch of the clip: [start_s, end_s), numbered in time order."""

    index: int
    start_s: float
    end_s: float

    @property
    def centre_s(self) -> float:
        return (self.start_s + self.end_s) / 2


@dataclass(frozen=True)
class WindowGrid:
    """Window and stride snapped to the frame grid (seconds), and the grid's frame period."""

    window_s: float
    stride_s: float
    frame_s: float


def snap_grid(window_s: float, stride_s: float, fps: float, temporal_patch: int = 2) -> WindowGrid:
    """Snap a window and stride to the model's frames (see the module docstring).

    Example:
        >>> snap_grid(4.3, 1.9, fps=2.0)
        WindowGrid(window_s=4.0, stride_s=2.0, frame_s=0.5)
    """
    if window_s <= 0 or stride_s <= 0 or fps <= 0:
        raise ValueError(f"window, stride and fps must be > 0, got {window_s}, {stride_s}, {fps}")
    patches = max(1, round(window_s * fps / temporal_patch))
    frames = max(1, round(stride_s * fps))
    return WindowGrid(window_s=patches * temporal_patch / fps, stride_s=frames / fps, frame_s=1 / fps)


def plan_windows(duration_s: float, grid: WindowGrid) -> list[Window]:
    """The windows covering a clip of `duration_s` seconds.

    Example:
        >>> [(w.start_s, w.end_s) for w in plan_windows(9.0, snap_grid(4, 2, fps=2.0))]
        [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (5.0, 9.0)]
    """
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"clip duration must be a positive number of seconds, got {duration_s}")
    if duration_s <= grid.window_s + _EPSILON_S:
        return [Window(0, 0.0, round(duration_s, 6))]
    starts = []
    start = 0.0
    while start + grid.window_s <= duration_s + _EPSILON_S:
        starts.append(start)
        start = round(start + grid.stride_s, 6)
    ends = [round(s + grid.window_s, 6) for s in starts]
    if duration_s - ends[-1] > _EPSILON_S:  # the tail: a window from a whole window before the end, on the grid
        tail = round(math.floor((duration_s - grid.window_s) / grid.frame_s + _EPSILON_S) * grid.frame_s, 6)
        if tail > starts[-1] + _EPSILON_S:
            starts.append(tail)
            ends.append(round(duration_s, 6))
        else:  # less than a frame period after the last start: stretch the last window instead
            ends[-1] = round(duration_s, 6)
    return [Window(i, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


def owned_spans(windows: list[Window], duration_s: float) -> list[tuple[float, float]]:
    """The stretch each window speaks for: from the midpoint between its centre and the previous window's
    centre to the midpoint with the next; the first starts at 0 and the last ends at the clip's end.

    Overlapping windows thus split the clip without overlap, and a label change between two windows is placed
    halfway between their centres.

    Example:
        >>> owned_spans(plan_windows(8.0, snap_grid(4, 2, fps=2.0)), 8.0)
        [(0.0, 3.0), (3.0, 5.0), (5.0, 8.0)]
    """
    centres = [w.centre_s for w in windows]
    cuts = [0.0, *((a + b) / 2 for a, b in zip(centres, centres[1:], strict=False)), duration_s]
    return [(round(cuts[i], 6), round(cuts[i + 1], 6)) for i in range(len(windows))]
