"""Small helpers shared by the API and SDK tests (importable: tests/ is on sys.path)."""

from __future__ import annotations

from typing import Any

import httpx

from ageguard.errors import CATALOGUE

BODY: dict[str, Any] = {"img": "/9j/4AAQSkZJRgABAQ=="}


def assert_error(response: httpx.Response, code: str) -> dict[str, Any]:
    """The response is the catalogue's status and body shape for ``code``."""
    spec = CATALOGUE[code]
    assert response.status_code == spec.status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error_code", "error_message"}, body
    assert body["error_code"] == code, body
    assert isinstance(body["error_message"], str) and body["error_message"]
    assert response.headers["content-type"].startswith("application/json")
    return body
