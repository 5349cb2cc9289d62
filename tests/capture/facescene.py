"""Camera scenes of one real face for the capture tests, and the fake-camera video Chromium plays.

The face is scikit-image's ``astronaut`` (NASA photograph of Eileen Collins, public domain), scaled so
that its inter-ocular distance is ``iod`` pixels and placed with its face centre at (``cx``, ``cy``)
(fractions of the frame) on a smooth textured background. ``gain`` scales every pixel (a dim room).
Nothing is written to disk except the ``.y4m`` files the browser tests create in a pytest tmp dir.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

RGBImage = npt.NDArray[np.uint8]

# RetinaFace (mobilenet0.25) on skimage.data.astronaut(), 512x512: face box and inter-ocular distance.
ASTRONAUT_FACE_BOX = (177.9, 56.8, 273.1, 177.2)
ASTRONAUT_IOD = 42.65


@lru_cache(maxsize=1)
def astronaut() -> RGBImage:
    from skimage.data import astronaut as load

    arr = np.asarray(load(), dtype=np.uint8)
    arr.flags.writeable = False
    return arr


def background(width: int, height: int, *, seed: int = 0) -> RGBImage:
    """Smooth colours with a little sensor-like noise (so JPEGs of it have a realistic size)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(60, 200, size=(5, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), np.float32)
    base += rng.normal(0.0, 3.0, size=base.shape).astype(np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)


def scene(
    width: int = 1280,
    height: int = 720,
    *,
    iod: float = 150.0,
    cx: float = 0.5,
    cy: float = 0.5,
    gain: float = 1.0,
    seed: int = 0,
) -> RGBImage:
    """A ``width`` x ``height`` frame with the astronaut's face centred at (cx, cy), IOD ``iod`` px."""
    canvas = background(width, height, seed=seed)
    scale = iod / ASTRONAUT_IOD
    src = astronaut()
    size = max(int(round(src.shape[1] * scale)), 1)
    scaled = np.asarray(Image.fromarray(src).resize((size, size), Image.Resampling.BICUBIC), np.uint8)
    left, top, right, bottom = ASTRONAUT_FACE_BOX
    fx, fy = (left + right) / 2 * scale, (top + bottom) / 2 * scale
    x0, y0 = int(round(cx * width - fx)), int(round(cy * height - fy))
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + size, width), min(y0 + size, height)
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = scaled[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    if gain != 1.0:
        canvas = np.clip(canvas.astype(np.float32) * gain, 0, 255).round().astype(np.uint8)
    return canvas


def i420(rgb: RGBImage) -> bytes:
    """BT.601 limited-range YUV 4:2:0 planar bytes of an even-sized RGB frame."""
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b
    h, w = y.shape

    def sub(plane: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        return out

    planes = [y, sub(u), sub(v)]
    return b"".join(np.clip(p, 0, 255).round().astype(np.uint8).tobytes() for p in planes)


def write_y4m(path: Path, frames: list[RGBImage], fps: int = 15) -> Path:
    """A YUV4MPEG2 file (Chromium's fake camera loops it): header, then 'FRAME' + I420 planes each."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            fh.write(b"FRAME\n")
            fh.write(i420(frame))
    return path
