"""The official Yoti SDKs (PyPI ``yoti`` and npm ``yoti``) against a live ``ageguard serve``.

Every endpoint, the self-checkout base URL with Terminal-Id/Session-Id, the ``secure`` query flag as each
SDK spells it, and the failures a client meets: wrong key, unknown/disabled app, suspended organisation,
endpoint not allowed, and requests the official SDK built and someone then altered.
"""

from __future__ import annotations

import base64
import math
import uuid
from typing import Any

import pytest
from api_images import face_jpeg
from live_server import LiveServer
from tests_api_helpers import create_test_apps

from ageguard.errors import CATALOGUE
from ageguard.hub import Hub
from ageguard.hub.keys import generate_private_key, private_key_pem

SDKS = ["python", "node"]
PREDICTIONS = {"real", "fake", "undetermined"}
SECURE_CODES = {code for code in CATALOGUE if "SECURE" in code and code != "SECURE_REQUEST_IS_EMPTY"}


def face_b64() -> str:
    return base64.b64encode(face_jpeg()).decode()


def request(live: LiveServer, endpoint: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "base_url": live.api,
        "endpoint": endpoint,
        "pem": str(live.key_path),
        "sdk_id": live.sdk_id,
        "payload": payload,
    }
    req.update(extra)
    return req


def assert_error(result: dict[str, Any], code: str) -> None:
    assert result["status"] == CATALOGUE[code].status, result
    assert result["body"]["error_code"] == code, result
    assert set(result["body"]) == {"error_code", "error_message"}, result


def assert_age(value: Any) -> None:
    assert set(value) == {"age", "st_dev"}
    assert 10.0 < value["age"] < 90.0 and math.isfinite(value["age"])
    assert 0.0 < value["st_dev"] < 30.0


@pytest.mark.parametrize("sdk", SDKS)
def test_every_endpoint(drive, live: LiveServer, sdk: str) -> None:
    img = face_b64()
    (age_result,) = drive(sdk, [request(live, "/age", {"img": img})])
    assert age_result["status"] == 200, age_result
    assert set(age_result["body"]) == {"age"}
    assert_age(age_result["body"]["age"])
    age, st_dev = age_result["body"]["age"]["age"], age_result["body"]["age"]["st_dev"]
    below = max(1, math.floor(age) - 5)  # the face is clearly over `below`
    confident = st_dev <= 6.0 or age - 2 * st_dev >= below  # docs/api.md, "The age check"

    results = drive(
        sdk,
        [
            request(live, "/antispoofing", {"img": img, "metadata": {"device": "laptop"}}),
            request(live, "/age-antispoofing", {"img": img, "level_of_assurance": "high"}),
            request(live, "/age-verify", {"img": img, "threshold": below, "operator": "OVER"}),
            request(live, "/age-verify", {"img": img, "threshold": str(below), "operator": "under"}),
            request(live, "/age-antispoofing-verify", {"img": img, "threshold": below, "operator": "OVER"}),
            request(
                live,
                "/self-checkout/age-antispoofing",
                {"img": img},
                headers={"Terminal-Id": f"{sdk}-till-1"},
            ),
            request(
                live,
                "/age-antispoofing",
                {"img": img},
                base_url=live.api + "/self-checkout",
                headers={"Terminal-Id": f"{sdk}-till-2", "Session-Id": str(uuid.uuid4())},
            ),
            request(live, "/age", {"img": img, "img_validation_level": "low"}),
        ],
    )
    for result in results:
        assert result["status"] == 200, result
    spoof, age_spoof, over, under, verify_both, checkout, checkout_base, low = (r["body"] for r in results)
    assert set(spoof) == {"antispoofing"} and spoof["antispoofing"]["prediction"] in PREDICTIONS
    assert (
        set(age_spoof) == {"antispoofing", "age"} and age_spoof["antispoofing"]["prediction"] in PREDICTIONS
    )
    assert_age(age_spoof["age"])
    assert over == {"age_check": "pass" if confident else "fail"}
    assert under == {"age_check": "fail"}
    assert set(verify_both) == {"age", "antispoofing"}
    assert verify_both["age"] == {"age_check": "pass" if confident else "fail"}
    for body in (checkout, checkout_base):
        assert set(body) == {"antispoofing", "age"}
        assert_age(body["age"])
        assert body["antispoofing"]["prediction"] in PREDICTIONS
    assert_age(low["age"])
    # The self-checkout base URL: the SDK signed only the endpoint after its base.
    assert "/ai/v1/self-checkout/age-antispoofing?" in results[6]["url"]

    # The terminal and session made it into the request records.
    with Hub(live.database_url) as hub:
        terminals = {row.terminal_id for row in hub.usage() if row.terminal_id}
    assert {f"{sdk}-till-1", f"{sdk}-till-2"} <= terminals


@pytest.mark.parametrize("sdk", SDKS)
def test_secure_flag_and_terminal_header(drive, live: LiveServer, sdk: str) -> None:
    img = face_b64()
    results = drive(
        sdk,
        [
            request(live, "/age", {"img": img}, params={"secure": True}),
            request(
                live, "/age-antispoofing", {"img": img, "secure": {"version": "1"}}, params={"secure": True}
            ),
            request(live, "/self-checkout/age-antispoofing", {"img": img}),
            request(live, "/age", {"img": img, "metadata": {"device": "toaster"}}),
            request(live, "/age-verify", {"img": img, "threshold": 18}),
        ],
    )
    expected_flag = "secure=True" if sdk == "python" else "secure=true"
    assert expected_flag in results[0]["url"]
    assert_error(results[0], "SECURE_REQUEST_IS_EMPTY")
    assert_error(results[1], "SECURE_SESSION_NOT_FOUND")  # a version but no capture session token
    assert_error(results[2], "TERMINAL_ID_REQUIRED")
    assert_error(results[3], "INVALID_METADATA_DEVICE")
    assert_error(results[4], "INVALID_REQUEST_BODY")
    assert "'operator'" in results[4]["body"]["error_message"]


@pytest.fixture(scope="module")
def other_apps(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Applications in the live server's store: name -> (sdk_id, private key path)."""
    folder = tmp_path_factory.mktemp("keys")
    with Hub(live.database_url) as hub:
        created = create_test_apps(hub)
    apps: dict[str, tuple[str, str]] = {}
    for name, (sdk_id, key) in created.items():
        pem = folder / f"{name}.pem"
        pem.write_bytes(private_key_pem(key))
        apps[name] = (sdk_id, str(pem))
    wrong = folder / "wrong.pem"
    wrong.write_bytes(private_key_pem(generate_private_key()))
    apps["wrong-key"] = ("", str(wrong))
    return apps


@pytest.mark.parametrize("sdk", SDKS)
def test_application_failures(
    drive, live: LiveServer, other_apps: dict[str, tuple[str, str]], sdk: str
) -> None:
    img = face_b64()

    def as_app(name: str, endpoint: str = "/age") -> dict[str, Any]:
        sdk_id, pem = other_apps[name]
        return request(live, endpoint, {"img": img}, sdk_id=sdk_id or live.sdk_id, pem=pem)

    results = drive(
        sdk,
        [
            as_app("wrong-key"),
            as_app("disabled"),
            as_app("suspended"),
            as_app("age-only", "/antispoofing"),
            as_app("age-only", "/age"),
            request(live, "/age", {"img": img}, sdk_id=str(uuid.uuid4())),
            request(live, "/age", {"img": img}, sdk_id="not-a-uuid"),
        ],
    )
    assert_error(results[0], "INVALID_SIGNATURE")
    assert_error(results[1], "DISABLED_APP_STATE")
    assert_error(results[2], "INVALID_ORG_STATUS")
    assert_error(results[3], "UNAUTHORIZED")
    assert results[4]["status"] == 200, results[4]
    assert_error(results[5], "APP_NOT_FOUND")
    assert_error(results[6], "INVALID_X_YOTI_AUTH_ID")


def test_altered_sdk_requests(drive, live: LiveServer) -> None:
    """Requests built and signed by the official Python SDK, then altered in transit."""
    img = face_b64()
    cases = [
        ("body", "INVALID_SIGNATURE"),
        ("method", "INVALID_SIGNATURE"),
        ("path", "INVALID_SIGNATURE"),
        ("query", "INVALID_SIGNATURE"),
        ("drop:X-Yoti-Auth-Digest", "INVALID_YOTI_AUTH_DIGEST"),
        ("set:X-Yoti-Auth-Digest=not*base64", "INVALID_YOTI_AUTH_DIGEST"),
        ("drop:X-Yoti-Auth-Id", "INVALID_X_YOTI_AUTH_ID"),
        ("replay", "INVALID_NONCE"),
    ]
    results = drive(
        "python",
        [
            request(live, "/age", {"img": img}, tamper=tamper, tamper_path="/age-antispoofing")
            for tamper, _ in cases
        ],
    )
    for (tamper, code), result in zip(cases, results, strict=True):
        assert_error(result, code)
        if tamper == "replay":
            assert result["first"]["status"] == 200, result["first"]
