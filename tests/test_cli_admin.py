"""Admin CLI (org, app, terminal, usage) via typer's CliRunner and one real subprocess, on both backends."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

import ageguard.cli.admin  # noqa: F401  (registers the commands)
from ageguard.cli._app import app as cli
from ageguard.hub import Hub, RequestRecord

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    code, out, err = run(*args)
    assert code == 0, (args, out, err)
    return out


def last_json(out: str) -> dict[str, object]:
    obj = json.loads(out.strip().splitlines()[-1])
    assert isinstance(obj, dict)
    return obj


def failing(*args: str, code: int = 1) -> str:
    exit_code, out, err = run(*args)
    assert exit_code == code, (args, out, err)
    assert "Traceback" not in out + err
    return err


@pytest.fixture(scope="module")
def public_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "pub.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (path.parent / "pub.der").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (path.parent / "priv.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (path.parent / "ec.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (path.parent / "priv-pkcs1.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    (path.parent / "ec-priv.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (path.parent / "junk.pem").write_bytes(b"hello")
    return path


def test_org_commands(hub_env: str) -> None:
    out = ok("org", "create", "acme", "--billing-source-id", "bill-7")
    org = last_json(out)
    assert org["name"] == "acme" and org["status"] == "active" and org["billing_source_id"] == "bill-7"
    assert "already exists" in failing("org", "create", "acme")
    ok("org", "create", "beta")
    assert "acme" in ok("org", "list")
    listed = [json.loads(line) for line in ok("org", "list", "--json").splitlines()]
    assert [o["name"] for o in listed] == ["acme", "beta"]
    assert "suspended" in ok("org", "suspend", "acme")
    with Hub(hub_env) as hub:
        assert hub.get_org("acme").status == "suspended"
    ok("org", "activate", str(org["id"]))
    with Hub(hub_env) as hub:
        assert hub.get_org("acme").status == "active"
    assert "ORG_NOT_FOUND" in failing("org", "suspend", "nope")


def test_app_create_generates_a_key_pair(hub_env: str, tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "shop.pem"
    out = ok("app", "create", "--name", "shop", "--private-key-out", str(key_file))
    result = last_json(out)
    sdk_id = str(result["sdk_id"])
    assert str(uuid.UUID(sdk_id)) == sdk_id
    assert result["org"] == "default" and result["private_key_file"] == str(key_file.resolve())
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["shop.pem"]  # no temporary file left
    # PKCS#1, the form the Go, Java and .NET SDKs load (and Python and Node too).
    assert key_file.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    with Hub(hub_env) as hub:
        view = hub.find_app(sdk_id)
        assert view is not None and view.name == "shop" and view.enabled
        assert view.public_key_der == private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    assert "PRIVATE KEY" not in out
    # The key file is never overwritten without --force.
    assert "already exists" in failing("app", "create", "--name", "x", "--private-key-out", str(key_file))
    ok("app", "create", "--name", "x", "--private-key-out", str(key_file), "--force")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes() != b""


def test_app_create_with_public_key_files_and_endpoints(hub_env: str, public_pem: Path) -> None:
    ok("org", "create", "acme")
    out = ok(
        "app", "create", "--name", "till", "--org", "acme", "--public-key", str(public_pem),
        "--endpoints", "self-checkout,age",
    )  # fmt: skip
    result = last_json(out)
    assert result["org"] == "acme" and result["allowed_endpoints"] == ["age", "self-checkout"]
    out = ok(
        "app", "create", "--name", "till2", "--public-key", str(public_pem.parent / "pub.der"),
        "--endpoints", "age", "--endpoints", "antispoofing",
    )  # fmt: skip
    assert last_json(out)["allowed_endpoints"] == ["age", "antispoofing"]
    with Hub(hub_env) as hub:
        a, b = hub.find_app(str(last_json(out)["sdk_id"])), hub.find_app(str(result["sdk_id"]))
        assert a is not None and b is not None and a.public_key_der == b.public_key_der
    # The private key an SDK already uses, PKCS#8 or PKCS#1: its public part is registered, nothing else.
    for name in ("priv.pem", "priv-pkcs1.pem"):
        out = ok("app", "create", "--name", f"own-{name}", "--public-key", str(public_pem.parent / name))
        assert "PRIVATE KEY" not in out
        with Hub(hub_env) as hub:
            own = hub.find_app(str(last_json(out)["sdk_id"]))
            assert own is not None and own.public_key_der == b.public_key_der
            # A request the SDK signs with that very key file verifies against the registered app.
            assert _signed_request_verifies(hub, own.sdk_id, public_pem.parent / name)


def _signed_request_verifies(hub: Hub, sdk_id: str, key_file: Path) -> bool:
    from ageguard import signing
    from ageguard.api.auth import Verifier
    from ageguard.settings import Settings

    key = signing.load_private_key(key_file.read_bytes())
    query = f"nonce={uuid.uuid4()}&timestamp={int(datetime.now(UTC).timestamp() * 1000)}"
    body = b'{"img": "aGVsbG8="}'
    digest = signing.sign(key, "POST", f"/age?{query}", body)
    ctx = Verifier(Settings(), hub).verify(
        method="POST",
        raw_path=b"/ai/v1/age",
        query_string=query.encode(),
        headers={"x-yoti-auth-id": sdk_id, "x-yoti-auth-digest": digest},
        body=body,
        endpoint="age",
    )
    return ctx.app.sdk_id == sdk_id


def test_app_create_errors_are_clear(hub_env: str, public_pem: Path, tmp_path: Path) -> None:
    keys = public_pem.parent
    assert "exactly one" in failing("app", "create", "--name", "x", code=2)
    both = ("--public-key", str(public_pem), "--private-key-out", str(tmp_path / "k"))
    assert "exactly one" in failing("app", "create", "--name", "x", *both, code=2)
    err = failing(
        "app", "create", "--name", "x", "--org", "nope", "--private-key-out", str(tmp_path / "k.pem")
    )
    assert "ORG_NOT_FOUND" in err and "nope" in err
    assert list(tmp_path.glob("*k.pem*")) == []  # nothing written when the app was not created
    assert "cannot read public key file" in failing(
        "app", "create", "--name", "x", "--public-key", str(keys / "missing.pem")
    )
    assert "must be RSA" in failing("app", "create", "--name", "x", "--public-key", str(keys / "ec-priv.pem"))
    assert "must be RSA" in failing("app", "create", "--name", "x", "--public-key", str(keys / "ec.pem"))
    assert "not a usable public key" in failing(
        "app", "create", "--name", "x", "--public-key", str(keys / "junk.pem")
    )
    assert "unknown endpoint" in failing(
        "app", "create", "--name", "x", "--public-key", str(public_pem), "--endpoints", "teleport"
    )
    with Hub(hub_env) as hub:
        assert hub.list_apps() == []


def test_app_disable_enable_list_rotate(hub_env: str, public_pem: Path, tmp_path: Path) -> None:
    sdk_id = str(last_json(ok("app", "create", "--name", "shop", "--public-key", str(public_pem)))["sdk_id"])
    assert "disabled" in ok("app", "disable", sdk_id)
    with Hub(hub_env) as hub:
        assert hub.get_app(sdk_id).enabled is False
    assert "enabled" in ok("app", "enable", "shop")  # a unique name works too
    with Hub(hub_env) as hub:
        assert hub.get_app(sdk_id).enabled is True
    assert "APP_NOT_FOUND" in failing("app", "disable", str(uuid.uuid4()))
    assert "APP_NOT_FOUND" in failing("app", "enable", "no-such-app")

    listed = [json.loads(line) for line in ok("app", "list", "--json").splitlines()]
    assert [(a["sdk_id"], a["name"], a["enabled"]) for a in listed] == [(sdk_id, "shop", True)]
    assert sdk_id in ok("app", "list")
    assert "ORG_NOT_FOUND" in failing("app", "list", "--org", "nope")

    old = listed[0]["public_key_fingerprint"]
    new_key = tmp_path / "rotated.pem"
    rotated = last_json(ok("app", "rotate-key", sdk_id, "--private-key-out", str(new_key)))
    assert rotated["sdk_id"] == sdk_id and rotated["public_key_fingerprint"] != old
    assert stat.S_IMODE(new_key.stat().st_mode) == 0o600
    assert "not a usable public key" in failing(
        "app", "rotate-key", sdk_id, "--public-key", str(public_pem.parent / "junk.pem")
    )
    assert "may call: age" in ok("app", "set-endpoints", sdk_id, "--endpoints", "age")

    ok("app", "create", "--name", "shop", "--public-key", str(public_pem))
    assert "2 applications are named" in failing("app", "disable", "shop")


def test_terminal_commands(hub_env: str, public_pem: Path) -> None:
    sdk_id = str(last_json(ok("app", "create", "--name", "shop", "--public-key", str(public_pem)))["sdk_id"])
    added = last_json(ok("terminal", "add", "till-1", "--app", sdk_id, "--label", "Store 1, till 1"))
    assert added == {**added, "sdk_id": sdk_id, "terminal_id": "till-1", "label": "Store 1, till 1"}
    ok("terminal", "add", "till-2", "--app", "shop")
    assert "already registered" in failing("terminal", "add", "till-2", "--app", sdk_id)
    listed = [json.loads(line) for line in ok("terminal", "list", "--app", sdk_id, "--json").splitlines()]
    assert [t["terminal_id"] for t in listed] == ["till-1", "till-2"]
    assert "Store 1, till 1" in ok("terminal", "list", "--app", sdk_id)
    ok("terminal", "remove", "till-2", "--app", sdk_id)
    assert "not registered" in failing("terminal", "remove", "till-2", "--app", sdk_id)
    assert "APP_NOT_FOUND" in failing("terminal", "add", "x", "--app", str(uuid.uuid4()))
    with Hub(hub_env) as hub:
        assert hub.is_terminal_registered(sdk_id, "till-1")
        assert not hub.is_terminal_registered(sdk_id, "till-2")


def test_usage_report(hub_env: str, public_pem: Path) -> None:
    sdk_id = str(last_json(ok("app", "create", "--name", "shop", "--public-key", str(public_pem)))["sdk_id"])
    now = datetime.now(UTC)
    outcomes = [
        ("till-1", "OK"),
        ("till-1", "OK"),
        ("till-1", "FACE_NOT_FOUND"),
        ("till-2", "IMAGE_TOO_DARK"),
    ]
    with Hub(hub_env) as hub:
        for terminal, outcome in outcomes:
            hub.record_request(
                RequestRecord(
                    sdk_id=sdk_id,
                    endpoint="self-checkout/age-antispoofing",
                    outcome=outcome,
                    latency_ms=20.0,
                    terminal_id=terminal,
                    time=now - timedelta(minutes=5),
                )
            )
        hub.record_request(
            RequestRecord(
                sdk_id=sdk_id, endpoint="age", outcome="OK", latency_ms=9.0, time=now - timedelta(days=3)
            )
        )

    report = last_json(ok("usage", "--app", sdk_id, "--json"))
    assert (report["total"], report["ok"], report["errors"]) == (5, 3, 2)
    assert report["by_outcome"] == {"OK": 3, "FACE_NOT_FOUND": 1, "IMAGE_TOO_DARK": 1}
    terminals = {t["terminal_id"]: t for t in report["terminals"]}  # type: ignore[attr-defined]
    assert terminals["till-1"]["requests"] == 3 and terminals["till-1"]["errors"] == 1
    assert terminals["till-1"]["error_codes"] == {"FACE_NOT_FOUND": 1}
    assert terminals["till-2"]["error_rate"] == 1.0
    assert terminals[None]["ok"] == 1

    recent = last_json(ok("usage", "--app", "shop", "--since", "1d", "--json"))
    assert recent["total"] == 4
    only = last_json(ok("usage", "--terminal", "till-2", "--json"))
    assert only["by_outcome"] == {"IMAGE_TOO_DARK": 1}
    iso = last_json(
        ok("usage", "--since", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "--json")
    )
    assert iso["total"] == 4

    text = ok("usage", "--app", sdk_id)
    assert (
        "till-1" in text and "FACE_NOT_FOUND" in text and "IMAGE_TOO_DARK" in text and "Requests: 5" in text
    )
    assert failing("usage", "--since", "last tuesday", code=2)


def test_unreachable_database_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ageguard.settings import get_settings

    monkeypatch.setenv("AGEGUARD_HOME", str(tmp_path))
    monkeypatch.setenv(
        "AGEGUARD_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=2"
    )
    get_settings.cache_clear()
    try:
        assert "cannot open the hub database" in failing("org", "list")
    finally:
        get_settings.cache_clear()


def test_default_database_is_sqlite_in_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ageguard.settings import get_settings

    monkeypatch.setenv("AGEGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AGEGUARD_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        ok("org", "create", "acme")
    finally:
        get_settings.cache_clear()
    assert (tmp_path / "home" / "ageguard.db").exists()


def _ageguard_command() -> list[str]:
    script = Path(sys.executable).with_name("ageguard")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ageguard.cli import main; main()"]


def test_real_subprocess_app_create(hub_env: str, tmp_path: Path) -> None:
    """`.venv/bin/ageguard app create` end to end: key file 0600 (even with umask 0), JSON last line."""
    key_file = tmp_path / "app.pem"
    proc = subprocess.run(
        [*_ageguard_command(), "app", "create", "--name", "kiosk", "--private-key-out", str(key_file)],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
        preexec_fn=lambda: os.umask(0),
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with Hub(hub_env) as hub:
        view = hub.find_app(result["sdk_id"])
    assert view is not None and view.name == "kiosk"


def test_the_socket_several_workers_share_turns_nagle_off() -> None:
    # Without TCP_NODELAY every answer's body waits for the client's delayed ACK (40 ms on Linux).
    import uvicorn

    from ageguard.cli.serve import shared_socket

    config = uvicorn.Config("ageguard.api.main:build_app", host="127.0.0.1", port=0, workers=2)
    with shared_socket(config) as sock:
        sock.listen()
        with socket.create_connection(sock.getsockname()[:2]):
            accepted, _ = sock.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
