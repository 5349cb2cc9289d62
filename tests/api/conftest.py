"""In-process API fixtures: the real app, auth and Hub (SQLite), with a scripted pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import live_server
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from tests_api_helpers import Api, FakePipeline

from ageguard.api.app import create_app
from ageguard.hub import Hub
from ageguard.hub.keys import der_of, generate_private_key
from ageguard.settings import Settings


@pytest.fixture(scope="session")
def private_key() -> rsa.RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="session")
def other_key() -> rsa.RSAPrivateKey:
    return generate_private_key()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'hub.db'}", **overrides)


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def api(api_settings: Settings, private_key: rsa.RSAPrivateKey) -> Iterator[Api]:
    hub = Hub(api_settings.resolved_database_url)
    app_view = hub.create_app("test", None, der_of(private_key.public_key()))
    pipeline = FakePipeline()
    app = create_app(api_settings, pipeline, hub)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, hub, api_settings, pipeline, app_view.sdk_id, private_key)
    hub.close()


@pytest.fixture(scope="session")
def live() -> Iterator[live_server.LiveServer]:
    """The shared live ``ageguard serve`` (see tests/live_server.py)."""
    server = live_server.acquire()
    try:
        yield server
    finally:
        live_server.release()


@pytest.fixture
def live_api(live: live_server.LiveServer) -> Iterator[Api]:
    """Signed requests to the live server (``Api.send``), as its embedded default application."""
    from ageguard.signing import load_private_key

    hub = Hub(live.database_url)
    with httpx.Client(base_url=live.url, timeout=120) as client:
        yield Api(client, hub, None, None, live.sdk_id, load_private_key(live.key_path.read_bytes()))  # type: ignore[arg-type]
    hub.close()
