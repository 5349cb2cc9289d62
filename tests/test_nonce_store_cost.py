"""``ageguard nonces measure`` and ``ageguard nonces purge`` on real SQLite and PostgreSQL stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hub_fixtures import PG_ENABLED, PG_URL

from ageguard.hub import Hub
from ageguard.hub.keys import der_of, generate_private_key


def _ageguard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("ageguard")
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def _schemas() -> set[str]:
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT schema_name FROM information_schema.schemata")).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_measure_prints_the_cost_per_million(backend: str) -> None:
    args = ["nonces", "measure", "--rows", "3000", "--sample", "50", "--batch-size", "500", "--json"]
    if backend == "postgres":
        if not PG_ENABLED:
            pytest.skip("PostgreSQL leg disabled by AGEGUARD_TEST_PG=0")
        before = _schemas()
        args += ["--database-url", PG_URL]
    result = _ageguard(*args)
    assert result.returncode == 0, result.stderr
    cost = json.loads(result.stdout.strip().splitlines()[-1])
    assert cost["backend"] == ("sqlite" if backend == "sqlite" else "postgresql")
    assert cost["rows"] == 3000 and cost["claims"] == 50 and cost["notes"] == []
    # A row holds two UUID-sized keys and two times, plus its index entries: tens to hundreds of bytes.
    assert 60 < cost["bytes_per_row"] < 1000
    assert cost["mb_per_million"] == pytest.approx(cost["bytes_per_row"], rel=0.01)
    assert cost["total_bytes"] == cost["table_bytes"] + sum(cost["index_bytes"].values())
    assert any("expires_at" in name for name in cost["index_bytes"])
    assert cost["purge_batches"] == 3000 // 500 + 1  # every loaded row, 500 at a time, then an empty batch
    assert 0 < cost["claim_ms_p50"] <= cost["claim_ms_p95"]
    assert "MB per million nonces kept" in result.stdout
    if backend == "postgres":
        assert _schemas() == before  # its throwaway schema is gone


def test_measure_refuses_an_existing_sqlite_file(tmp_path: Path) -> None:
    result = _ageguard("nonces", "measure", "--database-url", f"sqlite:///{tmp_path / 'mine.db'}")
    assert result.returncode == 1
    assert "temporary file" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "mine.db").exists()


def test_purge_deletes_only_expired_nonces(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'ageguard.db'}"
    with Hub(url) as hub:
        app = hub.create_app("a", None, der_of(generate_private_key().public_key()))
        kept = str(uuid.uuid4())
        hub.use_nonce(app.sdk_id, kept, datetime.now(UTC), 30 * 86400)  # its background purge: nothing yet
        assert hub.wait_nonce_purge(30)
        long_ago = datetime.now(UTC) - timedelta(days=40)  # before the next background purge is due
        for _ in range(3):
            hub.use_nonce(app.sdk_id, str(uuid.uuid4()), long_ago, 900)
    result = _ageguard("nonces", "purge", env={"AGEGUARD_HOME": str(home), "AGEGUARD_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"purged": 3}
    with Hub(url) as hub:
        assert hub.use_nonce(app.sdk_id, kept, datetime.now(UTC), 900) is False  # the Java claim stays
