"""Secure capture, version 1: evidence that an image came through the capture module in a live session.

Flow (threat model and limits: docs/secure-capture.md):

1. The relying party's backend opens a session with a signed request (``POST /ai/v1/capture/sessions``)
   and gets ``token`` and ``key`` (32 random bytes, base64url) for its page. The server stores the
   session (SHA-256 of the token, the key, counters) in the Hub database, so every worker sees it.
2. The page's capture module sends its preview frames to ``/capture/check`` with the token; the
   server counts checked and passing frames. The capture itself goes through a final check at full
   resolution, and the server records the SHA-256 of the capture that passed.
3. The module signs the capture::

       verification = base64url(JSON of the capture facts: nonce, frames, times, size)
       message      = "ageguard-secure-capture/1\\n" + token + "\\n" + hex(sha256(image bytes))
                      + "\\n" + verification
       signature    = base64url(HMAC-SHA256(key, message))

   and hands ``{"version": 1, "token", "signature", "verification"}`` to the page with the image.
4. The backend sends the image to an analysis endpoint with ``?secure=true`` and that block as
   ``secure``. :func:`verify_secure` checks it; a session is consumed by the first request whose
   signature verifies, so a capture is accepted at most once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from ageguard.capture.config import CaptureSettings, get_capture_settings
from ageguard.errors import AgeGuardError
from ageguard.hub.capture_sessions import CaptureSessions, CaptureSessionView

VERSION = 1
SUPPORTED_VERSIONS: frozenset[int] = frozenset({VERSION})
DOMAIN = b"ageguard-secure-capture/1"
KEY_BYTES = 32
TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_SIGNATURE = re.compile(r"^[A-Za-z0-9_\-+/]+={0,2}$")
#: Longest accepted ``verification`` string (its facts are a few hundred bytes).
MAX_VERIFICATION_CHARS = 4096


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """What the relying party's backend receives and hands to its page."""

    token: str
    key: str  # base64url, no padding
    expires: datetime
    ttl_s: int

    def as_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "token": self.token,
            "key": self.key,
            "expires_at": self.expires.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "ttl_s": self.ttl_s,
        }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url or standard base64, padding optional; ``ValueError`` when it is neither."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc


def signed_message(token: str, image_sha256_hex: str, verification: str) -> bytes:
    return b"\n".join(
        (DOMAIN, token.encode("ascii"), image_sha256_hex.encode("ascii"), verification.encode("ascii"))
    )


def sign_capture(key: bytes, token: str, image: bytes, verification: str) -> str:
    """The ``signature`` the module computes (here for tests and non-browser capture clients)."""
    digest = hashlib.sha256(image).hexdigest()
    return b64url(hmac.new(key, signed_message(token, digest, verification), hashlib.sha256).digest())


def encode_verification(facts: dict[str, Any]) -> str:
    return b64url(json.dumps(facts, separators=(",", ":")).encode("utf-8"))


def open_session(
    sessions: CaptureSessions, sdk_id: str, *, ttl_s: int, now: datetime | None = None
) -> SessionGrant:
    """Create a session for the application ``sdk_id``: a fresh token and key."""
    now = now or datetime.now(UTC)
    token = b64url(secrets.token_bytes(TOKEN_BYTES))
    key = secrets.token_bytes(KEY_BYTES)
    view = sessions.create(token, key, sdk_id, now, ttl_s)
    return SessionGrant(token=token, key=b64url(key), expires=view.expires, ttl_s=ttl_s)


def valid_token(token: Any) -> bool:
    return isinstance(token, str) and bool(_TOKEN.match(token))


@lru_cache(maxsize=1)
def _default_sessions() -> CaptureSessions:
    from ageguard.hub import Hub

    return CaptureSessions(Hub.from_settings())


def _version(value: Any) -> int:
    if value is None or value == "":
        raise AgeGuardError("SECURE_VERSION_NOT_FOUND")
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number not in SUPPORTED_VERSIONS:
        raise AgeGuardError(
            "SECURE_VERSION_NOT_FOUND", f"Secure version {str(value)[:16]!r} is not supported."
        )
    assert number is not None
    return number


def _facts(verification: str) -> dict[str, Any]:
    try:
        facts = json.loads(b64url_decode(verification))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AgeGuardError("UNTRUSTED_SECURE_SESSION", "The secure verification cannot be read.") from exc
    if not isinstance(facts, dict):
        raise AgeGuardError("UNTRUSTED_SECURE_SESSION", "The secure verification cannot be read.")
    return facts


def _count(facts: dict[str, Any], name: str) -> int:
    value = facts.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AgeGuardError("UNTRUSTED_SECURE_SESSION", f"The secure verification lacks '{name}'.")
    return value


def _check_trust(
    session: CaptureSessionView, facts: dict[str, Any], image_sha256: str, now: datetime, cfg: CaptureSettings
) -> None:
    """The session's server-side record must show a live capture of exactly this image."""
    if session.capture_sha256 is None or not hmac.compare_digest(session.capture_sha256, image_sha256):
        raise AgeGuardError(
            "UNTRUSTED_SECURE_SESSION", "The image did not pass a capture check in this secure session."
        )
    if session.captured_at is None or now - session.captured_at > timedelta(seconds=cfg.capture_max_age_s):
        raise AgeGuardError("UNTRUSTED_SECURE_SESSION", "The capture is too old.")
    if session.good_frames < cfg.min_good_frames:
        raise AgeGuardError(
            "UNTRUSTED_SECURE_SESSION", "Too few live preview frames were checked before the capture."
        )
    # The page's own counts can only be lower than the server's (a response can be lost, a request not
    # invented): higher ones mean the facts were not produced by this session's module.
    if _count(facts, "frames") > session.frames_checked or _count(facts, "good") > session.good_frames:
        raise AgeGuardError("UNTRUSTED_SECURE_SESSION", "The capture facts do not match the secure session.")


def verify_secure(
    block: dict[str, Any] | None,
    image_bytes: bytes,
    sdk_id: str,
    *,
    sessions: CaptureSessions | None = None,
    settings: CaptureSettings | None = None,
    now: datetime | None = None,
) -> None:
    """Verify a request's ``secure`` block for ``image_bytes`` sent by the application ``sdk_id``.

    Raises :class:`AgeGuardError` with, in this order of checks:
    ``SECURE_REQUEST_IS_EMPTY`` (no block), ``SECURE_VERSION_NOT_FOUND`` (missing or unsupported
    version), ``SECURE_SESSION_NOT_FOUND`` (no token), ``SECURE_SIGNATURE_NOT_FOUND``,
    ``SECURE_VERIFICATION_NOT_FOUND``, ``SECURE_SESSION_NOT_FOUND`` (no such session),
    ``INVALID_SECURE_SESSION`` (malformed token, another application's, expired or already used),
    ``INVALID_SECURE_SIGNATURE`` (the HMAC does not verify for this image, token and facts), and
    ``UNTRUSTED_SECURE_SESSION`` (the session's record does not show a live capture of this image).
    A session is consumed by the first request whose signature verifies, whatever follows.
    Blocking (database): call it from a worker thread.
    """
    if not block or not isinstance(block, dict):
        raise AgeGuardError("SECURE_REQUEST_IS_EMPTY")
    cfg = settings or get_capture_settings()
    store = sessions or _default_sessions()
    now = now or datetime.now(UTC)

    _version(block.get("version"))
    token = block.get("token")
    if token is None or token == "":
        raise AgeGuardError("SECURE_SESSION_NOT_FOUND")
    signature = block.get("signature")
    if signature is None or signature == "":
        raise AgeGuardError("SECURE_SIGNATURE_NOT_FOUND")
    verification = block.get("verification")
    if verification is None or verification == "" or verification == {}:
        raise AgeGuardError("SECURE_VERIFICATION_NOT_FOUND")
    if not valid_token(token):
        raise AgeGuardError("INVALID_SECURE_SESSION")
    assert isinstance(token, str)

    session = store.get(token)
    if session is None:
        raise AgeGuardError("SECURE_SESSION_NOT_FOUND")
    if session.sdk_id.lower() != str(sdk_id).strip().lower():
        raise AgeGuardError("INVALID_SECURE_SESSION", "The secure session belongs to another application.")
    if session.used:
        raise AgeGuardError("INVALID_SECURE_SESSION", "The secure session has already been used.")
    if session.expired(now):
        raise AgeGuardError("INVALID_SECURE_SESSION", "The secure session has expired.")

    if (
        not isinstance(signature, str)
        or not _SIGNATURE.match(signature)
        or not isinstance(verification, str)
        or len(verification) > MAX_VERIFICATION_CHARS
        or not verification.isascii()
    ):
        raise AgeGuardError("INVALID_SECURE_SIGNATURE")
    try:
        given = b64url_decode(signature)
    except ValueError as exc:
        raise AgeGuardError("INVALID_SECURE_SIGNATURE") from exc
    image_sha256 = hashlib.sha256(image_bytes).hexdigest()
    expected = hmac.new(
        session.key, signed_message(token, image_sha256, verification), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(given, expected):
        raise AgeGuardError("INVALID_SECURE_SIGNATURE")

    if not store.consume(token, now):  # a concurrent request won the race, or it just expired
        raise AgeGuardError("INVALID_SECURE_SESSION", "The secure session has already been used.")
    _check_trust(session, _facts(verification), image_sha256, now, cfg)
