"""Capture checks: the server's own image and face rules, applied to the frames of a live capture.

Two kinds of check, both without estimation and without keeping the image:

- :func:`check_preview`: a small preview frame (say 640x360) of a capture that will be taken at
  ``full_width`` x ``full_height``. The face rules are the server's (:mod:`ageguard.vision.faces`) at the
  requested validation level, with the one absolute limit (the inter-ocular distance, in pixels) scaled
  to the preview; the others (face-to-image ratio, margin, brightness, one face) do not depend on
  scale. The capture's size is checked against the level's width, height and pixel limits. Every
  failed rule is listed, in the server's order, so the page can say what to fix.
- :func:`check_final`: the full-resolution capture, through exactly what ``/ai/v1/age`` runs before it
  estimates (:meth:`ageguard.vision.pipeline.Pipeline.check`): format, JPEG quality, size and face rules.

``guidance`` names the first thing to fix, for the module's plain-language messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ageguard.errors import AgeGuardError
from ageguard.settings import ImageLimits, Settings
from ageguard.vision import faces as face_rules
from ageguard.vision.image import decode
from ageguard.vision.types import Face, RGBImage, ValidationLevel

#: Catalogue code -> what the person should do (the module turns these into sentences).
GUIDANCE: dict[str, str] = {
    "FACE_NOT_FOUND": "no_face",
    "MULTIPLE_FACES": "several_faces",
    "FACE_BOX_TOO_SMALL": "move_closer",
    "FACE_TO_IMAGE_RATIO_TOO_LOW": "move_closer",
    "FACE_TO_IMAGE_RATIO_TOO_HIGH": "move_back",
    "INSUFFICIENT_AREA_AROUND_THE_FACE": "centre",
    "IMAGE_TOO_DARK": "too_dark",
    "IMAGE_TOO_BRIGHT": "too_bright",
    "IMAGE_GRAYSCALE_NOT_SUPPORTED": "colour",
    "IMAGE_WRONG_CHANNELS": "colour",
    "MIN_WIDTH": "camera_resolution",
    "MIN_HEIGHT": "camera_resolution",
    "MIN_PIXELS": "camera_resolution",
    "MAX_WIDTH": "camera_resolution",
    "MAX_HEIGHT": "camera_resolution",
    "MAX_PIXELS": "camera_resolution",
}
#: Anything else the final check can refuse (size in bytes, format, quality): the capture itself.
CAPTURE_PROBLEM = "capture_problem"
GOOD = "good"


@dataclass(frozen=True, slots=True)
class FrameCheck:
    """The verdict on one frame: ``issues`` are catalogue codes in rule order ([] when it passes)."""

    issues: list[str]
    guidance: str
    # The main face's box, as fractions of the frame's width and height (left, top, right, bottom).
    face: tuple[float, float, float, float] | None = None
    measures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.issues

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "issues": list(self.issues), "guidance": self.guidance}
        if self.face is not None:
            left, top, right, bottom = self.face
            out["face"] = {"left": left, "top": top, "right": right, "bottom": bottom}
        if self.measures:
            out["measures"] = dict(self.measures)
        return out


def guidance_for(issues: list[str], face: Face | None, width: int, height: int, limits: ImageLimits) -> str:
    """The first thing to fix. A margin failure is "move back" when even a centred face of this size
    would lack the margin (too close), else "centre"."""
    if not issues:
        return GOOD
    first = issues[0]
    if first == "INSUFFICIENT_AREA_AROUND_THE_FACE" and face is not None:
        w, h = max(face.width, 1e-6), max(face.height, 1e-6)
        centred = min((width - w) / 2 / w, (height - h) / 2 / h)
        if centred < limits.min_face_margin:
            return "move_back"
    return GUIDANCE.get(first, CAPTURE_PROBLEM)


def size_issues(width: int, height: int, limits: ImageLimits) -> list[str]:
    """The level's width, height and pixel-count rules for a capture of ``width`` x ``height``."""
    issues: list[str] = []
    if width < limits.min_width:
        issues.append("MIN_WIDTH")
    elif width > limits.max_width:
        issues.append("MAX_WIDTH")
    if height < limits.min_height:
        issues.append("MIN_HEIGHT")
    elif height > limits.max_height:
        issues.append("MAX_HEIGHT")
    pixels = width * height
    if pixels < limits.min_pixels:
        issues.append("MIN_PIXELS")
    elif pixels > limits.max_pixels:
        issues.append("MAX_PIXELS")
    return issues


def detect_faces(pipeline: Any, image: RGBImage) -> list[Face]:
    """The pipeline's face detector on ``image`` (no estimation)."""
    found: list[Face] = pipeline.detect_faces(image)
    return found


def preview_limits(limits: ImageLimits, scale: float) -> ImageLimits:
    """``limits`` for a preview ``scale`` times smaller than the capture: absolute face sizes scaled."""
    return limits.model_copy(update={"min_interocular_px": limits.min_interocular_px / scale})


def check_preview(
    pipeline: Any,
    settings: Settings,
    data: bytes,
    full_width: int,
    full_height: int,
    *,
    level: ValidationLevel = "normal",
    aspect_tolerance: float = 0.03,
    max_preview_pixels: int = 1280 * 720,
) -> FrameCheck:
    """Check a preview frame of a ``full_width`` x ``full_height`` capture (see the module docstring).

    Raises :class:`AgeGuardError` for input that is not a usable preview (undecodable, larger than
    ``max_preview_pixels`` or the capture, or of another aspect ratio than the capture).
    """
    if full_width <= 0 or full_height <= 0:
        raise AgeGuardError("INVALID_REQUEST_BODY", "Request body is invalid, 'width' field is invalid.")
    # The relaxed level's decode: previews are small and moderately compressed on purpose.
    try:
        image = decode(data, settings.low, settings).rgb
    except AgeGuardError as exc:
        if exc.code != "IMAGE_GRAYSCALE_NOT_SUPPORTED":  # a camera filter: something the person can fix
            raise
        return FrameCheck([exc.code], GUIDANCE[exc.code])
    ph, pw = image.shape[:2]
    if pw * ph > max_preview_pixels or pw > full_width or ph > full_height:
        raise AgeGuardError("INVALID_REQUEST_BODY", "The preview frame must be smaller than the capture.")
    aspect_preview, aspect_full = pw / ph, full_width / full_height
    if abs(aspect_preview - aspect_full) > aspect_tolerance * aspect_full:
        raise AgeGuardError("INVALID_REQUEST_BODY", "The preview frame must have the capture's aspect ratio.")
    limits = settings.limits(level)
    scaled = preview_limits(limits, full_width / pw)

    issues = size_issues(full_width, full_height, limits)
    faces = detect_faces(pipeline, image)
    main: Face | None = None
    try:
        main = face_rules.select_face(faces, image, scaled, settings)
    except AgeGuardError as exc:
        if exc.code in ("FACE_NOT_FOUND", "MULTIPLE_FACES"):
            issues.append(exc.code)
        else:  # one face: list every geometry and lighting rule it fails
            candidates = [f for f in faces if f.score >= settings.detection_score and f.area > 0]
            main = max(candidates, key=lambda f: f.area)
            issues.extend(face_rules.face_issues(main, image, scaled))
    measures: dict[str, float] = {}
    box: tuple[float, float, float, float] | None = None
    if main is not None:
        left, top, right, bottom = main.box
        box = (left / pw, top / ph, right / pw, bottom / ph)
        measures = {
            "ratio": round(face_rules.face_ratio(main, ph), 4),
            "margin": round(face_rules.face_margin(main, pw, ph), 4),
            "brightness": round(face_rules.face_brightness(main, image), 1),
            "interocular_px": round(main.interocular * full_width / pw, 1),
        }
    return FrameCheck(issues, guidance_for(issues, main, pw, ph, limits), box, measures)


def check_final(pipeline: Any, data: bytes, *, level: ValidationLevel = "normal") -> FrameCheck:
    """Run the capture through the validator ``/ai/v1/age`` runs (first failure only, as the API)."""
    try:
        check = getattr(pipeline, "check", None)
        if callable(check):
            check(data, level=level)
        else:
            pipeline.analyse(data, level=level, age=False, liveness=False)
    except AgeGuardError as exc:
        if exc.code in ("SERVICE_UNAVAILABLE", "FAIL_PREDICTION", "UNSPECIFIED_ERROR"):
            raise
        return FrameCheck([exc.code], GUIDANCE.get(exc.code, CAPTURE_PROBLEM))
    return FrameCheck([], GOOD)
