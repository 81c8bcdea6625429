"""Face focus: find the person's face in the sampled frames, track it, and crop every frame to it.

The detector is dlib's HOG frontal-face detector, whose weights are compiled into the `dlib` module (the `dlib-bin`
wheel): nothing is downloaded. (OpenCV's Haar cascades left the opencv-python 5 wheels this stack installs.) Its
window is 80 px, so each frame is scaled for detection so that a face of `MIN_FACE_SHARE` of the shorter side
reaches it.

A clip gets one track: the most confident detection anchors it, and each frame takes the detection nearest the
track (within one face width); frames without one take the track interpolated between their neighbours (held at
the ends). Centres are smoothed over neighbouring frames (weights 1/4, 1/2, 1/4); the crop side is the median face
size times (1 + 2 x `face_margin`), the same in every frame, so the face keeps its scale. Each crop is a square
kept inside the frame and resized to the model's pixel budget (the largest multiple of 28 px whose square is within
`max_pixels`), so the processor does not resize it again. No face in any frame: the full frames are kept, and the
prompt says so (`prompts.build_prompt(face=False)`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from affect_mllm.models.registry import ModelSpec

DETECTOR_WINDOW_PX = 80  # dlib's HOG window: the smallest face it finds at the scale it is given
MIN_FACE_SHARE = 0.15  # faces smaller than this share of the frame's shorter side are not looked for
MAX_DETECT_SIDE = 640  # frames are never scaled above this shorter side for detection (cost)
SMOOTHING = (0.25, 0.5, 0.25)
PATCH = 28  # the Qwen processors' resize unit (14 px patches, 2x2 merge)


@dataclass(frozen=True)
class FaceTrack:
    """Per sampled frame: the face box (x0, y0, x1, y1) in frame pixels, and whether a detection backed it."""

    boxes: np.ndarray  # (T, 4) float
    detected: np.ndarray  # (T,) bool

    @property
    def found_share(self) -> float:
        """Share of frames where the detector found the tracked face."""
        return float(self.detected.mean()) if len(self.detected) else 0.0


@functools.lru_cache(maxsize=1)  # an immutable model that takes 1.5 s to build: once per process
def _detector():
    try:
        import dlib
    except ImportError:
        raise ImportError("face crops need dlib (`pip install dlib-bin`, or `dlib` where no wheel exists)") from None
    return dlib.get_frontal_face_detector()


def detect_faces(frame: np.ndarray, detector=None) -> list[tuple[np.ndarray, float]]:
    """Faces in one (H, W, 3) uint8 frame: (box (x0, y0, x1, y1) in frame pixels, detector score)."""
    import cv2

    detector = detector or _detector()
    short = min(frame.shape[:2])
    scale = min(DETECTOR_WINDOW_PX / (MIN_FACE_SHARE * short), MAX_DETECT_SIDE / short)
    work = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale != 1 else frame
    rects, scores, _ = detector.run(np.ascontiguousarray(work), 0, 0.0)
    return [(np.array([r.left(), r.top(), r.right(), r.bottom()], float) / scale, float(s))
            for r, s in zip(rects, scores, strict=True)]


def track_face(frames: np.ndarray, detector=None) -> FaceTrack | None:
    """One face track over the frames, or None when no frame has a face."""
    detector = detector or _detector()
    found = [detect_faces(frame, detector) for frame in frames]
    if not any(found):
        return None
    anchor_t = max(range(len(found)), key=lambda t: max((s for _, s in found[t]), default=-math.inf))
    anchor = max(found[anchor_t], key=lambda d: d[1])[0]
    boxes = np.full((len(frames), 4), np.nan)
    boxes[anchor_t] = anchor
    for order in (range(anchor_t + 1, len(frames)), range(anchor_t - 1, -1, -1)):
        last = anchor
        for t in order:
            near = _nearest(found[t], last)
            if near is not None:
                boxes[t] = last = near
    detected = ~np.isnan(boxes[:, 0])
    return FaceTrack(_smooth(_fill(boxes, detected)), detected)


def _nearest(detections: list[tuple[np.ndarray, float]], last: np.ndarray) -> np.ndarray | None:
    """The detection whose centre is nearest the track's, if within one face width of it."""
    if not detections:
        return None
    centre, width = (last[:2] + last[2:]) / 2, last[2] - last[0]
    box = min((d[0] for d in detections), key=lambda b: np.linalg.norm((b[:2] + b[2:]) / 2 - centre))
    return box if np.linalg.norm((box[:2] + box[2:]) / 2 - centre) <= width else None


def _fill(boxes: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Frames without a detection: interpolated between the nearest detected frames, held at the ends."""
    times = np.arange(len(boxes))
    return np.stack([np.interp(times, times[detected], boxes[detected, k]) for k in range(4)], axis=1)


def _smooth(boxes: np.ndarray) -> np.ndarray:
    """Centres averaged with the neighbouring frames (edges repeated); sizes kept."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2
    padded = np.concatenate([centres[:1], centres, centres[-1:]])
    smoothed = sum(w * padded[i:i + len(centres)] for i, w in enumerate(SMOOTHING))
    return np.concatenate([smoothed - half, smoothed + half], axis=1)


def crop_side_px(max_pixels: int) -> int:
    """The side of the square crop the model takes whole: the largest multiple of 28 px within max_pixels."""
    return max(PATCH, math.isqrt(max_pixels) // PATCH * PATCH)


def crop_to_track(frames: np.ndarray, track: FaceTrack, margin: float, side_px: int) -> np.ndarray:
    """Square crops around the track (one side for the whole clip), each resized to side_px x side_px."""
    import cv2

    height, width = frames.shape[1:3]
    sizes = np.maximum(track.boxes[:, 2] - track.boxes[:, 0], track.boxes[:, 3] - track.boxes[:, 1])
    side = min(float(np.median(sizes)) * (1 + 2 * margin), height, width)
    crops = []
    for frame, box in zip(frames, track.boxes, strict=True):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0 = int(round(min(max(cx - side / 2, 0), width - side)))
        y0 = int(round(min(max(cy - side / 2, 0), height - side)))
        crop = frame[y0:y0 + int(side), x0:x0 + int(side)]
        shrink = crop.shape[0] > side_px
        crops.append(cv2.resize(crop, (side_px, side_px),
                                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC))
    return np.stack(crops)


def face_crop(frames: np.ndarray, margin: float, max_pixels: int, detector=None) -> tuple[np.ndarray, bool]:
    """The frames cropped to the tracked face, and True; or the frames unchanged and False when no face is found."""
    track = track_face(frames, detector)
    if track is None:
        return frames, False
    return crop_to_track(frames, track, margin, crop_side_px(max_pixels)), True


def with_face_crop(spec: ModelSpec, face_crop: bool) -> ModelSpec:
    """The model spec with face crops in its media settings when asked (training, engines and predict read them)."""
    return replace(spec, media=replace(spec.media, face_crop=True)) if face_crop else spec
