"""The error catalogue: the single source of truth for codes, HTTP statuses and messages.

Statuses follow seeds/002 (the newest, fullest table), odd ones included for compatibility.
Codes marked ``extension`` are AgeGuard's own, in the same shape. ``docs/errors.md`` is
generated from this table (``python -m ageguard.errors > docs/errors.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: str
    status: int
    message: str
    extension: bool = False
    #: For AgeGuard's own codes: when the error is answered (rendered in docs/errors.md).
    note: str = ""


_CATALOGUE: tuple[ErrorSpec, ...] = (
    ErrorSpec("APP_NOT_FOUND", 404, "Application app_id not found."),
    ErrorSpec("INVALID_X_YOTI_AUTH_ID", 401, "X-Yoti-Auth-Id header not provided or not a valid uuid."),
    ErrorSpec("INVALID_APP_ID", 400, "Application id cannot be empty."),
    ErrorSpec("INVALID_PUBLIC_KEY", 400, "Application public key cannot be empty."),
    ErrorSpec("DISABLED_APP_STATE", 403, "Application must be enabled."),
    ErrorSpec("INVALID_ORG_ID", 400, "Organisation id cannot be empty."),
    ErrorSpec("INVALID_BILLING_SOURCE_ID", 400, "Application billing source id cannot be empty."),
    ErrorSpec("ORG_NOT_FOUND", 404, "Organisation org_id not found."),
    ErrorSpec("INVALID_YOTI_AUTH_DIGEST", 401, "X-Yoti-Auth-Digest header is missing or not base64 encoded."),
    ErrorSpec("INVALID_NONCE", 401, "Nonce is missing or is not a valid uuid."),
    ErrorSpec("INVALID_TIMESTAMP", 401, "Timestamp is missing or is not a valid unix timestamp."),
    ErrorSpec("INVALID_PUBLIC_KEY_ENCODING", 401, "Failed to load public key. key is not der encoded."),
    ErrorSpec(
        "UNSUPPORTED_ALGORITHM", 401, "Serialised key is of a type that is not supported by the backend."
    ),
    ErrorSpec("INVALID_SIGNATURE", 401, "Failed to verify signature."),
    ErrorSpec("INVALID_ORG_STATUS", 403, "Organisation has an invalid status."),
    ErrorSpec("INVALID_METADATA_DEVICE", 404, "Invalid device metadata provided."),
    ErrorSpec("INVALID_BODY_ENCODING", 400, "Request body should be a valid JSON."),
    ErrorSpec("INVALID_ENDPOINT", 404, "The endpoint request is invalid."),
    ErrorSpec("PAYLOAD_TOO_LARGE", 413, "Payload too large."),
    ErrorSpec("IMAGE_NOT_PROVIDED", 400, "Image has not been provided."),
    ErrorSpec(
        "INVALID_B64_IMAGE", 400, "Base64 image is incorrectly padded or cannot be decoded to an image."
    ),
    ErrorSpec(
        "UNSUPPORTED_IMAGE_FORMAT",
        400,
        "Image format not supported. Please use JPEGs (95 to 100 quality) and PNGs.",
    ),
    ErrorSpec("IMAGE_SIZE_TOO_BIG", 400, "Image size too big, the maximum size is 1.5MB."),
    ErrorSpec("IMAGE_SIZE_TOO_SMALL", 400, "Image size too small, the minimum size is 50KB."),
    ErrorSpec(
        "MIN_HEIGHT", 400, "The image height is incorrect. Image minimum height required is 300 pixels."
    ),
    ErrorSpec(
        "MAX_HEIGHT", 400, "The image height is incorrect. Image maximum height required is 2000 pixels."
    ),
    ErrorSpec("MIN_WIDTH", 400, "The image width is incorrect. Image minimum width required is 300 pixels."),
    ErrorSpec("MAX_WIDTH", 400, "The image width is incorrect. Image maximum width required is 2000 pixels."),
    ErrorSpec(
        "MIN_PIXELS", 400, "To process the image the minimum number of pixels required is 90,000 pixels."
    ),
    ErrorSpec(
        "MAX_PIXELS", 400, "To process the image the maximum number of pixels required is 2,100,000 pixels."
    ),
    ErrorSpec("IMAGE_WRONG_CHANNELS", 400, "Missing colour channel, the input image must be RGB or RGBA."),
    ErrorSpec("IMAGE_GRAYSCALE_NOT_SUPPORTED", 400, "Grayscale images not supported."),
    ErrorSpec("SERVICE_UNAVAILABLE", 503, "The service is temporarily unavailable."),
    ErrorSpec("FACE_NOT_FOUND", 400, "Face not found."),
    ErrorSpec("MULTIPLE_FACES", 400, "Multiple faces in the image provided."),
    ErrorSpec("FACE_BOX_TOO_SMALL", 400, "The face in the image provided is too small."),
    ErrorSpec("FACE_TO_IMAGE_RATIO_TOO_LOW", 400, "Face ratio is lower than the minimum ratio."),
    ErrorSpec("FACE_TO_IMAGE_RATIO_TOO_HIGH", 400, "Face ratio is bigger than the maximum ratio."),
    ErrorSpec(
        "INSUFFICIENT_AREA_AROUND_THE_FACE", 400, "Insufficient area around the face in the image provided."
    ),
    ErrorSpec("IMAGE_TOO_BRIGHT", 400, "Image too bright."),
    ErrorSpec("IMAGE_TOO_DARK", 400, "Image too dark."),
    ErrorSpec("INVALID_LEVEL_OF_ASSURANCE", 400, "Invalid antispoofing level of assurance provided."),
    ErrorSpec("INVALID_REQUEST_BODY", 400, "Request body is invalid, '-' field is invalid."),
    ErrorSpec("INVALID_IMG_VALIDATION_LEVEL", 400, "The image validation level is invalid."),
    ErrorSpec("UNAUTHORIZED", 401, "The X-Yoti-Auth-Id provided isn't authorized to access this resource."),
    ErrorSpec("FAIL_PREDICTION", 500, "Cannot build model result."),
    ErrorSpec("UNSPECIFIED_ERROR", 500, "An internal server error occurred."),
    ErrorSpec("SECURE_REQUEST_IS_EMPTY", 400, "Secure request field is empty."),
    ErrorSpec("SECURE_SESSION_NOT_FOUND", 400, "Secure session not found."),
    ErrorSpec("SECURE_SIGNATURE_NOT_FOUND", 400, "Secure signature not found."),
    ErrorSpec("SECURE_VERSION_NOT_FOUND", 400, "Secure version not found."),
    ErrorSpec("INVALID_SECURE_SIGNATURE", 400, "Failed to verify secure session signature."),
    ErrorSpec("SECURE_VERIFICATION_NOT_FOUND", 400, "Secure verification not found."),
    ErrorSpec("UNTRUSTED_SECURE_SESSION", 400, "Untrusted secure session"),
    ErrorSpec("INVALID_SECURE_SESSION", 401, "Invalid secure session token."),
    # AgeGuard extensions (SPEC.md: new codes in the same shape).
    ErrorSpec(
        "TERMINAL_ID_REQUIRED",
        400,
        "The Terminal-Id header is required on self-checkout endpoints.",
        True,
        "`POST /ai/v1/self-checkout/age-antispoofing` without a `Terminal-Id` header, or with an empty one. "
        "The seeds call the header mandatory for non-browser integrations but list no error for its absence. "
        "Checked after the signature (so the request's nonce is spent: resend with a fresh one); the "
        "terminal need not be registered. Every SDK sets it with its header method "
        "(`withHeader('Terminal-Id', ...)`, `with_header`, `WithHeader`, Go's `Headers` map): docs/sdks.md.",
    ),
    ErrorSpec(
        "METHOD_NOT_ALLOWED",
        405,
        "The HTTP method is not allowed on this endpoint.",
        True,
        "A method other than POST on an analysis endpoint (the seeds define POST only).",
    ),
    ErrorSpec(
        "FILE_NOT_READABLE",
        400,
        "The file could not be read.",
        True,
        "Only from the `ageguard estimate` command line (a path that cannot be read); never over HTTP.",
    ),
)

CATALOGUE: dict[str, ErrorSpec] = {spec.code: spec for spec in _CATALOGUE}


class AgeGuardError(Exception):
    """An error that maps to one catalogue entry; ``detail`` may refine the message."""

    def __init__(self, code: str, detail: str | None = None) -> None:
        if code not in CATALOGUE:
            raise KeyError(f"unknown error code {code!r}")
        self.code = code
        self.spec = CATALOGUE[code]
        self.message = detail or self.spec.message
        super().__init__(f"{code}: {self.message}")

    @property
    def status(self) -> int:
        return self.spec.status

    def to_body(self) -> dict[str, Any]:
        return {"error_code": self.code, "error_message": self.message}


def markdown_table() -> str:
    lines = [
        "# Error catalogue",
        "",
        "Generated from `src/ageguard/errors.py` by `python -m ageguard.errors`; do not edit by hand.",
        'Every error body is `{"error_code": CODE, "error_message": MESSAGE}`.',
        "",
        "| HTTP | code | message | origin |",
        "|---|---|---|---|",
    ]
    for spec in _CATALOGUE:
        origin = "AgeGuard extension" if spec.extension else "Yoti seeds"
        lines.append(f"| {spec.status} | `{spec.code}` | {spec.message} | {origin} |")
    lines += [
        "",
        "## AgeGuard's additions to the seeds' catalogue",
        "",
        "Codes the Yoti seeds do not list, in the same shape, for cases the seeds leave without an error.",
        "",
    ]
    for spec in _CATALOGUE:
        if spec.extension:
            lines.append(f"- `{spec.code}` ({spec.status}, \"{spec.message}\"): {spec.note}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
