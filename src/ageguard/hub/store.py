"""The Hub store: organisations → applications → terminals, replay nonces and request records.

Every public method opens its own short transaction, so one :class:`Hub` may be shared by threads.
Database failures surface as :class:`StoreUnavailable` (catalogue code ``SERVICE_UNAVAILABLE``);
unknown ids as ``AgeGuardError`` with ``APP_NOT_FOUND`` / ``ORG_NOT_FOUND``; other refused admin
operations (duplicate names, unknown endpoint names, ...) as :class:`HubError`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection, Row, RowMapping
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ageguard.errors import AgeGuardError
from ageguard.hub import engine as _engine
from ageguard.hub.keys import public_key_der
from ageguard.hub.schema import (
    DEVICE_LEN,
    ENDPOINT_LEN,
    NAME_LEN,
    NONCE_LEN,
    OUTCOME_LEN,
    SDK_ID_LEN,
    SESSION_ID_LEN,
    TERMINAL_ID_LEN,
    applications,
    nonces,
    organisations,
    request_records,
    terminals,
)
from ageguard.hub.types import (
    DEFAULT_ORG,
    ENDPOINTS,
    ORG_STATUSES,
    AppView,
    OrgView,
    RequestRecord,
    TerminalView,
    UsageRow,
    endpoint_name,
)

if TYPE_CHECKING:
    from ageguard.settings import Settings

log = logging.getLogger(__name__)

#: A background purge of expired nonces starts at most this often per Hub instance ...
NONCE_PURGE_INTERVAL_S = 60
#: ... and deletes this many rows per transaction, pausing this long between two (requests go first).
NONCE_PURGE_BATCH = 1000
NONCE_PURGE_PAUSE_S = 0.005
#: How long close() waits for a running purge's current batch.
NONCE_PURGE_CLOSE_WAIT_S = 10.0


class HubError(ValueError):
    """An admin operation the Hub refuses (duplicate name, unknown endpoint, unknown terminal...)."""


class StoreUnavailable(AgeGuardError):
    """The database could not be reached or refused the operation (→ 503 SERVICE_UNAVAILABLE)."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__("SERVICE_UNAVAILABLE", detail)


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_uuid(value: str | uuid.UUID | None) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if not value:
        return None
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


def _app_uuid(sdk_id: str | uuid.UUID) -> uuid.UUID:
    parsed = _parse_uuid(sdk_id)
    if parsed is None:
        raise AgeGuardError("APP_NOT_FOUND", f"Application {sdk_id} not found.")
    return parsed


def _clip(value: str | None, length: int) -> str | None:
    return None if value is None else str(value)[:length]


def _check_name(what: str, name: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned:
        raise HubError(f"{what} name cannot be empty")
    if len(cleaned) > NAME_LEN:
        raise HubError(f"{what} name is longer than {NAME_LEN} characters")
    return cleaned


def _check_terminal_id(terminal_id: str) -> str:
    cleaned = (terminal_id or "").strip()
    if not cleaned:
        raise AgeGuardError("TERMINAL_ID_REQUIRED", "A terminal id cannot be empty.")
    if len(cleaned) > TERMINAL_ID_LEN or any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise HubError(f"terminal id must be at most {TERMINAL_ID_LEN} printable characters")
    return cleaned


def normalise_endpoints(endpoints: Iterable[str] | None) -> list[str]:
    """Validated, de-duplicated allow-list in catalogue order; ``None`` means every endpoint."""
    if endpoints is None:
        return list(ENDPOINTS)
    wanted = {endpoint_name(e) for e in endpoints if e and e.strip()}
    unknown = sorted(wanted - set(ENDPOINTS))
    if unknown:
        raise HubError(f"unknown endpoint(s) {', '.join(unknown)}; known: {', '.join(ENDPOINTS)}")
    return [e for e in ENDPOINTS if e in wanted]


def _org_view(m: RowMapping) -> OrgView:
    return OrgView(
        id=str(m["id"]),
        name=m["name"],
        status=m["status"],
        billing_source_id=m["billing_source_id"],
        created=m["created"],
    )


_APP_COLUMNS = (
    applications.c.sdk_id,
    applications.c.name,
    applications.c.enabled,
    applications.c.public_key_der,
    applications.c.allowed_endpoints,
    applications.c.created,
    organisations.c.name.label("org_name"),
    organisations.c.status.label("org_status"),
)
_APP_JOIN = applications.join(organisations, applications.c.org_id == organisations.c.id)


def _app_view(m: RowMapping) -> AppView:
    return AppView(
        sdk_id=str(m["sdk_id"]),
        name=m["name"],
        org_name=m["org_name"],
        org_status=m["org_status"],
        enabled=bool(m["enabled"]),
        public_key_der=bytes(m["public_key_der"]),
        allowed_endpoints=frozenset(m["allowed_endpoints"] or ()),
        created=m["created"],
    )


def _terminal_view(m: RowMapping) -> TerminalView:
    return TerminalView(
        sdk_id=str(m["app_sdk_id"]), terminal_id=m["terminal_id"], label=m["label"], created=m["created"]
    )


class Hub:
    """The store. ``Hub(url)`` opens the database at a SQLAlchemy URL and migrates it to the newest schema."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = _engine.create_hub_engine(url)
        self._purge_lock = threading.Lock()
        self._next_nonce_purge: datetime | None = None
        self._purger: threading.Thread | None = None
        self._closing = threading.Event()
        try:
            _engine.upgrade(url, self._engine)
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise StoreUnavailable(
                f"The hub database could not be opened: {exc.__class__.__name__}."
            ) from exc
        except CommandError as exc:  # e.g. the database carries a revision this version does not know
            self._engine.dispose()
            raise StoreUnavailable(f"The hub database schema cannot be migrated: {exc}.") from exc

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Hub:
        """The Hub at ``AGEGUARD_DATABASE_URL``, or the SQLite file in ``AGEGUARD_HOME``."""
        if settings is None:
            from ageguard.settings import get_settings

            settings = get_settings()
        return cls(settings.resolved_database_url)

    # -- plumbing -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the connection pool (call in a child after fork, or at shutdown).

        A background nonce purge stops after its current batch.
        """
        self._closing.set()
        purger = self._purger
        if purger is not None and purger is not threading.current_thread():
            purger.join(NONCE_PURGE_CLOSE_WAIT_S)
        self._engine.dispose()
        self._closing.clear()  # a Hub used again after close() (it reconnects) purges again

    def __enter__(self) -> Hub:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Hub({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One transaction; IntegrityError passes through, other database errors become StoreUnavailable."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"The hub database failed: {exc.__class__.__name__}.") from exc

    def ping(self) -> None:
        """Readiness: raises :class:`StoreUnavailable` if the database cannot be reached."""
        with self._tx() as conn:
            conn.execute(sa.text("SELECT 1")).scalar_one()

    # -- organisations ------------------------------------------------------------------------------

    def _org_row(self, conn: Connection, name_or_id: str) -> Row[Any] | None:
        as_id = _parse_uuid(name_or_id)
        if as_id is not None:
            row = conn.execute(sa.select(organisations).where(organisations.c.id == as_id)).first()
            if row is not None:
                return row
        return conn.execute(
            sa.select(organisations).where(organisations.c.name == str(name_or_id).strip())
        ).first()

    def create_org(self, name: str, billing_source_id: str | None = None) -> OrgView:
        name = _check_name("organisation", name)
        if billing_source_id is not None:
            billing_source_id = billing_source_id.strip()
            if not billing_source_id:
                raise AgeGuardError("INVALID_BILLING_SOURCE_ID")
            if len(billing_source_id) > NAME_LEN:
                raise HubError(f"billing source id is longer than {NAME_LEN} characters")
        values = {
            "id": uuid.uuid4(),
            "name": name,
            "status": "active",
            "billing_source_id": billing_source_id,
            "created": _now(),
        }
        try:
            with self._tx() as conn:
                conn.execute(organisations.insert().values(**values))
        except IntegrityError as exc:
            raise HubError(f"organisation {name!r} already exists") from exc
        return self.get_org(str(values["id"]))

    def get_org(self, name_or_id: str) -> OrgView:
        with self._tx() as conn:
            row = self._org_row(conn, name_or_id)
        if row is None:
            raise AgeGuardError("ORG_NOT_FOUND", f"Organisation {name_or_id} not found.")
        return _org_view(row._mapping)

    def list_orgs(self) -> list[OrgView]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(organisations).order_by(organisations.c.name)).all()
        return [_org_view(r._mapping) for r in rows]

    def set_org_status(self, name_or_id: str, status: str) -> OrgView:
        if status not in ORG_STATUSES:
            raise HubError(f"organisation status must be one of {', '.join(ORG_STATUSES)}")
        with self._tx() as conn:
            row = self._org_row(conn, name_or_id)
            if row is None:
                raise AgeGuardError("ORG_NOT_FOUND", f"Organisation {name_or_id} not found.")
            conn.execute(organisations.update().where(organisations.c.id == row.id).values(status=status))
        return self.get_org(str(row.id))

    def _org_id_for_new_app(self, org: str | None) -> uuid.UUID:
        name = DEFAULT_ORG if org is None or not org.strip() else org.strip()
        for _ in range(3):
            with self._tx() as conn:
                row = self._org_row(conn, name)
            if row is not None:
                return uuid.UUID(str(row.id))
            if name != DEFAULT_ORG:
                raise AgeGuardError("ORG_NOT_FOUND", f"Organisation {name} not found.")
            try:
                return uuid.UUID(self.create_org(DEFAULT_ORG).id)
            except HubError:  # created by another process meanwhile
                continue
        raise StoreUnavailable("The default organisation could not be created.")

    # -- applications -------------------------------------------------------------------------------

    def create_app(
        self,
        name: str,
        org: str | None,
        public_key: bytes,
        allowed_endpoints: list[str] | None = None,
    ) -> AppView:
        """Register an application; ``org`` None means the ``default`` organisation (created on demand)."""
        name = _check_name("application", name)
        der = public_key_der(public_key)
        endpoints = normalise_endpoints(allowed_endpoints)
        org_id = self._org_id_for_new_app(org)
        sdk_id = uuid.uuid4()
        with self._tx() as conn:
            conn.execute(
                applications.insert().values(
                    sdk_id=sdk_id,
                    org_id=org_id,
                    name=name,
                    public_key_der=der,
                    enabled=True,
                    allowed_endpoints=endpoints,
                    created=_now(),
                )
            )
        return self.get_app(str(sdk_id))

    def find_app(self, sdk_id: str) -> AppView | None:
        """The application with this SDK id (any case), or None (also for a malformed id)."""
        parsed = _parse_uuid(sdk_id)
        if parsed is None:
            return None
        with self._tx() as conn:
            row = conn.execute(
                sa.select(*_APP_COLUMNS).select_from(_APP_JOIN).where(applications.c.sdk_id == parsed)
            ).first()
        return None if row is None else _app_view(row._mapping)

    def get_app(self, sdk_id: str) -> AppView:
        """Like :meth:`find_app` but raises ``APP_NOT_FOUND``."""
        view = self.find_app(sdk_id)
        if view is None:
            raise AgeGuardError("APP_NOT_FOUND", f"Application {sdk_id} not found.")
        return view

    def list_apps(self, org: str | None = None) -> list[AppView]:
        query = sa.select(*_APP_COLUMNS).select_from(_APP_JOIN)
        with self._tx() as conn:
            if org is not None:
                org_row = self._org_row(conn, org)
                if org_row is None:
                    raise AgeGuardError("ORG_NOT_FOUND", f"Organisation {org} not found.")
                query = query.where(applications.c.org_id == org_row.id)
            rows = conn.execute(query.order_by(organisations.c.name, applications.c.name)).all()
        return [_app_view(r._mapping) for r in rows]

    def _update_app(self, sdk_id: str, **values: Any) -> AppView:
        parsed = _app_uuid(sdk_id)
        with self._tx() as conn:
            result = conn.execute(
                applications.update().where(applications.c.sdk_id == parsed).values(**values)
            )
            if result.rowcount == 0:
                raise AgeGuardError("APP_NOT_FOUND", f"Application {sdk_id} not found.")
        return self.get_app(str(parsed))

    def set_app_enabled(self, sdk_id: str, enabled: bool) -> AppView:
        return self._update_app(sdk_id, enabled=bool(enabled))

    def rotate_key(self, sdk_id: str, public_key: bytes) -> AppView:
        """Replace the application's public key (PEM or DER, RSA); the old key stops working at once."""
        der = public_key_der(public_key)
        return self._update_app(sdk_id, public_key_der=der)

    def set_allowed_endpoints(self, sdk_id: str, endpoints: list[str] | None) -> AppView:
        return self._update_app(sdk_id, allowed_endpoints=normalise_endpoints(endpoints))

    # -- terminals ----------------------------------------------------------------------------------

    def add_terminal(self, sdk_id: str, terminal_id: str, label: str | None = None) -> TerminalView:
        app_id = _app_uuid(sdk_id)
        terminal_id = _check_terminal_id(terminal_id)
        label = None if label is None else (label.strip()[:NAME_LEN] or None)
        try:
            with self._tx() as conn:
                exists = conn.execute(
                    sa.select(applications.c.sdk_id).where(applications.c.sdk_id == app_id)
                ).first()
                if exists is None:
                    raise AgeGuardError("APP_NOT_FOUND", f"Application {sdk_id} not found.")
                conn.execute(
                    terminals.insert().values(
                        app_sdk_id=app_id, terminal_id=terminal_id, label=label, created=_now()
                    )
                )
                row = conn.execute(
                    sa.select(terminals).where(
                        terminals.c.app_sdk_id == app_id, terminals.c.terminal_id == terminal_id
                    )
                ).one()
        except IntegrityError as exc:
            raise HubError(
                f"terminal {terminal_id!r} is already registered for application {app_id}"
            ) from exc
        return _terminal_view(row._mapping)

    def remove_terminal(self, sdk_id: str, terminal_id: str) -> None:
        app_id = _app_uuid(sdk_id)
        with self._tx() as conn:
            result = conn.execute(
                terminals.delete().where(
                    terminals.c.app_sdk_id == app_id, terminals.c.terminal_id == (terminal_id or "").strip()
                )
            )
            if result.rowcount == 0:
                if self._app_missing(conn, app_id):
                    raise AgeGuardError("APP_NOT_FOUND", f"Application {sdk_id} not found.")
                raise HubError(f"terminal {terminal_id!r} is not registered for application {app_id}")

    def list_terminals(self, sdk_id: str) -> list[TerminalView]:
        app_id = _app_uuid(sdk_id)
        with self._tx() as conn:
            if self._app_missing(conn, app_id):
                raise AgeGuardError("APP_NOT_FOUND", f"Application {sdk_id} not found.")
            rows = conn.execute(
                sa.select(terminals).where(terminals.c.app_sdk_id == app_id).order_by(terminals.c.terminal_id)
            ).all()
        return [_terminal_view(r._mapping) for r in rows]

    def is_terminal_registered(self, sdk_id: str, terminal_id: str) -> bool:
        app_id = _parse_uuid(sdk_id)
        if app_id is None or not terminal_id:
            return False
        with self._tx() as conn:
            row = conn.execute(
                sa.select(terminals.c.id).where(
                    terminals.c.app_sdk_id == app_id, terminals.c.terminal_id == terminal_id.strip()
                )
            ).first()
        return row is not None

    @staticmethod
    def _app_missing(conn: Connection, app_id: uuid.UUID) -> bool:
        return (
            conn.execute(sa.select(applications.c.sdk_id).where(applications.c.sdk_id == app_id)).first()
            is None
        )

    # -- nonces -------------------------------------------------------------------------------------

    def use_nonce(self, sdk_id: str, nonce: str, now: datetime, ttl_s: int) -> bool:
        """Claim ``nonce`` for the application for ``ttl_s``: True the first time, False on a replay.

        Atomic across threads and processes (the primary key (app, nonce) decides). Nonces are compared
        case-insensitively. Each claim keeps its own expiry (``now + ttl_s``: the verifier keeps nonces of
        non-epoch timestamps far longer); a nonce whose claim has expired may be claimed again. Expired
        claims are deleted in the background (:meth:`purge_nonces`), never on the calling thread.
        """
        app_id = _app_uuid(sdk_id)
        key = (nonce or "").strip().lower()
        if not key or len(key) > NONCE_LEN:
            raise AgeGuardError("INVALID_NONCE")
        now = _as_utc(now)
        expires = now + timedelta(seconds=max(int(ttl_s), 0))
        try:
            for _ in range(3):
                try:
                    with self._tx() as conn:
                        claim = {"app_sdk_id": app_id, "nonce": key, "seen_at": now, "expires_at": expires}
                        conn.execute(nonces.insert().values(**claim))
                    return True
                except IntegrityError:
                    pass
                with self._tx() as conn:
                    same = (nonces.c.app_sdk_id == app_id) & (nonces.c.nonce == key)
                    # An expired claim may be renewed; only one concurrent renewer matches the WHERE.
                    renewed = conn.execute(
                        nonces.update()
                        .where(same, nonces.c.expires_at < now)
                        .values(seen_at=now, expires_at=expires)
                    )
                    if renewed.rowcount == 1:
                        return True
                    if conn.execute(sa.select(nonces.c.nonce).where(same)).first() is not None:
                        return False
                    if self._app_missing(conn, app_id):
                        raise AgeGuardError("APP_NOT_FOUND", f"Application {sdk_id} not found.")
                # The row was purged between our insert and our look: try again.
            raise StoreUnavailable("The nonce could not be recorded.")
        except IntegrityError as exc:
            raise StoreUnavailable("The nonce could not be recorded.") from exc
        finally:
            self._maybe_purge_nonces(now)

    def _maybe_purge_nonces(self, now: datetime) -> None:
        """Start a background purge of claims expired at ``now``, at most every NONCE_PURGE_INTERVAL_S."""
        if self._next_nonce_purge is not None and now < self._next_nonce_purge:
            return
        with self._purge_lock:
            if self._closing.is_set() or (self._purger is not None and self._purger.is_alive()):
                return
            if self._next_nonce_purge is not None and now < self._next_nonce_purge:
                return
            self._next_nonce_purge = now + timedelta(seconds=NONCE_PURGE_INTERVAL_S)
            self._purger = threading.Thread(
                target=self._purge_in_background, args=(now,), name="ageguard-nonce-purge", daemon=True
            )
            self._purger.start()

    def _purge_in_background(self, now: datetime) -> None:
        try:
            self.purge_nonces(now)
        except AgeGuardError:
            log.warning("purging expired nonces failed", exc_info=True)

    def wait_nonce_purge(self, timeout: float | None = None) -> bool:
        """Wait for a background nonce purge to finish; True when none is running any more."""
        purger = self._purger
        if purger is not None:
            purger.join(timeout)
            return not purger.is_alive()
        return True

    def purge_nonces(
        self,
        now: datetime | None = None,
        *,
        batch_size: int = NONCE_PURGE_BATCH,
        max_rows: int | None = None,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> int:
        """Delete claims expired at ``now`` (default: the current time); returns how many.

        Deletes ``batch_size`` rows per transaction, oldest expiry first, so a write lock (SQLite) or the
        row locks (PostgreSQL) are held only briefly and requests claiming nonces meanwhile wait at most one
        batch. Stops after ``max_rows`` rows when given, and when the Hub is closed. ``on_batch(rows,
        seconds)`` is called after each batch (the measurement command uses it).
        """
        cutoff = _as_utc(now) if now is not None else _now()
        size = max(1, int(batch_size))
        total = 0
        while not self._closing.is_set() and (max_rows is None or total < max_rows):
            limit = size if max_rows is None else min(size, max_rows - total)
            expired = nonces.c.expires_at < cutoff
            batch = (
                sa.select(nonces.c.app_sdk_id, nonces.c.nonce)
                .where(expired)
                .order_by(nonces.c.expires_at)
                .limit(limit)
            )
            # The outer condition is re-checked on PostgreSQL for a row renewed meanwhile (kept then).
            statement = nonces.delete().where(
                sa.tuple_(nonces.c.app_sdk_id, nonces.c.nonce).in_(batch), expired
            )
            started = time.perf_counter()
            with self._tx() as conn:
                deleted = int(conn.execute(statement).rowcount or 0)
            if on_batch is not None:
                on_batch(deleted, time.perf_counter() - started)
            total += deleted
            if deleted < limit:
                break
            if self._closing.wait(NONCE_PURGE_PAUSE_S):
                break
        return total

    # -- request records ----------------------------------------------------------------------------

    def record_request(self, record: RequestRecord) -> None:
        """Store one request record (never an image). A failed write raises :class:`StoreUnavailable`."""
        if not isinstance(record, RequestRecord):
            raise TypeError("record_request takes a RequestRecord")
        parsed = _parse_uuid(record.sdk_id)
        sdk = str(parsed) if parsed is not None else _clip(record.sdk_id, SDK_ID_LEN)
        values = {
            "time": _as_utc(record.time),
            "app_sdk_id": sdk,
            "endpoint": _clip(record.endpoint, ENDPOINT_LEN) or "",
            "terminal_id": _clip(record.terminal_id, TERMINAL_ID_LEN),
            "session_id": _clip(record.session_id, SESSION_ID_LEN),
            "device": _clip(record.device, DEVICE_LEN),
            "outcome": _clip(record.outcome, OUTCOME_LEN) or "",
            "latency_ms": float(record.latency_ms),
        }
        try:
            with self._tx() as conn:
                conn.execute(request_records.insert().values(**values))
        except IntegrityError as exc:
            raise StoreUnavailable("The request record could not be written.") from exc

    def usage(
        self,
        sdk_id: str | None = None,
        terminal_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UsageRow]:
        """Request counts grouped by (endpoint, terminal, outcome), optionally filtered."""
        rr = request_records
        count = sa.func.count().label("n")
        query = sa.select(rr.c.endpoint, rr.c.terminal_id, rr.c.outcome, count).group_by(
            rr.c.endpoint, rr.c.terminal_id, rr.c.outcome
        )
        if sdk_id is not None:
            parsed = _parse_uuid(sdk_id)
            query = query.where(rr.c.app_sdk_id == (str(parsed) if parsed else sdk_id))
        if terminal_id is not None:
            query = query.where(rr.c.terminal_id == terminal_id)
        if since is not None:
            query = query.where(rr.c.time >= _as_utc(since))
        if until is not None:
            query = query.where(rr.c.time < _as_utc(until))
        with self._tx() as conn:
            rows = conn.execute(query).all()
        out = [UsageRow(r.endpoint, r.terminal_id, r.outcome, int(r.n)) for r in rows]
        out.sort(key=lambda u: (u.terminal_id is not None, u.terminal_id or "", u.endpoint, u.outcome))
        return out

    def purge_requests(self, before: datetime) -> int:
        """Delete request records older than ``before`` (retention); returns how many."""
        with self._tx() as conn:
            return conn.execute(
                request_records.delete().where(request_records.c.time < _as_utc(before))
            ).rowcount
