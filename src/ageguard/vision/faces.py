"""The face rules, applied to a detector's output, and cheap quality measures of the chosen face.

Pure numpy. Rules, in order (the first failure raises :class:`ageguard.errors.AgeGuardError`):

1. ``FACE_NOT_FOUND``: no detection scoring at least ``settings.detection_score``.
2. ``MULTIPLE_FACES``: a second face whose box area is at least ``settings.background_face_area_ratio`` of
   the largest face's; smaller ones are background (a passer-by) and ignored.
3. ``FACE_BOX_TOO_SMALL``: inter-ocular distance below ``limits.min_interocular_px``.
4. ``FACE_TO_IMAGE_RATIO_TOO_LOW`` / ``_HIGH``: face box height over image height outside
   ``[limits.min_face_ratio, limits.max_face_ratio]``.
5. ``INSUFFICIENT_AREA_AROUND_THE_FACE``: on some side, the free space between the face box and the image
   edge is below ``limits.min_face_margin`` times the box's size on that axis (negative when the box
   sticks out of the frame).
6. ``IMAGE_TOO_DARK`` / ``IMAGE_TOO_BRIGHT``: mean luma (BT.601) of the central part of the face box
   outside ``[limits.min_face_brightness, limits.max_face_brightness]``.

:func:`face_issues` lists every failed rule 3-6 for one face (capture guidance wants them all).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ageguard.errors import AgeGuardError
from ageguard.settings import ImageLimits, Settings
from ageguard.vision.types import Face, RGBImage

# Luma weights (ITU-R BT.601), the usual "brightness" of an sRGB pixel.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Share of the box trimmed on each side for the brightness/contrast region: the detector's box corners
# hold hair and background, the centre is skin (forehead, cheeks, nose, mouth).
_INSET_X = 0.2
_INSET_Y = 0.15
# Face crops are resampled to this size before the Laplacian, so sharpness does not depend on face size.
_SHARPNESS_SIZE = 96


def select_face(faces: list[Face], image: RGBImage, limits: ImageLimits, settings: Settings) -> Face:
    """The one face to estimate, or :class:`AgeGuardError` with the first failed face rule."""
    candidates = [f for f in faces if f.score >= settings.detection_score and f.area > 0]
    if not candidates:
        raise AgeGuardError("FACE_NOT_FOUND")
    candidates.sort(key=lambda f: f.area, reverse=True)
    main = candidates[0]
    for other in candidates[1:]:
        if other.area >= settings.background_face_area_ratio * main.area:
            raise AgeGuardError("MULTIPLE_FACES")
    issues = face_issues(main, image, limits)
    if issues:
        raise AgeGuardError(issues[0])
    return main


def face_issues(face: Face, image: RGBImage, limits: ImageLimits) -> list[str]:
    """Every geometry and lighting rule ``face`` fails, as catalogue codes in rule order ([] if none)."""
    height, width = image.shape[:2]
    issues: list[str] = []
    if face.interocular < limits.min_interocular_px:
        issues.append("FACE_BOX_TOO_SMALL")
    ratio = face_ratio(face, height)
    if ratio < limits.min_face_ratio:
        issues.append("FACE_TO_IMAGE_RATIO_TOO_LOW")
    elif ratio > limits.max_face_ratio:
        issues.append("FACE_TO_IMAGE_RATIO_TOO_HIGH")
    if face_margin(face, width, height) < limits.min_face_margin:
        issues.append("INSUFFICIENT_AREA_AROUND_THE_FACE")
    brightness = face_brightness(face, image)
    if brightness < limits.min_face_brightness:
        issues.append("IMAGE_TOO_DARK")
    elif brightness > limits.max_face_brightness:
        issues.append("IMAGE_TOO_BRIGHT")
    return issues


def face_ratio(face: Face, image_height: int) -> float:
    """Face box height over image height."""
    return face.height / max(image_height, 1)


def face_margin(face: Face, image_width: int, image_height: int) -> float:
    """The tightest side's free space to the image edge, in units of the box's width (left/right) or
    height (top/bottom); negative when the box extends past the edge."""
    left, top, right, bottom = face.box
    w, h = max(face.width, 1e-6), max(face.height, 1e-6)
    return min(left / w, (image_width - right) / w, top / h, (image_height - bottom) / h)


def face_brightness(face: Face, image: RGBImage) -> float:
    """Mean luma (0..255) of the central part of the face box."""
    region = _face_region(face, image, _INSET_X, _INSET_Y)
    if region.size == 0:
        return 0.0
    return float(_luma(region).mean())


def face_quality(face: Face, image: RGBImage) -> dict[str, float]:
    """Cheap quality measures of one face, for the age estimate's st_dev.

    - ``sharpness``: variance of the 4-neighbour Laplacian of the face's luma (0..255 scale), on the
      face box resampled to 96x96 (so a small, upscaled face reads as blurred, and the value does not
      grow or shrink with face size alone). A sharp webcam face gives some hundreds; below ~20 is blurred.
    - ``brightness``: mean luma (0..255) of the central face region (the rule's measure).
    - ``contrast``: standard deviation of that luma (RMS contrast, 0..~128).
    - ``yaw``: nose offset from the eye midpoint along the eye line, over inter-ocular distance; 0 for a
      frontal face, about +-0.5 for a strongly turned head. Positive when the nose is towards the image
      right (the subject's left eye).
    - ``pitch``: nose position between the eye line (0) and the mouth line (1) along the face's vertical
      axis; about 0.5-0.6 frontal, lower when the head tilts back, higher when it tilts down.
    - ``roll``: angle of the eye line from horizontal, in degrees (positive: clockwise on screen).
    - ``interocular``: inter-ocular distance in pixels; ``face_height``: face box height in pixels.
    """
    gray = _luma(_face_region(face, image, 0.0, 0.0))
    region = _luma(_face_region(face, image, _INSET_X, _INSET_Y))
    yaw, pitch, roll = pose(face)
    return {
        "sharpness": sharpness(gray),
        "brightness": float(region.mean()) if region.size else 0.0,
        "contrast": float(region.std()) if region.size else 0.0,
        "yaw": yaw,
        "pitch": pitch,
        "roll": roll,
        "interocular": face.interocular,
        "face_height": float(face.height),
    }


def pose(face: Face) -> tuple[float, float, float]:
    """(yaw proxy, pitch proxy, roll degrees) from the five landmarks; see :func:`face_quality`."""
    lm = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
    right_eye, left_eye, nose = lm[0], lm[1], lm[2]
    mouth_mid = (lm[3] + lm[4]) / 2.0
    eye_vec = left_eye - right_eye
    iod = float(np.hypot(*eye_vec))
    if iod < 1e-6:
        return 0.0, 0.0, 0.0
    axis = eye_vec / iod  # image-rightwards along the eyes for an upright face
    down = np.array([-axis[1], axis[0]])  # perpendicular, pointing from the eyes to the mouth
    eye_mid = (right_eye + left_eye) / 2.0
    yaw = float(np.dot(nose - eye_mid, axis) / iod)
    mouth_depth = float(np.dot(mouth_mid - eye_mid, down))
    pitch = float(np.dot(nose - eye_mid, down) / mouth_depth) if abs(mouth_depth) > 1e-6 else 0.0
    roll = math.degrees(math.atan2(float(eye_vec[1]), float(eye_vec[0])))
    return yaw, pitch, roll


def sharpness(gray: npt.NDArray[np.float32]) -> float:
    """Variance of the Laplacian of ``gray`` (0..255 luma) after resampling to a fixed size."""
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    small = _resample(gray, _SHARPNESS_SIZE, _SHARPNESS_SIZE)
    lap = small[:-2, 1:-1] + small[2:, 1:-1] + small[1:-1, :-2] + small[1:-1, 2:] - 4.0 * small[1:-1, 1:-1]
    return float(lap.var())


# ------------------------------------------------------------------------------------------- helpers


def _face_region(face: Face, image: RGBImage, inset_x: float, inset_y: float) -> npt.NDArray[np.uint8]:
    height, width = image.shape[:2]
    left, top, right, bottom = face.box
    dx, dy = face.width * inset_x, face.height * inset_y
    x0 = int(np.clip(math.floor(left + dx), 0, width))
    x1 = int(np.clip(math.ceil(right - dx), 0, width))
    y0 = int(np.clip(math.floor(top + dy), 0, height))
    y1 = int(np.clip(math.ceil(bottom - dy), 0, height))
    return image[y0:y1, x0:x1]


def _luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = rgb.astype(np.float32) @ _LUMA
    return out


def _resample(gray: npt.NDArray[np.float32], out_h: int, out_w: int) -> npt.NDArray[np.float32]:
    """Area average when shrinking, bilinear when enlarging (per axis)."""
    out = _resample_axis(_resample_axis(gray.astype(np.float64), out_h, 0), out_w, 1)
    return out.astype(np.float32)


def _resample_axis(a: npt.NDArray[np.float64], n: int, axis: int) -> npt.NDArray[np.float64]:
    size = a.shape[axis]
    if size == n:
        return a
    if size > n:
        # Exact box filter: integrate, then difference at fractional bin edges (linear interpolation
        # of the cumulative sum), divided by the bin width.
        cum = np.concatenate([np.zeros_like(np.take(a, [0], axis=axis)), np.cumsum(a, axis=axis)], axis=axis)
        edges = np.linspace(0.0, float(size), n + 1)
        lo = np.floor(edges).astype(np.int64)
        frac = edges - lo
        hi = np.minimum(lo + 1, size)
        shape = [1, 1]
        shape[axis] = n + 1
        frac_b = frac.reshape(shape)
        at_edges = np.take(cum, lo, axis=axis) * (1 - frac_b) + np.take(cum, hi, axis=axis) * frac_b
        width = float(size) / n
        out: npt.NDArray[np.float64] = np.diff(at_edges, axis=axis) / width
        return out
    # Enlarge: bilinear with half-pixel centres, edges clamped.
    pos = (np.arange(n, dtype=np.float64) + 0.5) * size / n - 0.5
    pos = np.clip(pos, 0.0, size - 1.0)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, size - 1)
    w = pos - i0
    shape = [1, 1]
    shape[axis] = n
    wb = w.reshape(shape)
    up: npt.NDArray[np.float64] = np.take(a, i0, axis=axis) * (1 - wb) + np.take(a, i1, axis=axis) * wb
    return up
