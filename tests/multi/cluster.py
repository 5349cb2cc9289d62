"""Several real ``ageguard serve`` processes on one real PostgreSQL database, behind a real nginx.

Everything runs on loopback with temporary homes, logs and an nginx prefix under a pytest temp dir, and a
throwaway database per use (``fresh_database``), dropped afterwards. Instances run the same command the
deployment manifests run (``SERVE_ARGS``, checked by tests/test_deploy_manifests.py), and nginx runs with
the deployment's own server block (deploy/nginx/ageguard-server.conf).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from live_server import ageguard_command, free_port
from sqlalchemy.pool import NullPool

from ageguard import signing
from ageguard.hub import Hub
from ageguard.hub.keys import der_of, generate_private_key

ROOT = Path(__file__).resolve().parents[2]
NGINX_SERVER_CONF = ROOT / "deploy" / "nginx" / "ageguard-server.conf"
#: Upstream server parameters, the same as deploy/nginx/nginx.conf's (checked by test_deploy_manifests).
UPSTREAM_PARAMS = "max_fails=1 fail_timeout=3s"
UPSTREAM_KEEPALIVE = 16

PG_URL = os.environ.get("AGEGUARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STARTUP_TIMEOUT_S = float(os.environ.get("AGEGUARD_TEST_STARTUP_S", "120"))

#: ``ageguard serve`` options the suite starts instances with; the manifests use the same ones.
SERVE_OPTIONS = ("--host", "--port", "--workers")


def serve_args(port: int, workers: int = 1) -> list[str]:
    return ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]


#: Settings of every instance: one inference thread and one onnxruntime thread (three instances share a
#: 2-core machine in CI), the rest defaults.
INSTANCE_ENV = {
    "AGEGUARD_INFERENCE_THREADS": "1",
    "AGEGUARD_ONNX_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}


# ------------------------------------------------------------------------------------------ database


def admin_engine(database: str | None = None) -> sa.Engine:
    url = sa.engine.make_url(PG_URL)
    if database is not None:
        url = url.set(database=database)
    return sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def database_url(name: str) -> str:
    url = sa.engine.make_url(PG_URL).set(database=name)
    return url.render_as_string(hide_password=False)


@contextmanager
def fresh_database(prefix: str = "ageguard_multi") -> Iterator[str]:
    """A new, empty PostgreSQL database (its name); dropped on exit, connections and all."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def set_connections_allowed(name: str, allowed: bool) -> None:
    """Make the database unreachable for everyone (and cut every open connection), or reachable again."""
    with admin_engine().connect() as conn:
        conn.exec_driver_sql(
            f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if allowed else "false"}'
        )
        if not allowed:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": name},
            )


def waiting_backends(name: str, query_like: str) -> int:
    """Backends of database ``name`` blocked on a lock while running a statement like ``query_like``."""
    with admin_engine().connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND wait_event_type = 'Lock'"
                    " AND query ILIKE :q"
                ),
                {"db": name, "q": query_like},
            ).scalar_one()
        )


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


# ------------------------------------------------------------------------------------------ instances


@dataclass
class Instance:
    """One ``ageguard serve`` process (restartable on the same port)."""

    name: str
    root: Path
    db_url: str
    port: int = field(default_factory=free_port)
    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGEGUARD_", "PROMETHEUS_"))}
        env.update(INSTANCE_ENV)
        tmpdir = self.root / f"{self.name}-tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        env.update(
            {
                "AGEGUARD_HOME": str(self.root / f"{self.name}-home"),
                "AGEGUARD_DATABASE_URL": self.db_url,
                "AGEGUARD_INSTANCE_NAME": self.name,
                "TMPDIR": str(tmpdir),
            }
        )
        # The model cache is shared (read-only use): the caller's AGEGUARD_MODEL_DIR, if set.
        if os.environ.get("AGEGUARD_MODEL_DIR"):
            env["AGEGUARD_MODEL_DIR"] = os.environ["AGEGUARD_MODEL_DIR"]
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [*ageguard_command(), *serve_args(self.port, self.workers)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                cwd=self.root,
                start_new_session=True,
            )
        self.starts += 1

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self, path: str = "/ready") -> int | None:
        try:
            return httpx.get(self.url + path, timeout=5).status_code
        except httpx.HTTPError:
            return None

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{self.name} exited:\n{self.log_text()[-3000:]}")
            if self.status() == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: /ready not 200 in {timeout_s}s:\n{self.log_text()[-3000:]}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        if sig == signal.SIGKILL:  # the whole process group: no worker survives its supervisor
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout_s: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout_s)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


# ------------------------------------------------------------------------------------------ nginx


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def nginx_config(prefix: Path, port: int, upstreams: list[int]) -> str:
    """The suite's nginx.conf: its own paths and upstream ports around the deployment's server block."""
    servers = "\n".join(f"        server 127.0.0.1:{p} {UPSTREAM_PARAMS};" for p in upstreams)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
pid {prefix}/nginx.pid;
events {{
    worker_connections 512;
}}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream ageguard {{
{servers}
        keepalive {UPSTREAM_KEEPALIVE};
    }}
    server {{
        listen 127.0.0.1:{port};
        include {NGINX_SERVER_CONF};
    }}
}}
"""


#: How nginx is started: the deployment's command (the official image's ``nginx -g 'daemon off;'``), in
#: the foreground, with the suite's prefix, config and error log.
NGINX_ARGS = ("-g", "daemon off;")


@dataclass
class Nginx:
    prefix: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def body_temp_files(self) -> list[Path]:
        return [p for p in (self.prefix / "client_body").rglob("*") if p.is_file()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_nginx(prefix: Path, upstreams: list[int]) -> Nginx:
    binary = nginx_binary()
    assert binary is not None, "nginx is not installed (apt-get install nginx; .ci/run installs it)"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, upstreams))
    command = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), *NGINX_ARGS]
    test = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert test.returncode == 0, test.stderr
    log = (prefix / "nginx.out").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    nginx = Nginx(prefix, port, proc)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited {proc.returncode}: {nginx.error_log()}")
        try:
            httpx.get(nginx.url + "/health", timeout=2)
            return True
        except httpx.HTTPError:
            return False

    wait_for(up, 20, "nginx to listen")
    return nginx


# ------------------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class Signed:
    """One signed request, ready to be sent (again) anywhere."""

    target: str  # path and query after the base URL, e.g. /age?nonce=...&timestamp=...
    body: bytes
    headers: dict[str, str]

    def send(self, client: httpx.Client | None, base_url: str, timeout: float = 60) -> httpx.Response:
        url = base_url + "/ai/v1" + self.target
        if client is None:
            return httpx.post(url, content=self.body, headers=self.headers, timeout=timeout)
        return client.post(url, content=self.body, headers=self.headers, timeout=timeout)


def sign(
    sdk_id: str,
    key: rsa.RSAPrivateKey,
    endpoint: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> Signed:
    """A Yoti signed POST, as the official SDKs build it (fresh UUID nonce, millisecond timestamp)."""
    body = json.dumps(payload).encode()
    target = (
        f"{endpoint}?{query}{'&' if query else ''}nonce={uuid.uuid4()}&timestamp={int(time.time() * 1000)}"
    )
    sent = {
        "X-Yoti-Auth-Id": sdk_id,
        "X-Yoti-Auth-Digest": signing.sign(key, "POST", target, body),
        "Content-Type": "application/json",
        **(headers or {}),
    }
    return Signed(target, body, sent)


def error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error_code") if isinstance(body, dict) else None


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` in a Prometheus exposition."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


# ------------------------------------------------------------------------------------------ the cluster


@dataclass
class App:
    sdk_id: str
    key: rsa.RSAPrivateKey

    def sign(self, endpoint: str, payload: dict[str, Any], **kwargs: Any) -> Signed:
        return sign(self.sdk_id, self.key, endpoint, payload, **kwargs)


@dataclass
class Cluster:
    root: Path
    database: str
    db_url: str
    instances: list[Instance]
    nginx: Nginx
    app: App

    def query(self, sql: str, **params: Any) -> list[Any]:
        engine = admin_engine(self.database)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()

    def ensure_running(self) -> None:
        """Restart any instance a test stopped (tests leave the cluster as they found it)."""
        for instance in self.instances:
            if not instance.running():
                instance.start()
        for instance in self.instances:
            instance.wait_ready()


def create_app(db_url: str, name: str) -> App:
    key = generate_private_key()
    with Hub(db_url) as hub:
        view = hub.create_app(name, None, der_of(key.public_key()))
    return App(view.sdk_id, key)
