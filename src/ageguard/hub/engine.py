"""Engines for the Hub and the schema migration that runs when a Hub opens.

SQLite: WAL journal, a 30 s busy timeout, foreign keys on; the parent directory of the file is created.
Migrations run under a database-wide lock so several processes may open a Hub at once:
``BEGIN IMMEDIATE`` on SQLite (a transaction holding the write lock) and a transaction-scoped advisory
lock on PostgreSQL. Both back-ends have transactional DDL, so a migration applies wholly or not at all.
Several instances starting at once on one empty database: the first to take the lock migrates, the others
wait for it, find the schema current and go on (tests/multi/test_startup.py proves it on PostgreSQL).
``ageguard migrate`` runs the same step alone (the Kubernetes migration Job).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool, StaticPool

from ageguard.hub.schema import VERSION_TABLE

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Key of the PostgreSQL advisory lock held while migrating ("AGHUB" in ASCII).
PG_MIGRATION_LOCK_KEY = 0x4147485542


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_is_memory(url: URL) -> bool:
    db = url.database
    return not db or db == ":memory:" or "mode=memory" in db or url.query.get("mode") == "memory"


def _sqlite_prepare_path(url: URL) -> None:
    db = url.database
    if _sqlite_is_memory(url) or db is None or db.startswith("file:"):
        return
    Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_conn: Any, memory: bool) -> None:
    cur = dbapi_conn.cursor()
    try:
        if not memory:
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except Exception:  # another process holds the lock while switching; it sets WAL for us
                log.debug("could not switch SQLite to WAL now", exc_info=True)
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def create_hub_engine(url: str | URL) -> Engine:
    """The engine the Hub uses for its work (pooled, thread-safe)."""
    u = make_url(url)
    if _is_sqlite(u):
        _sqlite_prepare_path(u)
        memory = _sqlite_is_memory(u)
        kwargs: dict[str, Any] = {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        }
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = sa.create_engine(u, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            _sqlite_pragmas(dbapi_conn, memory)

        return engine
    return sa.create_engine(u, pool_pre_ping=True)


def _sqlite_migration_engine(url: URL) -> Engine:
    """A one-off SQLite engine whose transactions are real ``BEGIN IMMEDIATE`` ones (write lock held)."""
    _sqlite_prepare_path(url)  # a first start migrates before anything else: the folder may not exist
    engine = sa.create_engine(
        url, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        _sqlite_pragmas(dbapi_conn, memory=False)
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    return cfg


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(conn: Connection) -> set[str]:
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return set(ctx.get_current_heads())


@dataclass(frozen=True)
class MigrationResult:
    """The schema revisions before and after :func:`upgrade`."""

    before: frozenset[str]
    after: frozenset[str]

    @property
    def migrated(self) -> bool:
        """Whether this call applied migrations (False: the schema was already current)."""
        return self.before != self.after


def _upgrade_on(conn: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def upgrade(url: str | URL, engine: Engine | None = None) -> MigrationResult:
    """Bring the database at ``url`` to the newest schema; safe to call from many processes at once.

    ``engine`` (the Hub's own) is used for in-memory SQLite, where another engine would see another database.
    """
    u = make_url(url)
    heads = head_revisions()
    if _is_sqlite(u) and _sqlite_is_memory(u):
        if engine is None:
            raise ValueError("an in-memory SQLite database needs the engine that owns it")
        with engine.begin() as conn:
            before = current_revisions(conn)
            _upgrade_on(conn)
        return MigrationResult(frozenset(before), frozenset(heads))

    work = _sqlite_migration_engine(u) if _is_sqlite(u) else create_hub_engine(u)
    try:
        with work.connect() as conn:  # fast path: already at head, no lock taken
            if current_revisions(conn) == heads:
                return MigrationResult(frozenset(heads), frozenset(heads))
        with work.begin() as conn:  # on SQLite this is BEGIN IMMEDIATE: the write lock
            if u.get_backend_name() == "postgresql":
                # Held to the end of this transaction: a second instance waits here, then finds head.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK_KEY})
            before = current_revisions(conn)
            if before != heads:
                log.info("migrating the hub database to %s", ", ".join(sorted(heads)))
                _upgrade_on(conn)
        return MigrationResult(frozenset(before), frozenset(heads))
    finally:
        work.dispose()
