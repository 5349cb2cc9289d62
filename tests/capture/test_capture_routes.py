"""The capture routes in the real API app: module files, config, checks, signed sessions, secure requests
through /ai/v1 and the demo backend. Real Hub (SQLite), real face detector and age models."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path

import pytest
from capture_helpers import CaptureApi, b64, jpeg, make_capture_app, secure_block
from cryptography.hazmat.primitives.asymmetric import rsa
from facescene import scene
from fastapi.testclient import TestClient
from tests_api_helpers import assert_error

from ageguard.hub.capture_sessions import CaptureSessions
from ageguard.hub.keys import der_of, generate_private_key
from ageguard.vision.pipeline import Pipeline

# ------------------------------------------------------------------------------------ files and config


def test_module_files_are_served_for_any_page(capture_api: CaptureApi) -> None:
    c = capture_api.client
    r = c.get("/capture/ageguard-capture.js", headers={"Origin": "https://shop.example"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "export class AgeGuardCapture" in r.text
    assert not re.search(r"^\s*import\b", r.text, re.M)  # dependency-free: no static imports
    assert c.get("/capture/ageguard-capture.css").headers["content-type"].startswith("text/css")
    for name in ("secure.py", "..%2Froutes.py", "static", "demo.html"):
        assert_error(c.get(f"/capture/{name}"), "INVALID_ENDPOINT")
    # POST-only paths answer 405 to other methods (no pattern route swallows them).
    for path in ("/capture/check", "/capture/demo/estimate", "/ai/v1/capture/sessions"):
        assert_error(c.get(path), "METHOD_NOT_ALLOWED")
    assert_error(c.request("OPTIONS", "/capture/check"), "METHOD_NOT_ALLOWED")


def test_demo_page_and_index(capture_api: CaptureApi) -> None:
    c = capture_api.client
    r = c.get("/capture/demo")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert '<script type="module" src="/capture/demo.js">' in r.text
    r = c.get("/capture/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/capture/demo"


def test_demo_can_be_turned_off(
    tmp_path: Path, capture_pipeline: Pipeline, local_key: rsa.RSAPrivateKey
) -> None:
    app, hub, _settings, _sdk = make_capture_app(tmp_path, capture_pipeline, local_key, demo=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert_error(c.get("/capture/demo"), "INVALID_ENDPOINT")
        assert_error(c.post("/capture/demo/session"), "INVALID_ENDPOINT")
        assert_error(c.post("/capture/demo/estimate", json={"img": "x"}), "INVALID_ENDPOINT")
        assert c.get("/capture/ageguard-capture.js").status_code == 200
    hub.close()


def test_config_carries_the_servers_limits(capture_api: CaptureApi) -> None:
    body = capture_api.client.get("/capture/config").json()
    limits = capture_api.settings.normal
    assert (
        body["capture"]["min_bytes"] == limits.min_bytes
        and body["capture"]["max_pixels"] == limits.max_pixels
    )
    assert body["capture"]["jpeg_quality"] >= 0.95
    assert body["guide"]["face_ratio"] == pytest.approx((limits.min_face_ratio + limits.max_face_ratio) / 2)
    assert body["session_required"] is True
    low = capture_api.client.get("/capture/config?level=low").json()
    assert low["level"] == "low" and low["capture"]["min_bytes"] == capture_api.settings.low.min_bytes


def test_openapi_documents_the_capture_endpoints(capture_api: CaptureApi) -> None:
    paths = capture_api.client.get("/openapi.json").json()["paths"]
    assert {"/capture/check", "/capture/config", "/ai/v1/capture/sessions"} <= set(paths)
    assert not any(p.startswith("/capture/demo") or "{name}" in p for p in paths)
    op = paths["/ai/v1/capture/sessions"]["post"]
    assert {"200", "401", "404"} <= set(op["responses"])
    assert {"X-Yoti-Auth-Id", "nonce"} <= {p["name"] for p in op["parameters"]}


# ------------------------------------------------------------------------------------------- sessions


def test_opening_a_session_is_a_signed_request(capture_api: CaptureApi) -> None:
    api = capture_api
    session = api.open_session()
    assert session["version"] == 1 and session["ttl_s"] == 300 and session["expires_at"].endswith("Z")
    assert len(base64.urlsafe_b64decode(session["key"] + "=")) == 32
    assert api.open_session({"ttl_s": 60})["ttl_s"] == 60
    assert_error(api.send("/capture/sessions", {"ttl_s": 5}), "INVALID_REQUEST_BODY")
    assert_error(api.send("/capture/sessions", {"ttl_s": 100_000}), "INVALID_REQUEST_BODY")
    assert_error(api.client.post("/ai/v1/capture/sessions", json={}), "INVALID_X_YOTI_AUTH_ID")
    assert_error(api.send("/capture/sessions", {}, key=generate_private_key()), "INVALID_SIGNATURE")
    query = f"nonce={uuid.uuid4()}&timestamp={int(time.time() * 1000)}"
    assert api.send("/capture/sessions", {}, query=query).status_code == 200
    assert_error(api.send("/capture/sessions", {}, query=query), "INVALID_NONCE")
    # An application allowed no analysis endpoint may not open one; a disabled one neither.
    key = generate_private_key()
    view = api.hub.create_app("none", None, der_of(key.public_key()), allowed_endpoints=[])
    assert_error(api.send("/capture/sessions", {}, sdk_id=view.sdk_id, key=key), "UNAUTHORIZED")
    view = api.hub.create_app(
        "antispoof-only", None, der_of(key.public_key()), allowed_endpoints=["antispoofing"]
    )
    assert api.send("/capture/sessions", {}, sdk_id=view.sdk_id, key=key).status_code == 200
    api.hub.set_app_enabled(view.sdk_id, False)
    assert_error(api.send("/capture/sessions", {}, sdk_id=view.sdk_id, key=key), "DISABLED_APP_STATE")


# --------------------------------------------------------------------------------------------- checks


def test_preview_checks_guide_and_count(capture_api: CaptureApi) -> None:
    api = capture_api
    session = api.open_session()
    good = api.preview(session, scene())
    assert (
        good["ok"] and good["guidance"] == "good" and good["session"] == {"frames": 1, "good": 1, "finals": 0}
    )
    face = good["face"]
    assert 0.3 < face["left"] < 0.5 < face["right"] < 0.7
    dark = api.preview(session, scene(gain=0.2))
    assert dark["issues"] == ["IMAGE_TOO_DARK"] and dark["guidance"] == "too_dark"
    assert dark["session"] == {"frames": 2, "good": 1, "finals": 0}
    off = api.preview(session, scene(cx=0.12))
    assert off["guidance"] == "centre" and off["face"]["left"] < 0.1


def test_check_needs_a_live_session(capture_api: CaptureApi) -> None:
    c = capture_api.client
    img = b64(jpeg(scene(), 85, (640, 360)))
    preview = {"img": img, "width": 1280, "height": 720}
    assert_error(c.post("/capture/check", json=preview), "SECURE_SESSION_NOT_FOUND")
    assert_error(c.post("/capture/check", json={**preview, "token": "bad token"}), "INVALID_SECURE_SESSION")
    assert_error(c.post("/capture/check", json={**preview, "token": "A" * 43}), "INVALID_SECURE_SESSION")
    session = capture_api.open_session()
    token = session["token"]
    assert_error(c.post("/capture/check", json={"token": token, "width": 1}), "IMAGE_NOT_PROVIDED")
    assert_error(c.post("/capture/check", json={"token": token, "img": img}), "INVALID_REQUEST_BODY")
    assert_error(c.post("/capture/check", content=b"{not json"), "INVALID_BODY_ENCODING")
    assert_error(
        c.post("/capture/check", json={**preview, "token": token, "level": "x"}),
        "INVALID_IMG_VALIDATION_LEVEL",
    )
    wrong_aspect = {"img": img, "width": 1000, "height": 1000, "token": token}
    assert_error(c.post("/capture/check", json=wrong_aspect), "INVALID_REQUEST_BODY")
    # The module posts JSON as text/plain (no CORS preflight); that is accepted.
    r = c.post(
        "/capture/check",
        content=json.dumps({**preview, "token": token}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://shop.example"},
    )
    assert r.status_code == 200 and r.json()["ok"] and r.headers["access-control-allow-origin"] == "*"


def test_open_checks_when_configured(
    tmp_path: Path, capture_pipeline: Pipeline, local_key: rsa.RSAPrivateKey
) -> None:
    app, hub, _settings, _sdk = make_capture_app(tmp_path, capture_pipeline, local_key, open_check=True)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post(
            "/capture/check", json={"img": b64(jpeg(scene(), 85, (640, 360))), "width": 1280, "height": 720}
        )
        assert r.status_code == 200 and r.json()["ok"] and "session" not in r.json()
        assert c.get("/capture/config").json()["session_required"] is False
    hub.close()


def test_final_check_records_the_capture(capture_api: CaptureApi) -> None:
    api = capture_api
    session = api.open_session()
    token = {"token": session["token"]}
    small = api.final(token, jpeg(scene(), 95, (640, 360)))
    assert small == {"ok": False, "issues": ["FACE_BOX_TOO_SMALL"], "guidance": "move_closer", **small}
    poor = api.final(token, jpeg(scene(), 80))
    assert poor["issues"] == ["UNSUPPORTED_IMAGE_FORMAT"] and poor["guidance"] == "capture_problem"
    good = api.final(token, jpeg(scene(), 95))
    assert good["ok"] and good["session"]["finals"] == 3
    record = CaptureSessions(api.hub).get(session["token"])
    assert record is not None and record.capture_sha256 is not None and record.good_frames == 0


# ------------------------------------------------------------------------------ secure analysis requests


def test_secure_request_through_the_api(capture_api: CaptureApi) -> None:
    api = capture_api
    image, block = api.live_capture()
    body = {"img": b64(image), "secure": block}
    # Tampered blocks are refused without spending the session.
    assert_error(
        api.send(
            "/age", {**body, "secure": {**block, "signature": block["signature"][::-1]}}, query=_secure()
        ),
        "INVALID_SECURE_SIGNATURE",
    )
    other = jpeg(scene(cx=0.52), 95)
    assert_error(
        api.send("/age", {"img": b64(other), "secure": block}, query=_secure()), "INVALID_SECURE_SIGNATURE"
    )
    assert_error(
        api.send("/age", {**body, "secure": {**block, "version": 9}}, query=_secure()),
        "SECURE_VERSION_NOT_FOUND",
    )
    no_token = {k: v for k, v in block.items() if k != "token"}
    assert_error(api.send("/age", {**body, "secure": no_token}, query=_secure()), "SECURE_SESSION_NOT_FOUND")
    assert_error(api.send("/age", {"img": b64(image)}, query=_secure()), "SECURE_REQUEST_IS_EMPTY")
    # The genuine capture: an age, once.
    r = api.send("/age", body, query=_secure())
    assert r.status_code == 200, r.text
    assert 10 < r.json()["age"]["age"] < 90
    assert_error(api.send("/age", body, query=_secure()), "INVALID_SECURE_SESSION")
    # Without the flag the block is ignored (as Yoti does).
    assert api.send("/age", body).status_code == 200


def test_injected_image_is_untrusted(capture_api: CaptureApi) -> None:
    """A page that holds the key can sign anything; the server's record of the session still refuses an
    image that never passed its final check."""
    api = capture_api
    session = api.open_session()
    for _ in range(3):
        api.preview(session, scene())
    injected = jpeg(scene(seed=7, cx=0.52), 95)
    block = secure_block(session, injected, frames=3, good=3)
    assert_error(
        api.send("/age", {"img": b64(injected), "secure": block}, query=_secure()), "UNTRUSTED_SECURE_SESSION"
    )


def _secure() -> str:
    return f"secure=true&nonce={uuid.uuid4()}&timestamp={int(time.time() * 1000)}"


# ----------------------------------------------------------------------------------------------- demo


def test_demo_backend_signs_for_the_page(capture_api: CaptureApi) -> None:
    c = capture_api.client
    session = c.post("/capture/demo/session").json()
    assert set(session) == {"version", "token", "key", "expires_at", "ttl_s"}
    rgb = scene()
    for _ in range(3):
        capture_api.preview(session, rgb)
    image = jpeg(rgb, 95)
    assert capture_api.final({"token": session["token"]}, image)["ok"]
    block = secure_block(session, image, frames=3, good=3)
    tampered = c.post(
        "/capture/demo/estimate", json={"img": b64(image), "secure": {**block, "signature": "AAAA"}}
    )
    assert tampered.json()["age"]["status"] == 400
    assert tampered.json()["age"]["body"]["error_code"] == "INVALID_SECURE_SIGNATURE"
    assert tampered.json()["antispoofing"] is None
    answer = c.post(
        "/capture/demo/estimate", json={"img": b64(image), "secure": block, "device": "laptop"}
    ).json()
    assert answer["age"]["status"] == 200 and answer["age"]["body"]["age"]["st_dev"] > 0
    anti = answer["antispoofing"]  # the liveness model may not be installed: then its error, shown as such
    assert "antispoofing" in anti["body"] if anti["status"] == 200 else "error_code" in anti["body"]
    # The private key never reaches the page: nothing the demo answers holds it.
    pem = (capture_api.settings.home / "local-app.pem").read_text()
    body_text = c.get("/capture/demo").text + c.get("/capture/demo.js").text + str(session) + str(answer)
    assert pem.splitlines()[1][:40] not in body_text


def test_demo_without_local_application(capture_api: CaptureApi) -> None:
    (capture_api.settings.home / "local-app.json").unlink()
    assert_error(capture_api.client.post("/capture/demo/session"), "APP_NOT_FOUND")


def test_no_image_data_in_the_store(capture_api: CaptureApi) -> None:
    image, block = capture_api.live_capture()
    assert capture_api.send("/age", {"img": b64(image), "secure": block}, query=_secure()).status_code == 200
    needles = [image[len(image) // 2 : len(image) // 2 + 48], b64(image)[1000:1064].encode()]
    for path in Path(capture_api.settings.resolved_database_url.removeprefix("sqlite:///")).parent.glob(
        "hub.db*"
    ):
        data = path.read_bytes()
        assert not any(n in data for n in needles), path


def test_python_client_opens_sessions(capture_api: CaptureApi) -> None:
    """The documented backend call: the Python client signs it like any /ai/v1 request."""
    from ageguard.client import AgeGuardClient
    from ageguard.hub.keys import private_key_pem

    transport = capture_api.client._transport  # the app, in process
    with AgeGuardClient(
        "http://testserver", capture_api.sdk_id, private_key_pem(capture_api.key), transport=transport
    ) as client:
        session = client.request("POST", "/capture/sessions", {})
    assert session["version"] == 1 and session["token"] and session["key"]
