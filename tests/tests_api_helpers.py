"""Small helpers shared by the API and SDK tests (importable: tests/ is on sys.path)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from ageguard import signing
from ageguard.errors import CATALOGUE
from ageguard.hub import Hub
from ageguard.settings import Settings
from ageguard.vision.pipeline import Analysis
from ageguard.vision.types import AgeEstimate, LivenessVerdict

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


@dataclass
class FakePipeline:
    age: AgeEstimate = field(default_factory=lambda: AgeEstimate(30.0, 2.5))
    prediction: str = "real"
    error: Exception | None = None
    delay_s: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    gate: threading.Event | None = None

    def analyse(
        self,
        data: bytes,
        *,
        level: Any = "normal",
        age: bool = True,
        liveness: bool = False,
        assurance: Any = "medium",
    ) -> Analysis:
        self.calls.append(
            {"size": len(data), "level": level, "age": age, "liveness": liveness, "assurance": assurance}
        )
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return Analysis(
            age=self.age if age else None,
            liveness=LivenessVerdict(self.prediction, 0.9) if liveness else None,  # type: ignore[arg-type]
            timings_ms={"decode": 1.0, "detect": 2.0},
        )


@dataclass
class Api:
    client: TestClient
    hub: Hub
    settings: Settings
    pipeline: FakePipeline
    sdk_id: str
    key: rsa.RSAPrivateKey

    def send(
        self,
        endpoint: str,
        payload: dict[str, Any] | bytes | None = None,
        *,
        method: str = "POST",
        base: str = "/ai/v1",
        sdk_id: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        headers: dict[str, str] | None = None,
        query: str | None = None,
        signed_target: str | None = None,
        signed_body: bytes | None | str = "same",
        signed_method: str | None = None,
    ) -> httpx.Response:
        """A Yoti signed request; the ``signed_*`` overrides sign something other than what is sent."""
        if query is None:
            query = f"nonce={uuid.uuid4()}&timestamp={int(time.time() * 1000)}"
        body = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        target = f"{endpoint}?{query}" if query else endpoint
        digest = signing.sign(
            key or self.key,
            signed_method or method,
            signed_target or target,
            body if signed_body == "same" else signed_body,  # type: ignore[arg-type]
        )
        sent = {"X-Yoti-Auth-Id": sdk_id or self.sdk_id, "X-Yoti-Auth-Digest": digest}
        if body is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        return self.client.request(method, base + target, content=body, headers=sent)


def create_test_apps(hub: Hub) -> dict[str, tuple[str, rsa.RSAPrivateKey]]:
    """Applications that fail authorisation each in their own way: name -> (sdk_id, private key)."""
    from ageguard.hub.keys import der_of, generate_private_key

    suffix = uuid.uuid4().hex[:8]
    org = f"suspended-{suffix}"
    hub.create_org(org)
    apps: dict[str, tuple[str, rsa.RSAPrivateKey]] = {}
    for name, org_name, endpoints in (
        ("disabled", None, None),
        ("suspended", org, None),
        ("age-only", None, ["age"]),
    ):
        key = generate_private_key()
        view = hub.create_app(f"{name}-{suffix}", org_name, der_of(key.public_key()), endpoints)
        apps[name] = (view.sdk_id, key)
    hub.set_app_enabled(apps["disabled"][0], False)
    hub.set_org_status(org, "suspended")
    return apps
