"""Database fixtures for the Hub tests: every store test runs on SQLite (a temp file) and PostgreSQL.

PostgreSQL: ``AGEGUARD_TEST_PG_URL`` (default the local ``test`` database); each test gets its own fresh
schema (via ``search_path``), dropped afterwards, so runs never interfere. The PostgreSQL leg is skipped
only when ``AGEGUARD_TEST_PG=0``; otherwise an unreachable server fails the tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ageguard.hub import Hub

PG_URL = os.environ.get("AGEGUARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_ENABLED = os.environ.get("AGEGUARD_TEST_PG", "1") != "0"

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections live in a new, empty schema; the schema is dropped on exit."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    if not PG_ENABLED:
        pytest.skip("PostgreSQL leg disabled by AGEGUARD_TEST_PG=0")
    admin = sa.create_engine(PG_URL, poolclass=NullPool)
    schema = f"hubtest_{uuid.uuid4().hex[:16]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {PG_URL} is unreachable ({exc.orig}); set AGEGUARD_TEST_PG=0 to skip these tests",
            pytrace=False,
        )
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@contextmanager
def backend_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub-data' / 'hub.db'}"
    else:
        with pg_schema_url() as url:
            yield url


@pytest.fixture(params=BACKENDS)
def hub_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once per backend (SQLite file, PostgreSQL schema)."""
    with backend_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def hub(hub_url: str) -> Iterator[Hub]:
    """An opened (migrated) :class:`ageguard.hub.Hub` on ``hub_url``."""
    h = Hub(hub_url)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def hub_env(hub_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the settings (and so the CLI) at ``hub_url``; yields the URL."""
    from ageguard.settings import get_settings

    monkeypatch.setenv("AGEGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGEGUARD_DATABASE_URL", hub_url)
    get_settings.cache_clear()
    try:
        yield hub_url
    finally:
        get_settings.cache_clear()
