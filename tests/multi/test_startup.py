"""Starting several instances at once on an empty database, and instances whose database goes away."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cluster import (
    App,
    Instance,
    admin_engine,
    create_app,
    database_url,
    fresh_database,
    serve_args,
    set_connections_allowed,
    wait_for,
)
from live_server import ageguard_command, free_port

from ageguard.hub.engine import PG_MIGRATION_LOCK_KEY, head_revisions
from ageguard.hub.schema import VERSION_TABLE


def _waiting_on_migration_lock(database: str) -> int:
    with admin_engine().connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                    " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = :db"
                ),
                {"db": database},
            ).scalar_one()
        )


class Trio:
    def __init__(
        self, database: str, instances: list[Instance], waiting: int, failed: list[str], app: App
    ) -> None:
        self.database = database
        self.instances = instances
        self.waiting = waiting  # instances seen queued on the migration lock at once
        self.failed = failed  # the logs of instances that did not come up
        self.app = app


def _schema_exists(database: str) -> bool:
    with admin_engine(database).connect() as conn:
        return conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": VERSION_TABLE}).scalar() is not None


@pytest.fixture(scope="module")
def trio() -> Iterator[Trio]:
    """Three instances started at the same moment on an empty database.

    The test holds the Hub's migration lock (hub/engine.py) while they start, so all three reach their
    migration step before any can take it; then it lets go and they race for it at the same moment. An
    instance that migrated without that lock would not wait (and the race would be down to luck).
    """
    root = Path(tempfile.mkdtemp(prefix="ageguard-trio-"))
    instances: list[Instance] = []
    try:
        with fresh_database("ageguard_trio") as database:
            url = database_url(database)
            gate = admin_engine(database).connect()
            gate.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": PG_MIGRATION_LOCK_KEY})
            try:
                instances = [Instance(f"trio-{i}", root, url) for i in range(3)]
                for instance in instances:
                    instance.start()

                def settled() -> bool:  # all three queued, or something went ahead without the lock
                    return (
                        _waiting_on_migration_lock(database) >= 3
                        or _schema_exists(database)
                        or not all(i.running() for i in instances)
                    )

                wait_for(settled, 60, "three instances at the migration lock")
                waiting = _waiting_on_migration_lock(database)
            finally:
                gate.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": PG_MIGRATION_LOCK_KEY})
                gate.close()
            failed = []
            for instance in instances:
                try:
                    instance.wait_ready()
                except AssertionError as exc:
                    failed.append(str(exc)[-1500:])
            yield Trio(database, instances, waiting, failed, create_app(url, "trio"))
            for instance in instances:
                instance.stop()
    finally:
        for instance in instances:
            instance.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_three_instances_started_at_once_on_an_empty_database_migrate_once_and_all_serve(
    trio: Trio, face_body: dict[str, Any]
) -> None:
    assert trio.waiting == 3, "the instances did not serialise their migrations on the database lock"
    assert not trio.failed, trio.failed
    logs = [instance.log_text() for instance in trio.instances]
    migrated = [log for log in logs if "migrated from empty to" in log]
    current = [log for log in logs if "is current" in log]
    assert len(migrated) == 1 and len(current) == 2, [log[:400] for log in logs]
    with admin_engine(trio.database).connect() as conn:
        versions = {r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))}
    assert versions == head_revisions()
    for instance in trio.instances:
        assert httpx.get(instance.url + "/ready").status_code == 200
        assert trio.app.sign("/age", face_body).send(None, instance.url).status_code == 200


def test_ready_follows_the_database_and_health_does_not(trio: Trio, face_body: dict[str, Any]) -> None:
    """The database goes away: /ready answers 503 saying why (the balancer stops sending traffic), /health
    stays 200 (no restart for a database outage), requests get the documented 503. It comes back: 200."""
    assert not trio.failed, trio.failed
    set_connections_allowed(trio.database, False)
    try:
        for instance in trio.instances:
            ready = httpx.get(instance.url + "/ready", timeout=10)
            assert ready.status_code == 503, ready.text
            body = ready.json()
            assert body["status"] == "unavailable" and body["store"] is False and body["models"] is True
            assert "Hub database" in body["detail"]
            health = httpx.get(instance.url + "/health", timeout=10)
            assert health.status_code == 200 and health.json()["status"] == "ok", health.text
            refused = trio.app.sign("/age", face_body).send(None, instance.url)
            assert refused.status_code == 503 and refused.json()["error_code"] == "SERVICE_UNAVAILABLE"
    finally:
        set_connections_allowed(trio.database, True)
    for instance in trio.instances:
        wait_for(lambda i=instance: i.status() == 200, 20, f"{instance.name} ready again")
        assert trio.app.sign("/age", face_body).send(None, instance.url).status_code == 200


def test_an_instance_whose_database_is_unreachable_exits_with_the_reason(tmp_path: Path) -> None:
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=3"
    env = Instance("dead", tmp_path, dead).env()
    run = subprocess.run(
        [*ageguard_command(), *serve_args(free_port())], capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 1
    assert "cannot be migrated: OperationalError" in run.stderr
    assert "postgres@127.0.0.1" in run.stderr and "Traceback" not in run.stderr
