"""The six endpoints in process: response shapes, field rules, errors, limits, health, metrics, OpenAPI."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests_api_helpers import BODY, Api, FakePipeline, assert_error

from ageguard.api.app import create_app
from ageguard.api.queue import InferenceQueue
from ageguard.errors import CATALOGUE, AgeGuardError
from ageguard.hub import Hub, StoreUnavailable
from ageguard.hub.keys import der_of
from ageguard.vision.types import AgeEstimate

SELF_CHECKOUT = "/self-checkout/age-antispoofing"


# ------------------------------------------------------------------------------------- 200 shapes


def test_response_shapes(api) -> None:
    age = {"age": 30.0, "st_dev": 2.5}
    real = {"prediction": "real"}
    verify = {**BODY, "threshold": 18, "operator": "OVER"}
    assert api.send("/age", BODY).json() == {"age": age}
    assert api.send("/antispoofing", BODY).json() == {"antispoofing": real}
    assert api.send("/age-antispoofing", BODY).json() == {"antispoofing": real, "age": age}
    assert api.send("/age-verify", verify).json() == {"age_check": "pass"}
    assert api.send("/age-antispoofing-verify", verify).json() == {
        "age": {"age_check": "pass"},
        "antispoofing": real,
    }
    r = api.send(SELF_CHECKOUT, BODY, headers={"Terminal-Id": "till-7", "Session-Id": "s-1"})
    assert r.json() == {"antispoofing": real, "age": age}
    flags = [(c["age"], c["liveness"]) for c in api.pipeline.calls]
    assert flags == [(True, False), (False, True), (True, True), (True, False), (True, True), (True, True)]


@pytest.mark.parametrize(
    ("age", "st_dev", "threshold", "operator", "expected"),
    [
        (18.0, 2.0, 18, "OVER", "pass"),
        (17.99, 2.0, 18, "OVER", "fail"),
        (17.99, 2.0, 18, "UNDER", "pass"),
        (18.0, 2.0, 18, "under", "fail"),
        # st_dev above max_st_dev (6.0) fails only where 2 st_dev could reach across the threshold
        (31.0, 6.5, 18, "OVER", "pass"),  # 31 - 13 = 18 >= 18
        (30.99, 6.5, 18, "OVER", "fail"),  # 30.99 - 13 < 18
        (31.0, 6.5, 18, "UNDER", "fail"),
        (5.0, 6.5, 18, "UNDER", "fail"),  # 5 + 13 = 18 is not < 18
        (4.99, 6.5, 18, "UNDER", "pass"),
        (17.0, 6.5, 18, "OVER", "fail"),  # wrong side of the threshold fails whatever st_dev says
        (19.0, 6.0, 18, "OVER", "pass"),  # st_dev == max_st_dev is precise enough
        (19.0, 6.01, 18, "OVER", "fail"),
        (17.0, 6.0, 18, "UNDER", "pass"),
        (17.0, 6.01, 18, "UNDER", "fail"),
        (30.0, 2.0, "25", "Over", "pass"),  # numeric string, any case
    ],
)
def test_age_verify_rules(
    api, age: float, st_dev: float, threshold: Any, operator: str, expected: str
) -> None:
    api.pipeline.age = AgeEstimate(age, st_dev)
    r = api.send("/age-verify", {**BODY, "threshold": threshold, "operator": operator})
    assert r.json() == {"age_check": expected}
    r = api.send("/age-antispoofing-verify", {**BODY, "threshold": threshold, "operator": operator})
    assert r.json()["age"] == {"age_check": expected}


def test_options_reach_the_pipeline(api) -> None:
    api.send("/age", {**BODY, "img_validation_level": "low"})
    api.send("/age-verify", {**BODY, "threshold": 21, "operator": "OVER", "img_validation_level": "normal"})
    api.send("/antispoofing", {**BODY, "level_of_assurance": "high"})
    api.send("/age-antispoofing", {**BODY})
    calls = api.pipeline.calls
    assert [c["level"] for c in calls] == ["low", "normal", "normal", "normal"]
    assert calls[2]["assurance"] == "high" and calls[3]["assurance"] == "medium"


def test_data_url_prefix_accepted(api) -> None:
    assert api.send("/age", {"img": "data:image/jpeg;base64," + BODY["img"]}).status_code == 200


# ------------------------------------------------------------------------------------- field errors


def test_body_encoding_and_types(api) -> None:
    assert_error(api.send("/age", b"{not json"), "INVALID_BODY_ENCODING")
    assert_error(api.send("/age", b""), "INVALID_BODY_ENCODING")
    assert_error(api.send("/age", b"\xff\xfe"), "INVALID_BODY_ENCODING")
    assert_error(api.send("/age", b"[1, 2]"), "INVALID_REQUEST_BODY")
    body = assert_error(api.send("/age", {"img": 12}), "INVALID_REQUEST_BODY")
    assert "'img'" in body["error_message"]
    assert_error(api.send("/age", {"metadata": {"device": "mobile"}}), "IMAGE_NOT_PROVIDED")
    assert_error(api.send("/age", {"img": ""}), "IMAGE_NOT_PROVIDED")
    assert_error(api.send("/age", {"img": "abc"}), "INVALID_B64_IMAGE")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"operator": "OVER"}, "threshold"),
        ({"threshold": 18}, "operator"),
        ({"threshold": "eighteen", "operator": "OVER"}, "threshold"),
        ({"threshold": True, "operator": "OVER"}, "threshold"),
        ({"threshold": 0, "operator": "OVER"}, "threshold"),
        ({"threshold": 121, "operator": "OVER"}, "threshold"),
        ({"threshold": 18.5, "operator": "OVER"}, "threshold"),
        ({"threshold": 18, "operator": "ABOVE"}, "operator"),
        ({"threshold": 18, "operator": 1}, "operator"),
    ],
)
def test_verify_fields_name_the_field(api, fields: dict[str, Any], named: str) -> None:
    for endpoint in ("/age-verify", "/age-antispoofing-verify"):
        body = assert_error(api.send(endpoint, {**BODY, **fields}), "INVALID_REQUEST_BODY")
        assert f"'{named}'" in body["error_message"]


def test_enumerated_fields(api) -> None:
    assert_error(api.send("/age", {**BODY, "metadata": {"device": "toaster"}}), "INVALID_METADATA_DEVICE")
    assert_error(api.send("/age", {**BODY, "metadata": {"device": 3}}), "INVALID_METADATA_DEVICE")
    assert_error(api.send("/age", {**BODY, "metadata": "mobile"}), "INVALID_REQUEST_BODY")
    assert_error(api.send("/age", {**BODY, "img_validation_level": "lowest"}), "INVALID_IMG_VALIDATION_LEVEL")
    for endpoint in ("/antispoofing", "/age-antispoofing"):
        r = api.send(endpoint, {**BODY, "img_validation_level": "low"})
        assert_error(r, "INVALID_IMG_VALIDATION_LEVEL")
        assert_error(api.send(endpoint, {**BODY, "level_of_assurance": "max"}), "INVALID_LEVEL_OF_ASSURANCE")
    for device in ("mobile", "laptop", "unknown", "any"):
        assert api.send("/age", {**BODY, "metadata": {"device": device}}).status_code == 200


def test_pipeline_errors_pass_through(api) -> None:
    for code in ("FACE_NOT_FOUND", "MULTIPLE_FACES", "IMAGE_SIZE_TOO_SMALL", "FAIL_PREDICTION"):
        api.pipeline.error = AgeGuardError(code)
        assert_error(api.send("/age", BODY), code)


def test_unexpected_exception_is_500_without_trace(api, caplog: pytest.LogCaptureFixture) -> None:
    api.pipeline.error = RuntimeError("secret detail /9j/4AAQ")
    r = api.send("/age", BODY)
    body = assert_error(r, "UNSPECIFIED_ERROR")
    assert body["error_message"] == CATALOGUE["UNSPECIFIED_ERROR"].message
    assert "Traceback" not in r.text and "secret" not in r.text
    assert "RuntimeError" in caplog.text and "secret detail" not in caplog.text


def test_unknown_path_and_wrong_method(api) -> None:
    assert_error(api.client.post("/ai/v1/nope", json=BODY), "INVALID_ENDPOINT")
    assert_error(api.client.get("/nope"), "INVALID_ENDPOINT")
    r = api.client.get("/ai/v1/age")
    assert_error(r, "METHOD_NOT_ALLOWED")
    assert r.headers.get("allow") == "POST"


# ------------------------------------------------------------------------------------- self-checkout


def test_self_checkout_terminal_required_and_recorded(api) -> None:
    assert_error(api.send(SELF_CHECKOUT, BODY), "TERMINAL_ID_REQUIRED")
    assert_error(api.send(SELF_CHECKOUT, BODY, headers={"Terminal-Id": "  "}), "TERMINAL_ID_REQUIRED")
    assert (
        api.send(SELF_CHECKOUT, BODY, headers={"Terminal-Id": "till-9", "Session-Id": "tx-1"}).status_code
        == 200
    )
    api.client.app.state.service._recorder.submit(lambda: None).result(5)  # drain the record writer
    usage = api.hub.usage()
    rows = {(u.endpoint, u.terminal_id, u.outcome): u.count for u in usage}
    assert rows[("self-checkout/age-antispoofing", "till-9", "OK")] == 1
    assert rows[("self-checkout/age-antispoofing", None, "TERMINAL_ID_REQUIRED")] == 2


def test_secure_flag(api, monkeypatch: pytest.MonkeyPatch) -> None:
    """secure=True/true: no block → SECURE_REQUEST_IS_EMPTY; a block goes to verify_secure."""
    import ageguard.api.secure as secure

    handed: list[dict[str, Any]] = []
    monkeypatch.setattr(secure, "verify_secure", lambda block, *args, **kwargs: handed.append(block))

    def query(flag: str) -> str:
        return f"secure={flag}&nonce={uuid.uuid4()}&timestamp={int(time.time() * 1000)}"

    for flag in ("True", "true"):
        assert_error(api.send("/age", BODY, query=query(flag)), "SECURE_REQUEST_IS_EMPTY")
        assert_error(api.send("/age", {**BODY, "secure": {}}, query=query(flag)), "SECURE_REQUEST_IS_EMPTY")
        assert api.send("/age", {**BODY, "secure": {"session": "s"}}, query=query(flag)).status_code == 200
    assert handed == [{"session": "s"}, {"session": "s"}]
    assert api.send("/age", BODY, query=query("false")).status_code == 200
    assert_error(api.send("/age", {**BODY, "secure": "yes"}, query=query("true")), "INVALID_REQUEST_BODY")


# ------------------------------------------------------------------------------------- body limit


def test_payload_too_large_by_content_length(api) -> None:
    limit = api.settings.max_body_bytes
    big = b'{"img": "' + b"A" * limit + b'"}'
    r = api.send("/age", big)
    assert_error(r, "PAYLOAD_TOO_LARGE")
    assert api.pipeline.calls == []


def test_payload_too_large_chunked(api) -> None:
    limit = api.settings.max_body_bytes
    chunk = b"A" * 65536

    def stream():  # no Content-Length: sent chunked
        yield b'{"img": "'
        for _ in range(limit // len(chunk) + 2):
            yield chunk
        yield b'"}'

    r = api.client.post("/ai/v1/age", content=stream(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_error(r, "PAYLOAD_TOO_LARGE")


# ------------------------------------------------------------------------------------- queue, health


def test_queue_refuses_when_full() -> None:
    async def scenario() -> list[str]:
        queue = InferenceQueue(threads=1, queue_size=1)
        gate = threading.Event()
        outcomes: list[str] = []

        async def one() -> None:
            try:
                await queue.run(lambda: gate.wait(5))
                outcomes.append("ok")
            except AgeGuardError as exc:
                outcomes.append(exc.code)

        tasks = [asyncio.create_task(one()) for _ in range(5)]
        await asyncio.sleep(0.2)
        gate.set()
        await asyncio.gather(*tasks)
        assert queue.pending == 0
        queue.shutdown()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert sorted(outcomes) == ["SERVICE_UNAVAILABLE"] * 3 + ["ok"] * 2


def test_metrics_and_no_image_data(api) -> None:
    api.send("/age", BODY)
    assert_error(api.send("/age", {"img": "abc"}), "INVALID_B64_IMAGE")
    text = api.client.get("/metrics").text
    from ageguard.api.metrics import instance_name

    labels = f'ageguard_instance="{instance_name()}",code="OK",endpoint="age"'
    assert f"ageguard_requests_total{{{labels}}}" in text
    assert 'code="INVALID_B64_IMAGE"' in text
    assert "ageguard_stage_duration_seconds_bucket" in text and 'stage="detect"' in text
    assert BODY["img"] not in text and api.sdk_id not in text


def test_openapi_documents_every_response(api) -> None:
    doc = api.client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/age",
        "/antispoofing",
        "/age-antispoofing",
        "/age-verify",
        "/age-antispoofing-verify",
        SELF_CHECKOUT,
    ):
        op = paths["/ai/v1" + path]["post"]
        assert {"200", "400", "401", "403", "404", "413", "500", "503"} <= set(op["responses"])
        assert "requestBody" in op
        names = {p["name"] for p in op["parameters"]}
        assert {"X-Yoti-Auth-Id", "X-Yoti-Auth-Digest", "nonce", "timestamp", "Terminal-Id"} <= names
    documented = set()
    for op in (m for p in paths.values() for m in p.values()):
        for status, resp in op["responses"].items():
            schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
            documented.update(schema.get("properties", {}).get("error_code", {}).get("enum", []))
            del status
    assert documented >= {c for c, s in CATALOGUE.items() if s.status in (400, 401, 403, 404, 413, 500, 503)}
    assert {"/health", "/ready", "/metrics"} <= set(paths)
    for name in ("AgeRequest", "AgeVerifyRequest", "AntispoofingRequest", "ErrorBody", "HealthBody"):
        assert name in doc["components"]["schemas"] or name == "ErrorBody"


def test_health_and_ready(api) -> None:
    r = api.client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "models": True, "store": None, "detail": None}
    r = api.client.get("/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "models": True, "store": True, "detail": None}


def test_health_503_until_models_loaded(api_settings, private_key) -> None:
    hub = Hub(api_settings.resolved_database_url)
    view = hub.create_app("warm", None, der_of(private_key.public_key()))
    gate = threading.Event()
    pipeline = FakePipeline()
    app = create_app(api_settings, pipeline, hub, warmup=lambda: gate.wait(10) and None)
    with TestClient(app) as client:
        api = Api(client, hub, api_settings, pipeline, view.sdk_id, private_key)
        for path, store in (("/health", None), ("/ready", True)):
            r = client.get(path)
            assert r.status_code == 503
            assert r.json() == {
                "status": "unavailable",
                "models": False,
                "store": store,
                "detail": "models are still loading",
            }
        assert_error(api.send("/age", BODY), "SERVICE_UNAVAILABLE")
        gate.set()
        deadline = time.monotonic() + 5
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/health").status_code == 200
        assert api.send("/age", BODY).status_code == 200
    hub.close()


def test_ready_503_when_store_unreachable_health_stays_200(api) -> None:
    """/ready takes the instance out of the load balancer when the Hub is down; /health (liveness) does not
    ask the database, so an orchestrator does not restart every instance for a database outage."""

    def broken() -> None:
        raise StoreUnavailable("down")

    api.hub.ping = broken  # type: ignore[method-assign]
    r = api.client.get("/ready")
    assert r.status_code == 503
    assert r.json()["store"] is False and r.json()["models"] is True
    assert "Hub database" in r.json()["detail"]
    assert api.client.get("/health").status_code == 200


def test_ready_503_when_store_hangs(api) -> None:
    def slow() -> None:
        time.sleep(3)

    api.hub.ping = slow  # type: ignore[method-assign]
    api.client.app.state.service.settings.ready_timeout_s = 0.2
    started = time.monotonic()
    r = api.client.get("/ready")
    assert r.status_code == 503 and "within 0.2 s" in r.json()["detail"]
    assert time.monotonic() - started < 2


def test_unrecorded_answer_is_withheld(api) -> None:
    """A request whose record the Hub refuses is answered 503, never with a result the records lack."""

    def refuse(record: object) -> None:
        raise StoreUnavailable("down")

    api.hub.record_request = refuse  # type: ignore[method-assign]
    body = assert_error(api.send("/age", BODY), "SERVICE_UNAVAILABLE")
    assert "recorded" in body["error_message"]
    assert "ageguard_record_failures_total" in api.client.get("/metrics").text


def test_full_queue_sheds_before_auth_and_keeps_the_nonce(tmp_path, private_key) -> None:
    """A full queue answers 503 at once, without spending the nonce: the same request succeeds later."""
    from concurrent.futures import ThreadPoolExecutor

    from ageguard.settings import Settings

    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'q.db'}",
        inference_threads=1,
        queue_size=0,
    )
    hub = Hub(settings.resolved_database_url)
    view = hub.create_app("queue", None, der_of(private_key.public_key()))
    gate = threading.Event()
    pipeline = FakePipeline(gate=gate)
    with TestClient(create_app(settings, pipeline, hub)) as client, ThreadPoolExecutor(1) as pool:
        api = Api(client, hub, settings, pipeline, view.sdk_id, private_key)
        first = pool.submit(api.send, "/age", BODY)
        deadline = time.monotonic() + 5
        while not pipeline.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        query = f"nonce={uuid.uuid4()}&timestamp={int(time.time() * 1000)}"
        assert_error(api.send("/age", BODY, query=query), "SERVICE_UNAVAILABLE")
        gate.set()
        assert first.result(10).status_code == 200
        assert api.send("/age", BODY, query=query).status_code == 200
        assert_error(api.send("/age", BODY, query=query), "INVALID_NONCE")
    hub.close()
