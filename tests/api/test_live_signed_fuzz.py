"""Schemathesis with valid Yoti signatures: generated bodies, parameters and headers reach the field rules of
every endpoint of the live server; no answer is a 5xx and every answer is documented in /openapi.json."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from live_server import LiveServer
from schemathesis import GenerationMode, checks

from ageguard import signing

SIX_ENDPOINTS = (
    r"^/ai/v1/(age|antispoofing|age-antispoofing|age-verify|age-antispoofing-verify|self-checkout/age-antispoofing)$"
)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


def _signed_request(case: Any, live: LiveServer, key: Any) -> httpx.Request:
    kwargs = case.as_transport_kwargs(base_url=live.url)
    endpoint = kwargs["url"][len(live.api) :]
    params = [
        f"{quote(str(name), safe='')}={quote(str(value), safe='')}"
        for name, value in (kwargs.get("params") or {}).items()
        if name not in ("nonce", "timestamp")
    ]
    params += [f"nonce={uuid.uuid4()}", f"timestamp={int(time.time() * 1000)}"]
    query = "&".join(params)
    if "json" in kwargs:
        body: bytes | None = json.dumps(kwargs["json"]).encode()
    else:
        raw = kwargs.get("data", kwargs.get("content"))
        body = raw.encode() if isinstance(raw, str) else raw
    headers = {
        name: value
        for name, value in kwargs["headers"].items()
        if name.lower() not in ("x-yoti-auth-id", "x-yoti-auth-digest", "content-length")
    }
    headers["X-Yoti-Auth-Id"] = live.sdk_id
    headers["X-Yoti-Auth-Digest"] = signing.sign(key, kwargs["method"], f"{endpoint}?{query}", body)
    return httpx.Request(kwargs["method"], f"{live.api}{endpoint}?{query}", content=body, headers=headers)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_signed_requests_are_answered_as_documented(live: LiveServer, mode: GenerationMode) -> None:
    key = signing.load_private_key(live.key_path.read_bytes())
    api_schema = schemathesis.openapi.from_url(live.url + "/openapi.json").include(path_regex=SIX_ENDPOINTS)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 6
    seen: set[int] = set()

    with httpx.Client(timeout=120) as client:
        for operation in operations:

            @given(operation.as_strategy(generation_mode=mode))
            @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                try:
                    request = _signed_request(case, live, key)
                except (UnicodeEncodeError, ValueError, TypeError):
                    return  # a header value HTTP cannot carry: nothing to send
                response = client.send(request)
                seen.add(response.status_code)
                assert response.status_code < 500, response.text
                case.validate_response(response, checks=CHECKS)

            check()
    assert seen - {401}, f"no request got past authentication: {seen}"
