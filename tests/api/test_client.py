"""The Python client (ageguard.client) and the shared signing function, against the in-process API."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tests_api_helpers import Api

from ageguard import signing
from ageguard.client import (
    AgeAntispoofingResult,
    AgeAntispoofingVerifyResult,
    AgeGuardAPIError,
    AgeGuardClient,
    AgeResult,
    AgeVerifyResult,
    AntispoofingResult,
    api_base,
    load_local_app,
)
from ageguard.hub.keys import private_key_pem
from ageguard.vision.types import AgeEstimate

IMAGE = b"\xff\xd8\xff\xe0 any bytes: the scripted pipeline does not decode them"


def client_for(api: Api, key: rsa.RSAPrivateKey | None = None) -> AgeGuardClient:
    pem = private_key_pem(key or api.key)
    return AgeGuardClient("http://testserver", api.sdk_id, pem, transport=api.client._transport)


def test_typed_results(api: Api) -> None:
    client = client_for(api)
    assert client.age(IMAGE) == AgeResult(30.0, 2.5)
    assert client.antispoofing(IMAGE, level_of_assurance="low") == AntispoofingResult("real")
    assert client.age_antispoofing(IMAGE) == AgeAntispoofingResult(
        AgeResult(30.0, 2.5), AntispoofingResult("real")
    )
    assert client.age_verify(IMAGE, 18) == AgeVerifyResult("pass")
    assert client.age_verify(IMAGE, 18, "UNDER") == AgeVerifyResult("fail")
    assert client.age_antispoofing_verify(IMAGE, 40, "UNDER") == AgeAntispoofingVerifyResult(
        "pass", AntispoofingResult("real")
    )
    result = client.self_checkout(IMAGE, "till-3", session_id="abc")
    assert result.age == AgeResult(30.0, 2.5)
    assert api.pipeline.calls[1]["assurance"] == "low"
    assert all(call["size"] == len(IMAGE) for call in api.pipeline.calls)


def test_typed_error(api: Api, other_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(AgeGuardAPIError) as info:
        client_for(api, other_key).age(IMAGE)
    assert (info.value.code, info.value.status) == ("INVALID_SIGNATURE", 401)
    api.pipeline.age = AgeEstimate(30.0, 9.0)
    assert client_for(api).age_verify(IMAGE, 18).age_check == "fail"
    with pytest.raises(AgeGuardAPIError) as info:
        client_for(api).age(IMAGE, device="fridge")
    assert (info.value.code, info.value.status) == ("INVALID_METADATA_DEVICE", 404)


def test_canonical_message_and_round_trip(private_key: rsa.RSAPrivateKey) -> None:
    body = json.dumps({"img": "abc"}).encode()
    assert signing.canonical_message("post", "/age?nonce=1&timestamp=2", body) == (
        b"POST&/age?nonce=1&timestamp=2&" + base64.b64encode(body)
    )
    assert signing.canonical_message("GET", "/x", None) == b"GET&/x"
    assert signing.canonical_message("GET", "/x", b"") == b"GET&/x&"  # Go's trailing '&'
    digest = signing.sign(private_key, "POST", "/age?a=1", body)
    sig = signing.decode_digest(digest)
    assert sig is not None
    assert signing.verify(private_key.public_key(), sig, "POST", b"/age?a=1", body)
    assert not signing.verify(private_key.public_key(), sig, "POST", b"/age?a=2", body)
    assert signing.decode_digest("not base64!") is None and signing.decode_digest("") is None


def test_api_base_and_local_app(tmp_path: Path) -> None:
    assert api_base("http://127.0.0.1:8000") == "http://127.0.0.1:8000/ai/v1"
    assert api_base("http://h:1/") == "http://h:1/ai/v1"
    assert api_base("https://api.example.com/ai/v1/") == "https://api.example.com/ai/v1"
    assert load_local_app(tmp_path) is None
    (tmp_path / "local-app.json").write_text(
        json.dumps({"sdk_id": "x", "key_path": "/k.pem", "url": "http://u"})
    )
    local = load_local_app(tmp_path)
    assert local is not None and local.sdk_id == "x" and local.key_path == Path("/k.pem")


def test_embedded_default_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ageguard.cli.serve import ensure_local_app
    from ageguard.hub import Hub
    from ageguard.settings import Settings

    settings = Settings(home=tmp_path / "home")
    sdk_id, key_path, created = ensure_local_app(settings, "http://127.0.0.1:9")  # type: ignore[misc]
    assert created and key_path == tmp_path / "home" / "local-app.pem"
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    again = ensure_local_app(settings, "http://127.0.0.1:10")
    assert again == (sdk_id, key_path, False)
    local = load_local_app(settings.home)
    assert local is not None and local.url == "http://127.0.0.1:10"
    with Hub(settings.resolved_database_url) as hub:
        view = hub.find_app(sdk_id)
        assert view is not None and view.enabled and len(hub.list_apps()) == 1
        public = signing.load_private_key(key_path.read_bytes()).public_key()
        from ageguard.hub.keys import der_of

        assert view.public_key_der == der_of(public)
    # A configured database gets no automatic application.
    configured = Settings(home=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'configured.db'}")
    assert ensure_local_app(configured, "http://x") is None
