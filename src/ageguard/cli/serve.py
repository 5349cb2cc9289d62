"""``ageguard serve``: the HTTP API on uvicorn, with the embedded default set up on first start.

First start with no configuration (no ``AGEGUARD_DATABASE_URL``): the SQLite store is created in
``AGEGUARD_HOME`` and, when it holds no application, a local one with a fresh RSA key pair; its private
key is written to ``$AGEGUARD_HOME/local-app.pem`` (mode 0600) and its SDK ID printed, so that
``ageguard request age photo.jpg`` works from a second terminal with no flags.

Start-up order: migrate the Hub database (under its lock: several instances may start at once), ensure the
model assets, the local application, then uvicorn. On SIGTERM uvicorn stops accepting connections and
finishes the requests in flight (at most ``shutdown_grace_s``) before the process exits.
``ageguard migrate`` runs only the first step (the Kubernetes migration Job, deploy/k8s/).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ageguard.cli._app import app
from ageguard.client import LOCAL_APP_INFO, LOCAL_APP_KEY, load_local_app
from ageguard.settings import Settings, get_settings

if TYPE_CHECKING:
    import uvicorn

LOCAL_APP_NAME = "local"


def default_workers() -> int:
    """Worker processes when ``--workers`` is not given."""
    return 1


def _client_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ensure_local_app(settings: Settings, url: str) -> tuple[str, Path, bool] | None:
    """Create the store and, with no configuration and no application yet, the local application.

    Returns (sdk_id, key path, created) for the local application, or None when there is none.
    """
    from ageguard.hub import Hub
    from ageguard.hub.keys import der_of, generate_private_key, private_key_pem

    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    info_path = home / LOCAL_APP_INFO
    with Hub(settings.resolved_database_url) as hub:
        known = load_local_app(home)
        if known is not None and hub.find_app(known.sdk_id) is not None:
            info_path.write_text(
                json.dumps({"sdk_id": known.sdk_id, "key_path": str(known.key_path), "url": url})
            )
            return known.sdk_id, known.key_path, False
        if settings.database_url is not None or hub.list_apps():
            return None
        key = generate_private_key()
        key_path = home / LOCAL_APP_KEY
        _write_private(key_path, private_key_pem(key))
        view = hub.create_app(LOCAL_APP_NAME, None, der_of(key.public_key()))
    info_path.write_text(json.dumps({"sdk_id": view.sdk_id, "key_path": str(key_path), "url": url}))
    return view.sdk_id, key_path, True


def _ensure_models() -> None:
    from ageguard.models import store

    def progress(name: str, stage: str) -> None:
        if stage != "cached":
            typer.echo(f"model {name}: {stage}", err=True)

    store.install_all(progress)


def _migrate(settings: Settings) -> str:
    """Bring the Hub database to the newest schema; returns the line that says what happened."""
    from alembic.util import CommandError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from ageguard.hub import engine

    url = settings.resolved_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        result = engine.upgrade(url)
    except (SQLAlchemyError, CommandError, OSError) as exc:
        typer.echo(f"error: the Hub database at {shown} cannot be migrated: {type(exc).__name__}", err=True)
        raise typer.Exit(1) from exc
    after = ", ".join(sorted(result.after))
    if result.migrated:
        before = ", ".join(sorted(result.before)) or "empty"
        return f"Hub database {shown}: migrated from {before} to {after}"
    return f"Hub database {shown}: schema {after} is current"


@app.command()
def migrate() -> None:
    """Migrate the Hub database (AGEGUARD_DATABASE_URL) to this version's schema, then exit.

    Safe to run while instances serve and beside other migrations: a database lock lets one migrate.
    """
    typer.echo(_migrate(get_settings()))


def _instance_name(settings: Settings, port: int) -> None:
    """Name this instance for its metrics' ``ageguard_instance`` label (kept when set)."""
    if not settings.instance_name:
        os.environ["AGEGUARD_INSTANCE_NAME"] = f"{socket.gethostname()}:{port}"


def _metrics_dir(settings: Settings, workers: int) -> None:
    """Several workers share their Prometheus metrics through files (counters only, no request data)."""
    if workers <= 1:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return
    path = settings.home / "run" / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: see default_workers).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    models: Annotated[bool, typer.Option(help="Ensure the model assets before serving.")] = True,
) -> None:
    """Serve the Yoti-compatible API under /ai/v1 (plus /health, /ready, /metrics, /openapi.json)."""
    from uvicorn.config import LOGGING_CONFIG

    settings = get_settings()
    typer.echo(_migrate(settings))
    if models:
        from ageguard.models.store import ModelStoreError

        try:
            _ensure_models()
        except ModelStoreError as exc:
            typer.echo(f"error: {exc} (run `ageguard models install`)", err=True)
            raise typer.Exit(1) from exc
    if workers is None:
        workers = default_workers()
    url = _client_url(host, port)
    local = ensure_local_app(settings, url)
    if local is not None:
        sdk_id, key_path, created = local
        what = "Created the local application" if created else "Local application"
        typer.echo(f"{what}: SDK ID {sdk_id}, private key {key_path}")
        typer.echo(f"Try: ageguard request age photo.jpg   (API at {url}/ai/v1)")
    _metrics_dir(settings, workers)
    _instance_name(settings, port)
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["ageguard"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    _run(
        app="ageguard.api.main:build_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=log_config,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


def _run(**options: object) -> None:
    """What ``uvicorn.run(**options)`` does, with Nagle's algorithm off on the workers' shared socket.

    With ``--workers`` above 1 uvicorn binds the socket itself, without ``TCP_NODELAY``, and the sockets
    it accepts inherit that: an answer's body then waits for the client's delayed ACK of its headers,
    40 ms on Linux, on every request (measured: 104 ms per request at concurrency 1, against 64 ms with
    one worker, whose sockets asyncio does set). Accepted sockets inherit the listening socket's option.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(**options)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[shared_socket(config)]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if config.workers == 1 and not server.started:
        raise typer.Exit(3)  # uvicorn's STARTUP_FAILURE


def shared_socket(config: uvicorn.Config) -> socket.socket:
    """The listening socket several workers share, with ``TCP_NODELAY`` for the sockets it accepts."""
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
