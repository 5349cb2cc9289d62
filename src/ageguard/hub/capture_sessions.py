"""Secure face-capture sessions in the Hub database, so that every worker process sees the same ones.

A session is opened by a relying party's backend (a signed request), used by the capture page for its
preview checks and its final check, and consumed by the one analysis request that carries its
``secure`` block. Rows hold no image: counters, times and the SHA-256 of the capture that passed the
final check. The token itself is never stored, only its SHA-256 (a leaked table gives no usable token).

Every method is one short transaction; the counters and the single use are atomic across threads and
processes (conditional ``UPDATE``s, decided by the database).

    sessions = CaptureSessions(hub)
    view = sessions.create(token, key, sdk_id, now, ttl_s)
    sessions.record_frame(token, now, good=True, max_frames=2400)    # view | None when refused
    sessions.record_final(token, now, sha256_hex, max_checks=10)     # view | None when refused
    sessions.consume(token, now)                                     # True exactly once
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from ageguard.errors import AgeGuardError
from ageguard.hub.schema import capture_sessions
from ageguard.hub.store import Hub

#: Expired sessions are kept this long past their expiry (for support questions), then purged.
PURGE_GRACE_S = 3600


def token_hash(token: str) -> str:
    """The stored form of a session token: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CaptureSessionView:
    token_hash: str
    sdk_id: str
    key: bytes
    created: datetime
    expires: datetime
    frames_checked: int
    good_frames: int
    final_checks: int
    first_check_at: datetime | None
    first_good_at: datetime | None
    last_check_at: datetime | None
    capture_sha256: str | None
    captured_at: datetime | None
    used_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires

    @property
    def used(self) -> bool:
        return self.used_at is not None


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _view(m: RowMapping) -> CaptureSessionView:
    return CaptureSessionView(
        token_hash=m["token_hash"],
        sdk_id=str(m["app_sdk_id"]),
        key=bytes(m["session_key"]),
        created=m["created"],
        expires=m["expires"],
        frames_checked=int(m["frames_checked"]),
        good_frames=int(m["good_frames"]),
        final_checks=int(m["final_checks"]),
        first_check_at=m["first_check_at"],
        first_good_at=m["first_good_at"],
        last_check_at=m["last_check_at"],
        capture_sha256=m["capture_sha256"],
        captured_at=m["captured_at"],
        used_at=m["used_at"],
    )


class CaptureSessions:
    """The capture-session repository over one :class:`~ageguard.hub.Hub` (shares its engine)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def create(self, token: str, key: bytes, sdk_id: str, now: datetime, ttl_s: int) -> CaptureSessionView:
        """Store a new session for the application ``sdk_id``; raises ``APP_NOT_FOUND`` for an unknown one."""
        try:
            app_id = uuid.UUID(str(sdk_id))
        except ValueError as exc:
            raise AgeGuardError("APP_NOT_FOUND", f"Application {sdk_id} not found.") from exc
        now = _as_utc(now)
        values = {
            "token_hash": token_hash(token),
            "app_sdk_id": app_id,
            "session_key": key,
            "created": now,
            "expires": now + timedelta(seconds=ttl_s),
            "frames_checked": 0,
            "good_frames": 0,
            "final_checks": 0,
        }
        try:
            with self.hub._tx() as conn:
                conn.execute(capture_sessions.insert().values(**values))
        except sa.exc.IntegrityError as exc:  # unknown application (foreign key)
            raise AgeGuardError("APP_NOT_FOUND", f"Application {sdk_id} not found.") from exc
        self.purge(now)
        found = self.get(token)
        assert found is not None
        return found

    def get(self, token: str) -> CaptureSessionView | None:
        with self.hub._tx() as conn:
            row = conn.execute(
                sa.select(capture_sessions).where(capture_sessions.c.token_hash == token_hash(token))
            ).first()
        return None if row is None else _view(row._mapping)

    def _live(self, token: str, now: datetime) -> sa.ColumnElement[bool]:
        c = capture_sessions.c
        return sa.and_(c.token_hash == token_hash(token), c.expires > now, c.used_at.is_(None))

    def record_frame(
        self, token: str, now: datetime, *, good: bool, max_frames: int
    ) -> CaptureSessionView | None:
        """Count one checked preview frame. None when the session is unknown, expired, used, or has
        reached ``max_frames`` (nothing is counted then)."""
        now = _as_utc(now)
        c = capture_sessions.c
        values: dict[str, object] = {
            "frames_checked": c.frames_checked + 1,
            "first_check_at": sa.func.coalesce(c.first_check_at, now),
            "last_check_at": now,
        }
        if good:
            values["good_frames"] = c.good_frames + 1
            values["first_good_at"] = sa.func.coalesce(c.first_good_at, now)
        with self.hub._tx() as conn:
            done = conn.execute(
                capture_sessions.update()
                .where(self._live(token, now), c.frames_checked < max_frames)
                .values(**values)
            )
            if done.rowcount != 1:
                return None
            row = conn.execute(sa.select(capture_sessions).where(c.token_hash == token_hash(token))).first()
        return None if row is None else _view(row._mapping)

    def record_final(
        self, token: str, now: datetime, sha256_hex: str | None, *, max_checks: int
    ) -> CaptureSessionView | None:
        """Count one final (full-resolution) check; with ``sha256_hex`` (the check passed) it becomes the
        session's capture. None when the session is unknown, expired, used or out of final checks."""
        now = _as_utc(now)
        c = capture_sessions.c
        values: dict[str, object] = {"final_checks": c.final_checks + 1, "last_check_at": now}
        if sha256_hex is not None:
            values["capture_sha256"] = sha256_hex
            values["captured_at"] = now
        with self.hub._tx() as conn:
            done = conn.execute(
                capture_sessions.update()
                .where(self._live(token, now), c.final_checks < max_checks)
                .values(**values)
            )
            if done.rowcount != 1:
                return None
            row = conn.execute(sa.select(capture_sessions).where(c.token_hash == token_hash(token))).first()
        return None if row is None else _view(row._mapping)

    def consume(self, token: str, now: datetime) -> bool:
        """Mark the session used: True for exactly one caller, False when unknown, expired or used."""
        now = _as_utc(now)
        with self.hub._tx() as conn:
            done = conn.execute(capture_sessions.update().where(self._live(token, now)).values(used_at=now))
        return done.rowcount == 1

    def purge(self, now: datetime) -> int:
        """Delete sessions that expired more than :data:`PURGE_GRACE_S` before ``now``; returns how many."""
        cutoff = _as_utc(now) - timedelta(seconds=PURGE_GRACE_S)
        with self.hub._tx() as conn:
            return int(
                conn.execute(capture_sessions.delete().where(capture_sessions.c.expires < cutoff)).rowcount
            )
