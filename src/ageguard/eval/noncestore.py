"""``ageguard nonces measure``: what the replay-nonce store costs, on SQLite or PostgreSQL.

In one run, on a throwaway store (a new SQLite file in a temporary folder, or a new schema in the given
PostgreSQL database, dropped afterwards; existing data is never touched):

1. ``rows`` nonces are loaded (random UUIDs as the SDKs send them, one application, a 30-day expiry as a
   Java request gets), in bulk;
2. the table and each index are sized (SQLite: the ``dbstat`` virtual table; PostgreSQL:
   ``pg_relation_size``), giving bytes per row and MB per million requests kept;
3. ``sample`` nonces are claimed through :meth:`ageguard.hub.Hub.use_nonce`, the verifier's own call (one
   transaction each, into the loaded table): ms per claim;
4. every loaded row is purged as expired with :meth:`ageguard.hub.Hub.purge_nonces` in its batches, while
   the main thread keeps claiming nonces: total purge time, ms per batch, and the claim latency during the
   purge (what a request waits for at most).

Figures scale linearly with ``rows`` (B-tree sizes and batch counts do), so the per-million figures hold
for a table of any size; run with ``--rows 1000000`` to measure a million directly.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ageguard.hub import Hub
from ageguard.hub.schema import nonces
from ageguard.hub.store import NONCE_PURGE_BATCH

#: The retention a loaded row gets (the default ``nonce_retention_s``).
LOADED_TTL = timedelta(days=30)
#: Rows per bulk-insert statement while loading.
LOAD_CHUNK = 5000


@dataclass
class NonceStoreCost:
    backend: str
    rows: int
    table_bytes: int
    index_bytes: dict[str, int]
    bytes_per_row: float
    mb_per_million: float
    claim_ms_p50: float
    claim_ms_p95: float
    claim_ms_mean: float
    claims: int
    purge_s: float
    purge_s_per_million: float
    purge_batches: int
    purge_batch_ms_p50: float
    purge_batch_ms_max: float
    claims_during_purge: int
    claim_during_purge_ms_p50: float
    claim_during_purge_ms_p95: float
    claim_during_purge_ms_max: float
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return self.table_bytes + sum(self.index_bytes.values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["total_bytes"] = self.total_bytes
        return out


@contextmanager
def scratch_store(database_url: str | None) -> Iterator[str]:
    """A URL of an empty store: a new SQLite file, or a new schema in the PostgreSQL database given."""
    if database_url is None or make_url(database_url).get_backend_name() == "sqlite":
        if database_url is not None and make_url(database_url).database not in (None, "", ":memory:"):
            raise ValueError(
                "for SQLite, leave --database-url out: the measurement uses a new temporary file"
            )
        folder = Path(tempfile.mkdtemp(prefix="ageguard-nonces-"))
        try:
            yield f"sqlite:///{folder / 'nonces.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"unsupported database {url.get_backend_name()!r}: SQLite or PostgreSQL")
    schema = f"ageguard_nonces_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield scoped.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        admin.dispose()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _sizes(engine: sa.Engine) -> tuple[int, dict[str, int]]:
    """Bytes of the nonces table and of each of its indexes."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(
                sa.text(
                    "SELECT d.name, SUM(d.pgsize) FROM dbstat AS d JOIN sqlite_master AS m ON m.name = d.name"
                    " WHERE m.tbl_name = 'nonces' GROUP BY d.name"
                )
            ).all()
            sizes = {str(name): int(size) for name, size in rows}
            table = sizes.pop("nonces", 0)
            return table, sizes
        table = int(conn.execute(sa.text("SELECT pg_relation_size('nonces')")).scalar_one())
        indexes = conn.execute(
            sa.text(
                "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index"
                " WHERE indrelid = 'nonces'::regclass"
            )
        ).all()
        return table, {str(name): int(size) for name, size in indexes}


def _load(engine: sa.Engine, sdk_id: uuid.UUID, rows: int, now: datetime) -> None:
    """``rows`` claims seen one millisecond apart up to ``now`` (distinct expiries, as real traffic has)."""
    first = now - timedelta(milliseconds=rows)
    done = 0
    while done < rows:
        n = min(LOAD_CHUNK, rows - done)
        values = []
        for i in range(done, done + n):
            seen = first + timedelta(milliseconds=i)
            values.append(
                {
                    "app_sdk_id": sdk_id,
                    "nonce": str(uuid.uuid4()),
                    "seen_at": seen,
                    "expires_at": seen + LOADED_TTL,
                }
            )
        with engine.begin() as conn:
            conn.execute(nonces.insert(), values)
        done += n


def _claims(hub: Hub, sdk_id: str, count: int, stop: Callable[[], bool] | None = None) -> list[float]:
    times: list[float] = []
    ttl = int(LOADED_TTL.total_seconds()) + 10 * 86400  # outlives the purge's cutoff below
    for _ in range(count):
        if stop is not None and stop():
            break
        started = time.perf_counter()
        hub.use_nonce(sdk_id, str(uuid.uuid4()), datetime.now(UTC), ttl)
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def measure(
    database_url: str | None = None,
    *,
    rows: int = 100_000,
    sample: int = 2000,
    batch_size: int = NONCE_PURGE_BATCH,
    progress: Callable[[str], None] | None = None,
) -> NonceStoreCost:
    """Measure the nonce store on a throwaway copy of the given backend (see the module docstring)."""
    say = progress or (lambda _msg: None)
    from ageguard.hub.keys import der_of, generate_private_key

    with scratch_store(database_url) as url:
        hub = Hub(url)
        try:
            app = hub.create_app("nonce-measure", None, der_of(generate_private_key().public_key()))
            engine: sa.Engine = hub._engine
            now = datetime.now(UTC)
            say(f"loading {rows:,} nonces into {hub.dialect}")
            _load(engine, uuid.UUID(app.sdk_id), rows, now)
            if hub.dialect == "postgresql":
                with engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                        "VACUUM ANALYZE nonces"
                    )
            table, indexes = _sizes(engine)
            total = table + sum(indexes.values())
            say(f"claiming {sample:,} nonces through Hub.use_nonce")
            claim_ms = _claims(hub, app.sdk_id, sample)

            say("purging every loaded row while claiming more")
            batches: list[float] = []
            done = threading.Event()
            purged: list[int] = []
            cutoff = now + LOADED_TTL + timedelta(days=1)

            def purge() -> None:
                try:
                    purged.append(
                        hub.purge_nonces(
                            cutoff, batch_size=batch_size, on_batch=lambda _n, s: batches.append(s)
                        )
                    )
                finally:
                    done.set()

            started = time.perf_counter()
            worker = threading.Thread(target=purge, name="nonce-measure-purge")
            worker.start()
            during = _claims(hub, app.sdk_id, 10**9, stop=done.is_set)
            worker.join()
            purge_s = time.perf_counter() - started
            removed = purged[0] if purged else 0
            notes = []
            if removed != rows:
                notes.append(f"purged {removed} of {rows} rows")
            batch_ms = [b * 1000.0 for b in batches]
            return NonceStoreCost(
                backend=hub.dialect,
                rows=rows,
                table_bytes=table,
                index_bytes=indexes,
                bytes_per_row=round(total / rows, 1),
                mb_per_million=round(total / rows * 1_000_000 / 1e6, 1),
                claim_ms_p50=round(statistics.median(claim_ms), 3),
                claim_ms_p95=round(_percentile(claim_ms, 0.95), 3),
                claim_ms_mean=round(statistics.fmean(claim_ms), 3),
                claims=len(claim_ms),
                purge_s=round(purge_s, 2),
                purge_s_per_million=round(purge_s / rows * 1_000_000, 1),
                purge_batches=len(batches),
                purge_batch_ms_p50=round(statistics.median(batch_ms), 2) if batch_ms else 0.0,
                purge_batch_ms_max=round(max(batch_ms), 2) if batch_ms else 0.0,
                claims_during_purge=len(during),
                claim_during_purge_ms_p50=round(statistics.median(during), 3) if during else 0.0,
                claim_during_purge_ms_p95=round(_percentile(during, 0.95), 3),
                claim_during_purge_ms_max=round(max(during), 3) if during else 0.0,
                notes=notes,
            )
        finally:
            hub.close()
