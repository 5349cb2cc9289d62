"""Secure capture: sessions in the Hub (SQLite and PostgreSQL) and every code of verify_secure."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from capture_helpers import secure_block

from ageguard.capture.config import CaptureSettings
from ageguard.capture.secure import (
    b64url_decode,
    encode_verification,
    open_session,
    sign_capture,
    signed_message,
    verify_secure,
)
from ageguard.errors import AgeGuardError
from ageguard.hub import Hub
from ageguard.hub.capture_sessions import CaptureSessions, token_hash
from ageguard.hub.keys import der_of, generate_private_key

IMAGE = b"\xff\xd8\xff" + b"a captured jpeg" * 100
CFG = CaptureSettings(min_good_frames=3, capture_max_age_s=120)


@pytest.fixture
def apps(hub: Hub) -> tuple[str, str]:
    one = hub.create_app("one", None, der_of(generate_private_key().public_key()))
    two = hub.create_app("two", None, der_of(generate_private_key().public_key()))
    return one.sdk_id, two.sdk_id


@pytest.fixture
def sessions(hub: Hub) -> CaptureSessions:
    return CaptureSessions(hub)


def live_session(
    sessions: CaptureSessions, sdk_id: str, *, good: int = 3, image: bytes = IMAGE
) -> dict[str, Any]:
    """A session whose server record shows ``good`` passing previews and a final check of ``image``."""
    grant = open_session(sessions, sdk_id, ttl_s=300)
    now = datetime.now(UTC)
    for _ in range(good):
        assert sessions.record_frame(grant.token, now, good=True, max_frames=100) is not None
    assert sessions.record_final(grant.token, now, hashlib.sha256(image).hexdigest(), max_checks=5)
    return {"token": grant.token, "key": grant.key}


def verify(
    block: dict[str, Any] | None, sessions: CaptureSessions, sdk_id: str, image: bytes = IMAGE, **kw: Any
) -> None:
    verify_secure(block, image, sdk_id, sessions=sessions, settings=kw.pop("settings", CFG), **kw)


def code_of(fn: Callable[[], None]) -> str:
    with pytest.raises(AgeGuardError) as info:
        fn()
    return info.value.code


# ------------------------------------------------------------------------------------------ sessions


def test_session_lifecycle_counts_and_single_use(sessions: CaptureSessions, apps: tuple[str, str]) -> None:
    grant = open_session(sessions, apps[0], ttl_s=60)
    assert len(b64url_decode(grant.key)) == 32 and len(grant.token) >= 43
    view = sessions.get(grant.token)
    assert view is not None and view.sdk_id == apps[0] and view.frames_checked == 0
    assert view.token_hash == token_hash(grant.token) != grant.token  # only the hash is stored
    now = datetime.now(UTC)
    sessions.record_frame(grant.token, now, good=False, max_frames=3)
    sessions.record_frame(grant.token, now, good=True, max_frames=3)
    view = sessions.record_frame(grant.token, now + timedelta(seconds=1), good=True, max_frames=3)
    assert view is not None and (view.frames_checked, view.good_frames) == (3, 2)
    assert view.first_good_at is not None and view.first_check_at is not None
    assert view.last_check_at is not None and view.last_check_at > view.first_check_at
    assert sessions.record_frame(grant.token, now, good=True, max_frames=3) is None  # frame budget spent
    view = sessions.record_final(grant.token, now, None, max_checks=1)
    assert view is not None and view.final_checks == 1 and view.capture_sha256 is None
    assert sessions.record_final(grant.token, now, "ab" * 32, max_checks=1) is None
    assert sessions.consume(grant.token, now) is True
    assert sessions.consume(grant.token, now) is False
    assert sessions.record_frame(grant.token, now, good=True, max_frames=100) is None  # used: closed


def test_expired_sessions_refuse_and_are_purged(sessions: CaptureSessions, apps: tuple[str, str]) -> None:
    past = datetime.now(UTC) - timedelta(hours=3)
    old = open_session(sessions, apps[0], ttl_s=60, now=past)
    now = datetime.now(UTC)
    assert sessions.record_frame(old.token, now, good=True, max_frames=10) is None
    assert sessions.consume(old.token, now) is False
    assert sessions.purge(now) == 1
    assert sessions.get(old.token) is None


def test_unknown_application_is_refused(sessions: CaptureSessions) -> None:
    assert code_of(lambda: open_session(sessions, "00000000-0000-4000-8000-000000000000", ttl_s=60)) == (
        "APP_NOT_FOUND"
    )


def test_session_deleted_with_its_application(
    hub: Hub, sessions: CaptureSessions, apps: tuple[str, str]
) -> None:
    grant = open_session(sessions, apps[1], ttl_s=60)
    import sqlalchemy as sa

    from ageguard.hub.schema import applications

    with hub._tx() as conn:
        conn.execute(sa.delete(applications).where(applications.c.name == "two"))
    assert sessions.get(grant.token) is None


def test_consume_is_atomic_across_threads(sessions: CaptureSessions, apps: tuple[str, str]) -> None:
    grant = open_session(sessions, apps[0], ttl_s=60)
    barrier = threading.Barrier(6)
    results: list[bool] = []

    def one() -> None:
        barrier.wait()
        results.append(sessions.consume(grant.token, datetime.now(UTC)))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]


# ------------------------------------------------------------------------------------- verify_secure


def test_a_live_capture_verifies_once(sessions: CaptureSessions, apps: tuple[str, str]) -> None:
    session = live_session(sessions, apps[0])
    block = secure_block(session, IMAGE, frames=3, good=3)
    verify(block, sessions, apps[0])
    assert code_of(lambda: verify(block, sessions, apps[0])) == "INVALID_SECURE_SESSION"  # replay


def test_version_and_token_accept_the_string_forms(sessions: CaptureSessions, apps: tuple[str, str]) -> None:
    session = live_session(sessions, apps[0])
    block = {**secure_block(session, IMAGE, frames=3, good=3), "version": "1"}
    verify(block, sessions, apps[0].upper())  # the SDK ID compares case-insensitively


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"version": None}, "SECURE_VERSION_NOT_FOUND"),
        ({"version": 2}, "SECURE_VERSION_NOT_FOUND"),
        ({"version": "v1"}, "SECURE_VERSION_NOT_FOUND"),
        ({"token": None}, "SECURE_SESSION_NOT_FOUND"),
        ({"token": ""}, "SECURE_SESSION_NOT_FOUND"),
        ({"signature": None}, "SECURE_SIGNATURE_NOT_FOUND"),
        ({"signature": ""}, "SECURE_SIGNATURE_NOT_FOUND"),
        ({"verification": None}, "SECURE_VERIFICATION_NOT_FOUND"),
        ({"verification": ""}, "SECURE_VERIFICATION_NOT_FOUND"),
        ({"token": "not a token!"}, "INVALID_SECURE_SESSION"),
        ({"token": "A" * 43}, "SECURE_SESSION_NOT_FOUND"),
        ({"signature": "AAAA" * 11}, "INVALID_SECURE_SIGNATURE"),
        ({"signature": "%%%"}, "INVALID_SECURE_SIGNATURE"),
        ({"verification": {"frames": 3}}, "INVALID_SECURE_SIGNATURE"),
    ],
)
def test_block_fields(
    sessions: CaptureSessions, apps: tuple[str, str], change: dict[str, Any], code: str
) -> None:
    session = live_session(sessions, apps[0])
    block = {**secure_block(session, IMAGE, frames=3, good=3), **change}
    assert code_of(lambda: verify(block, sessions, apps[0])) == code
    # A refused block does not spend the session: the genuine one still passes.
    verify(secure_block(session, IMAGE, frames=3, good=3), sessions, apps[0])


@pytest.mark.parametrize("block", [None, {}])
def test_empty_block(sessions: CaptureSessions, apps: tuple[str, str], block: dict[str, Any] | None) -> None:
    assert code_of(lambda: verify(block, sessions, apps[0])) == "SECURE_REQUEST_IS_EMPTY"


def test_tampering_breaks_the_signature(sessions: CaptureSessions, apps: tuple[str, str]) -> None:
    session = live_session(sessions, apps[0])
    block = secure_block(session, IMAGE, frames=3, good=3)
    # Another image under the genuine signature.
    assert code_of(lambda: verify(block, sessions, apps[0], image=IMAGE + b"x")) == "INVALID_SECURE_SIGNATURE"
    # Facts changed after signing.
    forged = {**block, "verification": encode_verification({"v": 1, "frames": 3, "good": 3, "auto": True})}
    assert code_of(lambda: verify(forged, sessions, apps[0])) == "INVALID_SECURE_SIGNATURE"
    # A signature made with another key.
    other = {**block, "signature": sign_capture(b"k" * 32, session["token"], IMAGE, block["verification"])}
    assert code_of(lambda: verify(other, sessions, apps[0])) == "INVALID_SECURE_SIGNATURE"
    verify(block, sessions, apps[0])


def test_session_of_another_application(sessions: CaptureSessions, apps: tuple[str, str]) -> None:
    session = live_session(sessions, apps[0])
    block = secure_block(session, IMAGE, frames=3, good=3)
    assert code_of(lambda: verify(block, sessions, apps[1])) == "INVALID_SECURE_SESSION"


def test_expired_session(sessions: CaptureSessions, apps: tuple[str, str]) -> None:
    session = live_session(sessions, apps[0])
    block = secure_block(session, IMAGE, frames=3, good=3)
    later = datetime.now(UTC) + timedelta(seconds=301)
    assert code_of(lambda: verify(block, sessions, apps[0], now=later)) == "INVALID_SECURE_SESSION"


def test_untrusted_records(sessions: CaptureSessions, apps: tuple[str, str]) -> None:
    # An image that never passed the final check in this session (signed with the page key).
    session = live_session(sessions, apps[0])
    injected = b"\xff\xd8\xff another image"
    block = secure_block(session, injected, frames=3, good=3)
    assert code_of(lambda: verify(block, sessions, apps[0], image=injected)) == "UNTRUSTED_SECURE_SESSION"
    # ... and that attempt spent the session.
    good = secure_block(session, IMAGE, frames=3, good=3)
    assert code_of(lambda: verify(good, sessions, apps[0])) == "INVALID_SECURE_SESSION"

    # Too few live preview frames before the capture.
    session = live_session(sessions, apps[0], good=1)
    block = secure_block(session, IMAGE, frames=1, good=1)
    assert code_of(lambda: verify(block, sessions, apps[0])) == "UNTRUSTED_SECURE_SESSION"

    # The page claims more frames than the server checked.
    session = live_session(sessions, apps[0])
    block = secure_block(session, IMAGE, frames=50, good=50)
    assert code_of(lambda: verify(block, sessions, apps[0])) == "UNTRUSTED_SECURE_SESSION"

    # Facts that are not the module's JSON.
    session = live_session(sessions, apps[0])
    key = b64url_decode(session["key"])
    block = {"version": 1, "token": session["token"], "verification": "bm90IGpzb24"}
    block["signature"] = sign_capture(key, session["token"], IMAGE, block["verification"])
    assert code_of(lambda: verify(block, sessions, apps[0])) == "UNTRUSTED_SECURE_SESSION"

    # Submitted too long after the final check.
    session = live_session(sessions, apps[0])
    block = secure_block(session, IMAGE, frames=3, good=3)
    later = datetime.now(UTC) + timedelta(seconds=CFG.capture_max_age_s + 5)
    assert code_of(lambda: verify(block, sessions, apps[0], now=later)) == "UNTRUSTED_SECURE_SESSION"


def test_signed_message_layout() -> None:
    """The exact bytes the browser module signs (kept in step with ageguard-capture.js)."""
    digest = hashlib.sha256(b"img").hexdigest()
    assert signed_message("tok", digest, "dmVy") == f"ageguard-secure-capture/1\ntok\n{digest}\ndmVy".encode()
