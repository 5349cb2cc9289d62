"""The Hub store, on SQLite and PostgreSQL (fixtures in hub_fixtures.py)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ageguard.errors import AgeGuardError
from ageguard.hub import (
    ENDPOINTS,
    AppView,
    Hub,
    HubError,
    RequestRecord,
    StoreUnavailable,
    UsageRow,
    endpoint_name,
)
from ageguard.hub import engine as hub_engine
from ageguard.hub.schema import VERSION_TABLE, metadata

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TABLES = {"organisations", "applications", "terminals", "nonces", "request_records"}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def der(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def raw_engine(hub: Hub) -> sa.Engine:
    return hub._engine


# -- migrations ----------------------------------------------------------------------------------------


def test_migrations_apply_to_empty_db_and_are_idempotent(hub_url: str) -> None:
    first = Hub(hub_url)
    with raw_engine(first).connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        assert TABLES | {VERSION_TABLE} <= names
        assert hub_engine.current_revisions(conn) == hub_engine.head_revisions()
    first.create_org("acme")
    first.close()
    # Opening again (and upgrading again explicitly) changes nothing and keeps the data.
    second = Hub(hub_url)
    hub_engine.upgrade(hub_url)
    assert [o.name for o in second.list_orgs()] == ["acme"]
    with raw_engine(second).connect() as conn:
        versions = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    assert versions == sorted(hub_engine.head_revisions())
    second.close()


def test_migrations_match_the_table_definitions(hub: Hub) -> None:
    """The Alembic revisions build exactly the schema that schema.py describes (nothing to autogenerate)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with raw_engine(hub).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_nonce_expiry_migration_keeps_existing_claims(hub_url: str, rsa_key: rsa.RSAPrivateKey) -> None:
    """0003 on a database at 0002 that holds nonces: the claims survive with an expiry a month out."""
    from alembic import command

    from ageguard.hub.schema import UTCDateTime, applications, organisations

    old_nonces = sa.table(
        "nonces", sa.column("app_sdk_id", sa.Uuid()), sa.column("nonce"), sa.column("seen_at", UTCDateTime())
    )
    work = hub_engine.create_hub_engine(hub_url)
    cfg = hub_engine.alembic_config()
    org_id, app_id = uuid.uuid4(), uuid.uuid4()
    try:
        with work.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002_capture_sessions")
            conn.execute(organisations.insert().values(id=org_id, name="o", status="active", created=T0))
            conn.execute(
                applications.insert().values(
                    sdk_id=app_id,
                    org_id=org_id,
                    name="a",
                    public_key_der=der(rsa_key),
                    enabled=True,
                    allowed_endpoints=list(ENDPOINTS),
                    created=T0,
                )
            )
            conn.execute(old_nonces.insert().values(app_sdk_id=app_id, nonce="n-old", seen_at=T0))
    finally:
        work.dispose()
    before = datetime.now(UTC)
    with Hub(hub_url) as hub:  # migrates to head
        with raw_engine(hub).connect() as conn:
            assert hub_engine.current_revisions(conn) == hub_engine.head_revisions()
        ((nonce, expires),) = _nonce_claims(hub)
        assert nonce == "n-old"
        assert before + timedelta(days=29) < expires < datetime.now(UTC) + timedelta(days=31)
        assert hub.use_nonce(str(app_id), "n-old", datetime.now(UTC), 900) is False  # still a replay


def _nonce_claims(hub: Hub) -> list[tuple[str, datetime]]:
    from ageguard.hub.schema import nonces

    with raw_engine(hub).connect() as conn:
        rows = conn.execute(sa.select(nonces.c.nonce, nonces.c.expires_at)).all()
    return [(r[0], r[1]) for r in rows]


def test_concurrent_opening_of_a_fresh_database_from_threads(hub_url: str) -> None:
    barrier = threading.Barrier(4)

    def open_one(_: int) -> int:
        barrier.wait()
        h = Hub(hub_url)
        try:
            return len(h.list_orgs())
        finally:
            h.close()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_one, range(4))) == [0, 0, 0, 0]


def test_concurrent_opening_of_a_fresh_database_from_processes(hub_url: str) -> None:
    code = (
        "import sys; from ageguard.hub import Hub; h = Hub(sys.argv[1]); h.ping(); print(len(h.list_orgs()))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, hub_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == "0"
    with Hub(hub_url) as h, raw_engine(h).connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar_one() == 1


def test_sqlite_file_parent_created_and_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'hub.db'}"
    with Hub(url) as h:
        assert (tmp_path / "a" / "b" / "hub.db").exists()
        with raw_engine(h).connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_upgrade_alone_creates_the_sqlite_files_folder(tmp_path: Path) -> None:
    # `ageguard serve` and `ageguard migrate` migrate before anything else touches a first start's home.
    db = tmp_path / "new-home" / "hub.db"
    result = hub_engine.upgrade(f"sqlite:///{db}")
    assert db.exists() and result.migrated


def test_in_memory_sqlite_works() -> None:
    with Hub("sqlite://") as h:
        h.create_org("acme")
        assert [o.name for o in h.list_orgs()] == ["acme"]


def test_from_settings_uses_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ageguard.settings import Settings

    monkeypatch.delenv("AGEGUARD_DATABASE_URL", raising=False)
    settings = Settings(home=tmp_path / "home")
    with Hub.from_settings(settings) as h:
        h.ping()
    assert (tmp_path / "home" / "ageguard.db").exists()


def test_unreachable_database_raises_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable) as info:
        Hub("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    assert info.value.code == "SERVICE_UNAVAILABLE"


def test_ping(hub: Hub) -> None:
    hub.ping()


def test_ping_raises_when_the_database_goes_away(tmp_path: Path) -> None:
    h = Hub(f"sqlite:///{tmp_path / 'hub.db'}")
    h.close()
    (tmp_path / "hub.db").unlink()
    (tmp_path / "hub.db").mkdir()  # a directory where the file was: SQLite cannot open it
    with pytest.raises(StoreUnavailable):
        h.ping()


# -- organisations ----------------------------------------------------------------------------------------


def test_orgs(hub: Hub) -> None:
    acme = hub.create_org("acme", billing_source_id="bill-1")
    assert (acme.name, acme.status, acme.billing_source_id) == ("acme", "active", "bill-1")
    uuid.UUID(acme.id)
    hub.create_org("beta")
    assert [o.name for o in hub.list_orgs()] == ["acme", "beta"]
    with pytest.raises(HubError, match="already exists"):
        hub.create_org("acme")
    with pytest.raises(HubError):
        hub.create_org("  ")
    assert hub.set_org_status("acme", "suspended").status == "suspended"
    assert hub.set_org_status(acme.id, "active").status == "active"
    with pytest.raises(HubError):
        hub.set_org_status("acme", "deleted")
    with pytest.raises(AgeGuardError) as info:
        hub.set_org_status("nope", "active")
    assert info.value.code == "ORG_NOT_FOUND"
    assert hub.get_org(acme.id).name == "acme"


# -- applications -------------------------------------------------------------------------------------------


def test_create_app_default_org_and_views(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    view = hub.create_app("shop", None, pem(rsa_key))
    assert isinstance(view, AppView)
    assert str(uuid.UUID(view.sdk_id)) == view.sdk_id
    assert (view.name, view.org_name, view.org_status, view.enabled) == ("shop", "default", "active", True)
    assert view.public_key_der == der(rsa_key)
    assert view.allowed_endpoints == frozenset(ENDPOINTS)
    assert "self-checkout" in view.allowed_endpoints
    assert view.allows("/ai/v1/self-checkout/age-antispoofing") and view.allows("age-verify")
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.enabled = False  # type: ignore[misc]
    # A second app in the default org reuses it.
    hub.create_app("shop2", None, der(rsa_key))
    assert [o.name for o in hub.list_orgs()] == ["default"]
    assert hub.find_app(view.sdk_id) == view
    assert hub.find_app(view.sdk_id.upper()) == view
    assert hub.find_app(str(uuid.uuid4())) is None
    assert hub.find_app("not-a-uuid") is None
    assert hub.find_app("") is None
    assert [a.name for a in hub.list_apps()] == ["shop", "shop2"]


def test_create_app_in_named_org_with_endpoints(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    hub.create_org("acme")
    view = hub.create_app("till", "acme", der(rsa_key), ["self-checkout", "/ai/v1/age", "age"])
    assert view.org_name == "acme"
    assert view.allowed_endpoints == frozenset({"self-checkout", "age"})
    assert not view.allows("antispoofing")
    with pytest.raises(HubError, match="unknown endpoint"):
        hub.create_app("x", "acme", der(rsa_key), ["teleport"])
    with pytest.raises(AgeGuardError) as info:
        hub.create_app("x", "missing-org", der(rsa_key))
    assert info.value.code == "ORG_NOT_FOUND"
    assert [a.name for a in hub.list_apps("acme")] == ["till"]
    hub.set_org_status("acme", "suspended")
    assert hub.find_app(view.sdk_id).org_status == "suspended"  # type: ignore[union-attr]
    updated = hub.set_allowed_endpoints(view.sdk_id, ["age-verify"])
    assert updated.allowed_endpoints == frozenset({"age-verify"})
    assert hub.set_allowed_endpoints(view.sdk_id, None).allowed_endpoints == frozenset(ENDPOINTS)


def test_public_key_validation(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    # PKCS#1 "RSA PUBLIC KEY" PEM is accepted and stored as SubjectPublicKeyInfo DER.
    pkcs1 = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    assert hub.create_app("pkcs1", None, pkcs1).public_key_der == der(rsa_key)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    for bad in (
        ec_pem,
        b"garbage",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        pem(small),
    ):
        with pytest.raises(AgeGuardError) as info:
            hub.create_app("bad", None, bad)
        assert info.value.code == "INVALID_PUBLIC_KEY_ENCODING"
    with pytest.raises(AgeGuardError) as info:
        hub.create_app("bad", None, b"")
    assert info.value.code == "INVALID_PUBLIC_KEY"
    assert [a.name for a in hub.list_apps()] == ["pkcs1"]


def test_enable_disable_and_rotate(hub: Hub, rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey) -> None:
    view = hub.create_app("shop", None, pem(rsa_key))
    assert hub.set_app_enabled(view.sdk_id, False).enabled is False
    assert hub.find_app(view.sdk_id).enabled is False  # type: ignore[union-attr]
    assert hub.set_app_enabled(view.sdk_id.upper(), True).enabled is True
    rotated = hub.rotate_key(view.sdk_id, pem(rsa_key2))
    assert rotated.public_key_der == der(rsa_key2) != der(rsa_key)
    with pytest.raises(AgeGuardError) as info:
        hub.rotate_key(view.sdk_id, b"nope")
    assert info.value.code == "INVALID_PUBLIC_KEY_ENCODING"
    for bad_id in (str(uuid.uuid4()), "junk"):
        with pytest.raises(AgeGuardError) as info:
            hub.set_app_enabled(bad_id, True)
        assert info.value.code == "APP_NOT_FOUND"
        with pytest.raises(AgeGuardError) as info:
            hub.rotate_key(bad_id, pem(rsa_key))
        assert info.value.code == "APP_NOT_FOUND"


def test_endpoint_name() -> None:
    assert endpoint_name("/ai/v1/age") == "age"
    assert endpoint_name("age-antispoofing-verify") == "age-antispoofing-verify"
    assert endpoint_name("/self-checkout/age-antispoofing") == "self-checkout"
    assert endpoint_name("/ai/v1/self-checkout/age-antispoofing") == "self-checkout"


# -- terminals ----------------------------------------------------------------------------------------------


def test_terminals(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    a = hub.create_app("a", None, pem(rsa_key))
    b = hub.create_app("b", None, pem(rsa_key))
    t = hub.add_terminal(a.sdk_id, "till-1", label="Store 1, till 1")
    assert (t.sdk_id, t.terminal_id, t.label) == (a.sdk_id, "till-1", "Store 1, till 1")
    hub.add_terminal(a.sdk_id, "till-2")
    hub.add_terminal(b.sdk_id, "till-1")  # unique per app only
    with pytest.raises(HubError, match="already registered"):
        hub.add_terminal(a.sdk_id, "till-1")
    assert [x.terminal_id for x in hub.list_terminals(a.sdk_id)] == ["till-1", "till-2"]
    assert hub.is_terminal_registered(a.sdk_id, "till-2")
    assert not hub.is_terminal_registered(a.sdk_id, "till-3")
    assert not hub.is_terminal_registered("junk", "till-1")
    hub.remove_terminal(a.sdk_id, "till-2")
    assert not hub.is_terminal_registered(a.sdk_id, "till-2")
    assert hub.is_terminal_registered(b.sdk_id, "till-1")
    with pytest.raises(HubError, match="not registered"):
        hub.remove_terminal(a.sdk_id, "till-2")
    with pytest.raises(AgeGuardError) as info:
        hub.add_terminal(str(uuid.uuid4()), "x")
    assert info.value.code == "APP_NOT_FOUND"
    with pytest.raises(AgeGuardError) as info:
        hub.list_terminals(str(uuid.uuid4()))
    assert info.value.code == "APP_NOT_FOUND"
    with pytest.raises(AgeGuardError) as info:
        hub.remove_terminal(str(uuid.uuid4()), "x")
    assert info.value.code == "APP_NOT_FOUND"
    with pytest.raises(AgeGuardError) as info:
        hub.add_terminal(a.sdk_id, " ")
    assert info.value.code == "TERMINAL_ID_REQUIRED"
    with pytest.raises(HubError):
        hub.add_terminal(a.sdk_id, "x" * 201)


# -- nonces -------------------------------------------------------------------------------------------------


def test_nonce_replay_within_ttl(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    a = hub.create_app("a", None, pem(rsa_key))
    b = hub.create_app("b", None, pem(rsa_key))
    n = str(uuid.uuid4())
    assert hub.use_nonce(a.sdk_id, n, T0, 900) is True
    assert hub.use_nonce(a.sdk_id, n, T0 + timedelta(seconds=10), 900) is False
    assert hub.use_nonce(a.sdk_id, n.upper(), T0 + timedelta(seconds=10), 900) is False  # case-insensitive
    assert hub.use_nonce(b.sdk_id, n, T0, 900) is True  # per application
    assert hub.use_nonce(a.sdk_id, n, T0 + timedelta(seconds=899), 900) is False
    # Past the TTL the old claim has expired and the nonce may be claimed again (once).
    assert hub.use_nonce(a.sdk_id, n, T0 + timedelta(seconds=901), 900) is True
    assert hub.use_nonce(a.sdk_id, n, T0 + timedelta(seconds=902), 900) is False
    # Naive datetimes are taken as UTC.
    assert hub.use_nonce(a.sdk_id, n, (T0 + timedelta(seconds=903)).replace(tzinfo=None), 900) is False


def test_nonce_replay_across_two_hub_instances(hub_url: str, rsa_key: rsa.RSAPrivateKey) -> None:
    with Hub(hub_url) as one, Hub(hub_url) as two:
        app = one.create_app("a", None, pem(rsa_key))
        n = str(uuid.uuid4())
        assert one.use_nonce(app.sdk_id, n, T0, 900) is True
        assert two.use_nonce(app.sdk_id, n, T0 + timedelta(seconds=1), 900) is False
        m = str(uuid.uuid4())
        assert two.use_nonce(app.sdk_id, m, T0, 900) is True
        assert one.use_nonce(app.sdk_id, m, T0, 900) is False


def test_nonce_replay_across_processes(hub_url: str, rsa_key: rsa.RSAPrivateKey) -> None:
    with Hub(hub_url) as h:
        app = h.create_app("a", None, pem(rsa_key))
        n = str(uuid.uuid4())
        assert h.use_nonce(app.sdk_id, n, T0, 900) is True
    code = (
        "import sys; from datetime import datetime; from ageguard.hub import Hub;"
        "when = datetime.fromisoformat(sys.argv[4]);"
        "print(Hub(sys.argv[1]).use_nonce(sys.argv[2], sys.argv[3], when, 900))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, hub_url, app.sdk_id, n, (T0 + timedelta(seconds=5)).isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_concurrent_nonce_use_exactly_one_wins(hub_url: str, rsa_key: rsa.RSAPrivateKey) -> None:
    hubs = [Hub(hub_url) for _ in range(3)]  # several "processes" (engines) and threads in each
    try:
        app = hubs[0].create_app("a", None, pem(rsa_key))
        for attempt in range(3):
            n = str(uuid.uuid4())
            workers = 8
            barrier = threading.Barrier(workers)

            when = T0 + timedelta(seconds=attempt)

            def claim(
                i: int, nonce: str = n, start: threading.Barrier = barrier, at: datetime = when
            ) -> bool:
                start.wait()
                return hubs[i % len(hubs)].use_nonce(app.sdk_id, nonce, at, 900)

            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(claim, range(workers)))
            assert results.count(True) == 1, results
    finally:
        for h in hubs:
            h.close()


def _nonce_rows(hub: Hub) -> list[str]:
    with raw_engine(hub).connect() as conn:
        return sorted(conn.execute(sa.text("SELECT nonce FROM nonces")).scalars().all())


def test_each_nonce_keeps_its_own_expiry(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    """A short claim (fresh epoch timestamp) and a long one (Java) side by side; each lapses on its own."""
    app = hub.create_app("a", None, pem(rsa_key))
    short, long = str(uuid.uuid4()), str(uuid.uuid4())
    month = 30 * 86400
    assert hub.use_nonce(app.sdk_id, short, T0, 900)
    assert hub.use_nonce(app.sdk_id, long, T0, month)
    later = T0 + timedelta(minutes=20)
    assert hub.use_nonce(app.sdk_id, short, later, 900) is True  # expired: claimable again
    assert hub.use_nonce(app.sdk_id, long, later, 900) is False  # its own 30 days decide, not the caller's
    assert hub.use_nonce(app.sdk_id, long, T0 + timedelta(days=29), 900) is False
    assert hub.use_nonce(app.sdk_id, long, T0 + timedelta(days=30, seconds=1), 900) is True


def test_expired_nonces_are_purged_in_batches(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    app = hub.create_app("a", None, pem(rsa_key))
    for i in range(5):
        assert hub.use_nonce(app.sdk_id, f"old-{i}", T0, 60)
    assert hub.use_nonce(app.sdk_id, "java", T0, 30 * 86400)
    assert hub.wait_nonce_purge(30)
    assert hub.purge_nonces(T0 + timedelta(seconds=30)) == 0
    assert hub.use_nonce(app.sdk_id, "fresh", T0 + timedelta(seconds=50), 60)
    batches: list[int] = []
    purged = hub.purge_nonces(
        T0 + timedelta(seconds=61), batch_size=2, on_batch=lambda n, _s: batches.append(n)
    )
    assert purged == 5 and batches == [2, 2, 1]
    assert _nonce_rows(hub) == ["fresh", "java"]
    assert hub.purge_nonces(T0 + timedelta(days=31), max_rows=1) == 1


def test_the_purge_runs_in_the_background(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    """use_nonce starts the purge on its own thread, at most once a minute, and returns without it."""
    app = hub.create_app("a", None, pem(rsa_key))
    purgers: list[str] = []
    original = hub.purge_nonces

    def spy(now: datetime | None = None, **kwargs: object) -> int:
        purgers.append(threading.current_thread().name)
        return original(now, **kwargs)  # type: ignore[arg-type]

    hub.purge_nonces = spy  # type: ignore[method-assign]
    for i in range(3):
        hub.use_nonce(app.sdk_id, f"again-{i}", T0 + timedelta(hours=1), 60)
    assert hub.wait_nonce_purge(30)
    hub.use_nonce(app.sdk_id, "later", T0 + timedelta(hours=2), 60)
    assert hub.wait_nonce_purge(30)
    assert _nonce_rows(hub) == ["later"]
    assert purgers == ["ageguard-nonce-purge", "ageguard-nonce-purge"]


def test_nonce_errors(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    app = hub.create_app("a", None, pem(rsa_key))
    with pytest.raises(AgeGuardError) as info:
        hub.use_nonce(str(uuid.uuid4()), "n1", T0, 900)
    assert info.value.code == "APP_NOT_FOUND"
    for bad in ("", "x" * 201):
        with pytest.raises(AgeGuardError) as info:
            hub.use_nonce(app.sdk_id, bad, T0, 900)
        assert info.value.code == "INVALID_NONCE"


# -- request records ----------------------------------------------------------------------------------------


def test_request_records_have_no_image_column(hub: Hub) -> None:
    expected = {
        "id",
        "time",
        "app_sdk_id",
        "endpoint",
        "terminal_id",
        "session_id",
        "device",
        "outcome",
        "latency_ms",
    }
    with raw_engine(hub).connect() as conn:
        columns = sa.inspect(conn).get_columns("request_records")
    assert {c["name"] for c in columns} == expected
    for c in columns:
        assert not isinstance(c["type"], sa.LargeBinary | sa.Text), c
        assert "img" not in c["name"] and "image" not in c["name"]
        if isinstance(c["type"], sa.String):
            assert c["type"].length is not None and c["type"].length <= 200, c  # no room for base64 images
    fields = {f.name for f in dataclasses.fields(RequestRecord)}
    assert fields == {
        "time",
        "sdk_id",
        "endpoint",
        "terminal_id",
        "session_id",
        "device",
        "outcome",
        "latency_ms",
    }


def test_record_request_stores_no_image_data(hub: Hub) -> None:
    marker = "iVBORw0KGgoAAAANSUhEUgAA"  # the start of any base64 PNG
    hub.record_request(
        RequestRecord(
            endpoint="age",
            outcome="OK",
            latency_ms=12.5,
            sdk_id=str(uuid.uuid4()),
            terminal_id="t" * 500,
            session_id=marker * 100,
            device="mobile",
        )
    )
    with raw_engine(hub).connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM request_records")).mappings().one()
    total = sum(len(str(v)) for v in row.values())
    assert total < 1000  # long header values are clipped to their column sizes
    assert len(row["terminal_id"]) == 200


def test_record_request_and_usage(hub: Hub, rsa_key: rsa.RSAPrivateKey) -> None:
    a = hub.create_app("a", None, pem(rsa_key)).sdk_id
    b = hub.create_app("b", None, pem(rsa_key)).sdk_id

    def rec(sdk: str | None, endpoint: str, outcome: str, terminal: str | None, at: datetime) -> None:
        hub.record_request(
            RequestRecord(
                time=at,
                sdk_id=sdk,
                endpoint=endpoint,
                outcome=outcome,
                latency_ms=10.0,
                terminal_id=terminal,
                session_id="s-1",
                device="unknown",
            )
        )

    rec(a, "self-checkout/age-antispoofing", "OK", "till-1", T0)
    rec(a, "self-checkout/age-antispoofing", "OK", "till-1", T0 + timedelta(minutes=1))
    rec(a, "self-checkout/age-antispoofing", "FACE_NOT_FOUND", "till-1", T0 + timedelta(minutes=2))
    rec(a, "self-checkout/age-antispoofing", "FACE_NOT_FOUND", "till-2", T0 + timedelta(hours=2))
    rec(a, "age", "OK", None, T0 - timedelta(days=1))
    rec(b, "age", "IMAGE_TOO_DARK", None, T0)
    rec(None, "age", "INVALID_X_YOTI_AUTH_ID", None, T0)

    assert hub.usage(a, "till-1", None) == [
        UsageRow("self-checkout/age-antispoofing", "till-1", "FACE_NOT_FOUND", 1),
        UsageRow("self-checkout/age-antispoofing", "till-1", "OK", 2),
    ]
    assert hub.usage(a, None, T0) == [
        UsageRow("self-checkout/age-antispoofing", "till-1", "FACE_NOT_FOUND", 1),
        UsageRow("self-checkout/age-antispoofing", "till-1", "OK", 2),
        UsageRow("self-checkout/age-antispoofing", "till-2", "FACE_NOT_FOUND", 1),
    ]
    assert hub.usage(a.upper(), None, None, until=T0) == [UsageRow("age", None, "OK", 1)]
    assert sum(r.count for r in hub.usage(None, None, None)) == 7
    assert hub.usage(b, None, None) == [UsageRow("age", None, "IMAGE_TOO_DARK", 1)]
    assert hub.usage(None, None, T0 + timedelta(hours=3)) == []
    # Naive `since` is UTC.
    assert sum(r.count for r in hub.usage(a, None, (T0 + timedelta(hours=1)).replace(tzinfo=None))) == 1
    assert hub.purge_requests(T0) == 1
    assert sum(r.count for r in hub.usage(None, None, None)) == 6


def test_failed_record_write_is_raised(hub: Hub) -> None:
    with raw_engine(hub).begin() as conn:
        conn.execute(sa.text("DROP TABLE request_records"))
    with pytest.raises(StoreUnavailable):
        hub.record_request(RequestRecord(endpoint="age", outcome="OK", latency_ms=1.0))


def test_unknown_schema_revision_is_a_clear_error(hub_url: str) -> None:
    with Hub(hub_url) as h, raw_engine(h).begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'from_the_future'"))
    with pytest.raises(StoreUnavailable, match="cannot be migrated"):
        Hub(hub_url)
