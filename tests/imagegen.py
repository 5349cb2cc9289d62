"""Test images generated in memory, shared by the image, face, API and capture tests.

Nothing here touches the disk except reading the one vendored face, ``tests/data/astronaut_head.jpg``:
a 235x300 crop of scikit-image's ``astronaut`` (NASA photograph of Eileen Collins, public domain),
rows 0-300 and columns 110-345 of the 512x512 original, saved as JPEG quality 97.

Typical use::

    from imagegen import centred_box, face_canvas, jpeg_bytes

    rgb = face_canvas(1280, 720, centred_box(1280, 720, 360))  # one real face, 360 px box high
    data = jpeg_bytes(rgb, quality=95)                          # passes every `normal` image rule

``face_canvas`` places the face so that RetinaFace's box lands on the requested box (to within a few
per cent); ``FACE_BOX_TO_IOD`` says how big a box is for a wanted inter-ocular distance.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

RGBImage = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]

HEAD_PATH = Path(__file__).parent / "data" / "astronaut_head.jpg"
# RetinaFace (mobilenet0.25) on the vendored crop: box and five landmarks (right eye, left eye, nose,
# mouth right, mouth left), measured once; inter-ocular distance 43.3 px.
HEAD_FACE_BOX: Box = (68.6, 57.6, 162.0, 177.0)
HEAD_LANDMARKS = ((94.1, 100.3), (137.2, 103.7), (112.5, 129.8), (90.5, 137.6), (133.6, 140.6))
# Detector box height over inter-ocular distance for this face (119.4 / 43.3).
FACE_BOX_TO_IOD = 2.76

SKIN = (196, 150, 124)


# ----------------------------------------------------------------------------------------- canvases


def textured(height: int, width: int, *, seed: int = 0, noise: float = 4.0, cells: int = 6) -> RGBImage:
    """A colourful smooth background with sensor-like noise (so JPEGs have a realistic byte size)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 216, size=(cells, cells, 3), dtype=np.uint8)
    base = np.asarray(
        Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32
    )
    if noise:
        base += rng.normal(0.0, noise, size=base.shape).astype(np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)


def flat(height: int, width: int, colour: Sequence[int] = (128, 128, 128)) -> RGBImage:
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[...] = np.asarray(colour, dtype=np.uint8)
    return out


def noise(height: int, width: int, *, seed: int = 0) -> RGBImage:
    """Uniform RGB noise: incompressible, for byte-size limits."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def to_gray_rgb(rgb: RGBImage) -> RGBImage:
    """The same picture with R = G = B (BT.601 luma)."""
    luma = np.clip(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32), 0, 255)
    return np.repeat(luma.round().astype(np.uint8)[..., None], 3, axis=2)


def skin_canvas(
    width: int, height: int, face_box: Box, *, luma: float | None = None, seed: int = 0
) -> RGBImage:
    """A textured canvas with a skin-coloured ellipse filling ``face_box`` (for hand-made Face objects).

    With ``luma`` the ellipse is scaled to that mean BT.601 luma (0..255).
    """
    canvas = textured(height, width, seed=seed)
    left, top, right, bottom = face_box
    colour = np.asarray(SKIN, dtype=np.float32)
    if luma is not None:
        base = float(colour @ np.array([0.299, 0.587, 0.114]))
        if luma <= base:
            colour = colour * (luma / base)
        else:  # towards white, so no channel clips and the luma is exact
            colour = colour + (255.0 - colour) * ((luma - base) / (255.0 - base))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    rx, ry = max((right - left) / 2, 1), max((bottom - top) / 2, 1)
    inside = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.6  # covers the box corners too
    canvas[inside] = np.clip(colour, 0, 255).round().astype(np.uint8)
    return canvas


# ----------------------------------------------------------------------------------------- real faces


@lru_cache(maxsize=1)
def head() -> RGBImage:
    """The vendored face crop (235x300 RGB), read-only."""
    with Image.open(HEAD_PATH) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    arr.flags.writeable = False
    return arr


def centred_box(width: int, height: int, face_height: float, *, dx: float = 0.0, dy: float = 0.0) -> Box:
    """A face box ``face_height`` high (detector proportions), centred in the image, shifted by dx, dy."""
    src_l, src_t, src_r, src_b = HEAD_FACE_BOX
    face_width = face_height * (src_r - src_l) / (src_b - src_t)
    cx, cy = width / 2 + dx, height / 2 + dy
    return (cx - face_width / 2, cy - face_height / 2, cx + face_width / 2, cy + face_height / 2)


def box_for_iod(iod: float) -> float:
    """Face box height giving an inter-ocular distance of about ``iod`` pixels."""
    return iod * FACE_BOX_TO_IOD


def face_canvas(
    width: int,
    height: int,
    face_box: Box | None,
    *,
    more_faces: Sequence[Box] = (),
    brightness: float | None = None,
    background: RGBImage | None = None,
    seed: int = 0,
) -> RGBImage:
    """A ``width`` x ``height`` RGB image with the real face placed so its detector box is ``face_box``.

    - ``face_box=None`` gives a canvas with no face; ``more_faces`` adds further copies (other boxes).
    - The head (face, hair, some neck and background) is blended in with a soft elliptical edge, and
      may extend past the image edge (a box near the border yields a cut-off face).
    - ``brightness``: the target mean luma (0..255) of the main face's central region, reached by a gamma
      curve over the whole image (a dim or over-exposed capture), so features survive for the detector.
    """
    canvas = (textured(height, width, seed=seed) if background is None else background.copy()).astype(
        np.float32
    )
    boxes = ([face_box] if face_box is not None else []) + list(more_faces)
    for box in boxes:
        _paste_head(canvas, box)
    out = np.clip(canvas, 0, 255).round().astype(np.uint8)
    if brightness is not None and face_box is not None:
        out = _gamma_to(out, face_box, brightness)
    return out


def _paste_head(canvas: npt.NDArray[np.float32], box: Box) -> None:
    src = head().astype(np.float32)
    sl, st, sr, sb = HEAD_FACE_BOX
    left, top, right, bottom = box
    scale = (bottom - top) / (sb - st)
    # Destination of the whole crop.
    dst_w = max(int(round(src.shape[1] * scale)), 1)
    dst_h = max(int(round(src.shape[0] * scale)), 1)
    scaled = np.asarray(
        Image.fromarray(src.round().astype(np.uint8)).resize((dst_w, dst_h), Image.Resampling.BICUBIC),
        dtype=np.float32,
    )
    ox = (left + right) / 2 - (sl + sr) / 2 * scale
    oy = (top + bottom) / 2 - (st + sb) / 2 * scale
    x0, y0 = int(round(ox)), int(round(oy))
    # Soft elliptical alpha around the face: hair and neck included, crop corners excluded.
    yy, xx = np.mgrid[0:dst_h, 0:dst_w].astype(np.float32)
    fcx, fcy = (sl + sr) / 2 * scale, (st + sb) / 2 * scale
    rx, ry = 0.95 * (sr - sl) * scale, 1.0 * (sb - st) * scale
    r = np.sqrt(((xx - fcx) / rx) ** 2 + ((yy - fcy) / ry) ** 2)
    alpha = np.clip((1.0 - r) / 0.15, 0.0, 1.0)[..., None]
    # Clip the paste to the canvas.
    h, w = canvas.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + dst_w, w), min(y0 + dst_h, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    sx0, sy0 = cx0 - x0, cy0 - y0
    sx1, sy1 = sx0 + (cx1 - cx0), sy0 + (cy1 - cy0)
    a = alpha[sy0:sy1, sx0:sx1]
    region = canvas[cy0:cy1, cx0:cx1]
    canvas[cy0:cy1, cx0:cx1] = region * (1 - a) + scaled[sy0:sy1, sx0:sx1] * a


def _region_luma(rgb: npt.NDArray[np.float32], box: Box) -> float:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    x0, x1 = int(max(left + 0.2 * w, 0)), int(min(right - 0.2 * w, rgb.shape[1]))
    y0, y1 = int(max(top + 0.15 * h, 0)), int(min(bottom - 0.15 * h, rgb.shape[0]))
    region = rgb[y0:y1, x0:x1]
    return float((region @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).mean())


def _gamma_to(rgb: RGBImage, box: Box, target: float) -> RGBImage:
    norm = rgb.astype(np.float32) / 255.0
    lo, hi = np.log(0.02), np.log(50.0)  # log gamma bounds
    out = rgb
    for _ in range(40):
        mid = (lo + hi) / 2
        out = np.clip(np.power(norm, np.exp(mid)) * 255.0, 0, 255)
        if _region_luma(out, box) > target:
            lo = mid  # too bright: larger gamma darkens
        else:
            hi = mid
    return np.asarray(np.clip(out, 0, 255).round(), dtype=np.uint8)


# ----------------------------------------------------------------------------------------- encoders


def jpeg_bytes(
    rgb: RGBImage | Image.Image,
    quality: int = 95,
    *,
    progressive: bool = False,
    subsampling: int | None = None,
    exif_orientation: int | None = None,
    mode: str | None = None,
    qtables: list[list[int]] | None = None,
) -> bytes:
    """JPEG bytes of ``rgb`` (``mode`` converts first: "L", "CMYK"...)."""
    im = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    if mode is not None:
        im = im.convert(mode)
    kwargs: dict[str, object] = {"progressive": progressive}
    if qtables is not None:
        kwargs["qtables"] = qtables
    else:
        kwargs["quality"] = quality
    if subsampling is not None:
        kwargs["subsampling"] = subsampling
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def png_bytes(rgb: RGBImage | Image.Image, *, mode: str | None = None, compress_level: int = 6) -> bytes:
    """PNG bytes of ``rgb`` (``mode`` converts first: "L", "LA", "P", "RGBA", "I;16"...)."""
    im = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    if mode is not None:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=compress_level)
    return buf.getvalue()


def rgba_png_bytes(rgb: RGBImage, alpha: npt.NDArray[np.uint8] | int = 255) -> bytes:
    a = np.broadcast_to(np.asarray(alpha, dtype=np.uint8), rgb.shape[:2])
    return png_bytes(Image.fromarray(np.dstack([rgb, a]).astype(np.uint8), "RGBA"))


def animated_png_bytes(frames: Sequence[RGBImage]) -> bytes:
    ims = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    ims[0].save(buf, "PNG", save_all=True, append_images=ims[1:], duration=100, loop=0)
    return buf.getvalue()


def other_format_bytes(rgb: RGBImage, fmt: str) -> bytes:
    """``rgb`` encoded as GIF, BMP, WEBP, TIFF... (anything Pillow writes)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def raw_png(
    width: int, height: int, *, bit_depth: int = 8, colour_type: int = 2, rows: bytes | None = None
) -> bytes:
    """A PNG written by hand: any declared size, bit depth and colour type; ``rows`` are the
    unfiltered scanlines (a filter byte 0 is added to each); None gives a tiny IDAT that does not
    hold the declared pixels (for bomb headers)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    if rows is None:
        idat = zlib.compress(b"\x00" * 64)
    else:
        channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
        stride = width * channels * bit_depth // 8
        lines = [b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(height)]
        idat = zlib.compress(b"".join(lines))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png16_rgb_bytes(rgb16: npt.NDArray[np.uint16]) -> bytes:
    """A 48-bit (16 bits per channel) RGB PNG."""
    h, w = rgb16.shape[:2]
    return raw_png(w, h, bit_depth=16, colour_type=2, rows=rgb16.astype(">u2").tobytes())


def jpeg_with_declared_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` (a JPEG) with its frame header patched to declare ``width`` x ``height``."""
    out = bytearray(data)
    pos = 2
    while pos < len(out):
        marker = out[pos + 1]
        length = (out[pos + 2] << 8) | out[pos + 3]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            out[pos + 5 : pos + 9] = struct.pack(">HH", height, width)
            return bytes(out)
        pos += 2 + length
    raise ValueError("no frame header")
