"""Verifying Yoti signed requests against the raw request target as received (SPEC.md, "Authentication").

Order of checks (each failure its own catalogue code):
1. ``X-Yoti-Auth-Id`` present and a UUID (``INVALID_X_YOTI_AUTH_ID``); without the header, the signed
   ``appId`` / ``sdkId`` query parameter of old SDKs (Ruby <= 1.6) names the application;
2. ``X-Yoti-Auth-Digest`` present and base64 (``INVALID_YOTI_AUTH_DIGEST``);
3. ``nonce`` query parameter present and a UUID in either case (``INVALID_NONCE``);
4. ``timestamp`` present, an integer, fresh or not epoch time (``INVALID_TIMESTAMP``; see
   :func:`check_timestamp`);
5. the application exists (``APP_NOT_FOUND``) and its stored key loads (``INVALID_PUBLIC_KEY_ENCODING``);
6. the digest verifies for some path suffix of the raw target (``INVALID_SIGNATURE``);
7. the application is enabled (``DISABLED_APP_STATE``) and its organisation active (``INVALID_ORG_STATUS``);
8. the nonce was not used before by this application (``INVALID_NONCE``): kept ``nonce_ttl_s`` for a fresh
   epoch timestamp, ``nonce_retention_s`` (30 days) for a timestamp that is not epoch time (Java);
9. the endpoint is in the application's allowed endpoints (``UNAUTHORIZED``).
State is only revealed (7) and nonces only spent (8) for requests whose signature verified.

Replay protection (docs/api.md, "Timestamps and replays"): a request with a fresh epoch timestamp can only
be replayed while its timestamp is fresh, and its nonce is kept longer than that; a later replay reads as
a stale epoch time and is refused for ``nonce_retention_s``. A request whose timestamp is not epoch time
(Java's ``System.nanoTime()/1000``) is refused by its nonce, kept ``nonce_retention_s``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
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

#: Query parameters that name the application when ``X-Yoti-Auth-Id`` is absent (Ruby SDK <= 1.6 sends
#: ``appId``; SDK-WIRE.md section 4.11). They are part of the signed target.
SDK_ID_PARAMS = ("appId", "sdkId")

#: The scales a timestamp is read at when it is compared with now: seconds (Ruby), milliseconds (Python,
#: Node, Go, PHP, .NET) and microseconds (no SDK; read so a stale one is refused rather than taken for Java).
_FRESH_SCALES = (1, 1_000)
_STALE_SCALES = (1, 1_000, 1_000_000)


class TimestampKind(Enum):
    """How :func:`check_timestamp` read an accepted timestamp; it decides how long the nonce is kept."""

    EPOCH = "epoch"  # fresh epoch time: the window guards, the nonce is kept ``nonce_ttl_s``
    MONOTONIC = "monotonic"  # not epoch time (Java): only the nonce guards, kept ``nonce_retention_s``


API_BASE = signing.BASE_PATH.encode("ascii")
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


def check_timestamp(
    raw: str | None,
    now_s: float,
    window_s: float,
    java_compat: bool,
    lookback_s: float = Settings.model_fields["nonce_retention_s"].default,
) -> TimestampKind:
    """Classify a request's ``timestamp``, or raise ``INVALID_TIMESTAMP``.

    - Read as seconds or milliseconds since the epoch and within ``window_s`` of now: ``EPOCH`` (fresh).
    - Read as seconds, milliseconds or microseconds, a time between ``lookback_s`` and ``window_s`` before
      now: refused as stale. A replayed epoch-time request always lands here (its timestamp only ages), so
      it is refused for ``lookback_s`` after it was sent although its nonce was kept only briefly.
    - Anything else (Java's ``System.nanoTime() / 1000``: microseconds since an arbitrary origin, usually
      boot; or an epoch time too far in the future): ``MONOTONIC`` with ``java_compat`` (the default),
      refused without it. Such a request is guarded by its nonce alone, so the caller keeps it long.
    """
    if raw is None or not raw.strip():
        raise AgeGuardError("INVALID_TIMESTAMP", "Timestamp is missing. timestamp parameter is mandatory.")
    text = raw.strip()
    if not _INTEGER.match(text):
        raise AgeGuardError("INVALID_TIMESTAMP", "Provided timestamp is not a valid unix timestamp.")
    value = int(text)
    if any(abs(value / scale - now_s) <= window_s for scale in _FRESH_SCALES):
        return TimestampKind.EPOCH
    if any(now_s - lookback_s <= value / scale < now_s - window_s for scale in _STALE_SCALES):
        raise AgeGuardError("INVALID_TIMESTAMP", "Provided timestamp is outside the accepted time window.")
    if java_compat and value > 0:
        return TimestampKind.MONOTONIC
    raise AgeGuardError("INVALID_TIMESTAMP", "Provided timestamp is outside the accepted time window.")


def target_suffixes(raw_path: bytes, query_string: bytes, base: bytes = API_BASE) -> Iterator[bytes]:
    """Every ``PATH_AND_QUERY`` a client could have signed: each path suffix starting at a ``/``.

    The base URL is not signed, so ``/ai/v1/self-checkout/age-antispoofing`` may have been signed as
    ``/age-antispoofing`` or ``/self-checkout/age-antispoofing``. ``//`` is kept as received (Ruby).
    First the path below ``base`` (what the SDKs sign with the documented base URL: each try hashes the
    whole body, so the usual one goes first), then the others longest first; the raw query string is
    appended unchanged.
    """
    tail = b"?" + query_string if query_string else b""
    seen: set[bytes] = set()
    usual = raw_path[len(base) :] if raw_path.startswith(base + b"/") else None
    starts = [i for i, byte in enumerate(raw_path) if byte == 0x2F]  # each "/"
    for start in ([len(base)] if usual else []) + starts:
        target = raw_path[start:] + tail
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

    def __init__(self, settings: Settings, hub: AuthHub, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.hub = hub
        #: Seconds since the epoch "now" (tests move it instead of sleeping).
        self.clock = clock

    def nonce_ttl_s(self, kind: TimestampKind) -> int:
        """How long a nonce is kept: past its timestamp's freshness, or the retention for non-epoch ones."""
        s = self.settings
        if kind is TimestampKind.MONOTONIC:
            return max(s.nonce_retention_s, s.nonce_ttl_s)
        # A fresh timestamp stays fresh for at most 2 windows after its first use (it may be ahead of now).
        return max(s.nonce_ttl_s, 2 * s.timestamp_window_s)

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
        now_s = self.clock() if now is None else now
        params = query_params(query_string)
        sdk_id = (headers.get(AUTH_ID_HEADER) or "").strip()
        if not sdk_id:
            sdk_id = next((params[p].strip() for p in SDK_ID_PARAMS if params.get(p, "").strip()), "")
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

        nonce = params.get("nonce")
        if nonce is None or not nonce.strip():
            raise AgeGuardError("INVALID_NONCE", "Nonce is missing. nonce parameter is mandatory.")
        if not is_uuid(nonce.strip()):
            raise AgeGuardError("INVALID_NONCE", "Provided nonce is not a valid uuid.")
        kind = check_timestamp(
            params.get("timestamp"),
            now_s,
            self.settings.timestamp_window_s,
            self.settings.java_timestamp_compat,
            self.settings.nonce_retention_s,
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
        if not self.hub.use_nonce(app.sdk_id, nonce.strip().lower(), when, self.nonce_ttl_s(kind)):
            raise AgeGuardError("INVALID_NONCE", "Provided nonce has already been used.")

        if not app.allows(endpoint):
            raise AgeGuardError("UNAUTHORIZED")
        return AuthContext(app=app, endpoint=endpoint, signed_target=signed, secure=secure_flag(params))
