"""Every image-requirement code, triggered by images generated in memory (vision/image.py)."""

from __future__ import annotations

import base64
import io
import time
import warnings

import numpy as np
import pytest
from imagegen import (
    animated_png_bytes,
    flat,
    jpeg_bytes,
    jpeg_with_declared_size,
    noise,
    other_format_bytes,
    png16_rgb_bytes,
    png_bytes,
    raw_png,
    rgba_png_bytes,
    textured,
    to_gray_rgb,
)
from PIL import Image

from ageguard.errors import AgeGuardError
from ageguard.settings import ImageLimits, Settings
from ageguard.vision.image import (
    DecodedImage,
    decode,
    decode_base64,
    estimate_jpeg_quality,
    header_size,
    is_grayscale,
)

SETTINGS = Settings()
NORMAL = SETTINGS.normal
LOW = SETTINGS.low
# Every size/quality rule lifted, to test one rule at a time.
OPEN = ImageLimits(
    min_bytes=0,
    max_bytes=10**9,
    min_width=1,
    max_width=10**6,
    min_height=1,
    max_height=10**6,
    min_pixels=1,
    max_pixels=10**12,
    min_jpeg_quality=0,
)


def code_of(data: bytes, limits: ImageLimits = NORMAL, settings: Settings = SETTINGS) -> str:
    with pytest.raises(AgeGuardError) as info:
        decode(data, limits, settings)
    return info.value.code


def valid_jpeg(width: int, height: int, *, seed: int = 0) -> bytes:
    """A colour JPEG of the given size inside the normal byte limits (quality 100 for small, 95 for big)."""
    quality = 100 if width * height < 400_000 else 95
    return jpeg_bytes(
        textured(height, width, seed=seed, noise=4 if width * height < 2_000_000 else 2), quality
    )


# --------------------------------------------------------------------------------------------- base64


class TestBase64:
    def test_round_trip(self) -> None:
        data = valid_jpeg(320, 320)
        assert decode_base64(base64.b64encode(data).decode()) == data

    @pytest.mark.parametrize(
        "prefix",
        [
            "data:image/jpeg;base64,",
            "data:image/png;base64,",
            "DATA:IMAGE/JPEG;BASE64,",
            "data:image/x-foo;base64,",
        ],
    )
    def test_data_url_prefix(self, prefix: str) -> None:
        assert decode_base64(prefix + base64.b64encode(b"abcdef").decode()) == b"abcdef"

    def test_mime_line_breaks_accepted(self) -> None:
        data = bytes(range(256)) * 4
        wrapped = base64.encodebytes(data).decode()  # 76-column lines
        assert "\n" in wrapped
        assert decode_base64(wrapped) == data
        assert decode_base64("  " + base64.b64encode(data).decode() + "\r\n") == data

    @pytest.mark.parametrize("text", ["", "   ", "\n", "data:image/jpeg;base64,", "data:image/png;base64,  "])
    def test_empty_is_not_provided(self, text: str) -> None:
        with pytest.raises(AgeGuardError) as info:
            decode_base64(text)
        assert info.value.code == "IMAGE_NOT_PROVIDED"

    @pytest.mark.parametrize(
        "text",
        [
            "QUJD\x00",
            "QUI",  # padding missing
            "QQ",
            "Q===",
            "QQ==QQ==",  # padding in the middle
            "-_-_",  # URL-safe alphabet
            "QUJD!",
            "data:text/plain;base64,QUJD",  # not an image data URL
            "data:image/jpeg,QUJD",  # not base64 data URL
            "ÄÖÜ=",
        ],
    )
    def test_malformed(self, text: str) -> None:
        with pytest.raises(AgeGuardError) as info:
            decode_base64(text)
        assert info.value.code == "INVALID_B64_IMAGE"

    @pytest.mark.parametrize("value", [None, 12, b"QUJD", ["QUJD"]])
    def test_not_a_string(self, value: object) -> None:
        with pytest.raises(AgeGuardError) as info:
            decode_base64(value)  # type: ignore[arg-type, unused-ignore]
        assert info.value.code == "INVALID_B64_IMAGE"

    def test_base64_of_garbage_is_then_refused_by_decode(self) -> None:
        data = decode_base64(base64.b64encode(b"hello world, not an image").decode())
        assert code_of(data) == "UNSUPPORTED_IMAGE_FORMAT"


# --------------------------------------------------------------------------------------------- accepted


def test_valid_jpeg_and_png_pass_normal() -> None:
    rgb = textured(720, 1280, seed=3)
    out = decode(jpeg_bytes(rgb, 95), NORMAL, SETTINGS)
    assert isinstance(out, DecodedImage)
    assert out.format == "JPEG" and out.jpeg_quality == 95
    assert out.rgb.shape == (720, 1280, 3) and out.rgb.dtype == np.uint8
    assert (out.width, out.height) == (1280, 720)
    assert out.byte_size == len(jpeg_bytes(rgb, 95))

    small = textured(480, 640, seed=4)
    data = png_bytes(small)
    out = decode(data, NORMAL, SETTINGS)
    assert out.format == "PNG" and out.jpeg_quality is None
    np.testing.assert_array_equal(out.rgb, small)  # lossless: the exact pixels


def test_progressive_jpeg_accepted() -> None:
    out = decode(jpeg_bytes(textured(600, 800), 96, progressive=True), NORMAL, SETTINGS)
    assert out.jpeg_quality == 96 and out.rgb.shape == (600, 800, 3)


@pytest.mark.parametrize("subsampling", [0, 1, 2])
def test_chroma_subsampling_does_not_matter(subsampling: int) -> None:
    out = decode(jpeg_bytes(textured(600, 800), 97, subsampling=subsampling), NORMAL, SETTINGS)
    assert out.jpeg_quality == 97


# --------------------------------------------------------------------------------------------- format


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP", "TIFF", "PPM", "ICO"])
def test_other_formats_unsupported(fmt: str) -> None:
    data = other_format_bytes(textured(400, 400), fmt)
    assert code_of(data) == "UNSUPPORTED_IMAGE_FORMAT"
    assert code_of(data, LOW) == "UNSUPPORTED_IMAGE_FORMAT"


@pytest.mark.parametrize(
    "data", [b"\x00", b"hello", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"%PDF-1.7\n" * 9000]
)
def test_not_an_image_unsupported(data: bytes) -> None:
    assert code_of(data) == "UNSUPPORTED_IMAGE_FORMAT"


def test_empty_bytes_not_provided() -> None:
    assert code_of(b"") == "IMAGE_NOT_PROVIDED"


@pytest.mark.parametrize("quality", [50, 75, 90, 94])
def test_low_jpeg_quality_unsupported(quality: int) -> None:
    data = jpeg_bytes(textured(720, 1280, noise=8), quality)
    assert len(data) >= NORMAL.min_bytes  # the byte rule is not what fails
    with pytest.raises(AgeGuardError) as info:
        decode(data, NORMAL, SETTINGS)
    assert info.value.code == "UNSUPPORTED_IMAGE_FORMAT"
    assert str(quality) in info.value.message
    # The relaxed level accepts any quality.
    assert decode(data, LOW, SETTINGS).jpeg_quality == quality


@pytest.mark.parametrize("quality", [95, 98, 100])
def test_high_jpeg_quality_accepted(quality: int) -> None:
    assert decode(jpeg_bytes(textured(720, 1280), quality), NORMAL, SETTINGS).jpeg_quality == quality


def test_quality_estimate_matches_libjpeg_scaling_at_every_quality() -> None:
    rgb = noise(16, 16)
    for quality in range(1, 101):
        with Image.open(io.BytesIO(jpeg_bytes(rgb, quality))) as im:
            assert estimate_jpeg_quality(im) == quality


def test_quality_estimate_for_custom_tables() -> None:
    # Tables that are no libjpeg scaling: roughly "quality 95" (steps ~ 1..6) but with a flat shape.
    flat_fine = [[2] * 64, [3] * 64]
    with Image.open(io.BytesIO(jpeg_bytes(textured(64, 64), qtables=flat_fine))) as im:
        estimate = estimate_jpeg_quality(im)
    assert estimate is not None and 93 <= estimate <= 98
    coarse = [[40] * 64, [60] * 64]
    with Image.open(io.BytesIO(jpeg_bytes(textured(64, 64), qtables=coarse))) as im:
        estimate = estimate_jpeg_quality(im)
    assert estimate is not None and 55 <= estimate <= 75  # steps of 40-60: libjpeg q50 averages 57-83
    data = jpeg_bytes(textured(720, 1280, noise=10), qtables=coarse)
    assert code_of(data, OPEN.model_copy(update={"min_jpeg_quality": 95})) == "UNSUPPORTED_IMAGE_FORMAT"


# --------------------------------------------------------------------------------------------- bytes


def test_image_size_too_small() -> None:
    data = png_bytes(flat(400, 400, (200, 100, 50)))
    assert len(data) < NORMAL.min_bytes
    assert code_of(data) == "IMAGE_SIZE_TOO_SMALL"
    assert decode(data, LOW, SETTINGS).rgb.shape == (400, 400, 3)


def test_image_size_too_big() -> None:
    data = png_bytes(noise(800, 800))
    assert len(data) > NORMAL.max_bytes
    assert code_of(data) == "IMAGE_SIZE_TOO_BIG"
    assert code_of(data, LOW) == "IMAGE_SIZE_TOO_BIG"


def test_byte_limits_are_inclusive() -> None:
    data = valid_jpeg(400, 400)
    exact = OPEN.model_copy(update={"min_bytes": len(data), "max_bytes": len(data)})
    decode(data, exact, SETTINGS)
    assert code_of(data, exact.model_copy(update={"min_bytes": len(data) + 1})) == "IMAGE_SIZE_TOO_SMALL"
    assert code_of(data, exact.model_copy(update={"max_bytes": len(data) - 1})) == "IMAGE_SIZE_TOO_BIG"


def test_messages_name_the_configured_limit() -> None:
    with pytest.raises(AgeGuardError) as info:
        decode(png_bytes(flat(400, 400, (200, 100, 50))), NORMAL, SETTINGS)
    assert info.value.message == "Image size too small, the minimum size is 50KB."
    with pytest.raises(AgeGuardError) as info:
        decode(png_bytes(noise(800, 800)), NORMAL, SETTINGS)
    assert info.value.message == "Image size too big, the maximum size is 1.5MB."


# --------------------------------------------------------------------------------------------- dimensions


@pytest.mark.parametrize(
    ("width", "height", "code"),
    [
        (299, 600, "MIN_WIDTH"),
        (2001, 400, "MAX_WIDTH"),
        (600, 299, "MIN_HEIGHT"),
        (400, 2001, "MAX_HEIGHT"),
        (1500, 1500, "MAX_PIXELS"),
        (2000, 1051, "MAX_PIXELS"),
    ],
)
def test_dimension_codes(width: int, height: int, code: str) -> None:
    data = valid_jpeg(width, height)
    assert NORMAL.min_bytes <= len(data) <= NORMAL.max_bytes
    assert code_of(data) == code


@pytest.mark.parametrize(("width", "height"), [(300, 300), (2000, 1050), (1280, 720), (720, 1280)])
def test_dimension_bounds_are_inclusive(width: int, height: int) -> None:
    assert decode(valid_jpeg(width, height), NORMAL, SETTINGS).rgb.shape == (height, width, 3)


def test_min_pixels() -> None:
    # With the seeds' values 300 x 300 is exactly 90,000, so MIN_PIXELS needs a stricter pixel floor.
    limits = NORMAL.model_copy(update={"min_pixels": 100_000})
    assert code_of(valid_jpeg(300, 320), limits) == "MIN_PIXELS"
    assert decode(valid_jpeg(320, 320), limits, SETTINGS)


def test_low_level_relaxes_dimensions() -> None:
    data = png_bytes(textured(200, 200))
    assert code_of(data) in {"IMAGE_SIZE_TOO_SMALL", "MIN_WIDTH"}
    assert decode(data, LOW, SETTINGS).rgb.shape == (200, 200, 3)
    assert code_of(png_bytes(textured(40, 20)), LOW) == "MIN_WIDTH"  # textured(height, width)
    assert code_of(png_bytes(textured(20, 40)), LOW) == "MIN_HEIGHT"


@pytest.mark.parametrize(
    ("orientation", "size"), [(1, (300, 400)), (3, (300, 400)), (6, (400, 300)), (8, (400, 300))]
)
def test_exif_orientation_applied(orientation: int, size: tuple[int, int]) -> None:
    rgb = textured(300, 400, seed=7)  # stored 400 wide, 300 high
    rgb[:20, :20] = (255, 0, 0)  # a marker in the stored top-left corner
    data = jpeg_bytes(rgb, 100, exif_orientation=orientation)
    out = decode(data, NORMAL, SETTINGS)
    assert out.rgb.shape[:2] == size
    corner = {1: out.rgb[:10, :10], 3: out.rgb[-10:, -10:], 6: out.rgb[:10, -10:], 8: out.rgb[-10:, :10]}[
        orientation
    ]
    assert corner[..., 0].mean() > 200 and corner[..., 1].mean() < 60


def test_dimension_rules_use_the_displayed_orientation() -> None:
    rgb = textured(400, 2001)  # stored 2001 wide: too wide as stored ...
    data = jpeg_bytes(rgb, 95, exif_orientation=6)  # ... but displayed 400 wide, 2001 high
    assert code_of(data) == "MAX_HEIGHT"


# --------------------------------------------------------------------------------------------- channels


@pytest.mark.parametrize("mode", ["L", "LA", "P", "1", "I;16"])
def test_png_without_three_colour_channels(mode: str) -> None:
    data = png_bytes(textured(400, 400), mode=mode)
    assert code_of(data, OPEN) == "IMAGE_WRONG_CHANNELS"
    assert code_of(data, LOW) == "IMAGE_WRONG_CHANNELS"


def test_png_16_bit_grayscale_wrong_channels() -> None:
    gray16 = (np.arange(400 * 400, dtype=np.uint32).reshape(400, 400) * 7 % 65536).astype(np.uint16)
    data = raw_png(400, 400, bit_depth=16, colour_type=0, rows=gray16.astype(">u2").tobytes())
    assert code_of(data, OPEN) == "IMAGE_WRONG_CHANNELS"


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_jpeg_without_three_colour_channels(mode: str) -> None:
    data = jpeg_bytes(textured(720, 1280, noise=6), 95, mode=mode)
    assert len(data) >= NORMAL.min_bytes
    assert code_of(data) == "IMAGE_WRONG_CHANNELS"


def test_rgba_accepted_and_flattened_on_white() -> None:
    rgb = textured(400, 400, seed=9)
    alpha = np.full((400, 400), 255, dtype=np.uint8)
    alpha[:100] = 0
    alpha[100:200] = 128
    out = decode(rgba_png_bytes(rgb, alpha), OPEN, SETTINGS)
    assert out.rgb.shape == (400, 400, 3)
    assert (out.rgb[:100] == 255).all()
    expected = (rgb[100:200].astype(int) * 128 + 255 * 127 + 127) // 255
    assert np.abs(out.rgb[100:200].astype(int) - expected).max() <= 1
    np.testing.assert_array_equal(out.rgb[200:], rgb[200:])


def test_opaque_rgba_is_just_rgb() -> None:
    rgb = textured(400, 400, seed=10)
    np.testing.assert_array_equal(decode(rgba_png_bytes(rgb), OPEN, SETTINGS).rgb, rgb)


def test_png_16_bit_rgb_accepted() -> None:
    rgb = textured(400, 400, seed=11)
    data = png16_rgb_bytes(rgb.astype(np.uint16) * 257)
    out = decode(data, OPEN, SETTINGS)
    assert out.rgb.shape == (400, 400, 3)
    assert np.abs(out.rgb.astype(int) - rgb.astype(int)).max() <= 1


def test_animated_png_uses_the_first_frame() -> None:
    first, second = textured(400, 400, seed=1), textured(400, 400, seed=2)
    out = decode(animated_png_bytes([first, second]), OPEN, SETTINGS)
    np.testing.assert_array_equal(out.rgb, first)


def test_multi_picture_jpeg_uses_the_first_image() -> None:
    # Some phone cameras write MPO: a JPEG followed by more JPEGs (previews, depth maps).
    first, second = textured(720, 1280, seed=1), textured(720, 1280, seed=2)
    buf = io.BytesIO()
    Image.fromarray(first).save(
        buf, "MPO", save_all=True, append_images=[Image.fromarray(second)], quality=95
    )
    out = decode(buf.getvalue(), NORMAL, SETTINGS)
    assert out.format == "JPEG" and out.jpeg_quality == 95
    assert np.abs(out.rgb.astype(int) - first.astype(int)).mean() < 5


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_one_pixel_image(fmt: str) -> None:
    pixel = np.array([[[200, 80, 40]]], dtype=np.uint8)
    data = png_bytes(pixel) if fmt == "png" else jpeg_bytes(pixel, 100)
    assert code_of(data) == "IMAGE_SIZE_TOO_SMALL"
    assert code_of(data, LOW) == "MIN_WIDTH"
    assert decode(data, OPEN, SETTINGS).rgb.shape == (1, 1, 3)


# --------------------------------------------------------------------------------------------- greyscale


def test_grayscale_png() -> None:
    data = png_bytes(to_gray_rgb(textured(480, 640, noise=8)))
    assert len(data) >= NORMAL.min_bytes
    assert code_of(data) == "IMAGE_GRAYSCALE_NOT_SUPPORTED"
    assert code_of(data, LOW) == "IMAGE_GRAYSCALE_NOT_SUPPORTED"


@pytest.mark.parametrize("subsampling", [0, 2])
def test_grayscale_saved_as_colour_jpeg(subsampling: int) -> None:
    # JPEG's YCbCr round trip leaves R, G and B a level or two apart: still greyscale.
    data = jpeg_bytes(to_gray_rgb(textured(720, 1280, noise=6)), 95, subsampling=subsampling)
    assert code_of(data) == "IMAGE_GRAYSCALE_NOT_SUPPORTED"


def test_grey_room_with_a_colour_face_is_colour() -> None:
    rgb = to_gray_rgb(textured(720, 1280, noise=4))
    # A skin patch of 3% of the image; the smallest face `normal` accepts (box 20% of the height, IOD 120)
    # covers 4% of a 2000x1050 image and 10% of a 1280x720 one.
    rgb[300:440, 600:800] = (196, 150, 124)
    out = decode(jpeg_bytes(rgb, 95), NORMAL, SETTINGS)
    assert out.rgb.shape == (720, 1280, 3)


def test_grey_picture_with_a_tiny_colour_logo_is_grayscale() -> None:
    rgb = to_gray_rgb(textured(720, 1280, noise=4))
    rgb[:40, :80] = (255, 0, 0)  # 0.35% of the image
    assert code_of(jpeg_bytes(rgb, 95)) == "IMAGE_GRAYSCALE_NOT_SUPPORTED"


def test_very_dark_colour_photo_is_not_called_grayscale() -> None:
    rgb = (textured(480, 640, seed=5).astype(np.float32) * 0.12).astype(np.uint8)  # all channels < 30
    assert not is_grayscale(rgb, SETTINGS)


def test_is_grayscale_thresholds() -> None:
    gray = to_gray_rgb(textured(100, 100))
    assert is_grayscale(gray, SETTINGS)
    tinted = gray.astype(int)
    tinted[..., 0] += 4  # a faint tint, within JPEG rounding noise
    assert is_grayscale(np.clip(tinted, 0, 255).astype(np.uint8), SETTINGS)
    assert not is_grayscale(textured(100, 100), SETTINGS)
    # A dim colour photo keeps its colour in proportion to its brightness: it is dark, not greyscale.
    dim = (textured(100, 100).astype(np.float32) * 0.25).astype(np.uint8)
    assert not is_grayscale(dim, SETTINGS)
    assert is_grayscale(to_gray_rgb(dim), SETTINGS)
    assert is_grayscale(np.zeros((0, 0, 3), np.uint8), SETTINGS)


# --------------------------------------------------------------------------------------------- corrupt data


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_image_invalid(fmt: str, keep: float) -> None:
    rgb = textured(720, 1280, noise=8)
    data = jpeg_bytes(rgb, 95) if fmt == "jpeg" else png_bytes(rgb)
    cut = data[: int(len(data) * keep)]
    assert len(cut) >= NORMAL.min_bytes
    assert code_of(cut, OPEN) == "INVALID_B64_IMAGE"


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xe0" + b"\x00" * 100,
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
    ],
)
def test_magic_only_invalid(data: bytes) -> None:
    assert code_of(data, OPEN) == "INVALID_B64_IMAGE"


def test_png_bad_crc_invalid() -> None:
    data = bytearray(png_bytes(textured(100, 100)))
    data[29] ^= 0xFF  # inside the IHDR CRC
    assert code_of(bytes(data), OPEN) == "INVALID_B64_IMAGE"


def test_png_missing_pixel_data_invalid() -> None:
    assert code_of(raw_png(500, 500), OPEN) == "INVALID_B64_IMAGE"


# --------------------------------------------------------------------------------------------- bombs


def test_header_size_reads_png_and_jpeg() -> None:
    assert header_size(png_bytes(textured(30, 40))) == (40, 30)
    assert header_size(jpeg_bytes(textured(30, 40), 90, progressive=True)) == (40, 30)
    assert header_size(b"\xff\xd8\xff\xd9") is None
    assert header_size(b"GIF89a") is None


@pytest.mark.parametrize("limits", [NORMAL, LOW, OPEN])
def test_png_bomb_refused_before_decoding(limits: ImageLimits) -> None:
    data = raw_png(100_000, 100_000)  # 10 G pixels declared, 100 bytes on the wire
    start = time.perf_counter()
    assert code_of(data, limits.model_copy(update={"min_bytes": 0})) == "MAX_PIXELS"
    assert time.perf_counter() - start < 1.0


def test_jpeg_bomb_refused_before_decoding() -> None:
    data = jpeg_with_declared_size(jpeg_bytes(textured(64, 64), 95), 60_000, 60_000)
    assert header_size(data) == (60_000, 60_000)
    assert code_of(data, OPEN) == "MAX_PIXELS"


def test_max_decoded_pixels_applies_whatever_the_level() -> None:
    data = raw_png(7000, 7000)  # 49 MP > 40 MP, though OPEN allows any size
    assert code_of(data, OPEN) == "MAX_PIXELS"


def test_pillow_bomb_error_never_escapes() -> None:
    lax = SETTINGS.model_copy(update={"max_decoded_pixels": 10**12})
    # 400 MP: past twice Pillow's MAX_IMAGE_PIXELS, so Image.open itself raises DecompressionBombError.
    assert code_of(raw_png(20_000, 20_000), OPEN, lax) == "MAX_PIXELS"
    # 100 MP: Pillow only warns; with warnings as errors it must still come out as MAX_PIXELS.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert code_of(raw_png(10_000, 10_000), OPEN, lax) == "MAX_PIXELS"


# --------------------------------------------------------------------------------------------- fuzz


def _samples() -> list[bytes]:
    rgb = textured(48, 64, seed=12)
    return [
        jpeg_bytes(rgb, 90),
        jpeg_bytes(rgb, 95, progressive=True),
        jpeg_bytes(rgb, 95, exif_orientation=6),
        jpeg_bytes(rgb, 90, mode="CMYK"),
        png_bytes(rgb),
        png_bytes(rgb, mode="P"),
        rgba_png_bytes(rgb, 100),
        animated_png_bytes([rgb, rgb[::-1].copy()]),
        png16_rgb_bytes(rgb.astype(np.uint16) * 257),
    ]


def _only_agegard_errors(data: bytes) -> None:
    for limits in (OPEN, LOW, NORMAL):
        try:
            out = decode(data, limits, SETTINGS)
        except AgeGuardError:
            continue
        assert out.rgb.dtype == np.uint8 and out.rgb.ndim == 3 and out.rgb.shape[2] == 3


def test_fuzz_random_bytes() -> None:
    rng = np.random.default_rng(1)
    prefixes = [
        b"",
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xc0\x00\x11\x08",
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ]
    for i in range(400):
        body = rng.integers(0, 256, size=int(rng.integers(0, 600)), dtype=np.uint8).tobytes()
        _only_agegard_errors(prefixes[i % len(prefixes)] + body)


def test_fuzz_truncations() -> None:
    for data in _samples():
        for cut in sorted({*range(0, 64), *np.linspace(0, len(data), 40, dtype=int).tolist()}):
            _only_agegard_errors(data[:cut])


def test_fuzz_bit_flips() -> None:
    rng = np.random.default_rng(2)
    for data in _samples():
        for _ in range(60):
            corrupt = bytearray(data)
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 6))):
                corrupt[int(pos)] = int(rng.integers(0, 256))
            _only_agegard_errors(bytes(corrupt))
