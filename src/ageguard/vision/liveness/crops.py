"""The two crops the liveness network sees, shared by training and serving so they never drift apart.

Each is the face box scaled about its centre by the model's own factor (``antispoof.json``, ``crops``),
with the MiniFASNet peer's rule: the scale shrinks when the image is too small, and the box is shifted,
not clipped, to stay inside the image.

* ``context`` (shipped: 1.3x): the face with hair, ears and what touches it (fingers, a print's cut
  edge, a phone's frame close to the face).
* ``face`` (shipped: 0.6x): the centre of the face (eyes, nose, cheeks), the texture at the highest
  resolution available.

Wider context (the peer's 2.7x) was measured and generalised worse to unseen sources: it lets a model
learn how each data set frames its faces (docs/models/antispoof.md). Both crops are resampled with PIL's
antialiased bilinear filter straight from the source pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ageguard.vision.types import RGBImage

Box = tuple[float, float, float, float]  # left, top, right, bottom

CONTEXT_SCALE = 1.3  # defaults; a model's JSON names its own
FACE_SCALE = 0.6
# The quality gate looks at a fixed crop, whatever the model's crops: its limits stay comparable.
QUALITY_SCALE = 1.3
QUALITY_SIZE = 64


def scaled_box(width: int, height: int, box: Box, scale: float) -> Box:
    """``box`` scaled about its centre, the scale capped so the result fits, shifted inside the image."""
    left, top, right, bottom = box
    box_w = max(right - left, 1.0)
    box_h = max(bottom - top, 1.0)
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    x0, y0 = cx - new_w / 2.0, cy - new_h / 2.0
    x0 = max(min(x0, width - 1 - new_w), 0.0)
    y0 = max(min(y0, height - 1 - new_h), 0.0)
    return x0, y0, x0 + new_w, y0 + new_h


def crop(image: Image.Image, box: Box, scale: float, size: int) -> RGBImage:
    """The ``size`` x ``size`` RGB crop of ``box`` scaled by ``scale`` (see :func:`scaled_box`)."""
    region = scaled_box(image.width, image.height, box, scale)
    out = image.resize((size, size), Image.Resampling.BILINEAR, box=region)
    return np.asarray(out, dtype=np.uint8)


def liveness_crops(
    image: RGBImage | Image.Image,
    box: Box,
    context_size: int,
    face_size: int,
    context_scale: float = CONTEXT_SCALE,
    face_scale: float = FACE_SCALE,
) -> tuple[RGBImage, RGBImage]:
    """The context crop and the face crop of one face (scales: the model's, from its JSON)."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    if pil.mode != "RGB":
        pil = pil.convert("RGB")
    return crop(pil, box, context_scale, context_size), crop(pil, box, face_scale, face_size)


def quality_crop(image: RGBImage | Image.Image, box: Box) -> RGBImage:
    """The crop the quality gate measures (brightness, sharpness)."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    if pil.mode != "RGB":
        pil = pil.convert("RGB")
    return crop(pil, box, QUALITY_SCALE, QUALITY_SIZE)
