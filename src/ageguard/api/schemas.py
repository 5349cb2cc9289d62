"""Request parsing and response shapes of the six endpoints (SPEC.md, "Endpoints").

Bodies are parsed by hand so that every failure maps to its catalogue code; the Pydantic models
below describe the same shapes for OpenAPI only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ageguard.errors import AgeGuardError
from ageguard.vision.types import AssuranceLevel, ValidationLevel

Operator = Literal["OVER", "UNDER"]

DEVICES: tuple[str, ...] = ("mobile", "laptop", "unknown", "any")
VALIDATION_LEVELS: tuple[str, ...] = ("normal", "low")
ASSURANCE_LEVELS: tuple[str, ...] = ("low", "medium", "high")
MIN_THRESHOLD = 1
MAX_THRESHOLD = 120

_NUMERIC = re.compile(r"^\s*[0-9]{1,4}\s*$")


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """What one endpoint runs and accepts."""

    name: str  # allow-list name (ageguard.hub.types.ENDPOINTS)
    path: str  # below /ai/v1
    age: bool
    liveness: bool
    verify: bool = False
    self_checkout: bool = False

    @property
    def accepts_validation_level(self) -> bool:
        return self.age and not self.liveness

    @property
    def summary(self) -> str:
        parts = []
        if self.age:
            parts.append("age check against a threshold" if self.verify else "age estimate")
        if self.liveness:
            parts.append("anti-spoofing verdict")
        return " and ".join(parts).capitalize()


AGE = EndpointSpec("age", "/age", age=True, liveness=False)
ANTISPOOFING = EndpointSpec("antispoofing", "/antispoofing", age=False, liveness=True)
AGE_ANTISPOOFING = EndpointSpec("age-antispoofing", "/age-antispoofing", age=True, liveness=True)
AGE_VERIFY = EndpointSpec("age-verify", "/age-verify", age=True, liveness=False, verify=True)
AGE_ANTISPOOFING_VERIFY = EndpointSpec(
    "age-antispoofing-verify", "/age-antispoofing-verify", age=True, liveness=True, verify=True
)
SELF_CHECKOUT = EndpointSpec(
    "self-checkout", "/self-checkout/age-antispoofing", age=True, liveness=True, self_checkout=True
)
ENDPOINTS: tuple[EndpointSpec, ...] = (
    AGE,
    ANTISPOOFING,
    AGE_ANTISPOOFING,
    AGE_VERIFY,
    AGE_ANTISPOOFING_VERIFY,
    SELF_CHECKOUT,
)


@dataclass(frozen=True, slots=True)
class AnalysisRequest:
    """A parsed, valid request body (the image still base64: decoding is the next step)."""

    img: str
    device: str | None = None
    level: ValidationLevel = "normal"
    assurance: AssuranceLevel = "medium"
    threshold: int | None = None
    operator: Operator | None = None
    secure: dict[str, Any] | None = None


def invalid_field(name: str) -> AgeGuardError:
    return AgeGuardError("INVALID_REQUEST_BODY", f"Request body is invalid, '{name}' field is invalid.")


def _threshold(value: Any) -> int:
    if value is None:
        raise invalid_field("threshold")
    if isinstance(value, bool):
        raise invalid_field("threshold")
    number: int
    if isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and _NUMERIC.match(value)
    ):
        number = int(value)
    else:
        raise invalid_field("threshold")
    if not MIN_THRESHOLD <= number <= MAX_THRESHOLD:
        raise invalid_field("threshold")
    return number


def _operator(value: Any) -> Operator:
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper == "OVER":
            return "OVER"
        if upper == "UNDER":
            return "UNDER"
    raise invalid_field("operator")


def _device(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid_field("metadata")
    device = metadata.get("device")
    if device is None:
        return None
    if isinstance(device, str) and device.strip().lower() in DEVICES:
        return device.strip().lower()
    raise AgeGuardError("INVALID_METADATA_DEVICE")


def _validation_level(body: dict[str, Any], spec: EndpointSpec) -> ValidationLevel:
    if "img_validation_level" not in body or body["img_validation_level"] is None:
        return "normal"
    value = body["img_validation_level"]
    if not spec.accepts_validation_level:
        raise AgeGuardError(
            "INVALID_IMG_VALIDATION_LEVEL",
            "The image validation level may only be used with /age and /age-verify.",
        )
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "low":
            return "low"
        if low == "normal":
            return "normal"
    raise AgeGuardError("INVALID_IMG_VALIDATION_LEVEL")


def _assurance(body: dict[str, Any], spec: EndpointSpec) -> AssuranceLevel:
    value = body.get("level_of_assurance")
    if not spec.liveness or value is None:
        return "medium"
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "low":
            return "low"
        if low == "medium":
            return "medium"
        if low == "high":
            return "high"
    raise AgeGuardError("INVALID_LEVEL_OF_ASSURANCE")


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise AgeGuardError("INVALID_BODY_ENCODING") from exc


def parse_request(raw: bytes, spec: EndpointSpec) -> AnalysisRequest:
    """Validate a body for ``spec``; raise the catalogue error of the first problem found."""
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise AgeGuardError("INVALID_REQUEST_BODY", "Request body is invalid, it must be a JSON object.")
    img = body.get("img")
    if img is None or img == "":
        raise AgeGuardError("IMAGE_NOT_PROVIDED")
    if not isinstance(img, str):
        raise invalid_field("img")
    threshold: int | None = None
    operator: Operator | None = None
    if spec.verify:
        threshold = _threshold(body.get("threshold"))
        operator = _operator(body.get("operator"))
    device = _device(body.get("metadata"))
    level = _validation_level(body, spec)
    assurance = _assurance(body, spec)
    secure = body.get("secure")
    if secure is not None and not isinstance(secure, dict):
        raise invalid_field("secure")
    return AnalysisRequest(
        img=img,
        device=device,
        level=level,
        assurance=assurance,
        threshold=threshold,
        operator=operator,
        secure=secure,
    )


def age_check(age: float, st_dev: float, threshold: int, operator: Operator, max_st_dev: float) -> str:
    """Whether the estimate passes the check; docs/api.md "The age check".

    OVER passes iff ``age >= threshold`` and the estimate is either precise enough (``st_dev <=
    max_st_dev``) or clear of the threshold by two standard deviations (``age - 2 st_dev >= threshold``);
    UNDER likewise with ``age < threshold`` and ``age + 2 st_dev < threshold``. A wide st_dev so fails
    only where it could change the outcome: a 45-year-old with st_dev 7 passes an over-18 check.
    """
    precise = st_dev <= max_st_dev
    if operator == "OVER":
        return "pass" if age >= threshold and (precise or age - 2 * st_dev >= threshold) else "fail"
    return "pass" if age < threshold and (precise or age + 2 * st_dev < threshold) else "fail"


# ------------------------------------------------------------------------------------------- OpenAPI


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Metadata(_Model):
    device: Literal["mobile", "laptop", "unknown", "any"] | None = Field(
        default=None, description="The kind of device that captured the image."
    )


class _ImageRequest(_Model):
    img: str = Field(
        description="Base64 (standard alphabet, padded) of a JPEG or PNG; a data: URL prefix is accepted.",
        min_length=1,
    )
    metadata: Metadata | None = None
    secure: dict[str, Any] | None = Field(
        default=None, description="Secure-capture block; required when the `secure` query flag is true."
    )


class AgeRequest(_ImageRequest):
    img_validation_level: Literal["normal", "low"] | None = Field(
        default=None, description="`low` relaxes the image requirements (age endpoints only)."
    )


class AntispoofingRequest(_ImageRequest):
    level_of_assurance: Literal["low", "medium", "high"] | None = Field(
        default=None, description="Anti-spoofing decision threshold; `medium` when absent."
    )


class _VerifyFields(_Model):
    threshold: int | str = Field(
        description="Age threshold, an integer 1..120 (a numeric string is accepted)."
    )
    operator: str = Field(description="`OVER` or `UNDER`, case-insensitive.", pattern="(?i)^(over|under)$")


class AgeVerifyRequest(AgeRequest, _VerifyFields):
    pass


class AgeAntispoofingVerifyRequest(AntispoofingRequest, _VerifyFields):
    pass


class AgeResult(BaseModel):
    age: float
    st_dev: float


class AntispoofingResult(BaseModel):
    prediction: Literal["real", "fake", "undetermined"]


class AgeCheck(BaseModel):
    age_check: Literal["pass", "fail"]


class AgeResponse(BaseModel):
    age: AgeResult


class AntispoofingResponse(BaseModel):
    antispoofing: AntispoofingResult


class AgeAntispoofingResponse(BaseModel):
    antispoofing: AntispoofingResult
    age: AgeResult


class AgeVerifyResponse(BaseModel):
    age_check: Literal["pass", "fail"]


class AgeAntispoofingVerifyResponse(BaseModel):
    age: AgeCheck
    antispoofing: AntispoofingResult


class ErrorBody(BaseModel):
    error_code: str = Field(description="A code from the error catalogue (docs/errors.md).")
    error_message: str


class HealthBody(BaseModel):
    status: Literal["ok", "unavailable"]
    models: bool = Field(description="Models loaded.")
    store: bool | None = Field(
        description="The Hub store answered a ping just now (`/ready`); null on `/health`, which never asks."
    )
    detail: str | None = Field(
        default=None, description="Why the instance is unavailable (null when `status` is `ok`)."
    )


def request_model(spec: EndpointSpec) -> type[BaseModel]:
    if spec.verify:
        return AgeAntispoofingVerifyRequest if spec.liveness else AgeVerifyRequest
    return AntispoofingRequest if spec.liveness else AgeRequest


def response_model(spec: EndpointSpec) -> type[BaseModel]:
    if spec.verify:
        return AgeAntispoofingVerifyResponse if spec.liveness else AgeVerifyResponse
    if spec.age and spec.liveness:
        return AgeAntispoofingResponse
    return AgeResponse if spec.age else AntispoofingResponse
