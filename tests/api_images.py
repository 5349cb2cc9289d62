"""Images for the API tests: a real face that meets every normal-level rule, and one image per image or face
error code a client can cause. Built from scikit-image's astronaut (public domain) and seeded noise."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageEnhance

_BACKGROUND = (120, 130, 140)
# The astronaut's face box in the 512x512 original is about (178, 57)-(273, 177).
_FACE_CENTRE = (225, 117)


def _astronaut() -> Image.Image:
    from skimage import data as skdata

    return Image.fromarray(skdata.astronaut())


def _jpeg(im: Image.Image, quality: int = 95, comment: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    if comment is None:
        im.save(buffer, format="JPEG", quality=quality)
    else:
        im.save(buffer, format="JPEG", quality=quality, comment=comment)
    return buffer.getvalue()


def _png(im: Image.Image) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format="PNG")
    return buffer.getvalue()


def _canvas(width: int = 1280, height: int = 720, noise: int = 0, seed: int = 0) -> Image.Image:
    arr = np.full((height, width, 3), _BACKGROUND, np.uint8)
    if noise:
        rng = np.random.default_rng(seed)
        arr = np.clip(arr.astype(np.int16) + rng.integers(-noise, noise + 1, arr.shape), 0, 255).astype(
            np.uint8
        )
    return Image.fromarray(arr)


def _noise(width: int, height: int, mode: str = "RGB", seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    return Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8))


def _face(size: int = 720) -> Image.Image:
    """The astronaut's face, enlarged so the inter-ocular distance is about 145 px at size 720."""
    cx, cy = _FACE_CENTRE
    half = 105
    return (
        _astronaut()
        .crop((cx - half, cy - half, cx + half, cy + half))
        .resize((size, size), Image.Resampling.LANCZOS)
    )


def _face_on(offset: tuple[int, int] = (280, 0), noise: int = 6) -> Image.Image:
    canvas = _canvas(noise=noise)
    canvas.paste(_face(), offset)
    return canvas


@lru_cache(maxsize=4)
def face_jpeg(comment: bytes | None = None) -> bytes:
    """A real face on a 1280x720 canvas, JPEG quality 95 (~200 KB); ``comment`` goes in a COM segment."""
    return _jpeg(_face_on(), comment=comment)


def error_images() -> dict[str, bytes]:
    """Image bytes that fail exactly one rule at the normal level, by the code the server must answer."""
    face = _face_on()
    two = _canvas()
    two.paste(_face(600), (20, 60))
    two.paste(_face(600).transpose(Image.Transpose.FLIP_LEFT_RIGHT), (660, 60))
    small = _canvas(noise=10)
    small.paste(_astronaut(), (384, 104))
    lifted = Image.fromarray((255 - (255 - np.asarray(face).astype(np.float32)) * 0.2).astype(np.uint8))
    bright = ImageEnhance.Color(lifted).enhance(3.0)  # lifting washes colour out: restore it (not greyscale)
    gif = io.BytesIO()
    _noise(400, 400).save(gif, format="GIF")
    return {
        "UNSUPPORTED_IMAGE_FORMAT": gif.getvalue(),
        "IMAGE_SIZE_TOO_SMALL": _jpeg(_canvas(640, 480)),
        "IMAGE_SIZE_TOO_BIG": _png(_noise(800, 700)),
        "MIN_WIDTH": _png(_noise(299, 600)),
        "MAX_WIDTH": _jpeg(_canvas(2001, 320, noise=20)),
        "MIN_HEIGHT": _png(_noise(600, 299)),
        "MAX_HEIGHT": _jpeg(_canvas(320, 2001, noise=20)),
        "MAX_PIXELS": _jpeg(_canvas(2000, 1100, noise=12)),
        "IMAGE_WRONG_CHANNELS": _png(_noise(400, 400, mode="L")),
        "IMAGE_GRAYSCALE_NOT_SUPPORTED": _jpeg(face.convert("L").convert("RGB")),
        "FACE_NOT_FOUND": _jpeg(_canvas(noise=40)),
        "MULTIPLE_FACES": _jpeg(two),
        "FACE_BOX_TOO_SMALL": _jpeg(small),
        "FACE_TO_IMAGE_RATIO_TOO_HIGH": _jpeg(
            _astronaut().crop((150, 45, 300, 190)).resize((480, 464), Image.Resampling.LANCZOS)
        ),
        "INSUFFICIENT_AREA_AROUND_THE_FACE": _jpeg(_face_on(offset=(-190, 0))),
        "IMAGE_TOO_DARK": _jpeg(ImageEnhance.Brightness(face).enhance(0.2)),
        "IMAGE_TOO_BRIGHT": _jpeg(bright),
    }
