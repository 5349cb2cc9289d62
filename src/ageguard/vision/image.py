"""Image bytes -> a checked RGB array: the format, quality, size, channel and greyscale rules.

Everything here works on bytes in memory; nothing is ever written to disk.

Order of the checks (cheapest and most fundamental first; each failure raises
:class:`ageguard.errors.AgeGuardError` with one catalogue code, and nothing else ever escapes):

1. empty input                                    -> ``IMAGE_NOT_PROVIDED``
2. magic bytes are neither JPEG nor PNG           -> ``UNSUPPORTED_IMAGE_FORMAT``
3. byte size                                      -> ``IMAGE_SIZE_TOO_SMALL`` / ``IMAGE_SIZE_TOO_BIG``
4. header dimensions, read by hand before Pillow sees the data, against
   ``settings.max_decoded_pixels`` (decompression bombs) -> ``MAX_PIXELS``
5. Pillow opens the header (lazily: no pixels yet) -> ``INVALID_B64_IMAGE`` if it cannot
6. JPEG quality estimated from the quantisation tables -> ``UNSUPPORTED_IMAGE_FORMAT``
7. width, height, pixel count after EXIF orientation -> ``MIN/MAX_WIDTH``, ``MIN/MAX_HEIGHT``,
   ``MIN/MAX_PIXELS``
8. colour mode: RGB or RGBA only                   -> ``IMAGE_WRONG_CHANNELS``
9. pixels decoded (truncated or corrupt data)      -> ``INVALID_B64_IMAGE``
10. EXIF orientation applied, alpha flattened onto white
11. colour present                                 -> ``IMAGE_GRAYSCALE_NOT_SUPPORTED``
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from ageguard.errors import AgeGuardError
from ageguard.settings import ImageLimits, Settings
from ageguard.vision.types import RGBImage

ImageFormat = Literal["JPEG", "PNG"]

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# EXIF orientations 5..8 rotate by 90 degrees, so the stored width is the displayed height.
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = frozenset({5, 6, 7, 8})

# Pillow modes that carry three colour channels (``RGBA`` loses its alpha by flattening).
_COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "RGBa"})

# The base64 rules of the ``img`` field (SPEC): standard alphabet, padding required, an optional
# ``data:image/<type>[;param=value...];base64,`` prefix. Line breaks and blanks are dropped first so that
# MIME-style wrapped base64 (76-column lines) from some client libraries still decodes.
_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+(?:;[A-Za-z0-9.+-]+=[A-Za-z0-9.+\"-]*)*;base64,", re.I)
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BLANKS = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """A validated image: upright RGB pixels plus what was learned about the encoded bytes."""

    rgb: RGBImage  # H x W x 3 uint8, EXIF orientation applied
    # The same pixels as a Pillow image, for the resizes that Pillow does (no second conversion).
    pil: Image.Image
    format: ImageFormat
    jpeg_quality: int | None  # estimated from the quantisation tables; None for PNG
    byte_size: int

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


# --------------------------------------------------------------------------------------------- base64


def decode_base64(text: str) -> bytes:
    """The bytes of an ``img`` field: ``IMAGE_NOT_PROVIDED`` if empty, ``INVALID_B64_IMAGE`` if malformed."""
    if not isinstance(text, str):
        raise AgeGuardError("INVALID_B64_IMAGE")
    if text and len(text) % 4 == 0:
        # What every SDK sends (plain standard base64, no blanks, no data URL) decodes in one strict C
        # pass; anything else takes the careful path below, which says what is wrong with it.
        with contextlib.suppress(binascii.Error, ValueError):
            return binascii.a2b_base64(text, strict_mode=True)
    body = _BLANKS.sub("", text)
    match = _DATA_URL.match(body)
    if match:
        body = body[match.end() :]
    if not body:
        raise AgeGuardError("IMAGE_NOT_PROVIDED")
    if len(body) % 4 != 0 or not _BASE64.fullmatch(body):
        raise AgeGuardError("INVALID_B64_IMAGE", "Base64 image is incorrectly padded or not standard base64.")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the checks above already cover it
        raise AgeGuardError("INVALID_B64_IMAGE") from exc


# --------------------------------------------------------------------------------------------- decode


def sniff_format(data: bytes) -> ImageFormat | None:
    """``"JPEG"`` or ``"PNG"`` from the magic bytes, else None."""
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    return None


def decode(data: bytes, limits: ImageLimits, settings: Settings) -> DecodedImage:
    """Check ``data`` against every image requirement of ``limits`` and return the upright RGB pixels.

    Raises :class:`AgeGuardError` (and nothing else, whatever the bytes) on the first failed rule.
    """
    try:
        return _decode(data, limits, settings)
    except AgeGuardError:
        raise
    except Exception as exc:  # any decoder surprise means the bytes are not a usable image
        raise AgeGuardError("INVALID_B64_IMAGE") from exc


def _decode(data: bytes, limits: ImageLimits, settings: Settings) -> DecodedImage:
    if not data:
        raise AgeGuardError("IMAGE_NOT_PROVIDED")
    fmt = sniff_format(data)
    if fmt is None:
        raise AgeGuardError("UNSUPPORTED_IMAGE_FORMAT")

    size = len(data)
    if size < limits.min_bytes:
        raise AgeGuardError("IMAGE_SIZE_TOO_SMALL", _size_message("too small, the minimum", limits.min_bytes))
    if size > limits.max_bytes:
        raise AgeGuardError("IMAGE_SIZE_TOO_BIG", _size_message("too big, the maximum", limits.max_bytes))

    declared = header_size(data)
    if declared is None:
        raise AgeGuardError("INVALID_B64_IMAGE", "Cannot create image from base64 decoded bytes.")
    if declared[0] * declared[1] > settings.max_decoded_pixels:
        raise AgeGuardError("MAX_PIXELS", _pixels_message("maximum", limits.max_pixels))

    im = _open(data, fmt)

    quality: int | None = None
    if fmt == "JPEG":
        quality = estimate_jpeg_quality(im)
        if quality is not None and quality < limits.min_jpeg_quality:
            raise AgeGuardError(
                "UNSUPPORTED_IMAGE_FORMAT",
                f"Image format not supported. JPEG quality is about {quality}; "
                f"please use JPEGs ({limits.min_jpeg_quality} to 100 quality) and PNGs.",
            )

    orientation = _orientation(im)
    width, height = im.size
    if orientation in _TRANSPOSED_ORIENTATIONS:
        width, height = height, width
    _check_dimensions(width, height, limits)

    if im.mode not in _COLOUR_MODES:
        raise AgeGuardError("IMAGE_WRONG_CHANNELS")

    try:
        im.load()
    except Exception as exc:  # truncated/corrupt streams: Pillow raises OSError, SyntaxError...
        raise AgeGuardError("INVALID_B64_IMAGE", "Cannot create image from base64 decoded bytes.") from exc

    if orientation not in (None, 1):
        with contextlib.suppress(Exception):  # a broken EXIF block is ignored, not fatal
            im = ImageOps.exif_transpose(im)
    rgb = _to_rgb(im)
    if rgb.shape[0] != height or rgb.shape[1] != width:  # pragma: no cover - defensive
        _check_dimensions(int(rgb.shape[1]), int(rgb.shape[0]), limits)

    if is_grayscale(rgb, settings):
        raise AgeGuardError("IMAGE_GRAYSCALE_NOT_SUPPORTED")
    # Flattened or converted pixels (RGBA, RGBX) need a Pillow image of their own; plain RGB is ``im``.
    pil = im if im.mode == "RGB" else Image.fromarray(rgb)
    return DecodedImage(rgb=rgb, pil=pil, format=fmt, jpeg_quality=quality, byte_size=size)


def _open(data: bytes, fmt: ImageFormat) -> Image.Image:
    # Our own header check (step 4) runs first with a lower limit than Pillow's, so Pillow's bomb
    # guard only fires if max_decoded_pixels is configured above Image.MAX_IMAGE_PIXELS.
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AgeGuardError("MAX_PIXELS") from exc
    except Exception as exc:  # UnidentifiedImageError, SyntaxError, struct.error, ...
        raise AgeGuardError("INVALID_B64_IMAGE", "Cannot create image from base64 decoded bytes.") from exc
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)  # animated PNG: the default image (what a non-animating viewer shows) is the one judged
    return im


def _check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width < limits.min_width:
        raise AgeGuardError("MIN_WIDTH", _dim_message("minimum width", limits.min_width))
    if width > limits.max_width:
        raise AgeGuardError("MAX_WIDTH", _dim_message("maximum width", limits.max_width))
    if height < limits.min_height:
        raise AgeGuardError("MIN_HEIGHT", _dim_message("minimum height", limits.min_height))
    if height > limits.max_height:
        raise AgeGuardError("MAX_HEIGHT", _dim_message("maximum height", limits.max_height))
    pixels = width * height
    if pixels < limits.min_pixels:
        raise AgeGuardError("MIN_PIXELS", _pixels_message("minimum", limits.min_pixels))
    if pixels > limits.max_pixels:
        raise AgeGuardError("MAX_PIXELS", _pixels_message("maximum", limits.max_pixels))


def _dim_message(what: str, value: int) -> str:
    noun = "width" if "width" in what else "height"
    return f"The image {noun} is incorrect. Image {what} required is {value} pixels."


def _pixels_message(what: str, value: int) -> str:
    return f"To process the image the {what} number of pixels required is {value:,} pixels."


def _size_message(what: str, value: int) -> str:
    if value >= 1_000_000:
        return f"Image size {what} size is {value / 1_000_000:g}MB."
    return f"Image size {what} size is {value / 1000:g}KB."


def _orientation(im: Image.Image) -> int | None:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # unreadable EXIF: treat as upright
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _to_rgb(im: Image.Image) -> RGBImage:
    if im.mode == "RGB":
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
    alpha = rgba[..., 3:4]
    if bool((alpha == 255).all()):
        return np.ascontiguousarray(rgba[..., :3])
    # Flatten onto white, as a browser shows a transparent PNG on a default page.
    a = alpha.astype(np.uint16)
    flat = (rgba[..., :3].astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return np.ascontiguousarray(flat.astype(np.uint8))


# ------------------------------------------------------------------------------------ header parsing

# JPEG start-of-frame markers (all SOFn except DHT C4, JPG C8 and DAC CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by a JPEG or PNG header, read without decoding; None if unreadable."""
    if data.startswith(_PNG_MAGIC):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return (width, height) if width > 0 and height > 0 else None
    if data.startswith(_JPEG_MAGIC):
        return _jpeg_header_size(data)
    return None


def _jpeg_header_size(data: bytes) -> tuple[int, int] | None:
    pos, end = 2, len(data)
    while pos < end:
        if data[pos] != 0xFF:
            return None  # a marker was expected: not a JPEG stream we can walk
        while pos < end and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        if pos + 2 > end:
            return None
        length = (data[pos] << 8) | data[pos + 1]
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if pos + 7 > end:
                return None
            height = (data[pos + 3] << 8) | data[pos + 4]
            width = (data[pos + 5] << 8) | data[pos + 6]
            # A height of 0 means "defined by a later DNL marker": refuse rather than guess.
            return (width, height) if width > 0 and height > 0 else None
        pos += length
    return None


# ------------------------------------------------------------------------------------ JPEG quality

# libjpeg's standard tables (ITU T.81 Annex K), natural order, as Pillow's ``quantization`` gives them.
_STD_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_STD_CHROMINANCE = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)  # fmt: skip


@lru_cache(maxsize=1)
def _scaled_tables() -> npt.NDArray[np.int64]:
    """(100, 2, 64): libjpeg's ``jpeg_quality_scaling`` applied to both standard tables, quality 1..100."""
    std = np.array([_STD_LUMINANCE, _STD_CHROMINANCE], dtype=np.int64)
    out = np.empty((100, 2, 64), dtype=np.int64)
    for quality in range(1, 101):
        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        out[quality - 1] = np.clip((std * scale + 50) // 100, 1, 255)
    return out


def estimate_jpeg_quality(im: Image.Image) -> int | None:
    """The libjpeg quality (1..100) whose standard tables best match the image's quantisation tables.

    Encoders using libjpeg's standard scaling (libjpeg(-turbo), Pillow, ImageMagick, browsers' canvas on
    most platforms) match one quality exactly. Custom tables (some cameras, Photoshop, mozjpeg) get the
    quality whose standard tables are nearest in total step size -- the same idea as ImageMagick's
    ``identify -format %Q`` estimate, which compares table sums with those of the standard scaling.
    Returns None when the file has no quantisation table (not a baseline/progressive DCT JPEG).
    """
    tables = getattr(im, "quantization", None)
    if not tables:
        return None
    try:
        luma = np.asarray(list(tables[min(tables)]), dtype=np.int64)
        others = [np.asarray(list(t), dtype=np.int64) for k, t in sorted(tables.items()) if k != min(tables)]
    except Exception:  # malformed table data
        return None
    if luma.shape != (64,) or any(t.shape != (64,) for t in others):
        return None
    std = _scaled_tables()
    # 16-bit precision tables (12-bit JPEGs) scale like 8-bit ones, capped at 255 by baseline libjpeg.
    luma = np.clip(luma, 1, 255)
    error = np.abs(std[:, 0, :] - luma).sum(axis=1)
    total_actual = luma.sum()
    total_std = std[:, 0, :].sum(axis=1)
    for chroma in others:
        chroma = np.clip(chroma, 1, 255)
        error = error + np.abs(std[:, 1, :] - chroma).sum(axis=1)
        total_actual = total_actual + chroma.sum()
        total_std = total_std + std[:, 1, :].sum(axis=1)
    exact = np.flatnonzero(error == 0)
    if exact.size:
        return int(exact[-1]) + 1
    # Nearest total step size; on a tie, the nearer table shape; then the higher quality.
    distance = np.abs(total_std - total_actual)
    order = np.lexsort((-np.arange(100), error, distance))
    return int(order[0]) + 1


# ------------------------------------------------------------------------------------ greyscale


# Channel spread that a grey picture saved as an RGB JPEG can reach through rounding alone.
_MIN_COLOUR_SPREAD = 5.0


def is_grayscale(rgb: RGBImage, settings: Settings) -> bool:
    """True if the image has (almost) no colour anywhere.

    On a subsample of at most ``settings.grayscale_sample_pixels`` pixels, the channel spread
    ``max(R,G,B) - min(R,G,B)`` is measured on pixels bright enough for colour to be visible
    (max channel >= ``grayscale_min_level``; a very dark colour photo is left to the darkness rule).
    The image is greyscale when at most ``grayscale_colour_share`` of those pixels have a spread above
    ``grayscale_max_spread``. A greyscale picture saved as RGB JPEG stays within a spread of about 3
    (rounding in the YCbCr->RGB conversion); skin in a colour photo has a spread of 20..80, and the
    smallest face the normal level accepts covers 4% or more of the image, so a coloured face in a grey
    room is not greyscale. On UTKFace, black-and-white photos have at most 1.9% "coloured" pixels and
    the least colourful colour photo (a dim one) 5%.
    """
    height, width = rgb.shape[:2]
    total = height * width
    if total == 0:
        return True
    step = max(1, int(np.ceil(np.sqrt(total / max(settings.grayscale_sample_pixels, 1)))))
    sample = rgb[::step, ::step]
    # Channel-wise maximum and minimum on the three planes: numpy's max(axis=-1) over a length-3 axis
    # is about ten times slower on a frame-sized sample.
    red, green, blue = sample[..., 0], sample[..., 1], sample[..., 2]
    hi = np.maximum(np.maximum(red, green), blue).ravel()
    lo = np.minimum(np.minimum(red, green), blue).ravel()
    visible = hi >= settings.grayscale_min_level
    count = int(visible.sum())
    if count == 0:
        return False  # all but black: not a colour question
    # Colour scales with exposure: a dim colour photo has proportionally smaller channel differences, so
    # the spread threshold scales with the pixel's brightness (relative to mid-grey), never dropping to
    # the few levels of JPEG rounding noise that a grey picture shows.
    bright = hi[visible].astype(np.float32)
    threshold = np.maximum(settings.grayscale_max_spread * bright / 128.0, _MIN_COLOUR_SPREAD)
    spread = (bright - lo[visible].astype(np.float32)) > threshold
    return float(spread.sum()) <= settings.grayscale_colour_share * count
