"""A realistic capture made in memory for benchmarks: the public-domain NASA astronaut portrait that
scikit-image ships (``skimage.data.astronaut``), its face scaled to a typical selfie size on a canvas."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

# The astronaut's face box (left, top, right, bottom) in the 512x512 original.
_FACE_BOX = (179, 83, 267, 171)


def sample_capture(width: int = 1280, height: int = 720, fmt: str = "JPEG", quality: int = 95) -> bytes:
    """Encoded image bytes with one centred, well-lit face whose box is about 40% of the height."""
    try:
        from skimage import data
    except ImportError as exc:  # a dev-only dependency: say how to get it
        raise RuntimeError("benchmarks need scikit-image: pip install -e '.[dev]'") from exc
    portrait = Image.fromarray(np.asarray(data.astronaut()))
    face_h = _FACE_BOX[3] - _FACE_BOX[1]
    scale = 0.4 * height / face_h
    background = portrait.resize((width, height), Image.Resampling.BILINEAR).filter(
        ImageFilter.GaussianBlur(25)
    )
    left, top, right, bottom = _FACE_BOX
    region = portrait.crop((left - face_h, max(top - face_h, 0), right + face_h, min(bottom + face_h, 512)))
    region = region.resize(
        (round(region.width * scale), round(region.height * scale)), Image.Resampling.LANCZOS
    )
    face_cx = (left + right) / 2 - (left - face_h)
    face_cy = (top + bottom) / 2 - max(top - face_h, 0)
    background.paste(region, (round(width / 2 - face_cx * scale), round(height / 2 - face_cy * scale)))
    buffer = io.BytesIO()
    if fmt == "JPEG":
        background.save(buffer, format="JPEG", quality=quality)
    else:
        background.save(buffer, format=fmt)
    return buffer.getvalue()
