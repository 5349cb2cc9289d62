"""Face crops for the networks: a square around the face, levelled on the eyes, resampled bilinearly.

Sampling uses half-pixel centres, the convention the models were converted and pinned with
(PIL's bilinear upsampling and OpenCV's INTER_LINEAR agree on it). Large faces are first reduced
with an area filter so that downsampling does not alias.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from PIL import Image

from ageguard.vision.types import Face, RGBImage

# Beyond this many source pixels per output pixel, pre-reduce with an area filter.
_MAX_BILINEAR_STEP = 1.5


# Typical inter-ocular over eye-to-mouth distance of a frontal face; lets the two measures of face size
# be averaged, which keeps the crop steady when one of them is foreshortened by pitch or yaw.
_IOD_PER_EYE_MOUTH = 1.14
# Where the crop centre sits on the line from the eyes' midpoint (0) to the mouth's midpoint (1).
CENTRE_ALONG_FACE = 0.67


def face_unit(face: Face) -> float:
    """A pose-tolerant face size in pixels: about the eye-to-mouth distance of the face."""
    lm = face.landmarks.astype(np.float64)
    eye_mouth = float(np.linalg.norm((lm[3] + lm[4]) / 2.0 - (lm[0] + lm[1]) / 2.0))
    return 0.5 * (eye_mouth + face.interocular / _IOD_PER_EYE_MOUTH)


def face_square(face: Face, scale: float) -> tuple[float, float, float]:
    """Centre x, centre y and side of the crop: ``scale`` face units wide, centred below the eyes.

    Landmarks place the crop more steadily than the detector's box, whose top follows the hairline;
    the age networks move by years when their crop shifts by a few pixels.
    """
    lm = face.landmarks.astype(np.float64)
    eyes, mouth = (lm[0] + lm[1]) / 2.0, (lm[3] + lm[4]) / 2.0
    centre = eyes + CENTRE_ALONG_FACE * (mouth - eyes)
    return float(centre[0]), float(centre[1]), scale * face_unit(face)


def eye_roll(face: Face) -> float:
    """Angle in radians that levels the eyes (0 for an upright face)."""
    (x0, y0), (x1, y1) = face.landmarks[0], face.landmarks[1]
    if x1 < x0:  # keep the angle small whichever eye the detector lists first
        (x0, y0), (x1, y1) = (x1, y1), (x0, y0)
    return math.atan2(float(y1 - y0), float(x1 - x0))


def face_crop(
    image: RGBImage,
    face: Face,
    *,
    scale: float,
    size: int,
    align: bool = True,
    pil: Image.Image | None = None,
) -> RGBImage:
    """A ``size`` x ``size`` RGB crop of ``face`` (see :func:`face_square`); edge pixels extend outwards.

    ``pil``: the same pixels as a Pillow image, if the caller has one (the area filter then reads it
    without converting the region first; the crop is the same).
    """
    cx, cy, side = face_square(face, scale)
    angle = eye_roll(face) if align else 0.0
    step = side / size
    source: npt.NDArray[np.uint8] = image
    offset_x = offset_y = 0.0
    scale = 1.0
    if step > _MAX_BILINEAR_STEP:
        source, offset_x, offset_y, scale = _reduced_region(image, cx, cy, side, step, pil)
        cx, cy, step = (cx - offset_x) / scale, (cy - offset_y) / scale, step / scale
    return _warp(source, cx, cy, step, angle, size)


def _reduced_region(
    image: RGBImage, cx: float, cy: float, side: float, step: float, pil: Image.Image | None = None
) -> tuple[npt.NDArray[np.uint8], float, float, float]:
    """The region that can hold the rotated square, shrunk so one output pixel is about one source pixel."""
    height, width = image.shape[:2]
    half = side * math.sqrt(2.0) / 2.0 + 2.0
    x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
    x1, y1 = min(int(math.ceil(cx + half)), width), min(int(math.ceil(cy + half)), height)
    region = pil.crop((x0, y0, x1, y1)) if pil is not None else Image.fromarray(image[y0:y1, x0:x1])
    scale = step  # source pixels per reduced pixel
    new_w = max(int(round((x1 - x0) / scale)), 1)
    new_h = max(int(round((y1 - y0) / scale)), 1)
    reduced = np.asarray(region.resize((new_w, new_h), Image.Resampling.BOX))
    actual_scale = (x1 - x0) / new_w
    return reduced, float(x0), float(y0), actual_scale


def _warp(
    image: npt.NDArray[np.uint8], cx: float, cy: float, step: float, angle: float, size: int
) -> RGBImage:
    grid = (np.arange(size, dtype=np.float32) + 0.5 - size / 2.0) * step
    gx, gy = np.meshgrid(grid, grid)
    cos, sin = math.cos(angle), math.sin(angle)
    # Pixel centres sit at integer + 0.5 in continuous coordinates.
    src_x = cx + gx * cos - gy * sin - 0.5
    src_y = cy + gx * sin + gy * cos - 0.5
    return _bilinear(image, src_x, src_y)


def _bilinear(
    image: npt.NDArray[np.uint8], x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]
) -> RGBImage:
    height, width = image.shape[:2]
    x = np.clip(x, 0.0, width - 1.0)
    y = np.clip(y, 0.0, height - 1.0)
    x0 = np.floor(x).astype(np.int32)
    y0 = np.floor(y).astype(np.int32)
    x1 = np.minimum(x0 + 1, width - 1)
    y1 = np.minimum(y0 + 1, height - 1)
    # float64 weights, as the crops were always computed: the faster loop below is bit-identical.
    fx = x - x0
    fy = y - y0
    gx, gy = 1.0 - fx, 1.0 - fy
    top_left, top_right = y0 * width + x0, y0 * width + x1
    bottom_left, bottom_right = y1 * width + x0, y1 * width + x1
    # One colour plane at a time, gathered by flat index: numpy then loops over whole planes (an
    # interleaved H x W x 3 layout makes it loop over runs of three values, 4x slower), and only the
    # gathered pixels are widened, never the whole frame.
    out = np.empty((*x.shape, 3), np.uint8)
    for channel in range(3):
        plane = np.ascontiguousarray(image[..., channel]).ravel()
        top = plane.take(top_left) * gx
        top += plane.take(top_right) * fx
        bottom = plane.take(bottom_left) * gx
        bottom += plane.take(bottom_right) * fx
        top *= gy
        bottom *= fy
        top += bottom
        np.rint(top, out=top)
        out[..., channel] = np.clip(top, 0, 255, out=top)
    return out
