"""The multi-instance suite's fixtures: three ``ageguard serve`` on one fresh PostgreSQL database behind
nginx (``cluster``, once per session), an application to sign with, and a face to send.

Needs the PostgreSQL server of the other store tests (``AGEGUARD_TEST_PG_URL``; skipped only with
``AGEGUARD_TEST_PG=0``) and Debian's nginx (``.ci/run`` installs it).
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_images import face_jpeg
from cluster import (
    Cluster,
    Instance,
    Nginx,
    admin_engine,
    create_app,
    database_url,
    fresh_database,
    nginx_binary,
    start_nginx,
)

INSTANCE_NAMES = ("ag-a", "ag-b", "ag-c")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session", autouse=True)
def _multi_prerequisites() -> None:
    if os.environ.get("AGEGUARD_TEST_PG", "1") == "0":
        pytest.skip("PostgreSQL leg disabled by AGEGUARD_TEST_PG=0")
    if nginx_binary() is None:
        pytest.fail("nginx is not installed: apt-get install nginx (.ci/run does)", pytrace=False)
    try:
        with admin_engine().connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is unreachable ({exc.orig}); set AGEGUARD_TEST_PG=0 to skip", pytrace=False)


#: The counts the fault runs measured, printed again at the end of the session (CI's log keeps them).
_COUNTS: list[str] = []


@pytest.fixture
def report_counts() -> Callable[[str], None]:
    def report(line: str) -> None:
        print(line)
        _COUNTS.append(line.strip())

    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _COUNTS:
        terminalreporter.section("multi-instance runs: requests sent, answered and recorded")
        for line in _COUNTS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def face_body() -> dict[str, Any]:
    """A 1280x720 JPEG with one face that meets every normal-level rule."""
    return {"img": base64.b64encode(face_jpeg()).decode("ascii")}


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="ageguard-multi-"))
    instances: list[Instance] = []
    nginx: Nginx | None = None
    try:
        with fresh_database() as database:
            db_url = database_url(database)
            instances = [Instance(name, root, db_url) for name in INSTANCE_NAMES]
            for instance in instances:
                instance.start()
            for instance in instances:
                instance.wait_ready()
            nginx = start_nginx(root / "nginx", [i.port for i in instances])
            app = create_app(db_url, "multi")
            yield Cluster(root, database, db_url, instances, nginx, app)
            for instance in instances:
                instance.stop()
    finally:
        if nginx is not None:
            nginx.stop()
        for instance in instances:
            instance.stop()
        shutil.rmtree(root, ignore_errors=True)
