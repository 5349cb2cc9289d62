"""Capture guidance runs the server's own rules: a preview frame gets the verdict its full-size capture
gets from the API's validator (one source of truth), with every failed rule listed for the page."""

from __future__ import annotations

import numpy as np
import pytest
from capture_helpers import jpeg
from facescene import background, scene

from ageguard.capture.guidance import check_final, check_preview, preview_limits, size_issues
from ageguard.errors import AgeGuardError
from ageguard.settings import Settings
from ageguard.vision.pipeline import Pipeline

SETTINGS = Settings()


def preview_of(rgb: np.ndarray, width: int = 640) -> bytes:
    h, w = rgb.shape[:2]
    return jpeg(rgb, 85, (width, round(width * h / w)))


def check(pipeline: Pipeline, rgb: np.ndarray, width: int = 640, level: str = "normal") -> dict:
    h, w = rgb.shape[:2]
    return check_preview(pipeline, SETTINGS, preview_of(rgb, width), w, h, level=level).as_json()  # type: ignore[arg-type]


SCENES = {
    "good": ({}, [], "good"),
    "far": ({"iod": 95}, ["FACE_BOX_TOO_SMALL"], "move_closer"),
    "close": ({"iod": 235}, ["FACE_TO_IMAGE_RATIO_TOO_HIGH"], "move_back"),
    "off_centre": ({"cx": 0.12}, ["INSUFFICIENT_AREA_AROUND_THE_FACE"], "centre"),
    "high": ({"cy": 0.22}, ["INSUFFICIENT_AREA_AROUND_THE_FACE"], "centre"),
    "dark": ({"gain": 0.2}, ["IMAGE_TOO_DARK"], "too_dark"),
    "bright": ({"gain": 1.9}, ["IMAGE_TOO_BRIGHT"], "too_bright"),
}


@pytest.mark.parametrize("name", list(SCENES))
def test_preview_verdict_matches_the_api_validator(capture_pipeline: Pipeline, name: str) -> None:
    kwargs, first, guidance = SCENES[name]
    rgb = scene(**kwargs)
    result = check(capture_pipeline, rgb)
    assert result["issues"][:1] == first and result["guidance"] == guidance, result
    assert result["ok"] is (not first)
    # The full-size capture, through exactly what /ai/v1/age runs, fails on the same first rule.
    final = check_final(capture_pipeline, jpeg(rgb, 95))
    assert final.issues == first


@pytest.mark.parametrize("width", [320, 480, 640])
def test_preview_size_does_not_change_the_verdict(capture_pipeline: Pipeline, width: int) -> None:
    """The absolute rule (inter-ocular distance) is scaled to the preview: just above and just below the
    limit come out the same whatever the preview size."""
    assert check(capture_pipeline, scene(iod=135), width)["ok"]
    assert check(capture_pipeline, scene(iod=105), width)["issues"] == ["FACE_BOX_TOO_SMALL"]
    measured = check(capture_pipeline, scene(iod=150), width)["measures"]["interocular_px"]
    assert measured == pytest.approx(150, rel=0.08)  # reported at the capture's scale


def test_every_failed_rule_is_listed(capture_pipeline: Pipeline) -> None:
    result = check(capture_pipeline, scene(iod=235, gain=0.2))
    assert result["issues"] == [
        "FACE_TO_IMAGE_RATIO_TOO_HIGH",
        "INSUFFICIENT_AREA_AROUND_THE_FACE",
        "IMAGE_TOO_DARK",
    ]
    face = result["face"]
    assert 0 <= face["left"] < face["right"] <= 1.1 and face["top"] < face["bottom"]


def test_no_face_and_several_faces(capture_pipeline: Pipeline) -> None:
    none = check(capture_pipeline, background(1280, 720))
    assert none == {"ok": False, "issues": ["FACE_NOT_FOUND"], "guidance": "no_face"}
    two = np.hstack([scene(iod=110, cx=0.25)[:, :640], scene(iod=110, cx=0.75)[:, 640:]])
    assert check(capture_pipeline, two)["issues"] == ["MULTIPLE_FACES"]
    assert check(capture_pipeline, two)["guidance"] == "several_faces"


def test_portrait_capture(capture_pipeline: Pipeline) -> None:
    rgb = scene(720, 1280, iod=150)
    result = check(capture_pipeline, rgb, 360)
    assert result["ok"], result


def test_capture_size_rules(capture_pipeline: Pipeline) -> None:
    limits = SETTINGS.normal
    assert size_issues(1280, 720, limits) == []
    assert size_issues(200, 150, limits) == ["MIN_WIDTH", "MIN_HEIGHT", "MIN_PIXELS"]
    assert size_issues(3840, 2160, limits) == ["MAX_WIDTH", "MAX_HEIGHT", "MAX_PIXELS"]
    rgb = scene(1280, 720)
    tiny = check_preview(capture_pipeline, SETTINGS, preview_of(rgb, 320), 320, 180)
    assert tiny.issues[:1] == ["MIN_HEIGHT"] and tiny.guidance == "camera_resolution"
    assert preview_limits(limits, 2.0).min_interocular_px == limits.min_interocular_px / 2
    assert preview_limits(limits, 2.0).min_face_ratio == limits.min_face_ratio


def test_low_level_relaxes_the_rules(capture_pipeline: Pipeline) -> None:
    rgb = scene(iod=95, cx=0.12)
    assert not check(capture_pipeline, rgb)["ok"]
    assert check(capture_pipeline, rgb, level="low")["ok"]


def test_unusable_previews_are_refused(capture_pipeline: Pipeline) -> None:
    rgb = scene()
    with pytest.raises(AgeGuardError) as info:  # another aspect ratio than the capture
        check_preview(capture_pipeline, SETTINGS, preview_of(rgb), 1000, 1000)
    assert info.value.code == "INVALID_REQUEST_BODY"
    with pytest.raises(AgeGuardError) as info:  # larger than the capture
        check_preview(capture_pipeline, SETTINGS, jpeg(rgb, 85), 640, 360)
    assert info.value.code == "INVALID_REQUEST_BODY"
    with pytest.raises(AgeGuardError) as info:
        check_preview(capture_pipeline, SETTINGS, b"not an image", 1280, 720)
    assert info.value.code == "UNSUPPORTED_IMAGE_FORMAT"
