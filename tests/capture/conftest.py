"""Capture fixtures: the real API app (real Hub on SQLite, real face detector) with the capture router."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from capture_helpers import CaptureApi, make_capture_app
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from ageguard.hub.keys import generate_private_key
from ageguard.settings import Settings
from ageguard.vision.pipeline import Pipeline


@pytest.fixture(scope="session")
def capture_pipeline() -> Pipeline:
    """One real pipeline for the module (the detector loads once; age models only when asked)."""
    return Pipeline(Settings())


@pytest.fixture(scope="session")
def local_key() -> rsa.RSAPrivateKey:
    return generate_private_key()


@pytest.fixture
def capture_api(
    tmp_path: Path, capture_pipeline: Pipeline, local_key: rsa.RSAPrivateKey
) -> Iterator[CaptureApi]:
    app, hub, settings, sdk_id = make_capture_app(tmp_path, capture_pipeline, local_key)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield CaptureApi(client, hub, settings, None, sdk_id, local_key)  # type: ignore[arg-type]
    hub.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Chromium through the capture demo (tests/capture)")
