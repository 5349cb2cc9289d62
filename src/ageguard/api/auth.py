"""Verifying Yoti signed requests against the raw request target as received (SPEC.md, "Authentication").

Order of checks (each failure its own catalogue code):
1. ``X-Yoti-Auth-Id`` present and a UUID (``INVALID_X_YOTI_AUTH_ID``);
2. ``X-Yoti-Auth-Digest`` present and base64 (``INVALID_YOTI_AUTH_DIGEST``);
3. ``nonce`` query parameter present and a UUID in either case (``INVALID_NONCE``);
4. ``timestamp`` present, an integer, fresh (``INVALID_TIMESTAMP``; see :func:`check_timestamp`);
5. the application exists (``APP_NOT_FOUND``) and its stored key loads (``INVALID_PUBLIC_KEY_ENCODING``);
6. the digest verifies for some path suffix of the raw target (``INVALID_SIGNATURE``);
7. the application is enabled (``DISABLED_APP_STATE``) and its organisation active (``INVALID_ORG_STATUS``);
8. the nonce was not used before by this application within ``nonce_ttl_s`` (``INVALID_NONCE``);
9. the endpoint is in the application's allowed endpoints (``UNAUTHORIZED``).
State is only revealed (7) and nonces only spent (8) for requests whose signature verified.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa

from ageguard import signing
from ageguard.errors import AgeGuardError
from ageguard.hub.keys import load_rsa_public_key
from ageguard.hub.types import AppView
from ageguard.settings import Settings

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INTEGER = re.compile(r"^[0-9]{1,20}$")

#: A value within this many seconds of now, read as seconds, milliseconds or microseconds since the
#: epoch, "parses as epoch time": it must then be fresh. Anything else is a Java-style monotonic value.
EPOCH_PLAUSIBILITY_S = 366 * 24 * 3600

AUTH_ID_HEADER = "x-yoti-auth-id"
DIGEST_HEADER = "x-yoti-auth-digest"


class AuthHub(Protocol):
    """What the verifier needs of the Hub store."""

    def find_app(self, sdk_id: str) -> AppView | None: ...

    def use_nonce(self, sdk_id: str, nonce: str, now: datetime, ttl_s: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class AuthContext:
    """A verified request: who sent it and what it asked for."""

    app: AppView
    endpoint: str  # allow-list name: "age", ..., "self-checkout"
    signed_target: bytes  # the path-and-query suffix the digest verified for
    secure: bool  # the ``secure`` query flag (Python sends ``True``, Node ``true``)


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def query_params(query_string: bytes) -> dict[str, str]:
    """First value of each query parameter; Go sends unescaped values, so parsing is lenient."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        params.setdefault(name, value)
    return params


def secure_flag(params: Mapping[str, str]) -> bool:
    return params.get("secure", "").strip().lower() in ("true", "1", "yes")


def check_timestamp(raw: str | None, now_s: float, window_s: float, java_compat: bool) -> None:
    """Accept a fresh epoch timestamp in seconds (Ruby) or milliseconds (Python, Node, Go, PHP, .NET).

    A value that reads as epoch time (s, ms or µs within a year of now) must lie within ``window_s``
    of now. A value that does not (Java's monotonic ``System.nanoTime() / 1000``) is accepted only in
    Java compatibility mode, where the nonce alone guards against replay.
    """
    if raw is None or not raw.strip():
        raise AgeGuardError("INVALID_TIMESTAMP", "Timestamp is missing. timestamp parameter is mandatory.")
    text = raw.strip()
    if not _INTEGER.match(text):
        raise AgeGuardError("INVALID_TIMESTAMP", "Provided timestamp is not a valid unix timestamp.")
    value = int(text)
    for scale in (1, 1_000):
        if abs(value / scale - now_s) <= window_s:
            return
    looks_epoch = any(abs(value / scale - now_s) <= EPOCH_PLAUSIBILITY_S for scale in (1, 1_000, 1_000_000))
    if java_compat and not looks_epoch and value > 0:
        return
    raise AgeGuardError("INVALID_TIMESTAMP", "Provided timestamp is outside the accepted time window.")


def target_suffixes(raw_path: bytes, query_string: bytes) -> Iterator[bytes]:
    """Every ``PATH_AND_QUERY`` a client could have signed: each path suffix starting at a ``/``.

    The base URL is not signed, so ``/ai/v1/self-checkout/age-antispoofing`` may have been signed as
    ``/age-antispoofing`` or ``/self-checkout/age-antispoofing``. ``//`` is kept as received (Ruby).
    Longest first; the raw query string is appended unchanged.
    """
    tail = b"?" + query_string if query_string else b""
    seen: set[bytes] = set()
    for i, byte in enumerate(raw_path):
        if byte == 0x2F:  # "/"
            target = raw_path[i:] + tail
            if target not in seen:
                seen.add(target)
                yield target


def body_variants(body: bytes) -> tuple[bytes | None, ...]:
    """An empty body may be signed without a body part or (Go) with a trailing ``&``."""
    return (body,) if body else (None, b"")


@lru_cache(maxsize=1024)
def _public_key(der: bytes) -> rsa.RSAPublicKey:
    return load_rsa_public_key(der)


class Verifier:
    """Checks one request's Yoti signature and the application's right to call the endpoint."""

    def __init__(self, settings: Settings, hub: AuthHub) -> None:
        self.settings = settings
        self.hub = hub

    def verify(
        self,
        *,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        headers: Mapping[str, str],
        body: bytes,
        endpoint: str,
        now: float | None = None,
    ) -> AuthContext:
        """Raise :class:`AgeGuardError` with the documented code, or return the verified context.

        ``headers`` must be case-insensitive (Starlette's ``Headers``) or use lower-case names.
        Blocking (database, RSA): call it from a worker thread.
        """
        now_s = time.time() if now is None else now
        sdk_id = (headers.get(AUTH_ID_HEADER) or "").strip()
        if not sdk_id:
            raise AgeGuardError("INVALID_X_YOTI_AUTH_ID", "X-Yoti-Auth-Id header not provided.")
        if not is_uuid(sdk_id):
            raise AgeGuardError("INVALID_X_YOTI_AUTH_ID", "X-Yoti-Auth-Id is not a valid uuid.")

        digest = headers.get(DIGEST_HEADER)
        if digest is None or not digest.strip():
            raise AgeGuardError("INVALID_YOTI_AUTH_DIGEST", "X-Yoti-Auth-Digest header is missing.")
        signature = signing.decode_digest(digest)
        if signature is None:
            raise AgeGuardError("INVALID_YOTI_AUTH_DIGEST", "X-Yoti-Auth-Digest is not base64 encoded.")

        params = query_params(query_string)
        nonce = params.get("nonce")
        if nonce is None or not nonce.strip():
            raise AgeGuardError("INVALID_NONCE", "Nonce is missing. nonce parameter is mandatory.")
        if not is_uuid(nonce.strip()):
            raise AgeGuardError("INVALID_NONCE", "Provided nonce is not a valid uuid.")
        check_timestamp(
            params.get("timestamp"),
            now_s,
            self.settings.timestamp_window_s,
            self.settings.java_timestamp_compat,
        )

        app = self.hub.find_app(sdk_id)
        if app is None:
            raise AgeGuardError("APP_NOT_FOUND")
        public_key = _public_key(app.public_key_der)

        signed = signing.verify_any(
            public_key, signature, method, target_suffixes(raw_path, query_string), body_variants(body)
        )
        if signed is None:
            raise AgeGuardError("INVALID_SIGNATURE")
        assert isinstance(signed, bytes)

        if not app.enabled:
            raise AgeGuardError("DISABLED_APP_STATE")
        if app.org_status != "active":
            raise AgeGuardError("INVALID_ORG_STATUS")

        when = datetime.fromtimestamp(now_s, UTC)
        if not self.hub.use_nonce(app.sdk_id, nonce.strip().lower(), when, self.settings.nonce_ttl_s):
            raise AgeGuardError("INVALID_NONCE", "Provided nonce has already been used.")

        if not app.allows(endpoint):
            raise AgeGuardError("UNAUTHORIZED")
        return AuthContext(app=app, endpoint=endpoint, signed_target=signed, secure=secure_flag(params))
