"""The vision pipeline end to end: real models, generated captures, the catalogue codes it raises."""

from __future__ import annotations

import io

import numpy as np
import pytest
from imagegen import centred_box, face_canvas, jpeg_bytes
from PIL import Image, ImageFilter

from ageguard.errors import AgeGuardError
from ageguard.settings import get_settings
from ageguard.vision.age.ensemble import AgeCalibration, distribution_mean_std
from ageguard.vision.pipeline import Pipeline


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    pipe = Pipeline(get_settings())
    pipe.load(liveness=False)
    return pipe


def test_a_good_capture_gets_a_plausible_age(pipeline: Pipeline, capture_jpeg: bytes) -> None:
    analysis = pipeline.analyse(capture_jpeg)
    assert analysis.age is not None
    # The astronaut (Eileen Collins) was about 42 in this NASA portrait; both networks say the 30s.
    assert 28.0 <= analysis.age.age <= 45.0
    # The test face is a 300 px portrait scaled up about 1.6x, so it reads as slightly blurred: its st_dev
    # is honest about that (a sharp capture of an adult in her 30s gets about 4-6).
    assert 1.0 <= analysis.age.st_dev <= 2 * get_settings().max_st_dev
    assert {"decode", "detect", "validate", "age"} <= set(analysis.timings_ms)
    assert any(key.startswith("net:") for key in analysis.timings_ms)


def test_results_are_deterministic(pipeline: Pipeline, capture_jpeg: bytes) -> None:
    first, second = pipeline.analyse(capture_jpeg).age, pipeline.analyse(capture_jpeg).age
    assert first == second


def test_no_face_is_face_not_found(pipeline: Pipeline) -> None:
    rng = np.random.default_rng(1)
    flat = np.clip(120 + rng.normal(0, 30, (720, 1280, 3)), 0, 255).astype(np.uint8)
    with pytest.raises(AgeGuardError) as info:
        pipeline.analyse(jpeg_bytes(flat, quality=95))
    assert info.value.code == "FACE_NOT_FOUND"


def test_low_validation_accepts_a_small_crop_that_normal_refuses(pipeline: Pipeline) -> None:
    small = jpeg_bytes(face_canvas(240, 240, centred_box(240, 240, 150)), quality=90)
    with pytest.raises(AgeGuardError) as info:
        pipeline.analyse(small, level="normal")
    assert info.value.code in {"IMAGE_SIZE_TOO_SMALL", "MIN_WIDTH", "UNSUPPORTED_IMAGE_FORMAT"}
    assert pipeline.analyse(small, level="low").age is not None


def test_check_validates_without_estimating(pipeline: Pipeline, capture_jpeg: bytes) -> None:
    pipeline.check(capture_jpeg)
    with pytest.raises(AgeGuardError):
        pipeline.check(b"not an image")


def _degraded(data: bytes, how: str) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if how == "blur":
        image = image.filter(ImageFilter.GaussianBlur(6))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=97)
    return out.getvalue()


def test_a_blurred_face_gets_a_larger_st_dev(pipeline: Pipeline, capture_jpeg: bytes) -> None:
    sharp = pipeline.analyse(capture_jpeg).age
    blurred = pipeline.analyse(_degraded(capture_jpeg, "blur")).age
    assert sharp is not None and blurred is not None
    assert blurred.st_dev > sharp.st_dev * 1.2


def test_quality_factor_grows_for_dark_and_turned_faces() -> None:
    cal = AgeCalibration.load()
    good = {"sharpness": 10 * cal.blur_ref, "brightness": 130.0, "yaw": 0.0}
    assert cal.quality_factor(good) == pytest.approx(1.0)
    assert cal.quality_factor({**good, "brightness": 30.0}) > 1.3
    assert cal.quality_factor({**good, "yaw": 0.6}) > 1.3
    assert cal.quality_factor({**good, "sharpness": cal.blur_ref / 20}) > 1.3


def test_distribution_moments() -> None:
    probs = np.zeros(100)
    probs[[19, 29]] = 0.5  # ages 20 and 30
    mean, std = distribution_mean_std(probs)
    assert mean == pytest.approx(25.0)
    assert std == pytest.approx(5.0)
